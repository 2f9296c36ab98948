"""The ``Store`` protocol over SQL, shared by the SQLite and PostgreSQL backends.

A backend fills in how to open and close, how to run a body of statements in a
write transaction (``_writing``) or for reading (``_reading``), and the
statement that serialises writers of one view or of the migrations (``_lock``:
an advisory transaction lock on PostgreSQL; nothing on SQLite, whose ``BEGIN
IMMEDIATE`` already holds the database's one write lock). Everything else is
here, once.
"""

from __future__ import annotations

import abc
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from broker.delivery.ledger import Job
from broker.delivery.records import DeliveryRecord
from broker.errors import ConfigError, StoreUnavailable
from broker.log.base import Position
from broker.logging import get_logger
from broker.store import accepted_sql, inbox_sql, ledger_sql
from broker.store.base import VIEWS, Batch
from broker.store.conn import Conn
from broker.store.migrations import MIGRATIONS, latest_version, schema_table
from broker.store.model import (
    AcceptedId,
    AckOutcome,
    ChronologyRef,
    Claim,
    DeliveryHistory,
    InboxAck,
    InboxCounts,
    InboxItem,
    InboxNotification,
    InboxQuery,
    OrgDeliveryStatus,
    Page,
    Snapshot,
    from_ms,
    to_ms,
)

__all__ = ["SqlStore"]

T = TypeVar("T")

_log = get_logger("jigsaw.store")

VIEW_TABLES = {
    "accepted": ("accepted_ids",),
    "inbox": ("inbox_children", "inbox_acks", "inbox"),
    "deliveries": ("delivery_records", "deliveries"),
    "chronology": ("chronology",),
}


def _check_view(view: str) -> None:
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}, not {view!r}")


class SqlStore(abc.ABC):
    """Every ``Store`` method in SQL; subclasses supply connections."""

    name: str = "sql"
    dialect: str = "sqlite"

    @abc.abstractmethod
    def _lock(self, key: str) -> str | None:
        """A statement that serialises write transactions holding the same key, or None."""

    @abc.abstractmethod
    async def _writing(self, body: Callable[[Conn], Awaitable[T]]) -> T:
        """``body`` on a connection in one write transaction, committed when it returns (rolled back if it raises)."""

    @abc.abstractmethod
    async def _reading(self, body: Callable[[Conn], Awaitable[T]]) -> T:
        """``body`` on a connection for reads (it sees only committed data)."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Open the database and migrate it."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the database."""

    @abc.abstractmethod
    def _where(self) -> str:
        """Where the database is, for messages (never a password)."""

    # -- schema -------------------------------------------------------------------

    async def _migrate(self) -> None:
        """Apply the migrations this database lacks, once, whoever else is starting."""
        await self._writing(self._migrate_in)

    async def _migrate_in(self, conn: Conn) -> None:
        lock = self._lock("migrations")
        if lock:
            await conn.execute(lock)
        await conn.execute(schema_table(self.dialect))
        done = {int(r[0]) for r in await conn.fetch("SELECT version FROM store_schema")}
        if done and max(done) > latest_version():
            raise ConfigError(
                f"the store at {self._where()} has schema version {max(done)}, newer than this Jigsaw knows "
                f"({latest_version()}): run the newer Jigsaw, or point this one at another store"
            )
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            for statement in migration.statements(self.dialect):
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO store_schema (version, name, applied_ms) VALUES (?, ?, ?)",
                migration.version,
                migration.name,
                int(time.time() * 1000),
            )
            _log.info("store_migrated", store=self.name, version=migration.version, migration=migration.name)

    async def schema_version(self) -> int:
        row = await self._reading(lambda conn: conn.fetchrow("SELECT MAX(version) FROM store_schema"))
        return 0 if row is None or row[0] is None else int(row[0])

    async def status(self) -> dict[str, Any]:
        try:
            version = await self.schema_version()
        except StoreUnavailable as exc:
            return {"backend": self.name, "ok": False, "where": self._where(), "error": exc.message}
        return {"backend": self.name, "ok": True, "where": self._where(), "schema": version}

    # -- accepted-id index --------------------------------------------------------

    async def claim(
        self, row: AcceptedId, *, now: dt.datetime | None = None, stale_after: dt.timedelta | None = None
    ) -> Claim:
        [claim] = await self.claim_many([row], now=now, stale_after=stale_after)
        return claim

    async def claim_many(
        self, rows: Sequence[AcceptedId], *, now: dt.datetime | None = None, stale_after: dt.timedelta | None = None
    ) -> list[Claim]:
        claimed_ms = None if now is None else to_ms(now)
        stale_ms = None if now is None or stale_after is None else to_ms(now - stale_after)
        return await self._writing(lambda conn: accepted_sql.claim_many(conn, rows, claimed_ms, stale_ms))

    async def settle(self, event_id: str, digest: str, position: Position) -> bool:
        return await self._writing(lambda conn: accepted_sql.settle(conn, event_id, digest, position))

    async def settle_many(self, landed: Sequence[tuple[str, str, Position]]) -> list[bool]:
        if not landed:
            return []
        return await self._writing(lambda conn: accepted_sql.settle_many(conn, landed))

    async def release(self, event_id: str, digest: str) -> bool:
        return await self._writing(lambda conn: accepted_sql.release(conn, event_id, digest))

    async def accepted(self, event_id: str) -> AcceptedId | None:
        found = await self._reading(lambda conn: accepted_sql.get_many(conn, [event_id]))
        return found.get(event_id)

    async def accepted_many(self, event_ids: Sequence[str]) -> dict[str, AcceptedId]:
        return await self._reading(lambda conn: accepted_sql.get_many(conn, event_ids))

    # -- inboxes ----------------------------------------------------------------------

    async def add_notifications(self, notes: Sequence[InboxNotification]) -> None:
        await self._writing(lambda conn: inbox_sql.add_notifications(conn, notes))

    async def notification(self, recipient: str, notification_id: str) -> InboxItem | None:
        return await self._reading(lambda conn: inbox_sql.get_notification(conn, recipient, notification_id))

    async def list_inbox(self, query: InboxQuery) -> Page[InboxItem]:
        return await self._reading(lambda conn: inbox_sql.list_inbox(conn, query))

    async def count_listing(self, query: InboxQuery) -> int:
        return await self._reading(lambda conn: inbox_sql.count_listing(conn, query))

    async def count_inbox(self, recipient: str, *, now: dt.datetime) -> InboxCounts:
        return await self._reading(lambda conn: inbox_sql.count_inbox(conn, recipient, to_ms(now)))

    async def mark_read(self, recipient: str, notification_id: str, *, by: str, at: dt.datetime) -> bool:
        return await self._writing(lambda conn: inbox_sql.mark_read(conn, recipient, notification_id, by, to_ms(at)))

    async def acknowledge(self, ack: InboxAck) -> AckOutcome:
        return await self._writing(lambda conn: inbox_sql.acknowledge(conn, ack))

    async def release_ack(self, ack: InboxAck) -> bool:
        return await self._writing(lambda conn: inbox_sql.release_ack(conn, ack))

    # -- delivery ledger ------------------------------------------------------------

    async def record_deliveries(self, records: Sequence[DeliveryRecord]) -> None:
        await self._writing(lambda conn: ledger_sql.record_deliveries(conn, records))

    async def delivery(self, notification_id: str) -> DeliveryHistory | None:
        return await self._reading(lambda conn: ledger_sql.delivery_history(conn, notification_id))

    async def delivered(self, notification_ids: Sequence[str]) -> set[str]:
        return await self._reading(lambda conn: ledger_sql.delivered(conn, notification_ids))

    async def due_retries(
        self, *, before: dt.datetime, partitions: Sequence[int] | None = None, limit: int = 500
    ) -> list[Job]:
        return await self._reading(lambda conn: ledger_sql.due_retries(conn, to_ms(before), partitions, limit))

    async def delivery_status(self, recipient: str) -> OrgDeliveryStatus:
        return await self._reading(lambda conn: ledger_sql.delivery_status(conn, recipient))

    # -- chronology index -----------------------------------------------------------

    async def index_chronology(self, refs: Sequence[ChronologyRef]) -> None:
        await self._writing(lambda conn: ledger_sql.add_chronology(conn, refs))

    async def chronology(self, nhs_number: str, *, limit: int = 500, after: str | None = None) -> Page[ChronologyRef]:
        if not 1 <= limit <= 10_000:
            raise ValueError("limit must be between 1 and 10000")
        return await self._reading(lambda conn: ledger_sql.chronology_page(conn, nhs_number, limit, after))

    # -- snapshots ------------------------------------------------------------------

    async def put_snapshot(self, snapshot: Snapshot, *, keep: int = 3) -> None:
        if keep < 1:
            raise ValueError("keep at least one snapshot")

        async def put(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO snapshots (name, input_offset, created_ms, blob) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name, input_offset) DO UPDATE SET created_ms = excluded.created_ms, blob = excluded.blob",
                snapshot.name,
                snapshot.offset,
                to_ms(snapshot.created_at),
                snapshot.blob,
            )
            await conn.execute(
                "DELETE FROM snapshots WHERE name = ? AND input_offset NOT IN "
                "(SELECT input_offset FROM snapshots WHERE name = ? ORDER BY input_offset DESC LIMIT ?)",
                snapshot.name,
                snapshot.name,
                keep,
            )

        await self._writing(put)
        _log.info(
            "snapshot_saved", store=self.name, snapshot=snapshot.name, offset=snapshot.offset, bytes=len(snapshot.blob)
        )

    async def latest_snapshot(self, name: str) -> Snapshot | None:
        row = await self._reading(
            lambda conn: conn.fetchrow(
                "SELECT input_offset, created_ms, blob FROM snapshots WHERE name = ? "
                "ORDER BY input_offset DESC LIMIT 1",
                name,
            )
        )
        return None if row is None else Snapshot(name, int(row[0]), bytes(row[2]), from_ms(int(row[1])))

    # -- materialisation ------------------------------------------------------------

    async def apply(self, batch: Batch) -> bool:
        return await self._writing(lambda conn: self._apply(conn, batch))

    async def _apply(self, conn: Conn, batch: Batch) -> bool:
        lock = self._lock(f"view:{batch.view}")
        if lock:
            await conn.execute(lock)
        current = await self._positions(conn, batch.view)
        if batch.upto and all(current.get(k, 0) >= v for k, v in batch.upto.items()):
            return False
        await accepted_sql.materialise(conn, batch.accepted)
        await inbox_sql.add_notifications(conn, batch.notifications)
        await inbox_sql.add_acks(conn, batch.acks)
        await ledger_sql.record_deliveries(conn, batch.deliveries)
        await ledger_sql.add_chronology(conn, batch.chronology)
        for (topic, partition), offset in batch.upto.items():
            await conn.execute(
                "INSERT INTO view_positions (view_name, log_topic, log_partition, next_offset) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (view_name, log_topic, log_partition) DO UPDATE SET next_offset = "
                "CASE WHEN excluded.next_offset > view_positions.next_offset THEN excluded.next_offset "
                "ELSE view_positions.next_offset END",
                batch.view,
                topic,
                partition,
                offset,
            )

        return True

    @staticmethod
    async def _positions(conn: Conn, view: str) -> dict[tuple[str, int], int]:
        rows = await conn.fetch(
            "SELECT log_topic, log_partition, next_offset FROM view_positions WHERE view_name = ?", view
        )
        return {(str(r[0]), int(r[1])): int(r[2]) for r in rows}

    async def position(self, view: str, topic: str, partition: int = 0) -> int:
        _check_view(view)
        row = await self._reading(
            lambda conn: conn.fetchrow(
                "SELECT next_offset FROM view_positions WHERE view_name = ? AND log_topic = ? AND log_partition = ?",
                view,
                topic,
                partition,
            )
        )
        return 0 if row is None else int(row[0])

    async def positions(self, view: str) -> dict[tuple[str, int], int]:
        _check_view(view)
        return await self._reading(lambda conn: self._positions(conn, view))

    async def reset_view(self, view: str) -> None:
        _check_view(view)

        async def reset(conn: Conn) -> None:
            lock = self._lock(f"view:{view}")
            if lock:
                await conn.execute(lock)
            for table in VIEW_TABLES[view]:
                await conn.execute(f"DELETE FROM {table}")
            await conn.execute("DELETE FROM view_positions WHERE view_name = ?", view)

        await self._writing(reset)
        _log.info("store_view_reset", store=self.name, view=view)
