"""Inbox reads and writes in SQL, over any ``Conn`` (one SQL text for SQLite and PostgreSQL).

Status filters are written into the SQL as literals (never parameters) so the
planner can match them to the partial indexes in ``migrations.py``; a page is
a keyset range, ``(created_ms, notification_id) < (cursor)``, newest first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from broker.store.conn import Conn
from broker.store.model import (
    AckInfo,
    AckOutcome,
    InboxAck,
    InboxCounts,
    InboxItem,
    InboxNotification,
    InboxQuery,
    Page,
    decode_cursor,
    encode_cursor,
    from_ms,
    to_ms,
)

__all__ = [
    "acknowledge",
    "add_acks",
    "add_notifications",
    "count_inbox",
    "count_listing",
    "get_notification",
    "list_inbox",
    "listing_sql",
    "mark_read",
    "release_ack",
]

_COLUMNS = (
    "n.recipient, n.notification_id, n.event_id, n.kind, n.priority, n.requires_ack, n.status, n.created_ms, "
    "n.ack_by_ms, n.follows, n.children, n.record, n.read_ms, n.read_by, n.acked_ms, n.acked_by, n.ack_note, "
    "n.escalated_ms"
)

_INSERT = (
    "INSERT INTO inbox (recipient, notification_id, event_id, kind, priority, requires_ack, status, created_ms, "
    "ack_by_ms, follows, children, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (recipient, notification_id) DO NOTHING"
)
_INSERT_CHILD = (
    "INSERT INTO inbox_children (recipient, nhs_number, created_ms, notification_id) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (recipient, nhs_number, created_ms, notification_id) DO NOTHING"
)
_INSERT_ACK = (
    "INSERT INTO inbox_acks (recipient, notification_id, acked_by, at_ms, note) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (recipient, notification_id) DO NOTHING"
)
# Copy the acknowledgement on record (it may have come before its notification) onto the inbox row.
_SYNC_ACK = (
    "UPDATE inbox SET status = 'acknowledged', "
    "acked_ms = (SELECT a.at_ms FROM inbox_acks a WHERE a.recipient = inbox.recipient "
    "AND a.notification_id = inbox.notification_id), "
    "acked_by = (SELECT a.acked_by FROM inbox_acks a WHERE a.recipient = inbox.recipient "
    "AND a.notification_id = inbox.notification_id), "
    "ack_note = (SELECT a.note FROM inbox_acks a WHERE a.recipient = inbox.recipient "
    "AND a.notification_id = inbox.notification_id) "
    "WHERE recipient = ? AND notification_id = ? AND acked_ms IS NULL AND EXISTS "
    "(SELECT 1 FROM inbox_acks a WHERE a.recipient = inbox.recipient AND a.notification_id = inbox.notification_id)"
)
# An escalation marks the notification it follows (which may arrive after it, when rebuilding out of order).
_MARK_ESCALATED = (
    "UPDATE inbox SET escalated_ms = ? WHERE recipient = ? AND notification_id = ? "
    "AND (escalated_ms IS NULL OR escalated_ms > ?)"
)
_SYNC_ESCALATED = (
    "UPDATE inbox SET escalated_ms = (SELECT MIN(e.created_ms) FROM inbox e WHERE e.recipient = inbox.recipient "
    "AND e.follows = inbox.notification_id AND e.kind = 'escalation') "
    "WHERE recipient = ? AND notification_id = ? AND escalated_ms IS NULL AND EXISTS "
    "(SELECT 1 FROM inbox e WHERE e.recipient = inbox.recipient AND e.follows = inbox.notification_id "
    "AND e.kind = 'escalation')"
)

# Status filters as SQL literals, so a listing uses the matching partial index.
_STATE_SQL = {
    "awaiting": "n.status = 'awaiting'",
    "overdue": "n.status = 'awaiting' AND n.ack_by_ms < ?",
    "escalated": "n.escalated_ms IS NOT NULL",
    "acknowledged": "n.status = 'acknowledged'",
    "unread": "n.read_ms IS NULL",
}


def _opt_ms(ms: Any) -> Any:
    return None if ms is None else from_ms(int(ms))


def _item(row: Sequence[Any]) -> InboxItem:
    (recipient, nid, event_id, kind, priority, requires_ack, status, created_ms, ack_by_ms, follows, children,
     record, read_ms, read_by, acked_ms, acked_by, ack_note, escalated_ms) = row  # fmt: skip
    note = InboxNotification(
        notification_id=nid,
        recipient=recipient,
        event_id=event_id,
        kind=kind,
        priority=priority,
        created_at=from_ms(int(created_ms)),
        ack_by=_opt_ms(ack_by_ms),
        requires_ack=bool(requires_ack),
        children=tuple(json.loads(children)),
        record=bytes(record),
        follows=follows,
    )
    ack = AckInfo(acked_by, from_ms(int(acked_ms)), ack_note) if acked_ms is not None else None
    return InboxItem(note, status, _opt_ms(read_ms), read_by, ack, _opt_ms(escalated_ms))


async def add_notifications(conn: Conn, notes: Sequence[InboxNotification]) -> None:
    """Insert notifications (idempotent), their children, and any ack or escalation already on record."""
    if not notes:
        return
    rows = [
        (
            n.recipient,
            n.notification_id,
            n.event_id,
            n.kind,
            n.priority,
            int(n.requires_ack),
            "awaiting" if n.requires_ack else "info",
            to_ms(n.created_at),
            None if n.ack_by is None else to_ms(n.ack_by),
            n.follows,
            json.dumps(list(n.children)),
            n.record,
        )
        for n in notes
    ]
    await conn.executemany(_INSERT, rows)
    children = [(n.recipient, c, to_ms(n.created_at), n.notification_id) for n in notes for c in n.children]
    if children:
        await conn.executemany(_INSERT_CHILD, children)
    keys = [(n.recipient, n.notification_id) for n in notes]
    await conn.executemany(_SYNC_ACK, keys)
    await conn.executemany(_SYNC_ESCALATED, keys)
    escalations = [
        (to_ms(n.created_at), n.recipient, n.follows, to_ms(n.created_at))
        for n in notes
        if n.kind == "escalation" and n.follows
    ]
    if escalations:
        await conn.executemany(_MARK_ESCALATED, escalations)


async def add_acks(conn: Conn, acks: Sequence[InboxAck]) -> None:
    """Record acknowledgements (the first per notification counts) and mark their notifications."""
    if not acks:
        return
    await conn.executemany(_INSERT_ACK, [(a.recipient, a.notification_id, a.by, to_ms(a.at), a.note) for a in acks])
    await conn.executemany(_SYNC_ACK, [(a.recipient, a.notification_id) for a in acks])


async def acknowledge(conn: Conn, ack: InboxAck) -> AckOutcome:
    """Acknowledge one notification that is in the recipient's inbox; the first acknowledgement counts."""
    found = await conn.fetchrow(
        "SELECT 1 FROM inbox WHERE recipient = ? AND notification_id = ?", ack.recipient, ack.notification_id
    )
    if found is None:
        return AckOutcome("not_found", None)
    inserted = await conn.execute(_INSERT_ACK, ack.recipient, ack.notification_id, ack.by, to_ms(ack.at), ack.note)
    await conn.execute(_SYNC_ACK, ack.recipient, ack.notification_id)
    row = await conn.fetchrow(
        "SELECT acked_by, at_ms, note FROM inbox_acks WHERE recipient = ? AND notification_id = ?",
        ack.recipient,
        ack.notification_id,
    )
    assert row is not None
    info = AckInfo(row[0], from_ms(int(row[1])), row[2])
    return AckOutcome("acknowledged" if inserted else "already_acknowledged", info)


async def release_ack(conn: Conn, ack: InboxAck) -> bool:
    """Withdraw this acknowledgement (its append to the log failed), if it is the one on record."""
    at_ms = to_ms(ack.at)
    removed = await conn.execute(
        "DELETE FROM inbox_acks WHERE recipient = ? AND notification_id = ? AND acked_by = ? AND at_ms = ?",
        ack.recipient,
        ack.notification_id,
        ack.by,
        at_ms,
    )
    if removed:
        await conn.execute(
            "UPDATE inbox SET status = CASE WHEN requires_ack = 1 THEN 'awaiting' ELSE 'info' END, "
            "acked_ms = NULL, acked_by = NULL, ack_note = NULL "
            "WHERE recipient = ? AND notification_id = ? AND acked_by = ? AND acked_ms = ?",
            ack.recipient,
            ack.notification_id,
            ack.by,
            at_ms,
        )
    return removed > 0


async def mark_read(conn: Conn, recipient: str, notification_id: str, by: str, at_ms: int) -> bool:
    """Record the first opening of a notification."""
    changed = await conn.execute(
        "UPDATE inbox SET read_ms = ?, read_by = ? WHERE recipient = ? AND notification_id = ? AND read_ms IS NULL",
        at_ms,
        by,
        recipient,
        notification_id,
    )
    return changed > 0


async def get_notification(conn: Conn, recipient: str, notification_id: str) -> InboxItem | None:
    """One notification of one recipient."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM inbox n WHERE n.recipient = ? AND n.notification_id = ?", recipient, notification_id
    )
    return None if row is None else _item(row)


def _matching(query: InboxQuery) -> tuple[str, list[str], list[Any], str]:
    """The FROM, the WHERE terms and their arguments for a listing's filters (not its cursor), and the key alias."""
    args: list[Any] = [query.recipient]
    if query.child is not None:
        source = "inbox_children c JOIN inbox n ON n.recipient = c.recipient AND n.notification_id = c.notification_id"
        where = ["c.recipient = ?", "c.nhs_number = ?"]
        args.append(query.child)
        key = "c"
    else:
        source, where, key = "inbox n", ["n.recipient = ?"], "n"
    if query.state is not None:
        where.append(_STATE_SQL[query.state])
        if query.state == "overdue":
            assert query.now is not None
            args.append(to_ms(query.now))
    if query.priority is not None:
        where.append("n.priority = ?")
        args.append(query.priority)
    if query.since is not None:
        where.append(f"{key}.created_ms >= ?")
        args.append(to_ms(query.since))
    return source, where, args, key


def listing_sql(query: InboxQuery) -> tuple[str, list[Any]]:
    """The statement and arguments for one page of an inbox listing (one more row than the page, to see more)."""
    source, where, args, key = _matching(query)
    before, order = (">", "ASC") if query.oldest_first else ("<", "DESC")
    if query.after is not None:
        created_ms, nid = decode_cursor(query.after, (int, str))
        where.append(f"({key}.created_ms, {key}.notification_id) {before} (?, ?)")
        args += [created_ms, nid]
    args.append(query.limit + 1)
    sql = (
        f"SELECT {_COLUMNS} FROM {source} WHERE {' AND '.join(where)} "
        f"ORDER BY {key}.created_ms {order}, {key}.notification_id {order} LIMIT ?"
    )
    return sql, args


async def count_listing(conn: Conn, query: InboxQuery) -> int:
    """How many notifications a listing's filters match across every page (its cursor and limit ignored)."""
    source, where, args, _ = _matching(query)
    row = await conn.fetchrow(f"SELECT COUNT(*) FROM {source} WHERE {' AND '.join(where)}", *args)
    assert row is not None
    return int(row[0])


async def list_inbox(conn: Conn, query: InboxQuery) -> Page[InboxItem]:
    """One page of an inbox listing, newest first (oldest first when the query says so)."""
    sql, args = listing_sql(query)
    rows = await conn.fetch(sql, *args)
    items = [_item(r) for r in rows[: query.limit]]
    more = len(rows) > query.limit
    last = items[-1].notification if items else None
    cursor = encode_cursor(to_ms(last.created_at), last.notification_id) if more and last else None
    return Page(tuple(items), cursor)


async def count_inbox(conn: Conn, recipient: str, now_ms: int) -> InboxCounts:
    """Counts by status, each from its own index, in one round trip."""
    parts = [
        "SELECT COUNT(*) FROM inbox n WHERE n.recipient = ?",
        f"SELECT COUNT(*) FROM inbox n WHERE n.recipient = ? AND {_STATE_SQL['unread']}",
        f"SELECT COUNT(*) FROM inbox n WHERE n.recipient = ? AND {_STATE_SQL['awaiting']}",
        f"SELECT COUNT(*) FROM inbox n WHERE n.recipient = ? AND {_STATE_SQL['overdue']}",
        f"SELECT COUNT(*) FROM inbox n WHERE n.recipient = ? AND {_STATE_SQL['escalated']}",
        f"SELECT COUNT(*) FROM inbox n WHERE n.recipient = ? AND {_STATE_SQL['acknowledged']}",
    ]
    sql = "SELECT " + ", ".join(f"({p})" for p in parts)
    args = [recipient, recipient, recipient, recipient, now_ms, recipient, recipient]
    row = await conn.fetchrow(sql, *args)
    assert row is not None
    total, unread, awaiting, overdue, escalated, acknowledged = (int(v) for v in row)
    return InboxCounts(total, unread, awaiting, overdue, escalated, acknowledged)
