"""The serving views behind one protocol: ``Store``, and ``Batch``, a materialiser's unit of work.

Two implementations (``SqliteStore``: one file, one machine; ``PostgresStore``:
many machines) behave the same; one contract suite (``tests/contract/test_store_contract.py``)
proves it. Every method may raise ``StoreUnavailable`` (retriable).

Views are materialised from the log and can be rebuilt from it: a materialiser
reads a stretch of a topic, puts the rows it derives in a ``Batch`` with the
offset the stretch ends at, and ``Store.apply`` writes rows and position in one
transaction. Rows are idempotent (keyed by what they are), so a batch applied
twice changes nothing, and a view resumes from ``Store.position``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from broker.delivery.ledger import Job
from broker.delivery.records import DeliveryRecord
from broker.log.base import Position
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
)

__all__ = ["VIEWS", "Batch", "Store"]

# The materialised views, each rebuilt on its own (``Store.reset_view``).
VIEWS = ("accepted", "inbox", "deliveries", "chronology")


@dataclasses.dataclass
class Batch:
    """What a materialiser derived from a stretch of the log, and where each partition's stretch ends.

    ``upto`` maps (topic, partition) to the next offset to read: the position the view
    reaches when the batch is applied.
    """

    view: str
    upto: dict[tuple[str, int], int] = dataclasses.field(default_factory=dict)
    accepted: list[AcceptedId] = dataclasses.field(default_factory=list)
    notifications: list[InboxNotification] = dataclasses.field(default_factory=list)
    acks: list[InboxAck] = dataclasses.field(default_factory=list)
    deliveries: list[DeliveryRecord] = dataclasses.field(default_factory=list)
    chronology: list[ChronologyRef] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.view not in VIEWS:
            raise ValueError(f"view must be one of {', '.join(VIEWS)}, not {self.view!r}")

    def advance(self, topic: str, partition: int, next_offset: int) -> None:
        """Say the batch covers ``topic``/``partition`` up to (not including) ``next_offset``."""
        key = (topic, partition)
        self.upto[key] = max(next_offset, self.upto.get(key, 0))

    def __len__(self) -> int:
        return (
            len(self.accepted) + len(self.notifications) + len(self.acks) + len(self.deliveries) + len(self.chronology)
        )


@runtime_checkable
class Store(Protocol):
    """What Jigsaw's serving views need from a database."""

    name: str

    async def start(self) -> None:
        """Open the database and apply any schema migrations it lacks. Idempotent."""

    async def close(self) -> None:
        """Release connections. Idempotent."""

    async def status(self) -> dict[str, Any]:
        """A small health report: ``{"backend": ..., "ok": bool, "schema": version, ...}``."""

    async def schema_version(self) -> int:
        """The newest migration applied."""

    # -- accepted-id index ----------------------------------------------------------

    async def claim(
        self, row: AcceptedId, *, now: dt.datetime | None = None, stale_after: dt.timedelta | None = None
    ) -> Claim:
        """Put ``row`` unless its event id is there; returns who won and the row that stands.

        Atomic across processes: of several callers racing on one id, exactly one wins. With
        ``now`` and ``stale_after``, a claim that never got a position and is older
        than that is taken over (its gateway died between claiming and appending).
        """

    async def claim_many(
        self, rows: Sequence[AcceptedId], *, now: dt.datetime | None = None, stale_after: dt.timedelta | None = None
    ) -> list[Claim]:
        """``claim`` for several ids in one transaction; answers in the order given."""

    async def settle(self, event_id: str, digest: str, position: Position) -> bool:
        """Record where a claimed event landed in the log; False if the claim is not this digest's."""

    async def settle_many(self, landed: Sequence[tuple[str, str, Position]]) -> list[bool]:
        """``settle`` for several ``(event id, digest, position)`` in one transaction; answers in order."""

    async def release(self, event_id: str, digest: str) -> bool:
        """Drop a claim that never got a position (its append failed); False if there was none."""

    async def accepted(self, event_id: str) -> AcceptedId | None:
        """The row for an event id, or None."""

    async def accepted_many(self, event_ids: Sequence[str]) -> dict[str, AcceptedId]:
        """The rows for those of ``event_ids`` that are there."""

    # -- inboxes ----------------------------------------------------------------------

    async def add_notifications(self, notes: Sequence[InboxNotification]) -> None:
        """Put notifications in their recipients' inboxes (a notification already there is left alone)."""

    async def notification(self, recipient: str, notification_id: str) -> InboxItem | None:
        """One notification, only if it is in this recipient's inbox."""

    async def list_inbox(self, query: InboxQuery) -> Page[InboxItem]:
        """The recipient's notifications, newest first, filtered, one page at a time (by index, never a scan)."""

    async def count_listing(self, query: InboxQuery) -> int:
        """How many notifications a listing's filters match across every page (its cursor and limit ignored)."""

    async def count_inbox(self, recipient: str, *, now: dt.datetime) -> InboxCounts:
        """How many notifications the recipient has, by status; overdue at ``now``."""

    async def mark_read(self, recipient: str, notification_id: str, *, by: str, at: dt.datetime) -> bool:
        """Record the first time a notification was opened; False if it was already, or is not there."""

    async def acknowledge(self, ack: InboxAck) -> AckOutcome:
        """Acknowledge a notification in the recipient's inbox; the first acknowledgement counts."""

    async def release_ack(self, ack: InboxAck) -> bool:
        """Withdraw an acknowledgement whose append to the log failed; False if it is not the one on record."""

    # -- delivery ledger --------------------------------------------------------------

    async def record_deliveries(self, records: Sequence[DeliveryRecord]) -> None:
        """Record delivery attempts and outcomes (one per notification, kind and attempt number)."""

    async def delivery(self, notification_id: str) -> DeliveryHistory | None:
        """Every delivery record of a notification and its final outcome; None if it has none."""

    async def delivered(self, notification_ids: Sequence[str]) -> set[str]:
        """Those of ``notification_ids`` whose delivery is recorded as done (delivered, dead letter, inbox)."""

    async def due_retries(
        self, *, before: dt.datetime, partitions: Sequence[int] | None = None, limit: int = 500
    ) -> list[Job]:
        """Webhook retries owed and due before ``before`` (on these notifications partitions), soonest first."""

    async def delivery_status(self, recipient: str) -> OrgDeliveryStatus:
        """One organisation's deliveries: counts, last delivery, last failure, dead letters."""

    # -- chronology index -------------------------------------------------------------

    async def index_chronology(self, refs: Sequence[ChronologyRef]) -> None:
        """Add entries to children's chronology indexes (an entry already there is left alone)."""

    async def chronology(self, nhs_number: str, *, limit: int = 500, after: str | None = None) -> Page[ChronologyRef]:
        """Where a child's chronology entries are in the log, oldest first, one page at a time."""

    # -- snapshots --------------------------------------------------------------------

    async def put_snapshot(self, snapshot: Snapshot, *, keep: int = 3) -> None:
        """Save a snapshot, keeping the ``keep`` newest (by offset) of its name."""

    async def latest_snapshot(self, name: str) -> Snapshot | None:
        """The snapshot with the highest offset of this name, or None."""

    # -- materialisation --------------------------------------------------------------

    async def apply(self, batch: Batch) -> bool:
        """Write a batch's rows and its view's positions in one transaction.

        Returns False (and writes nothing) when the view is already at or past every position
        the batch reaches: it was applied before.
        """

    async def position(self, view: str, topic: str, partition: int = 0) -> int:
        """The next offset ``view`` needs from ``topic``/``partition`` (0: start from the beginning)."""

    async def positions(self, view: str) -> dict[tuple[str, int], int]:
        """Every position of a view."""

    async def reset_view(self, view: str) -> None:
        """Empty a view and forget its positions, to rebuild it from the log."""
