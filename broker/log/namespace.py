"""A log whose topics live under a prefix: several Jigsaw deployments (or test runs) on one cluster.

Every topic name is prefixed on the way in and unprefixed on the way out, so
the code above sees the usual names (``jigsaw.events.police``) whatever the
prefix. Consumer groups are prefixed too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from broker.log.base import Log, Position, Record
from broker.log.wrapper import LogWrapper

__all__ = ["NamespacedLog"]


class NamespacedLog(LogWrapper):
    """Wraps any ``Log``; ``prefix`` is added to every topic and consumer group."""

    def __init__(self, inner: Log, prefix: str) -> None:
        super().__init__(inner)
        self.prefix = prefix

    def inner_topic(self, topic: str) -> str:
        return self.prefix + topic

    def inner_group(self, group: str) -> str:
        return self.prefix + group

    def outer_record(self, record: Record) -> Record:
        # Every record a follower reads passes here: built directly (``dataclasses.replace`` costs more).
        r = record
        return Record(
            r.topic.removeprefix(self.prefix), r.partition, r.offset, r.key, r.value, r.headers, r.timestamp_ms
        )

    def outer_position(self, position: Position) -> Position:
        return dataclasses.replace(position, topic=position.topic.removeprefix(self.prefix))

    async def status(self) -> dict[str, Any]:
        return {**await self.inner.status(), "topic_prefix": self.prefix}

    def member(self, group: str, topic: str) -> Any:
        """The inner log's member for the prefixed group and topic, answering to the unprefixed names."""
        return _NamespacedMember(super().member(group, topic), group, topic)

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

    @property
    def on_revoked(self) -> Callable[[frozenset[int]], Awaitable[None]] | None:
        """The inner member's: it is the one the group calls (a callback set here alone was never called,
        so a dispatcher under a topic prefix went on sending from partitions already given to another)."""
        return self.inner.on_revoked  # type: ignore[no-any-return]

    @on_revoked.setter
    def on_revoked(self, callback: Callable[[frozenset[int]], Awaitable[None]] | None) -> None:
        self.inner.on_revoked = callback

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
