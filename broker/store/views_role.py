"""The ``views`` role: keeps the serving views in the store up with the log, in the background.

The serving views (inboxes with their acknowledgements, the chronology index,
the accepted-id index, the delivery ledger) are materialised from the log by
followers (``broker.store.follow``). A gateway catches a view up when it
starts and when a request needs it (``ViewFollower.refresh``, bounded); this
role follows every view every second (the accepted-id index every 5 s), so a
request seldom has anything to read and a gateway spends its CPU on requests.

One process with the role per store is enough; more are harmless (a stretch
another process applied is refused by position). With N gateways the log is
read into the views once per ``views`` process, not once per gateway.
"""

from __future__ import annotations

import asyncio

from broker.accepted import AcceptedIds
from broker.delivery.inbox_view import InboxFollower
from broker.recent import RecentEvents
from broker.roles import RoleContext
from broker.schemas import default_catalogue
from broker.store import open_store
from broker.store.chronology_view import ChronologyFollower
from broker.store.follow import DeliveriesFollower, ViewFollower
from broker.submissions import content_digest
from broker.validation import event_of

__all__ = ["run_views"]


async def run_views(ctx: RoleContext) -> None:
    """Follow every serving view until cancelled, in the process's store (or one opened from the settings)."""
    store = ctx.store
    own = store is None
    if store is None:
        store = open_store(ctx.settings)
        await store.start()
    recent = ctx.recent if isinstance(ctx.recent, RecentEvents) else RecentEvents(capacity=0)
    ids = AcceptedIds(store, ctx.log, default_catalogue(), content_digest, recent=recent)
    followers: list[ViewFollower] = [
        InboxFollower(ctx.log, store),
        ChronologyFollower(ctx.log, store, decode=recent.event_of(event_of)),
        DeliveriesFollower(ctx.log, store),
    ]
    try:
        await ids.start()
        for follower in followers:
            await follower.start()
        await asyncio.Event().wait()
    finally:
        for follower in followers:
            await follower.close()
        await ids.close()
        if own:
            await store.close()
