"""The inbox view in the store, kept up with the log: ``InboxFollower``.

The view is materialised from the notifications topic (every partition) and
the acknowledgements on the input topic (``broker.store.materialise``), by the
one follower loop (``broker.store.follow.ViewFollower``): in full at start,
before a request is answered (bounded), and every second in the background
where the process runs the ``views`` role (``broker.store.views_role``).
A view that is empty or behind (a new machine, a deleted file, a dropped
schema) is rebuilt from the log.
"""

from __future__ import annotations

from broker import topics
from broker.delivery.inboxes import children_of
from broker.log.base import Log
from broker.store import Store
from broker.store.follow import ViewFollower
from broker.store.materialise import acks, notifications

__all__ = ["InboxFollower"]


class InboxFollower(ViewFollower):
    """Keeps the store's inbox view up to date with the notifications and the acknowledgements on the log."""

    def __init__(self, log: Log, store: Store, *, refresh_timeout: float = 2.0, interval: float = 1.0) -> None:
        sources = ((topics.NOTIFICATIONS, notifications(children_of)), (topics.INPUT, acks))
        super().__init__(log, store, "inbox", sources, refresh_timeout=refresh_timeout, interval=interval)
