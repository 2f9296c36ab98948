"""Every organisation's inbox as the API shows it: pure conversions between the store's rows and the JSON.

An inbox is every notification the router addressed to the organisation,
whatever the channel: a webhook organisation can pull too, and a notification
whose webhook was dead-lettered is still here. The rows live in the store
(``broker.store``: ``list_inbox``, ``notification``, ``acknowledge``),
materialised from the notifications topic and the acknowledgements on the
input topic by ``inbox_view.InboxFollower``; this module turns them into what
the API and the pages show, with no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from broker import wire
from broker.nhs import is_valid_nhs_number, normalise_nhs_number
from broker.routing.model import ACK_KINDS, Ack, Notification, iso
from broker.store import InboxItem, InboxQuery

__all__ = ["PRIORITIES", "Query", "ack_of", "children_of", "item_json", "notification_of", "store_query"]

PRIORITIES = ("urgent", "routine")


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    """Filters for one organisation's inbox, as the API takes them."""

    unacknowledged: bool = False  # only notifications that need and lack an acknowledgement
    priority: str | None = None
    since: dt.datetime | None = None  # notifications sent at or after this time
    limit: int = 100
    after: str | None = None  # the ``next`` cursor of the previous page


def store_query(recipient: str, query: Query) -> InboxQuery:
    """The store's query for an API listing: oldest first, as the API has always listed."""
    return InboxQuery(
        recipient,
        state="awaiting" if query.unacknowledged else None,
        priority=query.priority,
        since=query.since,
        limit=query.limit,
        after=query.after,
        oldest_first=True,
    )


def notification_of(item: InboxItem) -> Notification:
    """The routed notification an inbox row keeps (its record, as it is on the log)."""
    return Notification.from_dict(wire.decode_json(item.notification.record))


def ack_of(item: InboxItem) -> Ack | None:
    """The acknowledgement that counts, or None."""
    if item.ack is None:
        return None
    note = item.notification
    return Ack(note.notification_id, note.recipient, item.ack.by, item.ack.at, item.ack.note)


def _people(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        nhs = value.get("nhs_number")
        if isinstance(nhs, str) and is_valid_nhs_number(normalise_nhs_number(nhs)):
            yield normalise_nhs_number(nhs)
        for v in value.values():
            yield from _people(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _people(v)


def children_of(note: Notification) -> list[str]:
    """The NHS numbers of the people a notification's content names, in order (its inbox index entries)."""
    return list(dict.fromkeys(_people(note.content)))


def item_json(note: Notification, ack: Ack | None) -> dict[str, Any]:
    """What the inbox API returns for one notification: the notification and its acknowledgement."""
    return {
        **note.to_dict(),
        "requires_ack": note.kind in ACK_KINDS,
        "acknowledged": {"by": ack.by, "at": iso(ack.at)} if ack is not None else None,
    }
