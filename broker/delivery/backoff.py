"""When to try a webhook again: a pure function of the attempt number.

The schedule is a list of delays, one per retry, after the first attempt
(which is immediate). The standard schedule spreads eight retries over about a
day (5 s, 30 s, 2 min, 10 min, 30 min, 2 h, 6 h, 12 h), close to what the
Standard Webhooks reference implementations use, so a receiver that is down
for a night still gets its notifications in the morning. Jitter (a fraction of
each delay, derived from the notification id, so the same inputs always give
the same answer) keeps a recovering receiver from being hit by every retry at
once. ``TESTING`` retries after a few milliseconds: pass it to the dispatcher
in tests, as stamina's ``set_testing`` does.
"""

from __future__ import annotations

import dataclasses
import hashlib

__all__ = ["STANDARD", "TESTING", "Schedule", "next_delay", "parse_schedule"]


@dataclasses.dataclass(frozen=True, slots=True)
class Schedule:
    """Delays (seconds) before each retry; ``len(delays)`` retries after the first attempt."""

    delays: tuple[float, ...]
    jitter: float = 0.1  # each delay varies by up to this fraction either way

    def __post_init__(self) -> None:
        if any(d < 0 for d in self.delays):
            raise ValueError("retry delays cannot be negative")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError("jitter is a fraction in [0, 1)")

    @property
    def attempts(self) -> int:
        """How many attempts in all, the first included."""
        return len(self.delays) + 1


STANDARD = Schedule((5.0, 30.0, 120.0, 600.0, 1800.0, 7200.0, 21600.0, 43200.0))
TESTING = Schedule((0.01, 0.02, 0.04), jitter=0.0)


def _unit(seed: str, attempt: int) -> float:
    """A number in [0, 1) fixed by ``seed`` and ``attempt``."""
    digest = hashlib.sha256(f"{seed}\x1f{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def next_delay(schedule: Schedule, attempt: int, *, seed: str = "") -> float | None:
    """Seconds to wait after failed attempt number ``attempt`` (1-based), or None when retries are spent.

    Args:
        schedule: the retry schedule.
        attempt: the attempt that just failed (1 is the first attempt).
        seed: varies the jitter (the notification id), so retries of different
            notifications spread out while the same inputs give the same delay.
    """
    if attempt < 1 or attempt > len(schedule.delays):
        return None
    base = schedule.delays[attempt - 1]
    if not schedule.jitter:
        return base
    return base * (1.0 + schedule.jitter * (2.0 * _unit(seed, attempt) - 1.0))


def parse_schedule(text: str) -> Schedule:
    """A schedule from comma-separated seconds (``"5,30,120"``); ``"standard"`` or ``"testing"`` by name.

    Raises:
        ValueError: a delay is not a non-negative number.
    """
    named = {"standard": STANDARD, "testing": TESTING}
    if text.strip().lower() in named:
        return named[text.strip().lower()]
    try:
        delays = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"a retry schedule is comma-separated seconds, not {text!r}") from None
    return Schedule(delays)
