"""The one pass-through base for log wrappers: ``LogWrapper`` forwards every ``Log`` method to an inner log.

A wrapper overrides only what it changes. Most wrappers rename things on the
way through, so the base routes every call through four small mappings
(identity here): ``inner_topic`` and ``inner_group`` on the way in,
``outer_record`` and ``outer_position`` on the way out. ``NamespacedLog``
overrides just those; a test log that fails on the third append overrides
just ``append``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from broker.log.base import Headers, Log, Position, Record

__all__ = ["LogWrapper"]


class LogWrapper:
    """A ``Log`` that forwards everything to ``inner`` (see the module docstring)."""

    def __init__(self, inner: Log) -> None:
        self.inner = inner
        self.name = inner.name

    # -- the mappings a wrapper may override ------------------------------------

    def inner_topic(self, topic: str) -> str:
        """The inner log's name for ``topic``."""
        return topic

    def inner_group(self, group: str) -> str:
        """The inner log's name for consumer group ``group``."""
        return group

    def outer_record(self, record: Record) -> Record:
        """A record read from the inner log as callers of this wrapper see it."""
        return record

    def outer_position(self, position: Position) -> Position:
        """A position in the inner log as callers of this wrapper see it."""
        return position

    # -- the Log protocol, forwarded --------------------------------------------

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def create_topic(self, topic: str, *, partitions: int = 1, compacted: bool = False) -> None:
        await self.inner.create_topic(self.inner_topic(topic), partitions=partitions, compacted=compacted)

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
        position = await self.inner.append(
            self.inner_topic(topic), value, key=key, headers=headers, timestamp_ms=timestamp_ms, partition=partition
        )
        return self.outer_position(position)

    async def append_many(
        self,
        topic: str,
        items: Sequence[tuple[bytes | None, bytes | None, Headers]],
        *,
        timestamp_ms: int | None = None,
    ) -> list[Position]:
        positions = await self.inner.append_many(self.inner_topic(topic), items, timestamp_ms=timestamp_ms)
        return [self.outer_position(p) for p in positions]

    async def read(
        self, topic: str, offset: int, *, partition: int = 0, limit: int = 500, timeout: float = 0.0
    ) -> list[Record]:
        records = await self.inner.read(
            self.inner_topic(topic), offset, partition=partition, limit=limit, timeout=timeout
        )
        return [self.outer_record(r) for r in records]

    async def end_offset(self, topic: str, *, partition: int = 0) -> int:
        return await self.inner.end_offset(self.inner_topic(topic), partition=partition)

    async def end_offsets(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        return await self.inner.end_offsets(self.inner_topic(topic), partitions)

    async def partitions(self, topic: str) -> int:
        return await self.inner.partitions(self.inner_topic(topic))

    async def commit(self, group: str, topic: str, offset: int, *, partition: int = 0) -> None:
        await self.inner.commit(self.inner_group(group), self.inner_topic(topic), offset, partition=partition)

    async def committed(self, group: str, topic: str, *, partition: int = 0) -> int | None:
        return await self.inner.committed(self.inner_group(group), self.inner_topic(topic), partition=partition)

    async def read_compacted(self, topic: str) -> dict[bytes, Record]:
        latest = await self.inner.read_compacted(self.inner_topic(topic))
        return {k: self.outer_record(r) for k, r in latest.items()}

    async def status(self) -> dict[str, Any]:
        return await self.inner.status()

    def member(self, group: str, topic: str) -> Any:
        """The inner log's member for the mapped group and topic (partitions and offsets are the same)."""
        return self.inner.member(self.inner_group(group), self.inner_topic(topic))
