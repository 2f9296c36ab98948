"""Every organisation's inbox: the pure state behind ``GET /v1/inbox``.

An inbox is every notification the router addressed to the organisation,
whatever the channel: a webhook organisation can pull too, and a notification
whose webhook was dead-lettered is still here. Acknowledgements are matched by
notification id and recipient; the first one counts. ``Inboxes`` is rebuilt
from the notifications and acks topics on start (``inbox.InboxFollower``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from broker.routing.model import ACK_KINDS, Ack, Notification, iso

__all__ = ["PRIORITIES", "Inboxes", "Query", "item_json"]

PRIORITIES = ("urgent", "routine")


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    """Filters for one organisation's inbox."""

    unacknowledged: bool = False  # only notifications that need and lack an acknowledgement
    priority: str | None = None
    since: dt.datetime | None = None  # notifications sent at or after this time
    limit: int = 100


class Inboxes:
    """Notifications by recipient organisation, and the acknowledgements of them."""

    def __init__(self) -> None:
        self._by_org: dict[str, dict[str, Notification]] = {}  # insertion order is log order
        self._acks: dict[tuple[str, str], Ack] = {}  # (notification id, recipient) -> first ack

    def add(self, note: Notification) -> bool:
        """Put a notification in its recipient's inbox; False when it is already there."""
        inbox = self._by_org.setdefault(note.recipient, {})
        if note.notification_id in inbox:
            return False
        inbox[note.notification_id] = note
        return True

    def acknowledge(self, ack: Ack) -> bool:
        """Record an acknowledgement; False when the notification was acknowledged already."""
        key = (ack.notification_id, ack.recipient)
        if key in self._acks:
            return False
        self._acks[key] = ack
        return True

    def get(self, org_id: str, notification_id: str) -> Notification | None:
        """One notification, only if it is in this organisation's inbox."""
        return self._by_org.get(org_id, {}).get(notification_id)

    def ack_of(self, note: Notification) -> Ack | None:
        """The acknowledgement of a notification, or None."""
        return self._acks.get((note.notification_id, note.recipient))

    def count(self, org_id: str) -> int:
        """How many notifications the organisation has had."""
        return len(self._by_org.get(org_id, {}))

    def organisations(self) -> list[str]:
        """Every organisation with at least one notification, sorted."""
        return sorted(self._by_org)

    def query(self, org_id: str, query: Query) -> tuple[list[Notification], bool]:
        """The organisation's notifications matching ``query``, oldest first, and whether more matched."""
        found: list[Notification] = []
        for note in self._by_org.get(org_id, {}).values():
            if query.priority is not None and note.priority != query.priority:
                continue
            if query.since is not None and note.at < query.since:
                continue
            if query.unacknowledged and (note.kind not in ACK_KINDS or self.ack_of(note) is not None):
                continue
            found.append(note)
        found.sort(key=lambda n: n.at)  # stable: log order within the same time
        return found[: query.limit], len(found) > query.limit


def item_json(note: Notification, ack: Ack | None) -> dict[str, Any]:
    """What the inbox API returns for one notification: the notification and its acknowledgement."""
    return {
        **note.to_dict(),
        "requires_ack": note.kind in ACK_KINDS,
        "acknowledged": {"by": ack.by, "at": iso(ack.at)} if ack is not None else None,
    }
