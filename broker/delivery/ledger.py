"""What the dispatcher owes: the pure core of delivery, rebuilt from the deliveries topic.

``Ledger`` applies delivery records in log order and knows which
notifications are done (delivered, dead-lettered or left in the inbox), which
wait for a retry and when, and which endpoints answered 410 Gone. ``after_attempt``
decides what an attempt's result means: the records to write and the retry, if
any. No I/O and no clock: times come in as arguments.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from broker.delivery.backoff import Schedule, next_delay
from broker.delivery.records import ATTEMPT, DEAD_LETTER, FINAL_OUTCOMES, INBOX, DeliveryRecord

__all__ = ["Job", "Ledger", "after_attempt", "dead_letter", "inbox_record"]


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    """A webhook attempt the dispatcher owes: which notification, which attempt, from when."""

    notification_id: str
    recipient: str
    partition: int
    offset: int
    attempt: int  # 1 for the first attempt
    due: dt.datetime


class Ledger:
    """Delivery state per notification id, from delivery records applied in order."""

    def __init__(self) -> None:
        self.done: set[str] = set()
        self.retries: dict[str, Job] = {}  # notification id -> the retry it waits for
        self.gone: dict[str, int] = {}  # endpoint -> when it answered 410 (ms)
        self.dead_letters = 0

    def apply(self, record: DeliveryRecord) -> None:
        """Apply one record from the deliveries topic (or one just written)."""
        nid = record.notification_id
        if record.outcome in FINAL_OUTCOMES:
            self.done.add(nid)
            self.retries.pop(nid, None)
            if record.kind == DEAD_LETTER:
                self.dead_letters += 1
            return
        if record.outcome == "gone" and record.endpoint:
            self.gone[record.endpoint] = int(record.at.timestamp() * 1000)
        if nid in self.done:
            return
        if record.kind == ATTEMPT and record.next_attempt_at is not None:
            self.retries[nid] = Job(
                nid, record.recipient, record.partition, record.offset, record.attempt + 1, record.next_attempt_at
            )

    def owes(self, notification_id: str) -> bool:
        """False once the notification is delivered, dead-lettered or in the inbox."""
        return notification_id not in self.done

    def endpoint_gone(self, endpoint: str, directory_updated_ms: int) -> bool:
        """The endpoint answered 410 since the directory last published it."""
        at = self.gone.get(endpoint)
        return at is not None and at >= directory_updated_ms


def inbox_record(job: Job, at: dt.datetime) -> DeliveryRecord:
    """The organisation has no endpoint: the notification waits in its inbox."""
    return DeliveryRecord(INBOX, job.notification_id, job.recipient, at, INBOX, job.partition, job.offset)


def dead_letter(job: Job, at: dt.datetime, reason: str, *, endpoint: str | None, attempts: int) -> DeliveryRecord:
    """Delivery by webhook is given up; the notification stays in the inbox."""
    return DeliveryRecord(
        DEAD_LETTER,
        job.notification_id,
        job.recipient,
        at,
        DEAD_LETTER,
        job.partition,
        job.offset,
        attempt=attempts,
        endpoint=endpoint,
        error=f"{reason}; the notification stays in {job.recipient}'s inbox",
    )


def after_attempt(
    job: Job,
    *,
    outcome: str,
    at: dt.datetime,
    endpoint: str,
    schedule: Schedule,
    status: int | None = None,
    error: str | None = None,
    duration_ms: int | None = None,
) -> tuple[list[DeliveryRecord], Job | None]:
    """The records one attempt's result calls for, and the retry to schedule (None: no more attempts).

    Args:
        job: the attempt that was made (or skipped, for ``circuit_open``).
        outcome: ``delivered``, ``failed``, ``circuit_open``, ``gone`` or ``refused``.
        at: when the attempt finished.
        endpoint: where it went.
        schedule: the retry schedule.
    """
    retriable = outcome in ("failed", "circuit_open")
    retry_in = next_delay(schedule, job.attempt, seed=job.notification_id) if retriable else None
    retry = (
        dataclasses.replace(job, attempt=job.attempt + 1, due=at + dt.timedelta(seconds=retry_in))
        if retry_in is not None
        else None
    )
    attempt = DeliveryRecord(
        ATTEMPT,
        job.notification_id,
        job.recipient,
        at,
        outcome,
        job.partition,
        job.offset,
        attempt=job.attempt,
        endpoint=endpoint,
        status=status,
        error=error,
        duration_ms=duration_ms,
        next_attempt_at=retry.due if retry else None,
    )
    if outcome == "delivered" or retry is not None:
        return [attempt], retry
    if outcome == "gone":
        reason = f"the endpoint answered 410 Gone on attempt {job.attempt}: no more attempts"
    elif outcome == "refused":
        reason = f"the endpoint is refused: {error}"
    else:
        reason = f"no answer after {job.attempt} attempts (last: {error or outcome})"
    return [attempt, dead_letter(job, at, reason, endpoint=endpoint, attempts=job.attempt)], None
