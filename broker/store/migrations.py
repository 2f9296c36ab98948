"""The store's schema, as numbered migrations applied in order at start.

Each migration is a list of statements written once for both dialects, with
``{blob}`` and ``{bigint}`` filled in per dialect (``statements``). The
version applied is recorded in ``store_schema``; ``SqlStore.start`` applies
what is missing in one transaction, under an advisory lock on PostgreSQL (on
SQLite the write lock of ``BEGIN IMMEDIATE`` does the same), so two processes
starting at once apply each migration once. Never edit a released migration:
add a new one.

Times are milliseconds since the epoch (``*_ms`` columns) in both dialects, so
one SQL text serves both. Listing indexes are partial where a filter is a
status: a page of "awaiting" is a range of one index, newest first.
"""

from __future__ import annotations

import dataclasses

__all__ = ["MIGRATIONS", "Migration", "latest_version", "schema_table"]

_TYPES = {
    "sqlite": {"blob": "BLOB", "bigint": "INTEGER"},
    "postgresql": {"blob": "BYTEA", "bigint": "BIGINT"},
}

SCHEMA_TABLE = """
CREATE TABLE IF NOT EXISTS store_schema (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_ms {bigint} NOT NULL
)
"""


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema."""

    version: int
    name: str
    sql: tuple[str, ...]

    def statements(self, dialect: str) -> list[str]:
        """The statements for ``sqlite`` or ``postgresql``."""
        return [s.format(**_TYPES[dialect]) for s in self.sql]


def schema_table(dialect: str) -> str:
    """The statement that creates the table of applied versions."""
    return SCHEMA_TABLE.format(**_TYPES[dialect])


_V1 = (
    # The accepted-id index: one row per event id; the position is NULL while a gateway holds the id.
    """CREATE TABLE accepted_ids (
        event_id TEXT PRIMARY KEY,
        digest TEXT NOT NULL,
        source TEXT NOT NULL,
        log_topic TEXT,
        log_partition INTEGER,
        log_offset {bigint},
        claimed_ms {bigint}
    )""",
    # Inboxes: one row per (recipient, notification), with its read, ack and escalation status.
    """CREATE TABLE inbox (
        recipient TEXT NOT NULL,
        notification_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        priority TEXT NOT NULL,
        requires_ack INTEGER NOT NULL,
        status TEXT NOT NULL,
        created_ms {bigint} NOT NULL,
        ack_by_ms {bigint},
        follows TEXT,
        children TEXT NOT NULL,
        record {blob} NOT NULL,
        read_ms {bigint},
        read_by TEXT,
        acked_ms {bigint},
        acked_by TEXT,
        ack_note TEXT,
        escalated_ms {bigint},
        PRIMARY KEY (recipient, notification_id)
    )""",
    "CREATE INDEX inbox_newest ON inbox (recipient, created_ms, notification_id)",
    "CREATE INDEX inbox_priority ON inbox (recipient, priority, created_ms, notification_id)",
    "CREATE INDEX inbox_awaiting ON inbox (recipient, created_ms, notification_id) WHERE status = 'awaiting'",
    # Overdue at a given time is a range of ack_by among the awaiting: counted without reading rows.
    "CREATE INDEX inbox_overdue ON inbox (recipient, ack_by_ms) WHERE status = 'awaiting'",
    "CREATE INDEX inbox_acknowledged ON inbox (recipient, created_ms, notification_id) WHERE status = 'acknowledged'",
    "CREATE INDEX inbox_escalated ON inbox (recipient, created_ms, notification_id) WHERE escalated_ms IS NOT NULL",
    "CREATE INDEX inbox_unread ON inbox (recipient, created_ms, notification_id) WHERE read_ms IS NULL",
    "CREATE INDEX inbox_follows ON inbox (recipient, follows) WHERE follows IS NOT NULL",
    # The children a notification concerns, so "this child's notifications" is a range of one index.
    """CREATE TABLE inbox_children (
        recipient TEXT NOT NULL,
        nhs_number TEXT NOT NULL,
        created_ms {bigint} NOT NULL,
        notification_id TEXT NOT NULL,
        PRIMARY KEY (recipient, nhs_number, created_ms, notification_id)
    )""",
    # Acknowledgements as they came (the first per notification counts), even before their notification.
    """CREATE TABLE inbox_acks (
        recipient TEXT NOT NULL,
        notification_id TEXT NOT NULL,
        acked_by TEXT NOT NULL,
        at_ms {bigint} NOT NULL,
        note TEXT,
        PRIMARY KEY (recipient, notification_id)
    )""",
    # The delivery ledger: every record, and one summary row per notification.
    """CREATE TABLE delivery_records (
        notification_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        recipient TEXT NOT NULL,
        outcome TEXT NOT NULL,
        at_ms {bigint} NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (notification_id, kind, attempt)
    )""",
    "CREATE INDEX delivery_records_recipient ON delivery_records (recipient, at_ms)",
    """CREATE TABLE deliveries (
        notification_id TEXT PRIMARY KEY,
        recipient TEXT NOT NULL,
        log_partition INTEGER NOT NULL,
        log_offset {bigint} NOT NULL,
        outcome TEXT NOT NULL,
        final INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        last_ms {bigint} NOT NULL,
        next_attempt_ms {bigint}
    )""",
    "CREATE INDEX deliveries_recipient ON deliveries (recipient, outcome)",
    "CREATE INDEX deliveries_due ON deliveries (next_attempt_ms) WHERE final = 0 AND next_attempt_ms IS NOT NULL",
    # Per-child chronology index: where each entry is in the log, in the order a chronology reads.
    """CREATE TABLE chronology (
        nhs_number TEXT NOT NULL,
        at_ms {bigint} NOT NULL,
        log_topic TEXT NOT NULL,
        log_partition INTEGER NOT NULL,
        log_offset {bigint} NOT NULL,
        kind TEXT NOT NULL,
        PRIMARY KEY (nhs_number, at_ms, log_topic, log_partition, log_offset)
    )""",
    # Router snapshots: the state blob and the input offset it reflects.
    """CREATE TABLE snapshots (
        name TEXT NOT NULL,
        input_offset {bigint} NOT NULL,
        created_ms {bigint} NOT NULL,
        blob {blob} NOT NULL,
        PRIMARY KEY (name, input_offset)
    )""",
    # Materialiser positions: per view and partition, the next offset to apply.
    """CREATE TABLE view_positions (
        view_name TEXT NOT NULL,
        log_topic TEXT NOT NULL,
        log_partition INTEGER NOT NULL,
        next_offset {bigint} NOT NULL,
        PRIMARY KEY (view_name, log_topic, log_partition)
    )""",
)

MIGRATIONS: tuple[Migration, ...] = (Migration(1, "serving views", _V1),)


def latest_version() -> int:
    """The newest migration this code knows."""
    return MIGRATIONS[-1].version
