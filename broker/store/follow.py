"""Following the log into a view: ``ViewFollower``, the one loop every served view uses.

A follower catches one view up from the topics it is derived from
(``materialise.catch_up`` over every partition of each), in full at start,
before a request is answered (bounded by ``refresh_timeout``: past it the
request is answered from what the view has and the view is logged as behind),
and every ``interval`` seconds in the background so a request seldom waits.
Any number of processes may follow into one shared store: a stretch already
applied by another is refused by position.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from broker import topics
from broker.errors import JigsawError
from broker.log.base import Log
from broker.logging import get_logger
from broker.store.base import Store
from broker.store.materialise import Derive, catch_up, deliveries

__all__ = ["DeliveriesFollower", "ViewFollower"]

_log = get_logger("jigsaw.store")


class ViewFollower:
    """Keeps one view of the store up to date with the topics it is derived from."""

    def __init__(
        self,
        log: Log,
        store: Store,
        view: str,
        sources: Sequence[tuple[str, Derive]],
        *,
        refresh_timeout: float = 2.0,
        interval: float = 1.0,
    ) -> None:
        self.log = log
        self.store = store
        self.view = view
        self._sources = tuple(sources)
        self._refresh_timeout = refresh_timeout
        self._interval = interval
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self, *, background: bool = True) -> int:
        """Catch the view up in full, and follow in the background; records read.

        A follower creates none of the topics it reads: their writers do, with the partitions the
        deployment gives them. (A gateway that created the notifications topic with one partition before
        the router created it with ``JIGSAW_KAFKA_PARTITIONS`` won that race, and dispatchers could not
        share the work.) A topic that is not there yet reads as empty.
        """
        read = await self.catch_up()
        if background and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._follow())
        return read

    async def catch_up(self) -> int:
        """Apply whatever the topics gained since the view last looked; how many records were read."""
        async with self._lock:
            read = 0
            for topic, derive in self._sources:
                for partition in range(max(1, await self.log.partitions(topic))):
                    read += await catch_up(self.log, self.store, self.view, topic, derive, partition=partition)
            return read

    async def refresh(self) -> None:
        """Catch up before answering, for at most ``refresh_timeout`` seconds (then answer from the view)."""
        try:
            async with asyncio.timeout(self._refresh_timeout):
                await self.catch_up()
        except (TimeoutError, JigsawError) as exc:
            _log.warning("view_behind", view=self.view, error=type(exc).__name__)

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.catch_up()
            except Exception as exc:  # the log or the store is away: try again next time, never die
                _log.warning("view_follow_failed", view=self.view, error=type(exc).__name__)

    async def close(self) -> None:
        """Stop following."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class DeliveriesFollower(ViewFollower):
    """Keeps the store's delivery ledger (``Store.delivery_status``, ``Store.delivery``) up with its topic."""

    def __init__(self, log: Log, store: Store, *, refresh_timeout: float = 2.0, interval: float = 1.0) -> None:
        sources = ((topics.DELIVERIES, deliveries),)
        super().__init__(log, store, "deliveries", sources, refresh_timeout=refresh_timeout, interval=interval)
