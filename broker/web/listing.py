"""The inbox page's list: statuses, filters, newest first, pages (pure).

``list_page(items, filters, now)`` takes one organisation's notifications with
their acknowledgements and returns the page to show. A notification is
*overdue* when it needs acknowledging, has none, and its deadline has passed;
*awaiting* when it needs one and the deadline has not passed; *escalated* when
an escalation followed it (or it is itself an escalation); *acknowledged* once
someone acknowledged it. Filters come from the query string and are checked
here, so a hand-edited URL gets the default rather than an error page.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence

from broker.nhs import normalise_nhs_number
from broker.routing.model import ACK_KINDS, Ack, Notification

__all__ = ["PAGE_SIZE", "STATUSES", "Filters", "Item", "Page", "list_page", "status_of"]

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


@dataclasses.dataclass(frozen=True, slots=True)
class Filters:
    """What the person asked the inbox for."""

    status: str | None = None
    priority: str | None = None
    nhs_number: str | None = None
    page: int = 1

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        """Filters from a query string; anything unrecognised is ignored."""
        status = query.get("status") if query.get("status") in STATUSES else None
        priority = query.get("priority") if query.get("priority") in ("urgent", "routine") else None
        nhs = normalise_nhs_number(query.get("nhs_number", "")) or None
        try:
            page = max(1, min(int(query.get("page", "1")), 100_000))
        except ValueError:
            page = 1
        return cls(status, priority, nhs, page)

    def query(self, **changes: object) -> dict[str, str]:
        """The query string for these filters with some changed (None drops a field)."""
        current = dataclasses.replace(self, **changes)  # type: ignore[arg-type]
        out = {
            "status": current.status,
            "priority": current.priority,
            "nhs_number": current.nhs_number,
            "page": str(current.page) if current.page > 1 else None,
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


def status_of(note: Notification, ack: Ack | None, now: dt.datetime) -> str:
    """awaiting, overdue, acknowledged, or info for kinds that need no acknowledgement."""
    if note.kind not in ACK_KINDS:
        return "info"
    if ack is not None:
        return "acknowledged"
    if note.ack_by is not None and now > note.ack_by:
        return "overdue"
    return "awaiting"


def _mentions(note: Notification, nhs: str) -> bool:
    return f"({nhs})" in note.reason or nhs in repr(note.content)


def list_page(
    notes: Sequence[Notification],
    acks: Mapping[str, Ack],
    filters: Filters,
    now: dt.datetime,
    *,
    page_size: int = PAGE_SIZE,
) -> Page:
    """The page of one organisation's inbox the filters ask for, newest first.

    Args:
        notes: the organisation's notifications, in log order.
        acks: acknowledgements by notification id.
    """
    followed = {n.follows for n in notes if n.kind == "escalation" and n.follows}
    counts = dict.fromkeys(STATUSES, 0)
    chosen: list[Item] = []
    for note in reversed(notes):  # log order reversed: newest first, stable within the same time
        ack = acks.get(note.notification_id)
        status = status_of(note, ack, now)
        escalated = note.notification_id in followed or note.kind == "escalation"
        if status in counts:
            counts[status] += 1
        if escalated:
            counts["escalated"] += 1
        if filters.status == "escalated":
            if not escalated:
                continue
        elif filters.status is not None and status != filters.status:
            continue
        if filters.priority is not None and note.priority != filters.priority:
            continue
        if filters.nhs_number is not None and not _mentions(note, filters.nhs_number):
            continue
        unanswered = note.kind == "escalation" and note.follows is not None and note.follows not in acks
        chosen.append(Item(note, ack, status, escalated, unanswered))
    chosen.sort(key=lambda item: item.note.at, reverse=True)  # stable: keeps newest-logged first on ties
    pages = max(1, -(-len(chosen) // page_size))
    page = min(filters.page, pages)
    start = (page - 1) * page_size
    return Page(tuple(chosen[start : start + page_size]), len(chosen), page, pages, counts)
