"""The inbox view in the store, kept up with the log: ``InboxFollower``.

The view is materialised from the notifications topic (every partition) and
the acknowledgements on the input topic (``broker.store.materialise``): each
stretch of records is applied with its position in one transaction, so any
number of gateways can follow into one shared store and a view that is empty
or behind (a new machine, a deleted file, a dropped schema) is rebuilt from
the log. ``start`` catches up in full; ``refresh`` catches up before a request
is answered, bounded by ``refresh_timeout`` (past it the request is answered
from what the view has, and the background loop carries on); a background
task catches up every ``interval`` seconds so a request seldom waits.
"""

from __future__ import annotations

import asyncio
import contextlib

from broker import topics
from broker.delivery.inboxes import children_of
from broker.errors import JigsawError
from broker.log.base import Log
from broker.logging import get_logger
from broker.store import Store
from broker.store.materialise import acks, catch_up, notifications

__all__ = ["InboxFollower"]

_log = get_logger("jigsaw.inbox")


class InboxFollower:
    """Keeps the store's inbox view up to date with the notifications and the acknowledgements on the log."""

    def __init__(self, log: Log, store: Store, *, refresh_timeout: float = 2.0, interval: float = 1.0) -> None:
        self.log = log
        self.store = store
        self._refresh_timeout = refresh_timeout
        self._interval = interval
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._derive = notifications(children_of)

    async def start(self, *, background: bool = True) -> int:
        """Create the topics, catch the view up in full, and follow in the background; records read."""
        for topic in (topics.NOTIFICATIONS, topics.INPUT, topics.ACCESS):
            await self.log.create_topic(topic)
        read = await self.catch_up()
        if background and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._follow())
        return read

    async def catch_up(self) -> int:
        """Apply whatever the topics gained since the view last looked; how many records were read."""
        async with self._lock:
            read = 0
            for partition in range(max(1, await self.log.partitions(topics.NOTIFICATIONS))):
                read += await catch_up(
                    self.log, self.store, "inbox", topics.NOTIFICATIONS, self._derive, partition=partition
                )
            read += await catch_up(self.log, self.store, "inbox", topics.INPUT, acks)
            return read

    async def refresh(self) -> None:
        """Catch up before answering, for at most ``refresh_timeout`` seconds (then answer from the view)."""
        try:
            async with asyncio.timeout(self._refresh_timeout):
                await self.catch_up()
        except (TimeoutError, JigsawError) as exc:
            _log.warning("inbox_view_behind", error=type(exc).__name__)

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.catch_up()
            except Exception as exc:  # the log or the store is away: try again next time, never die
                _log.warning("inbox_follow_failed", error=type(exc).__name__)

    async def close(self) -> None:
        """Stop following."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
