"""A circuit breaker per webhook endpoint: a pure state machine.

``closed``: attempts go through; ``threshold`` failures in a row open it.
``open``: attempts are not made (each counts as a failed attempt, recorded as
``circuit_open``, so a notification's retry schedule still bounds how long it
can take before the dead letter) until ``cooldown`` seconds have passed.
``half_open``: one probe goes through; its success closes the breaker, its
failure opens it again. A probe that says nothing about the endpoint (refused
before sending, or cancelled) frees the probe slot so the next attempt probes;
an endpoint that answers 410 (``gone``) is up, so that closes the breaker.
Every attempt that was allowed must end in ``settle`` (or ``release`` when it
was cancelled), or a half-open breaker waits for its probe for ever. Times are
monotonic seconds; every function returns a new ``Breaker`` and never mutates one.
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "CLOSED",
    "FAILURE_OUTCOMES",
    "HALF_OPEN",
    "OPEN",
    "SUCCESS_OUTCOMES",
    "Breaker",
    "allow",
    "on_failure",
    "on_success",
    "release",
    "settle",
]

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

SUCCESS_OUTCOMES = frozenset({"delivered", "gone"})  # the endpoint answered
FAILURE_OUTCOMES = frozenset({"failed"})  # the endpoint failed or did not answer


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


def release(breaker: Breaker) -> Breaker:
    """An allowed attempt ended without a word about the endpoint (refused, cancelled): free the probe slot."""
    return dataclasses.replace(breaker, probing=False) if breaker.probing else breaker


def settle(breaker: Breaker, outcome: str, now: float) -> Breaker:
    """The breaker after an allowed attempt ended with ``outcome`` (an ``AttemptResult.outcome``).

    ``delivered`` and ``gone`` close it, ``failed`` counts against it, anything
    else (``refused``: nothing was sent) only frees a half-open probe slot.
    """
    if outcome in SUCCESS_OUTCOMES:
        return on_success(breaker)
    if outcome in FAILURE_OUTCOMES:
        return on_failure(breaker, now)
    return release(breaker)
