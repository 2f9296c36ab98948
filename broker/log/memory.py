"""The in-memory log: a real implementation of the protocol, for unit tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from broker.log.base import Headers, Position, Record, partition_for
from broker.log.membership import SequentialWriter, SoloMember
from broker.log.scan import latest_by_key

__all__ = ["MemoryLog"]


class MemoryLog:
    """Lists of records per topic and partition, with waiting readers."""

    name = "memory"

    def __init__(self) -> None:
        self._topics: dict[str, list[list[Record]]] = {}
        self._compacted: set[str] = set()
        self._commits: dict[tuple[str, str, int], int] = {}
        self._changed = asyncio.Event()
        self._open = False

    async def start(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def create_topic(self, topic: str, *, partitions: int = 1, compacted: bool = False) -> None:
        if topic not in self._topics:
            self._topics[topic] = [[] for _ in range(partitions)]
        if compacted:
            self._compacted.add(topic)

    def _partition(self, topic: str, key: bytes | None, partition: int | None) -> int:
        if topic not in self._topics:
            self._topics[topic] = [[]]
        parts = self._topics[topic]
        if partition is None:
            partition = partition_for(key, len(parts))
        return partition

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
        index = self._partition(topic, key, partition)
        part = self._topics[topic][index]
        ts = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        record = Record(topic, index, len(part), key, value, tuple(headers), ts)
        part.append(record)
        self._changed.set()
        self._changed = asyncio.Event()
        return Position(topic, index, record.offset)

    async def append_many(
        self,
        topic: str,
        items: Sequence[tuple[bytes | None, bytes | None, Headers]],
        *,
        timestamp_ms: int | None = None,
    ) -> list[Position]:
        return [
            await self.append(topic, value, key=key, headers=headers, timestamp_ms=timestamp_ms)
            for key, value, headers in items
        ]

    async def read(
        self, topic: str, offset: int, *, partition: int = 0, limit: int = 500, timeout: float = 0.0
    ) -> list[Record]:
        deadline = time.monotonic() + timeout
        while True:
            parts = self._topics.get(topic)
            records = parts[partition][offset : offset + limit] if parts and partition < len(parts) else []
            remaining = deadline - time.monotonic()
            if records or remaining <= 0:
                return list(records)
            try:  # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a racing cancellation
                async with asyncio.timeout(remaining):
                    await self._changed.wait()
            except TimeoutError:
                return []

    async def end_offset(self, topic: str, *, partition: int = 0) -> int:
        parts = self._topics.get(topic)
        return len(parts[partition]) if parts and partition < len(parts) else 0

    async def end_offsets(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        return {p: await self.end_offset(topic, partition=p) for p in partitions}

    async def partitions(self, topic: str) -> int:
        return len(self._topics.get(topic, []))

    async def commit(self, group: str, topic: str, offset: int, *, partition: int = 0) -> None:
        self._commits[(group, topic, partition)] = offset

    async def committed(self, group: str, topic: str, *, partition: int = 0) -> int | None:
        return self._commits.get((group, topic, partition))

    async def read_compacted(self, topic: str) -> dict[bytes, Record]:
        return await latest_by_key(self, topic)

    async def status(self) -> dict[str, Any]:
        return {"backend": self.name, "ok": self._open, "topics": len(self._topics)}

    def member(self, group: str, topic: str) -> SoloMember:
        """The one process there is holds every partition."""
        return SoloMember(self, group, topic)

    def writer(self, transactional_id: str) -> SequentialWriter:
        """Appends then commits: nothing else writes to this log."""
        return SequentialWriter(self, transactional_id)
