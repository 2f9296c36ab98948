"""The per-endpoint circuit breaker as a pure state machine."""

from __future__ import annotations

from broker.delivery.breaker import CLOSED, HALF_OPEN, OPEN, Breaker, allow, on_failure, on_success, release, settle


def _failures(breaker: Breaker, n: int, now: float = 0.0) -> Breaker:
    for _ in range(n):
        breaker = on_failure(breaker, now)
    return breaker


def test_closed_breaker_lets_attempts_through() -> None:
    """A new breaker is closed and allows attempts."""
    allowed, breaker = allow(Breaker(), 0.0)
    assert allowed and breaker.state == CLOSED


def test_threshold_failures_open_it() -> None:
    """The threshold's worth of failures in a row opens the breaker, and it then refuses attempts."""
    breaker = _failures(Breaker(threshold=3, cooldown=10.0), 2)
    assert breaker.state == CLOSED
    breaker = on_failure(breaker, 5.0)
    assert breaker.state == OPEN
    allowed, _ = allow(breaker, 14.9)
    assert not allowed


def test_success_resets_the_count() -> None:
    """A success in between means the failures are no longer in a row."""
    breaker = on_success(_failures(Breaker(threshold=3), 2))
    assert _failures(breaker, 2).state == CLOSED


def test_after_cooldown_one_probe_goes_through() -> None:
    """After the cooldown the breaker half-opens and allows exactly one probe at a time."""
    breaker = _failures(Breaker(threshold=1, cooldown=10.0), 1, now=0.0)
    allowed, breaker = allow(breaker, 10.0)
    assert allowed and breaker.state == HALF_OPEN
    allowed_again, breaker = allow(breaker, 10.1)
    assert not allowed_again


def test_probe_success_closes_and_failure_reopens() -> None:
    """The probe's success closes the breaker; its failure opens it for another cooldown."""
    opened = _failures(Breaker(threshold=1, cooldown=10.0), 1, now=0.0)
    _, probing = allow(opened, 10.0)
    assert on_success(probing).state == CLOSED
    reopened = on_failure(probing, 11.0)
    assert reopened.state == OPEN and reopened.opened_at == 11.0
    assert not allow(reopened, 20.0)[0]
    assert allow(reopened, 21.0)[0]


def test_functions_never_mutate() -> None:
    """Every transition returns a new breaker and leaves the old one as it was."""
    breaker = Breaker(threshold=1)
    on_failure(breaker, 0.0)
    assert breaker.state == CLOSED and breaker.failures == 0


def _probing() -> Breaker:
    opened = _failures(Breaker(threshold=1, cooldown=10.0), 1, now=0.0)
    allowed, probing = allow(opened, 10.0)
    assert allowed and probing.state == HALF_OPEN and probing.probing
    return probing


def test_a_gone_probe_closes_the_breaker() -> None:
    """A probe answered 410 shows the endpoint is up: the breaker closes (regression: it stayed half-open)."""
    settled = settle(_probing(), "gone", 11.0)
    assert settled.state == CLOSED and not settled.probing
    assert allow(settled, 11.0)[0]


def test_a_refused_or_cancelled_probe_frees_the_slot_for_the_next_probe() -> None:
    """A probe refused before sending, or cancelled, lets the next attempt probe (regression: none ever could)."""
    for settled in (settle(_probing(), "refused", 11.0), release(_probing())):
        assert settled.state == HALF_OPEN and not settled.probing
        allowed, probing = allow(settled, 12.0)
        assert allowed and probing.probing
        assert settle(probing, "delivered", 12.5).state == CLOSED


def test_settle_counts_failures_and_successes_like_the_transitions() -> None:
    """A failed outcome counts against the breaker, delivered resets it, and release leaves a closed one alone."""
    breaker = Breaker(threshold=2)
    assert settle(breaker, "failed", 0.0).failures == 1
    assert settle(settle(breaker, "failed", 0.0), "failed", 1.0).state == OPEN
    assert settle(settle(breaker, "failed", 0.0), "delivered", 1.0).failures == 0
    assert release(breaker) is breaker
