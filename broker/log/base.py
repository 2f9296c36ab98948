"""The log, behind one small protocol.

Three implementations (memory, embedded SQLite, Kafka) behave the same; one
contract test suite (``tests/contract``) proves it. Offsets are per topic and
partition, start at 0, and a committed offset is the *next* offset to read
(Kafka's convention).
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["Headers", "Log", "Position", "Record", "partition_for"]

Headers = tuple[tuple[str, bytes], ...]


def partition_for(key: bytes | None, partitions: int) -> int:
    """A stable partition for a key (the same in every process), 0 without a key."""
    if key is None or partitions <= 1:
        return 0
    return zlib.crc32(key) % partitions


@dataclasses.dataclass(frozen=True, slots=True)
class Position:
    """Where an append landed."""

    topic: str
    partition: int
    offset: int


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    """One record read back from the log."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None  # None is a tombstone on a compacted topic
    headers: Headers
    timestamp_ms: int

    def header(self, name: str) -> bytes | None:
        """The first header with this name, or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


@runtime_checkable
class Log(Protocol):
    """What Jigsaw needs from a log. Every method may raise ``LogUnavailable``."""

    name: str

    async def start(self) -> None:
        """Open connections or files. Idempotent."""

    async def close(self) -> None:
        """Flush and release everything. Idempotent."""

    async def create_topic(self, topic: str, *, partitions: int = 1, compacted: bool = False) -> None:
        """Create a topic if it does not exist yet."""

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
        """Append one record and return where it landed, once it is durable."""

    async def append_many(
        self,
        topic: str,
        items: Sequence[tuple[bytes | None, bytes | None, Headers]],
        *,
        timestamp_ms: int | None = None,
    ) -> list[Position]:
        """Append ``(key, value, headers)`` items in order; durable when this returns."""

    async def read(
        self, topic: str, offset: int, *, partition: int = 0, limit: int = 500, timeout: float = 0.0
    ) -> list[Record]:
        """Records from ``offset`` on (at most ``limit``), waiting up to ``timeout`` s for the first."""

    async def end_offset(self, topic: str, *, partition: int = 0) -> int:
        """The offset the next append to this partition will get."""

    async def end_offsets(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        """``end_offset`` of several partitions of a topic (on Kafka: one request, not one each)."""

    async def partitions(self, topic: str) -> int:
        """How many partitions the topic has (0 when it does not exist)."""

    async def commit(self, group: str, topic: str, offset: int, *, partition: int = 0) -> None:
        """Record that ``group`` has done its work on everything before ``offset``."""

    async def committed(self, group: str, topic: str, *, partition: int = 0) -> int | None:
        """The offset ``group`` last committed, or None."""

    async def read_compacted(self, topic: str) -> dict[bytes, Record]:
        """The latest record per key across the topic, tombstones dropped."""

    async def status(self) -> dict[str, Any]:
        """A small health report: ``{"backend": ..., "ok": bool, ...}``."""

    def member(self, group: str, topic: str) -> Any:
        """This process's membership of ``group`` over ``topic`` (a ``membership.Member``, not yet started)."""

    def writer(self, transactional_id: str) -> Any:
        """Appends and offset commits that land together (``membership.SequentialWriter`` or Kafka transactions)."""
