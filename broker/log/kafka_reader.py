"""Reading one Kafka topic partition through a manually assigned consumer (``KafkaLog.read``'s engine).

A reader walking forward needs no seek and is served from what its consumer
already fetched. Two things a plain ``getmany`` does not do are handled here:
right after a seek the broker may hold records the consumer has not fetched yet
(they must come back even with no wait), and a transactional writer's commit
markers take offsets that hold no record (the consumer steps over them, and a
read that finds only markers between it and the end says so at once). A reader
walking forward that waited and got nothing asks nothing more: its consumer's
fetch waits at the end and the broker answers it as soon as a record lands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from aiokafka import TopicPartition
from aiokafka.errors import OffsetOutOfRangeError

from broker.log.base import Headers, Record

__all__ = ["READER_SETTINGS", "PartitionReader", "to_record"]

# Readers: an offset past the end is reported (and handled here), never silently reset to 0;
# a short broker-side wait keeps a read that follows a seek quick.
READER_SETTINGS: Final[Mapping[str, Any]] = MappingProxyType({"auto_offset_reset": "none", "fetch_max_wait_ms": 100})
_CATCH_UP_S = 10.0  # how long to wait for records the broker holds but the consumer has not fetched yet
_POLL_S = 0.1
_MARKER_POLL_S = 0.002  # short fetches while looking whether only transaction markers are left
_MIN_WAIT_S = 0.001  # the shortest wait ``getmany`` can give (its timeout is in whole milliseconds)


def to_record(message: Any) -> Record:
    """An aiokafka ``ConsumerRecord`` as a neutral ``Record`` (converted at the edge)."""
    headers: Headers = tuple((str(k), bytes(v)) for k, v in (message.headers or ()))
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=headers,
        timestamp_ms=message.timestamp,
    )


class PartitionReader:
    """One manually assigned consumer for one topic partition, with where it stands."""

    def __init__(
        self, consumer: Any, tp: TopicPartition, ends: Callable[[list[TopicPartition]], Awaitable[Any]]
    ) -> None:
        self.consumer = consumer
        self.tp = tp
        # End offsets, asked on another connection: a broker answers one connection's requests in order, so
        # asked on this consumer's own, the request would wait behind its parked fetch (up to fetch_max_wait_ms).
        self._ends = ends
        self.next_offset: int | None = None  # where the consumer will continue without a seek
        self.lock = asyncio.Lock()
        self.closed = False  # evicted (too many readers); whoever still holds it asks for a new one
        self.dry: tuple[int, int] | None = None  # (offset, end): only transaction markers lie between them
        self.seen_end = 0  # the furthest end offset learned for this partition (``KafkaLog.end_offsets`` sets it)

    def seek(self, offset: int) -> None:
        if self.next_offset != offset:
            self.consumer.seek(self.tp, offset)
            self.next_offset = offset

    async def fetch(self, offset: int, limit: int, wait_s: float) -> list[Any]:
        batch = await self.consumer.getmany(self.tp, timeout_ms=int(wait_s * 1000), max_records=limit)
        messages = [m for m in batch.get(self.tp, []) if m.offset >= offset]
        if messages:
            self.next_offset = messages[-1].offset + 1
        return messages

    async def read(self, offset: int, limit: int, deadline: float) -> list[Any]:
        """Records from ``offset`` (at most ``limit``), waiting until ``deadline`` (loop time) for the first."""
        loop = asyncio.get_running_loop()
        walking = self.next_offset == offset  # no seek: the consumer's own fetches have been following this offset
        self.seek(offset)
        while True:
            began = loop.time()
            try:
                messages = await self.fetch(offset, limit, max(0.0, deadline - began))
            except OffsetOutOfRangeError:
                self.next_offset = None  # the consumer's position is no longer known
                walking = False
                start = (await self.consumer.beginning_offsets([self.tp]))[self.tp]
                if offset < start:  # removed by retention: carry on from the oldest record left
                    offset = start
                    self.seek(offset)
                    continue
                # Past the end: nothing there yet. Wait for it like any other empty read.
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return []
                await asyncio.sleep(min(remaining, _POLL_S))
                self.seek(offset)
                continue
            if messages:
                return await self._fill(messages, limit)
            known = self.seen_end > offset and self.dry != (offset, self.seen_end)  # records there, not yet fetched
            if walking and not known and began < deadline:
                # A reader walking forward waits on its consumer's fetch, which the broker answers as soon as a
                # record is there: until the deadline there is nothing to catch up on (asking the end offset after
                # every idle wait was most of a dispatcher's and a router's requests). aiokafka also wakes the
                # wait when an empty fetch comes back: then it waits again. Not for less than a millisecond:
                # ``getmany`` waits whole milliseconds, so that fetch would return at once, again and again until
                # the deadline (a 1 ms glance spun some 60 times: a fifth of a dispatcher's CPU).
                if deadline - loop.time() < _MIN_WAIT_S:
                    return []
                continue
            # Nothing buffered; but right after a seek the broker may hold records the
            # consumer has not fetched yet. Those must come back even when timeout is 0.
            end = self.seen_end  # records up to a known end are there: wait for them without asking again
            if end <= offset or self.dry == (offset, end):
                end = self.seen_end = max(self.seen_end, (await self._ends([self.tp]))[self.tp])
            if end > offset and self.dry != (offset, end):
                catch_up = loop.time() + max(_CATCH_UP_S, deadline - loop.time())
                while loop.time() < catch_up:
                    messages = await self.fetch(offset, limit, _MARKER_POLL_S)
                    if messages:
                        return await self._fill(messages, limit)
                    # What is left may be only transaction markers (a transactional writer's commits):
                    # the consumer steps over them without returning a record.
                    if await self.consumer.position(self.tp) >= end:
                        self.dry = (offset, end)  # asked again from here, with the same end: nothing to fetch
                        break
                if loop.time() >= deadline:
                    return []
                continue
            if loop.time() >= deadline:
                return []

    async def _fill(self, messages: list[Any], limit: int) -> list[Any]:
        """Top a read up towards ``limit`` while the broker holds more than one fetch brought.

        One fetch stops at a log segment's end; the other backends return
        ``min(limit, available)`` and so should this. The consumer's last stable
        offset from its latest fetch says whether more is there, at no extra cost.
        """
        while messages and len(messages) < limit:
            stable = self.consumer.last_stable_offset(self.tp)
            if stable is None or self.next_offset is None or self.next_offset >= stable:
                break
            if await self.consumer.position(self.tp) >= stable:  # only transaction markers were left
                break
            more = await self.fetch(self.next_offset, limit - len(messages), _CATCH_UP_S)
            if not more:
                break
            messages += more
        return messages
