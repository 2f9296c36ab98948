"""Reading the log for an audit: everything the replay needs, as plain records.

``read_snapshot(log)`` is the only part of the audit that awaits: it reads
the input topic (accepted events and acknowledgements, in the offset order the
router applies them), the router's notifications and decisions, and the
checkpoints. It also reads how far the router has committed on the input
(``routed``), so records the router has not reached yet are not expected to
have notifications.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from broker import topics
from broker.log.base import Log, Record
from broker.log.scan import scan
from broker.routing.service import GROUP

__all__ = ["Snapshot", "read_snapshot", "read_topic"]

TopicPartition = tuple[str, int]


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    """What the log held when it was read."""

    partitions: Mapping[TopicPartition, list[Record]]  # the input topic's partition, in offset order
    inputs: list[Record]  # the router's inputs, in its order (the input topic's offset order)
    notifications: list[Record]
    decisions: list[Record]
    checkpoints: list[Record]
    ends: Mapping[TopicPartition, int]  # end offset of every partition read
    routed: Mapping[TopicPartition, int] | None = None  # the router's committed offsets (None: unknown)

    def is_routed(self, record: Record) -> bool:
        """True when the router had committed past this input record (or nothing says how far it got)."""
        if self.routed is None:
            return True
        return record.offset < self.routed.get((record.topic, record.partition), 0)

    @property
    def event_count(self) -> int:
        return sum(1 for r in self.inputs if topics.is_event(r))


async def read_topic(
    log: Log, topic: str, *, progress: Callable[[int], None] | None = None
) -> dict[TopicPartition, list[Record]]:
    """Every record of every partition of a topic (none when it does not exist)."""
    out: dict[TopicPartition, list[Record]] = {(topic, p): [] for p in range(await log.partitions(topic))}
    async for batch in scan(log, topic):
        out[(topic, batch[0].partition)] += batch
        if progress is not None:
            progress(len(batch))
    return out


async def read_snapshot(log: Log, *, progress: Callable[[int], None] | None = None) -> Snapshot:
    """Read what an audit needs from a started log."""
    partitions = await read_topic(log, topics.INPUT, progress=progress)
    ends = {tp: (records[-1].offset + 1 if records else 0) for tp, records in partitions.items()}
    outputs: dict[str, list[Record]] = {}
    for topic in (topics.NOTIFICATIONS, topics.DECISIONS, topics.CHECKPOINTS):
        read = await read_topic(log, topic)
        outputs[topic] = [r for _, records in sorted(read.items()) for r in records]
        ends.update({tp: (records[-1].offset + 1 if records else 0) for tp, records in read.items()})
    for partition in range(await log.partitions(topics.REJECTED)):  # only its length matters here
        ends[(topics.REJECTED, partition)] = await log.end_offset(topics.REJECTED, partition=partition)
    committed = {tp: await log.committed(GROUP, tp[0], partition=tp[1]) for tp in partitions}
    routed = {tp: c for tp, c in committed.items() if c is not None}
    return Snapshot(
        routed=routed or None,
        partitions=partitions,
        inputs=[r for _, records in sorted(partitions.items()) for r in records],
        notifications=outputs[topics.NOTIFICATIONS],
        decisions=outputs[topics.DECISIONS],
        checkpoints=outputs[topics.CHECKPOINTS],
        ends=ends,
    )
