"""A circuit breaker per webhook endpoint: a pure state machine.

``closed``: attempts go through; ``threshold`` failures in a row open it.
``open``: attempts are not made (each counts as a failed attempt, recorded as
``circuit_open``, so a notification's retry schedule still bounds how long it
can take before the dead letter) until ``cooldown`` seconds have passed.
``half_open``: one probe goes through; its success closes the breaker, its
failure opens it again. Times are monotonic seconds; every function returns a
new ``Breaker`` and never mutates one.
"""

from __future__ import annotations

import dataclasses

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "Breaker", "allow", "on_failure", "on_success"]

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


@dataclasses.dataclass(frozen=True, slots=True)
class Breaker:
    """One endpoint's breaker."""

    state: str = CLOSED
    failures: int = 0  # consecutive failures while closed
    opened_at: float = 0.0
    probing: bool = False  # a half-open probe is in flight
    threshold: int = 5
    cooldown: float = 60.0


def allow(breaker: Breaker, now: float) -> tuple[bool, Breaker]:
    """Whether an attempt may go out now, and the breaker after deciding."""
    if breaker.state == CLOSED:
        return True, breaker
    if breaker.state == OPEN:
        if now - breaker.opened_at < breaker.cooldown:
            return False, breaker
        return True, dataclasses.replace(breaker, state=HALF_OPEN, probing=True)
    if breaker.probing:  # half open: one probe at a time
        return False, breaker
    return True, dataclasses.replace(breaker, probing=True)


def on_success(breaker: Breaker) -> Breaker:
    """An attempt succeeded: the breaker closes."""
    return dataclasses.replace(breaker, state=CLOSED, failures=0, probing=False)


def on_failure(breaker: Breaker, now: float) -> Breaker:
    """An attempt failed: count it, and open the breaker at the threshold or after a failed probe."""
    if breaker.state == HALF_OPEN or breaker.failures + 1 >= breaker.threshold:
        return dataclasses.replace(breaker, state=OPEN, failures=0, opened_at=now, probing=False)
    return dataclasses.replace(breaker, failures=breaker.failures + 1)
