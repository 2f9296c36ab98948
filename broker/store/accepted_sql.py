"""The accepted-id index in SQL, over any ``Conn``: put-if-absent, settle, release, look up.

A batch of claims is one multi-row ``INSERT ... ON CONFLICT DO NOTHING
RETURNING``: the database's unique key decides the race, in one process or many. On PostgreSQL a second inserter of
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
_INSERT_MANY = (
    "INSERT INTO accepted_ids (event_id, digest, source, log_topic, log_partition, log_offset, claimed_ms) VALUES"
)
_VALUES = "(?, ?, ?, ?, ?, ?, ?)"
_CHUNK = 500  # rows per multi-row insert: 3,500 parameters, well inside SQLite's and PostgreSQL's limits
_SETTLE = (
    "UPDATE accepted_ids SET log_topic = ?, log_partition = ?, log_offset = ? "
    "WHERE event_id = ? AND digest = ? AND (log_topic IS NULL OR "
    "(log_topic = ? AND log_partition = ? AND log_offset = ?))"
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
    """Put each row unless its id is there (or is a claim older than ``stale_ms`` with no position).

    A few statements per batch, not per row: one multi-row insert per ``_CHUNK`` ids (its ``RETURNING``
    names the rows that went in), a take-over per id that lost (only when ``stale_ms`` is given), and one
    look-up of the rows that stand.
    """
    first: dict[str, AcceptedId] = {}
    for r in rows:
        first.setdefault(r.event_id, r)
    # One lock order for every caller (sorted ids, inserted in that order): two gateways claiming
    # overlapping batches cannot deadlock.
    ordered = sorted(first.values(), key=lambda r: r.event_id)
    won: set[str] = set()
    for i in range(0, len(ordered), _CHUNK):
        chunk = ordered[i : i + _CHUNK]
        args = [
            value
            for row in chunk
            for value in (row.event_id, row.digest, row.source, row.topic, row.partition, row.offset, claimed_ms)
        ]
        inserted = await conn.fetch(
            f"{_INSERT_MANY} {', '.join(_VALUES for _ in chunk)} ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            *args,
        )
        won.update(str(r[0]) for r in inserted)
    lost = [row for row in ordered if row.event_id not in won]
    if stale_ms is not None:
        for row in lost:
            values = (row.digest, row.source, row.topic, row.partition, row.offset, claimed_ms)
            if await conn.execute(_TAKE_OVER, *values, row.event_id, stale_ms):
                won.add(row.event_id)
    standing = await get_many(conn, [row.event_id for row in lost if row.event_id not in won])
    answers = {event_id: Claim(True, first[event_id]) for event_id in won}
    answers.update((event_id, Claim(False, row)) for event_id, row in standing.items())
    assert len(answers) == len(first), "a row that beat a claim cannot vanish inside the claiming transaction"
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
    return await conn.execute(_SETTLE, *where, event_id, digest, *where) > 0


async def settle_many(conn: Conn, landed: Sequence[tuple[str, str, Position]]) -> list[bool]:
    """``settle`` for several claims in two statements; answers in the order given.

    A claim is settled (True) when its row now holds this digest at this position: once a row has a
    position nothing changes it, so reading the rows back after the updates answers as ``settle`` does.
    """
    await conn.executemany(
        _SETTLE,
        [
            (p.topic, p.partition, p.offset, event_id, digest, p.topic, p.partition, p.offset)
            for event_id, digest, p in landed
        ],
    )
    rows = await get_many(conn, [event_id for event_id, _, _ in landed])
    return [
        (row := rows.get(event_id)) is not None and row.digest == digest and row.position == position
        for event_id, digest, position in landed
    ]


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
