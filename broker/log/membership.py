"""Group membership: which partitions of a topic this process works on, decided by the log.

A role that runs as N processes (dispatchers over the notifications topic, a
router with standbys over the one input partition) joins a group with
``log.member(group, topic)``. The member says which partitions are this
process's now (``poll``, called at least every few seconds: it is also how the
process shows it is alive), and commits progress on them (``commit``). On
Kafka the member is a consumer-group member: when a process dies or stops
polling, its partitions move to the others after the session timeout, and a
commit from a member that lost a partition is refused. The single-process
backends (memory, embedded) give the one member every partition.

Data is still read with ``log.read``; the member only decides and commits.

A role whose outputs and input offset must commit together (the router) writes
through ``log.writer(transactional_id)``: on Kafka a transactional producer
(the last process to start with the id fences the others), on a single-process
log the appends and then the commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from broker.log.base import Headers, Log

__all__ = ["Member", "SequentialWriter", "SoloMember"]


@runtime_checkable
class Member(Protocol):
    """One process's membership of a group over one topic."""

    group: str
    topic: str
    # Awaited when the group takes partitions away, before another member is given them: finish and record
    # the work on them there (on Kafka, inside the rebalance). None: nothing to finish.
    on_revoked: Callable[[frozenset[int]], Awaitable[None]] | None

    async def start(self) -> None:
        """Join the group. Idempotent."""

    async def close(self) -> None:
        """Leave the group (its partitions go to the others at once). Idempotent."""

    async def poll(self) -> frozenset[int]:
        """The partitions this member holds now; call it often, it keeps the membership alive."""

    async def commit(self, partition: int, offset: int) -> None:
        """Commit ``offset`` on a partition this member holds; ``LogUnavailable`` if it no longer does."""

    async def committed(self, partition: int) -> int | None:
        """The group's committed offset on a partition, or None."""


class SoloMember:
    """The only member there is: every partition of the topic, commits straight to the log."""

    def __init__(self, log: Log, group: str, topic: str) -> None:
        self.log = log
        self.group = group
        self.topic = topic
        self.on_revoked: Callable[[frozenset[int]], Awaitable[None]] | None = None  # never taken away

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def poll(self) -> frozenset[int]:
        return frozenset(range(max(1, await self.log.partitions(self.topic))))

    async def commit(self, partition: int, offset: int) -> None:
        await self.log.commit(self.group, self.topic, offset, partition=partition)

    async def committed(self, partition: int) -> int | None:
        return await self.log.committed(self.group, self.topic, partition=partition)


class SequentialWriter:
    """``write`` for a single-process log: the appends, then the commits (no other writer can interleave)."""

    def __init__(self, log: Log, transactional_id: str) -> None:
        self.log = log
        self.transactional_id = transactional_id

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def write(
        self,
        appends: list[tuple[str, list[tuple[bytes | None, bytes | None, Headers]], int | None]],
        commits: dict[tuple[str, int], int],
        group: str,
    ) -> None:
        """Append every ``(topic, items, timestamp_ms)``, then commit ``group``'s offsets."""
        for topic, items, timestamp_ms in appends:
            if items:
                await self.log.append_many(topic, items, timestamp_ms=timestamp_ms)
        for (topic, partition), offset in commits.items():
            await self.log.commit(group, topic, offset, partition=partition)
