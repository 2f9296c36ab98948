"""The retry schedule: a pure function of the attempt number."""

from __future__ import annotations

import pytest

from broker.delivery.backoff import STANDARD, TESTING, Schedule, next_delay, parse_schedule


def test_first_attempt_is_followed_by_the_first_delay() -> None:
    """After attempt 1 fails, the wait is the schedule's first delay (no jitter)."""
    schedule = Schedule((5.0, 30.0), jitter=0.0)
    assert next_delay(schedule, 1) == 5.0
    assert next_delay(schedule, 2) == 30.0


def test_retries_run_out() -> None:
    """After the last scheduled retry fails there is no next delay."""
    schedule = Schedule((1.0, 2.0), jitter=0.0)
    assert next_delay(schedule, 3) is None
    assert schedule.attempts == 3


def test_jitter_stays_within_its_fraction_and_is_repeatable() -> None:
    """Jitter moves a delay by at most its fraction, and the same seed gives the same delay."""
    for attempt in range(1, STANDARD.attempts):
        base = STANDARD.delays[attempt - 1]
        for seed in ("a", "b", "c", "d"):
            delay = next_delay(STANDARD, attempt, seed=seed)
            assert delay is not None
            assert base * 0.9 <= delay <= base * 1.1
            assert delay == next_delay(STANDARD, attempt, seed=seed)


def test_jitter_spreads_different_notifications() -> None:
    """Different notification ids get different delays for the same attempt."""
    delays = {next_delay(STANDARD, 1, seed=f"n{i}") for i in range(20)}
    assert len(delays) > 10


def test_standard_schedule_spans_about_a_day() -> None:
    """The standard schedule keeps trying for more than half a day and less than two."""
    total = sum(STANDARD.delays)
    assert 12 * 3600 < total < 48 * 3600


def test_testing_schedule_is_fast() -> None:
    """The testing schedule spends well under a second on all its retries."""
    assert sum(TESTING.delays) < 0.5


def test_parse_schedule() -> None:
    """Schedules parse from comma-separated seconds or by name, and nonsense is refused."""
    assert parse_schedule("1, 2.5,10").delays == (1.0, 2.5, 10.0)
    assert parse_schedule("standard") is STANDARD
    assert parse_schedule("TESTING") is TESTING
    with pytest.raises(ValueError):
        parse_schedule("soon")
    with pytest.raises(ValueError):
        parse_schedule("-1")
