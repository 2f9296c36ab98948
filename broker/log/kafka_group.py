"""Kafka's group membership and transactions, for roles that run as several processes.

``KafkaMember``: which partitions this process holds, decided by the group coordinator.

The member subscribes to one topic in one group and never fetches through
Kafka's group consumer (data is read with ``KafkaLog.read``): every partition
it is given is paused at once, and ``poll`` calls ``getmany`` with no wait so
the consumer keeps its place in the group (``max_poll_interval_ms``) while
heartbeats run in the background. A process that dies stops heartbeating; its
partitions go to the others once the session times out. Commits go through the
member, so Kafka refuses one from a member that has lost the partition (a
zombie after a rebalance), and that refusal is a ``LogUnavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    GroupCoordinatorNotAvailableError,
    GroupLoadInProgressError,
    KafkaError,
    NotCoordinatorForGroupError,
)

from broker.errors import LogUnavailable
from broker.log.kafka_safety import quick_transaction_retry, track
from broker.logging import get_logger

__all__ = ["GROUP_SETTINGS", "Committer", "KafkaMember", "KafkaTransactions", "committed_offset"]

# Heartbeats every second, declared dead after 10 s without one: the failover time a standby waits.
GROUP_SETTINGS = {
    "session_timeout_ms": 10_000,
    "heartbeat_interval_ms": 1_000,
    "max_poll_interval_ms": 60_000,
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "isolation_level": "read_committed",
    "metadata_max_age_ms": 5_000,  # see a topic's partitions soon after it is created or grown
}
_log = get_logger("jigsaw.log.kafka")


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, member: KafkaMember) -> None:
        self.member = member

    async def on_partitions_revoked(self, revoked: Any) -> None:
        # What the group says is revoked, and whatever this member was last given (should the two ever differ).
        mine = self.member.held | frozenset(tp.partition for tp in revoked if tp.topic == self.member.full_topic)
        self.member.held = frozenset()
        if mine and self.member.on_revoked is not None:  # the next holder is given them only after this returns
            try:
                await self.member.on_revoked(mine)
            except Exception as exc:  # the rebalance goes on; the next holder's ledger read covers the rest
                _log.warning("revoke_callback_failed", group=self.member.group, error=type(exc).__name__)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        mine = [tp for tp in assigned if tp.topic == self.member.full_topic]
        self.member.consumer.pause(*mine)  # it only holds them; data is read elsewhere
        self.member.held = frozenset(tp.partition for tp in mine)
        _log.info("partitions_assigned", group=self.member.group, partitions=sorted(self.member.held))


class KafkaMember:
    """A member of ``group`` over ``topic`` (``full_topic`` is the name on the cluster)."""

    def __init__(self, common: dict[str, Any], group: str, topic: str, *, full_group: str, full_topic: str) -> None:
        self.group = group
        self.topic = topic
        self.full_group = full_group
        self.full_topic = full_topic
        self.held: frozenset[int] = frozenset()
        self.on_revoked: Callable[[frozenset[int]], Awaitable[None]] | None = None
        self.consumer = AIOKafkaConsumer(group_id=full_group, **common, **GROUP_SETTINGS)
        self._started = False

    async def start(self) -> None:
        if self._started:
            return
        try:
            await self.consumer.start()
        except KafkaError as exc:
            with contextlib.suppress(Exception):
                await self.consumer.stop()
            raise LogUnavailable(f"could not join group {self.group}: {type(exc).__name__}: {exc}") from exc
        self.consumer.subscribe([self.full_topic], listener=_Listener(self))
        self._started = True

    async def close(self) -> None:
        if self._started:
            self._started = False
            with contextlib.suppress(KafkaError):
                await self.consumer.stop()  # leaves the group: the others rebalance at once
            self.held = frozenset()

    async def poll(self) -> frozenset[int]:
        await self.start()
        try:
            await self.consumer.getmany(timeout_ms=0)
        except (KafkaError, TimeoutError) as exc:
            raise LogUnavailable(f"group {self.group} poll failed: {type(exc).__name__}: {exc}") from exc
        await asyncio.sleep(0)
        return self.held

    async def commit(self, partition: int, offset: int) -> None:
        if partition not in self.held:
            raise LogUnavailable(f"partition {partition} of {self.topic} is no longer this member's in {self.group}")
        try:
            await self.consumer.commit({TopicPartition(self.full_topic, partition): offset})
        except KafkaError as exc:
            raise LogUnavailable(
                f"commit {self.topic}[{partition}]@{offset} for {self.group} refused: {type(exc).__name__}: {exc}"
            ) from exc

    async def committed(self, partition: int) -> int | None:
        try:
            found = await self.consumer.committed(TopicPartition(self.full_topic, partition))
        except KafkaError as exc:
            raise LogUnavailable(f"could not read the committed offset of {self.group}: {exc}") from exc
        return None if found is None or found < 0 else int(found)


class KafkaTransactions:
    """Appends and input offsets committed together in Kafka transactions, under one ``transactional_id``.

    Every process of a role uses the same transactional id, so the one that
    starts last fences the others (KIP-98): a zombie that lost its place in the
    group can no longer commit anything, and what it began is aborted, which
    ``read_committed`` readers never see.
    """

    def __init__(self, common: dict[str, Any], transactional_id: str) -> None:
        from aiokafka import AIOKafkaProducer

        from broker.log.kafka_safety import PRODUCER_SAFETY, partitioner

        self.transactional_id = transactional_id
        if not quick_transaction_retry():
            _log.warning("transaction_retry_not_set", reason="aiokafka has no BACKOFF_OVERRIDE")
        self.producer = AIOKafkaProducer(
            **common, **PRODUCER_SAFETY, partitioner=partitioner, transactional_id=transactional_id
        )
        self._started = False
        self._tracked: set[str] = set()

    async def start(self) -> None:
        """Register the transactional id with the cluster (fencing any older producer that holds it)."""
        if self._started:
            return
        try:
            await self.producer.start()
        except KafkaError as exc:
            with contextlib.suppress(Exception):
                await self.producer.stop()
            raise LogUnavailable(f"could not start transactions as {self.transactional_id}: {exc}") from exc
        self._started = True

    async def close(self) -> None:
        if self._started:
            self._started = False
            with contextlib.suppress(KafkaError):
                await self.producer.stop()

    async def write(
        self,
        appends: list[tuple[str, list[tuple[bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]], int | None]],
        commits: dict[tuple[str, int], int],
        group: str,
    ) -> None:
        """Append every ``(topic, items, timestamp_ms)`` and commit ``group``'s offsets, all or nothing."""
        await self.start()
        try:
            for topic, _, _ in appends:
                await track(self.producer, topic, self._tracked)
            async with self.producer.transaction():
                futures = []
                for topic, items, timestamp_ms in appends:
                    for key, value, headers in items:
                        futures.append(
                            await self.producer.send(
                                topic, value, key=key, headers=list(headers), timestamp_ms=timestamp_ms
                            )
                        )
                if futures:
                    await asyncio.gather(*futures)
                if commits:
                    offsets = {TopicPartition(t, p): o for (t, p), o in commits.items()}
                    await self.producer.send_offsets_to_transaction(offsets, group)
        except (KafkaError, TimeoutError) as exc:
            raise LogUnavailable(
                f"the transaction of {self.transactional_id} failed ({type(exc).__name__}: {exc}); "
                "if another process took over it was fenced, and nothing it wrote is visible"
            ) from exc


class Committer:
    """A consumer in one group that only commits: manually assigned, paused, never fetching.

    ``KafkaLog.commit`` uses one per group for roles that commit without being group members
    (a single router, replay tools, tests). Its commits are refused once members have joined.
    """

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer
        self.assigned: set[TopicPartition] = set()
        self.lock = asyncio.Lock()

    async def commit(self, tp: TopicPartition, offset: int) -> None:
        """Commit ``offset`` on ``tp`` (aiokafka's errors pass through: the caller converts them)."""
        async with self.lock:
            if tp not in self.assigned:
                self.assigned.add(tp)
                self.consumer.assign(sorted(self.assigned))
                self.consumer.pause(*self.assigned)  # it commits; it never fetches
            await self.consumer.commit({tp: offset})


_COORDINATOR_ERRORS = (GroupCoordinatorNotAvailableError, GroupLoadInProgressError, NotCoordinatorForGroupError)
_COORDINATOR_WAIT_S = 15.0


async def committed_offset(admin: Any, group: str, tp: TopicPartition) -> int | None:
    """A group's committed offset on ``tp`` (None: none), waiting (bounded) for a fresh broker's coordinator."""
    loop = asyncio.get_running_loop()
    deadline, pause = loop.time() + _COORDINATOR_WAIT_S, 0.05
    while True:
        try:
            offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
            break
        except _COORDINATOR_ERRORS:
            # A fresh broker has no group coordinator until its offsets topic exists: wait, bounded.
            if loop.time() + pause > deadline:
                raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)
    found = offsets.get(tp)
    if found is None or found.offset < 0:
        return None
    return int(found.offset)
