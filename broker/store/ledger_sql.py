"""The delivery ledger and the per-child chronology index in SQL, over any ``Conn``.

Each delivery record is one row keyed by (notification, kind, attempt), and
folds into one summary row per notification (``deliveries``): its outcome,
whether it is final, how many attempts, and the retry it waits for. The fold
is idempotent (maxima and a sticky ``final``), so re-applying a record changes
nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from broker.delivery.ledger import Job
from broker.delivery.records import ATTEMPT, FINAL_OUTCOMES, DeliveryRecord
from broker.store.conn import Conn
from broker.store.model import (
    ChronologyRef,
    DeliveryHistory,
    OrgDeliveryStatus,
    Page,
    decode_cursor,
    encode_cursor,
    from_ms,
    to_ms,
)

__all__ = [
    "add_chronology",
    "chronology_page",
    "delivered",
    "delivery_history",
    "delivery_status",
    "due_retries",
    "record_deliveries",
]

_INSERT_RECORD = (
    "INSERT INTO delivery_records (notification_id, kind, attempt, recipient, outcome, at_ms, record) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (notification_id, kind, attempt) DO NOTHING"
)
# In an upsert's SET, ``deliveries.*`` is the row as it was and ``excluded.*`` the record's fold.
_FOLD = (
    "INSERT INTO deliveries (notification_id, recipient, log_partition, log_offset, outcome, final, attempts, "
    "last_ms, next_attempt_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (notification_id) DO UPDATE SET "
    "outcome = CASE WHEN deliveries.final = 1 THEN deliveries.outcome "
    "WHEN excluded.final = 1 OR excluded.last_ms >= deliveries.last_ms THEN excluded.outcome "
    "ELSE deliveries.outcome END, "
    "next_attempt_ms = CASE WHEN deliveries.final = 1 OR excluded.final = 1 THEN NULL "
    "WHEN excluded.last_ms >= deliveries.last_ms THEN excluded.next_attempt_ms "
    "ELSE deliveries.next_attempt_ms END, "
    "final = CASE WHEN deliveries.final = 1 OR excluded.final = 1 THEN 1 ELSE 0 END, "
    "attempts = CASE WHEN excluded.attempts > deliveries.attempts THEN excluded.attempts "
    "ELSE deliveries.attempts END, "
    "last_ms = CASE WHEN excluded.last_ms > deliveries.last_ms THEN excluded.last_ms ELSE deliveries.last_ms END"
)


def _json(record: DeliveryRecord) -> str:
    return json.dumps(record.to_dict(), sort_keys=True, separators=(",", ":"))


async def record_deliveries(conn: Conn, records: Sequence[DeliveryRecord]) -> None:
    """Insert delivery records (idempotent) and fold each into its notification's summary."""
    if not records:
        return
    await conn.executemany(
        _INSERT_RECORD,
        [(r.notification_id, r.kind, r.attempt, r.recipient, r.outcome, to_ms(r.at), _json(r)) for r in records],
    )
    await conn.executemany(
        _FOLD,
        [
            (
                r.notification_id,
                r.recipient,
                r.partition,
                r.offset,
                r.outcome,
                int(r.outcome in FINAL_OUTCOMES),
                r.attempt,
                to_ms(r.at),
                None if r.next_attempt_at is None or r.outcome in FINAL_OUTCOMES else to_ms(r.next_attempt_at),
            )
            for r in records
        ],
    )


async def delivery_history(conn: Conn, notification_id: str) -> DeliveryHistory | None:
    """Every record of one notification in order, and its final outcome."""
    rows = await conn.fetch(
        "SELECT record FROM delivery_records WHERE notification_id = ? "
        "ORDER BY at_ms, attempt, CASE kind WHEN 'attempt' THEN 0 ELSE 1 END",
        notification_id,
    )
    if not rows:
        return None
    summary = await conn.fetchrow("SELECT outcome, final FROM deliveries WHERE notification_id = ?", notification_id)
    outcome = summary[0] if summary is not None and int(summary[1]) else None
    records = tuple(DeliveryRecord.from_dict(json.loads(r[0])) for r in rows)
    return DeliveryHistory(notification_id, records, outcome)


async def delivered(conn: Conn, notification_ids: Sequence[str]) -> set[str]:
    """Those ids whose delivery is final."""
    out: set[str] = set()
    ids = list(dict.fromkeys(notification_ids))
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ", ".join("?" for _ in chunk)
        rows = await conn.fetch(
            f"SELECT notification_id FROM deliveries WHERE final = 1 AND notification_id IN ({marks})", *chunk
        )
        out.update(str(r[0]) for r in rows)
    return out


async def due_retries(conn: Conn, before_ms: int, partitions: Sequence[int] | None, limit: int) -> list[Job]:
    """Retries owed and due before ``before_ms``, soonest first."""
    where = "final = 0 AND next_attempt_ms IS NOT NULL AND next_attempt_ms < ?"
    args: list[Any] = [before_ms]
    if partitions is not None:
        if not partitions:
            return []
        where += f" AND log_partition IN ({', '.join('?' for _ in partitions)})"
        args += list(partitions)
    rows = await conn.fetch(
        "SELECT notification_id, recipient, log_partition, log_offset, attempts, next_attempt_ms FROM deliveries "
        f"WHERE {where} ORDER BY next_attempt_ms, notification_id LIMIT ?",
        *args,
        limit,
    )
    return [Job(r[0], r[1], int(r[2]), int(r[3]), int(r[4]) + 1, from_ms(int(r[5]))) for r in rows]


async def delivery_status(conn: Conn, recipient: str) -> OrgDeliveryStatus:
    """One organisation's delivery summary."""
    counts = await conn.fetchrow(
        "SELECT COUNT(*), "
        "SUM(CASE WHEN outcome = 'delivered' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN outcome = 'dead_letter' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN outcome = 'inbox' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN final = 0 AND next_attempt_ms IS NOT NULL THEN 1 ELSE 0 END) "
        "FROM deliveries WHERE recipient = ?",
        recipient,
    )
    assert counts is not None
    total, ok, dead, inbox, waiting = (int(v or 0) for v in counts)
    times = await conn.fetchrow(
        "SELECT "
        f"(SELECT COUNT(*) FROM delivery_records WHERE recipient = ? AND kind = '{ATTEMPT}' "
        "AND outcome <> 'delivered'), "
        f"(SELECT MAX(at_ms) FROM delivery_records WHERE recipient = ? AND kind = '{ATTEMPT}'), "
        "(SELECT MAX(at_ms) FROM delivery_records WHERE recipient = ? AND outcome = 'delivered')",
        recipient,
        recipient,
        recipient,
    )
    assert times is not None
    failure = await conn.fetchrow(
        f"SELECT at_ms, record FROM delivery_records WHERE recipient = ? AND kind = '{ATTEMPT}' "
        "AND outcome <> 'delivered' ORDER BY at_ms DESC LIMIT 1",
        recipient,
    )
    return OrgDeliveryStatus(
        recipient=recipient,
        notifications=total,
        delivered=ok,
        dead_letters=dead,
        in_inbox=inbox,
        awaiting_retry=waiting,
        failed_attempts=int(times[0] or 0),
        last_attempt_at=None if times[1] is None else from_ms(int(times[1])),
        last_delivered_at=None if times[2] is None else from_ms(int(times[2])),
        last_failure_at=None if failure is None else from_ms(int(failure[0])),
        last_error=None if failure is None else json.loads(failure[1]).get("error"),
    )


async def add_chronology(conn: Conn, refs: Sequence[ChronologyRef]) -> None:
    """Add entries to children's chronology indexes (idempotent)."""
    if not refs:
        return
    await conn.executemany(
        "INSERT INTO chronology (nhs_number, at_ms, log_topic, log_partition, log_offset, kind) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (nhs_number, at_ms, log_topic, log_partition, log_offset) DO NOTHING",
        [(r.nhs_number, to_ms(r.at), r.topic, r.partition, r.offset, r.kind) for r in refs],
    )


async def chronology_page(conn: Conn, nhs_number: str, limit: int, after: str | None) -> Page[ChronologyRef]:
    """One page of a child's chronology index, oldest first."""
    where = "nhs_number = ?"
    args: list[Any] = [nhs_number]
    if after is not None:
        where += " AND (at_ms, log_topic, log_partition, log_offset) > (?, ?, ?, ?)"
        args += list(decode_cursor(after, (int, str, int, int)))
    rows = await conn.fetch(
        "SELECT nhs_number, at_ms, log_topic, log_partition, log_offset, kind FROM chronology "
        f"WHERE {where} ORDER BY at_ms, log_topic, log_partition, log_offset LIMIT ?",
        *args,
        limit + 1,
    )
    refs = [ChronologyRef(r[0], r[2], int(r[3]), int(r[4]), r[5], from_ms(int(r[1]))) for r in rows[:limit]]
    cursor = None
    if len(rows) > limit and refs:
        last = refs[-1]
        cursor = encode_cursor(to_ms(last.at), last.topic, last.partition, last.offset)
    return Page(tuple(refs), cursor)
