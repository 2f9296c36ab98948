"""A log whose topics live under a prefix: several Jigsaw deployments (or test runs) on one cluster.

Every topic name is prefixed on the way in and unprefixed on the way out, so
the code above sees the usual names (``jigsaw.events.police``) whatever the
prefix. Consumer groups are prefixed too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from broker.log.base import Headers, Log, Position, Record

__all__ = ["NamespacedLog"]


class NamespacedLog:
    """Wraps any ``Log``; ``prefix`` is added to every topic and consumer group."""

    def __init__(self, inner: Log, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix
        self.name = inner.name

    def _t(self, topic: str) -> str:
        return self.prefix + topic

    def _record(self, record: Record) -> Record:
        return dataclasses.replace(record, topic=record.topic.removeprefix(self.prefix))

    def _position(self, position: Position) -> Position:
        return dataclasses.replace(position, topic=position.topic.removeprefix(self.prefix))

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def create_topic(self, topic: str, *, partitions: int = 1, compacted: bool = False) -> None:
        await self.inner.create_topic(self._t(topic), partitions=partitions, compacted=compacted)

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
            self._t(topic), value, key=key, headers=headers, timestamp_ms=timestamp_ms, partition=partition
        )
        return self._position(position)

    async def append_many(
        self,
        topic: str,
        items: Sequence[tuple[bytes | None, bytes | None, Headers]],
        *,
        timestamp_ms: int | None = None,
    ) -> list[Position]:
        positions = await self.inner.append_many(self._t(topic), items, timestamp_ms=timestamp_ms)
        return [self._position(p) for p in positions]

    async def read(
        self, topic: str, offset: int, *, partition: int = 0, limit: int = 500, timeout: float = 0.0
    ) -> list[Record]:
        records = await self.inner.read(self._t(topic), offset, partition=partition, limit=limit, timeout=timeout)
        return [self._record(r) for r in records]

    async def end_offset(self, topic: str, *, partition: int = 0) -> int:
        return await self.inner.end_offset(self._t(topic), partition=partition)

    async def partitions(self, topic: str) -> int:
        return await self.inner.partitions(self._t(topic))

    async def commit(self, group: str, topic: str, offset: int, *, partition: int = 0) -> None:
        await self.inner.commit(self.prefix + group, self._t(topic), offset, partition=partition)

    async def committed(self, group: str, topic: str, *, partition: int = 0) -> int | None:
        return await self.inner.committed(self.prefix + group, self._t(topic), partition=partition)

    async def read_compacted(self, topic: str) -> dict[bytes, Record]:
        return {k: self._record(r) for k, r in (await self.inner.read_compacted(self._t(topic))).items()}

    async def status(self) -> dict[str, Any]:
        return {**await self.inner.status(), "topic_prefix": self.prefix}

    def member(self, group: str, topic: str) -> Any:
        """The inner log's member for the prefixed group and topic (partitions and offsets are the same)."""
        inner = self.inner.member(self.prefix + group, self._t(topic))
        return _NamespacedMember(inner, group, topic)


    def writer(self, transactional_id: str) -> Any:
        """The inner log's writer, with every topic, group and transactional id prefixed."""
        return _NamespacedWriter(self.inner.writer(self.prefix + transactional_id), self.prefix)


class _NamespacedWriter:
    def __init__(self, inner: Any, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def write(self, appends: Any, commits: dict[tuple[str, int], int], group: str) -> None:
        prefixed = [(self.prefix + topic, items, ts) for topic, items, ts in appends]
        renamed = {(self.prefix + t, p): o for (t, p), o in commits.items()}
        await self.inner.write(prefixed, renamed, self.prefix + group)


class _NamespacedMember:
    def __init__(self, inner: Any, group: str, topic: str) -> None:
        self.inner = inner
        self.group = group
        self.topic = topic

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def poll(self) -> frozenset[int]:
        return frozenset(await self.inner.poll())

    async def commit(self, partition: int, offset: int) -> None:
        await self.inner.commit(partition, offset)

    async def committed(self, partition: int) -> int | None:
        result: int | None = await self.inner.committed(partition)
        return result
