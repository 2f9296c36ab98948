"""A view of the log that hides records newer than a horizon: how the live router reads a consistent past.

The router merges several input topics by record timestamp, reading them one
after another. On a live log, an agency can append to a topic the router has
just read and then another agency to a topic it is about to read; the router
would then apply the second event without the first, although the first is
older (a registration landing just after an incident that names the same
person would be missed). Reading only records older than *now minus a grace
period* closes that window: anything stamped before the horizon was appended
(the gateway stamps records just before it appends them) before the reads began.

``HorizonLog`` wraps a ``Log``; reads stop at the first record newer than
``horizon_ms`` (None: no horizon). A read that must not wait, at or past the
end of its partition, returns at once: the router polls a dozen inputs, and
on Kafka such a read would otherwise queue behind a fetch that waits up to
100 ms for data. Everything else passes through. The grace
must cover the time from a record being stamped to it being readable, plus
any clock difference between the gateway and router hosts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from broker.log.base import Headers, Log, Position, Record
from broker.log.scan import read_available

__all__ = ["HorizonLog"]


class HorizonLog:
    """A ``Log`` whose reads end before the first record stamped after ``horizon_ms``."""

    def __init__(self, log: Log) -> None:
        self.inner = log
        self.name = log.name
        self.horizon_ms: int | None = None
        self.saw_full_read = False  # a read since the last reset returned as many records as it asked for

    async def read(
        self, topic: str, offset: int, *, partition: int = 0, limit: int = 500, timeout: float = 0.0
    ) -> list[Record]:
        if timeout <= 0:
            records = await read_available(self.inner, topic, offset, partition=partition, limit=limit)
        else:
            records = await self.inner.read(topic, offset, partition=partition, limit=limit, timeout=timeout)
        if len(records) >= limit:
            self.saw_full_read = True
        if self.horizon_ms is None:
            return records
        for index, record in enumerate(records):
            if record.timestamp_ms > self.horizon_ms:
                return records[:index]  # stop here: offsets stay contiguous, the rest comes next time
        return records

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def create_topic(self, topic: str, *, partitions: int = 1, compacted: bool = False) -> None:
        await self.inner.create_topic(topic, partitions=partitions, compacted=compacted)

    async def append(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Headers = (),
        timestamp_ms: int | None = None,
        partition: int | None = None,
    ) -> Position:
        return await self.inner.append(
            topic, value, key=key, headers=headers, timestamp_ms=timestamp_ms, partition=partition
        )

    async def append_many(
        self,
        topic: str,
        items: Sequence[tuple[bytes | None, bytes | None, Headers]],
        *,
        timestamp_ms: int | None = None,
    ) -> list[Position]:
        return await self.inner.append_many(topic, items, timestamp_ms=timestamp_ms)

    async def end_offset(self, topic: str, *, partition: int = 0) -> int:
        return await self.inner.end_offset(topic, partition=partition)

    async def partitions(self, topic: str) -> int:
        return await self.inner.partitions(topic)

    async def commit(self, group: str, topic: str, offset: int, *, partition: int = 0) -> None:
        await self.inner.commit(group, topic, offset, partition=partition)

    async def committed(self, group: str, topic: str, *, partition: int = 0) -> int | None:
        return await self.inner.committed(group, topic, partition=partition)

    async def read_compacted(self, topic: str) -> dict[bytes, Record]:
        return await self.inner.read_compacted(topic)

    async def status(self) -> dict[str, Any]:
        return await self.inner.status()
