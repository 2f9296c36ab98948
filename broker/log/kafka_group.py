"""A consumer-group member on Kafka: which partitions this process holds, decided by the group coordinator.

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
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from broker.errors import LogUnavailable
from broker.logging import get_logger

__all__ = ["GROUP_SETTINGS", "KafkaMember"]

# Heartbeats every second, declared dead after 10 s without one: the failover time a standby waits.
GROUP_SETTINGS = {
    "session_timeout_ms": 10_000,
    "heartbeat_interval_ms": 1_000,
    "max_poll_interval_ms": 60_000,
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "isolation_level": "read_committed",
}
_log = get_logger("jigsaw.log.kafka")


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, member: KafkaMember) -> None:
        self.member = member

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.member.held = frozenset()

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
        except KafkaError as exc:
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
