"""The serving views' rows and queries: plain frozen data, no I/O.

Times are timezone-aware datetimes here and whole milliseconds since the
epoch in the database (one SQL text serves SQLite and PostgreSQL). Page
cursors are opaque strings that encode the last row's sort key (keyset
pagination: a page never re-reads the rows before it).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from typing import Generic, TypeVar

from broker.delivery.records import DeliveryRecord
from broker.errors import InvalidRequest
from broker.log.base import Position
from broker.routing.model import ACK_KINDS, Notification

__all__ = [
    "INBOX_STATES",
    "PRIORITIES",
    "AcceptedId",
    "AckInfo",
    "AckOutcome",
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
    "decode_cursor",
    "encode_cursor",
    "from_ms",
    "to_ms",
]

T = TypeVar("T")

PRIORITIES = ("urgent", "routine")
# Listing filters: awaiting (needs an acknowledgement and has none), overdue (awaiting past ack_by at
# the query's ``now``), escalated (an escalation followed it), acknowledged, unread (never opened).
INBOX_STATES = ("awaiting", "overdue", "escalated", "acknowledged", "unread")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)


def to_ms(at: dt.datetime) -> int:
    """Milliseconds since the epoch; refuses a naive datetime (it would mean whatever the host's zone is)."""
    if at.tzinfo is None:
        raise ValueError("the store takes timezone-aware datetimes only")
    return (at - _EPOCH) // _MS  # exact: float seconds would turn .123 into 122 ms now and then


def from_ms(ms: int) -> dt.datetime:
    """The UTC datetime of milliseconds since the epoch."""
    return _EPOCH + ms * _MS


def encode_cursor(*key: int | str) -> str:
    """An opaque page cursor for a row's sort key."""
    return base64.urlsafe_b64encode(json.dumps(list(key), separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, shape: Sequence[type]) -> tuple[int | str, ...]:
    """The sort key in a cursor, checked against ``shape`` (e.g. ``(int, str)``).

    Raises:
        InvalidRequest: the cursor was not made by ``encode_cursor`` for this kind of listing.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (ValueError, TypeError):
        raise InvalidRequest("the page cursor is not one this service gave out; start from the first page") from None
    if (
        not isinstance(key, list)
        or len(key) != len(shape)
        or not all(type(v) is t for v, t in zip(key, shape, strict=True))
    ):
        raise InvalidRequest("the page cursor is not one this service gave out; start from the first page")
    return tuple(key)


@dataclasses.dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing, and the cursor of the next (None: this was the last)."""

    items: tuple[T, ...]
    next: str | None


# -- accepted-id index -------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class AcceptedId:
    """An accepted event id: its content digest, its publisher and where it is in the log.

    The position is None while a gateway holds the id (claimed, not yet appended).
    """

    event_id: str
    digest: str
    source: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None

    @property
    def position(self) -> Position | None:
        """Where the event is in the log, once it is there."""
        if self.topic is None or self.partition is None or self.offset is None:
            return None
        return Position(self.topic, self.partition, self.offset)


@dataclasses.dataclass(frozen=True, slots=True)
class Claim:
    """The answer to a put-if-absent: whether this caller's row went in, and the row that stands."""

    won: bool
    row: AcceptedId


# -- inboxes ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class InboxNotification:
    """A notification in its recipient's inbox: the columns it is found by, and the record it shows."""

    notification_id: str
    recipient: str
    event_id: str
    kind: str
    priority: str
    created_at: dt.datetime
    ack_by: dt.datetime | None
    requires_ack: bool
    children: tuple[str, ...]  # NHS numbers of the children it concerns
    record: bytes  # the notification as the recipient sees it (JSON bytes)
    follows: str | None = None  # the notification an escalation or retraction follows up

    @classmethod
    def of(cls, note: Notification, *, children: Sequence[str], record: bytes) -> InboxNotification:
        """The inbox row for a routed notification."""
        return cls(
            notification_id=note.notification_id,
            recipient=note.recipient,
            event_id=note.event_id,
            kind=note.kind,
            priority=note.priority,
            created_at=note.at,
            ack_by=note.ack_by,
            requires_ack=note.kind in ACK_KINDS,
            children=tuple(dict.fromkeys(children)),
            record=record,
            follows=note.follows,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class InboxAck:
    """A person at the recipient acknowledged a notification (the first one counts)."""

    recipient: str
    notification_id: str
    by: str
    at: dt.datetime
    note: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class AckInfo:
    """Who acknowledged, when, and what they noted."""

    by: str
    at: dt.datetime
    note: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class AckOutcome:
    """What an acknowledgement did: ``acknowledged``, ``already_acknowledged`` or ``not_found``."""

    status: str
    ack: AckInfo | None


@dataclasses.dataclass(frozen=True, slots=True)
class InboxItem:
    """A notification with its read, acknowledgement and escalation status."""

    notification: InboxNotification
    status: str  # awaiting (needs an ack), acknowledged, or info (needs none)
    read_at: dt.datetime | None
    read_by: str | None
    ack: AckInfo | None
    escalated_at: dt.datetime | None

    def overdue(self, now: dt.datetime) -> bool:
        """Still awaiting an acknowledgement after its ``ack_by``."""
        by = self.notification.ack_by
        return self.status == "awaiting" and by is not None and by < now


@dataclasses.dataclass(frozen=True, slots=True)
class InboxQuery:
    """One organisation's inbox, newest first (``oldest_first``: the other way), filtered.

    ``state`` is one of ``INBOX_STATES``; ``overdue`` needs ``now``. ``since`` keeps notifications
    created at or after that time. ``after`` is the ``next`` cursor of the previous page (of a
    listing in the same order).
    """

    recipient: str
    state: str | None = None
    priority: str | None = None
    child: str | None = None
    now: dt.datetime | None = None
    limit: int = 100
    after: str | None = None
    since: dt.datetime | None = None
    oldest_first: bool = False

    def __post_init__(self) -> None:
        if self.state is not None and self.state not in INBOX_STATES:
            raise InvalidRequest(f"state takes one of {', '.join(INBOX_STATES)}, not {self.state!r}")
        if self.state == "overdue" and self.now is None:
            raise InvalidRequest("an overdue listing needs the time to judge it at")
        if self.priority is not None and self.priority not in PRIORITIES:
            raise InvalidRequest(f"priority takes {' or '.join(PRIORITIES)}, not {self.priority!r}")
        if not 1 <= self.limit <= 1000:
            raise InvalidRequest("limit must be between 1 and 1000")


@dataclasses.dataclass(frozen=True, slots=True)
class InboxCounts:
    """How many notifications an organisation has, by status (overdue at the time asked)."""

    total: int
    unread: int
    awaiting: int
    overdue: int
    escalated: int
    acknowledged: int


# -- delivery ledger ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class DeliveryHistory:
    """Every delivery record of one notification, in order, and its final outcome (None: still owed)."""

    notification_id: str
    records: tuple[DeliveryRecord, ...]
    outcome: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class OrgDeliveryStatus:
    """One organisation's deliveries at a glance."""

    recipient: str
    notifications: int  # notifications with any delivery record
    delivered: int
    dead_letters: int
    in_inbox: int  # no endpoint: left in the inbox
    awaiting_retry: int
    failed_attempts: int
    last_attempt_at: dt.datetime | None
    last_delivered_at: dt.datetime | None
    last_failure_at: dt.datetime | None
    last_error: str | None


# -- chronology index and snapshots -----------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ChronologyRef:
    """Where one entry of a child's chronology is in the log."""

    nhs_number: str
    topic: str
    partition: int
    offset: int
    kind: str  # event, notification, decision, acknowledgement
    at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    """A saved state (the router's) and the input offset it reflects: resume from ``offset``."""

    name: str
    offset: int
    blob: bytes
    created_at: dt.datetime
