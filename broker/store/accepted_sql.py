"""The accepted-id index in SQL, over any ``Conn``: put-if-absent, settle, release, look up.

A claim is one ``INSERT ... ON CONFLICT DO NOTHING``: the database's unique key
decides the race, in one process or many. On PostgreSQL a second inserter of
the same id waits for the first transaction and then sees its row (READ
COMMITTED: each statement sees what committed before it); on SQLite writers
take turns (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from broker.log.base import Position
from broker.store.conn import Conn
from broker.store.model import AcceptedId, Claim

__all__ = ["claim_many", "get_many", "materialise", "release", "settle", "settle_many"]

_SELECT = "SELECT event_id, digest, source, log_topic, log_partition, log_offset FROM accepted_ids"
_INSERT = (
    "INSERT INTO accepted_ids (event_id, digest, source, log_topic, log_partition, log_offset, claimed_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING"
)
_TAKE_OVER = (
    "UPDATE accepted_ids SET digest = ?, source = ?, log_topic = ?, log_partition = ?, log_offset = ?, "
    "claimed_ms = ? WHERE event_id = ? AND log_topic IS NULL AND claimed_ms < ?"
)


def _row(row: Sequence[Any]) -> AcceptedId:
    event_id, digest, source, topic, partition, offset = row
    return AcceptedId(
        event_id,
        digest,
        source,
        topic,
        None if partition is None else int(partition),
        None if offset is None else int(offset),
    )


async def claim_many(
    conn: Conn, rows: Sequence[AcceptedId], claimed_ms: int | None, stale_ms: int | None
) -> list[Claim]:
    """Put each row unless its id is there (or is a claim older than ``stale_ms`` with no position)."""
    first: dict[str, AcceptedId] = {}
    for r in rows:
        first.setdefault(r.event_id, r)
    answers: dict[str, Claim] = {}
    # One lock order for every caller (sorted ids): two gateways claiming overlapping batches cannot deadlock.
    for row in sorted(first.values(), key=lambda r: r.event_id):
        values = (row.digest, row.source, row.topic, row.partition, row.offset, claimed_ms)
        won = await conn.execute(_INSERT, row.event_id, *values)
        if not won and stale_ms is not None:
            won = await conn.execute(_TAKE_OVER, *values, row.event_id, stale_ms)
        if won:
            answers[row.event_id] = Claim(True, row)
            continue
        existing = await conn.fetchrow(f"{_SELECT} WHERE event_id = ?", row.event_id)
        assert existing is not None
        answers[row.event_id] = Claim(False, _row(existing))
    # A second copy of an id in ``rows`` loses to the first.
    out: list[Claim] = []
    seen: set[str] = set()
    for row in rows:
        claim = answers[row.event_id]
        out.append(claim if row.event_id not in seen else Claim(False, claim.row))
        seen.add(row.event_id)
    return out


async def settle(conn: Conn, event_id: str, digest: str, position: Position) -> bool:
    """Give a claim of this digest its log position (the same position again is fine)."""
    where = (position.topic, position.partition, position.offset)
    changed = await conn.execute(
        "UPDATE accepted_ids SET log_topic = ?, log_partition = ?, log_offset = ? "
        "WHERE event_id = ? AND digest = ? AND (log_topic IS NULL OR "
        "(log_topic = ? AND log_partition = ? AND log_offset = ?))",
        *where,
        event_id,
        digest,
        *where,
    )
    return changed > 0


async def settle_many(conn: Conn, landed: Sequence[tuple[str, str, Position]]) -> list[bool]:
    """``settle`` for several claims; answers in the order given."""
    return [await settle(conn, event_id, digest, position) for event_id, digest, position in landed]


async def release(conn: Conn, event_id: str, digest: str) -> bool:
    """Drop a claim of this digest that has no position."""
    changed = await conn.execute(
        "DELETE FROM accepted_ids WHERE event_id = ? AND digest = ? AND log_topic IS NULL", event_id, digest
    )
    return changed > 0


async def get_many(conn: Conn, event_ids: Sequence[str]) -> dict[str, AcceptedId]:
    """The rows of those ids that are there."""
    ids = list(dict.fromkeys(event_ids))
    out: dict[str, AcceptedId] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        rows = await conn.fetch(f"{_SELECT} WHERE event_id IN ({', '.join('?' for _ in chunk)})", *chunk)
        out.update((str(r[0]), _row(r)) for r in rows)
    return out


async def materialise(conn: Conn, rows: Sequence[AcceptedId]) -> None:
    """Rows read back from the log: add them, or give a claim of the same content its position."""
    if not rows:
        return
    await conn.executemany(
        "INSERT INTO accepted_ids (event_id, digest, source, log_topic, log_partition, log_offset) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO UPDATE SET log_topic = excluded.log_topic, "
        "log_partition = excluded.log_partition, log_offset = excluded.log_offset "
        "WHERE accepted_ids.log_topic IS NULL AND accepted_ids.digest = excluded.digest",
        [(r.event_id, r.digest, r.source, r.topic, r.partition, r.offset) for r in rows],
    )
