"""The dispatcher's pure core: what an attempt's result means, and the state rebuilt from records."""

from __future__ import annotations

import datetime as dt
from typing import Any

from broker.delivery.backoff import Schedule
from broker.delivery.ledger import Job, Ledger, after_attempt, inbox_record
from broker.delivery.records import DeliveryRecord, decode_delivery, encode_delivery
from broker.log.base import Record

T0 = dt.datetime(2024, 1, 1, 9, tzinfo=dt.UTC)
SCHEDULE = Schedule((5.0, 60.0), jitter=0.0)
JOB = Job("n-1", "GP-A", 0, 7, 1, T0)


def _attempt(job: Job, outcome: str, **kw: Any) -> tuple[list[DeliveryRecord], Job | None]:
    return after_attempt(job, outcome=outcome, at=T0, endpoint="https://gp-a.example/hook", schedule=SCHEDULE, **kw)


def test_delivered_is_one_final_record() -> None:
    """A 2xx gives one attempt record, delivered, and no retry."""
    records, retry = _attempt(JOB, "delivered", status=200)
    assert retry is None
    assert [(r.kind, r.outcome, r.attempt, r.status) for r in records] == [("attempt", "delivered", 1, 200)]


def test_failure_schedules_the_next_attempt() -> None:
    """A failure is recorded with the next attempt's time, and the retry job carries it."""
    records, retry = _attempt(JOB, "failed", status=500, error="the endpoint answered 500")
    assert retry == Job("n-1", "GP-A", 0, 7, 2, T0 + dt.timedelta(seconds=5))
    assert records[0].next_attempt_at == retry.due
    assert records[0].outcome == "failed"


def test_last_failure_is_a_dead_letter_with_the_reason() -> None:
    """When retries are spent the last attempt is followed by a dead letter that says why."""
    last = Job("n-1", "GP-A", 0, 7, 3, T0)
    records, retry = _attempt(last, "failed", error="timed out after 10 s")
    assert retry is None
    assert [r.kind for r in records] == ["attempt", "dead_letter"]
    assert records[1].error is not None
    assert "3 attempts" in records[1].error and "timed out" in records[1].error and "inbox" in records[1].error


def test_gone_stops_at_once() -> None:
    """410 Gone gives a dead letter on the first attempt, retries or not."""
    records, retry = _attempt(JOB, "gone", status=410)
    assert retry is None
    assert [r.outcome for r in records] == ["gone", "dead_letter"]
    assert "410" in (records[1].error or "")


def test_refused_endpoint_is_not_retried() -> None:
    """An endpoint refused for its address is dead-lettered without retries."""
    records, retry = _attempt(JOB, "refused", error="127.0.0.1 is a loopback address")
    assert retry is None
    assert records[-1].kind == "dead_letter" and "loopback" in (records[-1].error or "")


def test_breaker_skips_count_as_attempts() -> None:
    """An attempt skipped by an open breaker is retried on the schedule like a failure."""
    _, retry = _attempt(JOB, "circuit_open")
    assert retry is not None and retry.attempt == 2


def test_ledger_rebuilds_done_and_owed() -> None:
    """Replaying records gives the done set, the retries owed (with their positions) and gone endpoints."""
    ledger = Ledger()
    failed, _ = _attempt(JOB, "failed", status=503)
    for record in failed:
        ledger.apply(record)
    assert ledger.owes("n-1")
    assert ledger.retries["n-1"] == Job("n-1", "GP-A", 0, 7, 2, T0 + dt.timedelta(seconds=5))
    delivered, _ = _attempt(ledger.retries["n-1"], "delivered", status=200)
    for record in delivered:
        ledger.apply(record)
    assert not ledger.owes("n-1") and "n-1" not in ledger.retries
    ledger.apply(inbox_record(Job("n-2", "CSC", 0, 8, 1, T0), T0))
    assert not ledger.owes("n-2")
    for record in _attempt(Job("n-3", "GP-A", 0, 9, 1, T0), "gone", status=410)[0]:
        ledger.apply(record)
    assert ledger.endpoint_gone("https://gp-a.example/hook", int(T0.timestamp() * 1000) - 1)
    assert not ledger.endpoint_gone("https://gp-a.example/hook", int(T0.timestamp() * 1000) + 1)
    assert ledger.dead_letters == 1


def test_records_round_trip_through_the_log_form() -> None:
    """A delivery record encodes to JSON keyed by notification id and decodes to itself."""
    record = _attempt(JOB, "failed", status=500, error="x", duration_ms=12)[0][0]
    key, value, headers = encode_delivery(record)
    assert key == b"n-1" and ("kind", b"attempt") in headers
    assert decode_delivery(Record("t", 0, 0, key, value, headers, 0)) == record
