"""The inbox page's list: filters, the store query they make, items and pages (pure).

The store does the listing (``Store.list_inbox``: filtered by index, newest
first, a keyset page at a time); this module turns the page's query string
into that query and the store's rows into what the page shows. A
notification is *awaiting* when it needs acknowledging and has none yet;
*overdue* when it is awaiting and its deadline has passed (so overdue ones are
awaiting too); *escalated* when an escalation followed it; *acknowledged* once
someone acknowledged it. These are the store's states, so the page and the
JSON API agree.

Pages move by cursor: ``after`` (the next page: older than the last row shown)
or ``before`` (the previous page: newer than the first row shown). The page
number rides along for the caption only. Filters are checked here, so a
hand-edited URL gets the default rather than an error page.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence

from broker.delivery.inboxes import ack_of, notification_of
from broker.errors import InvalidRequest
from broker.nhs import normalise_nhs_number
from broker.routing.model import ACK_KINDS, Ack, Notification
from broker.store import InboxCounts, InboxItem, InboxQuery
from broker.store.model import decode_cursor, encode_cursor, to_ms

__all__ = [
    "PAGE_SIZE",
    "STATUSES",
    "Filters",
    "Item",
    "Page",
    "counts_of",
    "item_of",
    "known_total",
    "page_of",
    "status_of",
    "store_query",
]

PAGE_SIZE = 25
STATUSES = ("awaiting", "overdue", "escalated", "acknowledged")


@dataclasses.dataclass(frozen=True, slots=True)
class Item:
    """One notification as the inbox shows it."""

    note: Notification
    ack: Ack | None
    status: str  # awaiting, overdue, acknowledged, or info (needs no acknowledgement)
    escalated: bool
    unanswered_escalation: bool = False  # an escalation whose original nobody has acknowledged yet

    @property
    def needs_ack(self) -> bool:
        return self.note.kind in ACK_KINDS

    @property
    def stands_out(self) -> bool:
        """Overdue, urgent and still waiting, or an escalation still unanswered: caught by the eye, not moved."""
        return (
            self.status == "overdue"
            or (self.note.priority == "urgent" and self.status == "awaiting")
            or self.unanswered_escalation
        )


def _cursor(value: str | None) -> str | None:
    if not value:
        return None
    try:
        decode_cursor(value, (int, str))
    except InvalidRequest:
        return None
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class Filters:
    """What the person asked the inbox for, and where in it they are."""

    status: str | None = None
    priority: str | None = None
    nhs_number: str | None = None
    page: int = 1  # for the caption: which page this is, counting from the newest
    after: str | None = None  # cursor: the page of rows older than this one
    before: str | None = None  # cursor: the page of rows newer than this one

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        """Filters from a query string; anything unrecognised is ignored."""
        status = query.get("status") if query.get("status") in STATUSES else None
        priority = query.get("priority") if query.get("priority") in ("urgent", "routine") else None
        nhs = normalise_nhs_number(query.get("nhs_number", "")) or None
        after = _cursor(query.get("after"))
        before = None if after else _cursor(query.get("before"))
        try:
            page = max(1, min(int(query.get("page", "1")), 100_000))
        except ValueError:
            page = 1
        if after is None and before is None:
            page = 1  # no cursor: this is the first page, whatever the URL says
        elif after is not None:
            page = max(page, 2)
        return cls(status, priority, nhs, page, after, before)

    def query(self, **changes: object) -> dict[str, str]:
        """The query string for these filters with some changed (None drops a field)."""
        current = dataclasses.replace(self, **changes)  # type: ignore[arg-type]
        out = {
            "status": current.status,
            "priority": current.priority,
            "nhs_number": current.nhs_number,
            "after": current.after,
            "before": current.before,
            "page": str(current.page) if current.page > 1 and (current.after or current.before) else None,
        }
        return {k: v for k, v in out.items() if v}


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """One page of the inbox."""

    items: tuple[Item, ...]
    total: int  # matching notifications across every page
    page: int
    pages: int
    counts: Mapping[str, int]  # per status, over the whole inbox (for the filter labels)
    size: int  # every notification in the inbox (the live update counts from here)
    next: str | None = None  # cursor of the older page, if there is one
    prev: str | None = None  # cursor of the newer page, if there is one


def status_of(note: Notification, ack: Ack | None, now: dt.datetime) -> str:
    """awaiting, overdue, acknowledged, or info for kinds that need no acknowledgement."""
    if note.kind not in ACK_KINDS:
        return "info"
    if ack is not None:
        return "acknowledged"
    if note.ack_by is not None and now > note.ack_by:
        return "overdue"
    return "awaiting"


def store_query(org_id: str, filters: Filters, now: dt.datetime, *, page_size: int = PAGE_SIZE) -> InboxQuery:
    """The store listing for the filters' page: newest first, or oldest first up from ``before`` (then reversed)."""
    return InboxQuery(
        org_id,
        state=filters.status,
        priority=filters.priority,
        child=filters.nhs_number,
        now=now,
        limit=page_size,
        after=filters.after or filters.before,
        oldest_first=filters.before is not None,
    )


def counts_of(counts: InboxCounts) -> dict[str, int]:
    """The filter labels' counts, by status."""
    return {
        "awaiting": counts.awaiting,
        "overdue": counts.overdue,
        "escalated": counts.escalated,
        "acknowledged": counts.acknowledged,
    }


def known_total(filters: Filters, counts: InboxCounts) -> int | None:
    """How many notifications the filters match, when the inbox's counts say (None: the store must count)."""
    if filters.priority is not None or filters.nhs_number is not None:
        return None
    return counts.total if filters.status is None else counts_of(counts)[filters.status]


def item_of(row: InboxItem, now: dt.datetime, acknowledged: frozenset[str] | set[str] = frozenset()) -> Item:
    """A store row as the inbox shows it; ``acknowledged``: ids among the originals escalations follow that have one."""
    note = notification_of(row)
    ack = ack_of(row)
    escalated = row.escalated_at is not None or note.kind == "escalation"
    unanswered = note.kind == "escalation" and note.follows is not None and note.follows not in acknowledged
    return Item(note, ack, status_of(note, ack, now), escalated, unanswered)


def page_of(
    rows: Sequence[Item],
    *,
    filters: Filters,
    more: str | None,
    total: int,
    counts: InboxCounts,
    page_size: int = PAGE_SIZE,
) -> Page:
    """The page from the store's rows (in the query's order) and its ``next`` cursor.

    Going back (``filters.before``), the rows came oldest first: they are turned newest first, and
    ``more`` says whether there are newer pages still.
    """
    pages = max(1, -(-total // page_size))
    if filters.before is not None:
        items = tuple(reversed(rows))
        prev = _first_key(items) if more else None
        nxt = _last_key(items)
        number = max(1, min(filters.page, pages)) if more else 1
    else:
        items = tuple(rows)
        prev = _first_key(items) if filters.after is not None else None
        nxt = _last_key(items) if more else None
        number = max(1, min(filters.page, pages))
    return Page(items, total, number, pages, counts_of(counts), counts.total, nxt, prev)


def _key(item: Item) -> str:
    return encode_cursor(to_ms(item.note.at), item.note.notification_id)


def _first_key(items: Sequence[Item]) -> str | None:
    return _key(items[0]) if items else None


def _last_key(items: Sequence[Item]) -> str | None:
    return _key(items[-1]) if items else None
