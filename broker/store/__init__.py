"""The serving views: inboxes, the accepted-id index, the delivery ledger, chronology indexes, snapshots.

One protocol (``Store``), two backends: ``SqliteStore`` (one file, the
embedded default) and ``PostgresStore`` (shared by many machines). Views are
materialised from the log with their positions (``Batch``, ``Store.apply``,
``materialise.catch_up``) and can be rebuilt from it. ``open_store(settings)`` gives the configured one,
not yet started.
"""

from __future__ import annotations

from pathlib import Path

from broker.errors import ConfigError
from broker.settings import Settings
from broker.store.base import VIEWS, Batch, Store
from broker.store.model import (
    INBOX_STATES,
    AcceptedId,
    AckInfo,
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
)
from broker.store.sqlite import SqliteStore

__all__ = [
    "INBOX_STATES",
    "VIEWS",
    "AcceptedId",
    "AckInfo",
    "AckOutcome",
    "Batch",
    "ChronologyRef",
    "Claim",
    "DeliveryHistory",
    "InboxAck",
    "InboxCounts",
    "InboxItem",
    "InboxNotification",
    "InboxQuery",
    "OrgDeliveryStatus",
    "Page",
    "Snapshot",
    "SqliteStore",
    "Store",
    "open_store",
]


_DEFAULT_PATH = Settings.__dataclass_fields__["store_path"].default
assert isinstance(_DEFAULT_PATH, Path)


def open_store(settings: Settings) -> Store:
    """The store the settings name (``JIGSAW_STORE``), not yet started.

    Raises:
        ConfigError: PostgreSQL is asked for but no DSN file is given, or the file is empty.
    """
    if settings.store == "postgresql":
        from broker.store.postgres import PostgresStore  # imported late: asyncpg is only needed here

        if settings.store_dsn_file is None:
            raise ConfigError("JIGSAW_STORE=postgresql needs JIGSAW_STORE_DSN_FILE: a file holding the DSN")
        dsn = settings.store_dsn_file.read_text().strip()
        if not dsn.startswith(("postgresql://", "postgres://")):
            raise ConfigError(
                f"JIGSAW_STORE_DSN_FILE ({settings.store_dsn_file}) must hold a postgresql:// DSN on its first line"
            )
        return PostgresStore(dsn, max_size=settings.store_pool_size)
    path = settings.store_path
    if path == _DEFAULT_PATH and settings.data_dir != _DEFAULT_PATH.parent:
        path = settings.data_dir / _DEFAULT_PATH.name  # settings built in code with a data_dir: keep the store there
    return SqliteStore(path)
