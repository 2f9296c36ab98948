"""Reading what a topic holds now, without waiting: one primitive for every reader that rebuilds from the log.

``read_available`` asks for the end offset first: on Kafka a read at the end of
a partition queues behind a fetch that waits up to 100 ms for data, and the
followers (directory, inbox, the live router's inputs) look at a dozen
partitions that are usually idle. ``scan`` walks every partition of a topic from
the start to where it ends now (the router, the intake, the sealer and the
auditor rebuild their state this way).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from broker.log.base import Log, Record

__all__ = ["read_available", "scan"]


async def read_available(log: Log, topic: str, offset: int, *, partition: int = 0, limit: int = 1000) -> list[Record]:
    """Records from ``offset`` on that are already in the log (none when ``offset`` is at the end)."""
    if offset >= await log.end_offset(topic, partition=partition):
        return []
    return await log.read(topic, offset, partition=partition, limit=limit)


async def scan(log: Log, topic: str, *, limit: int = 5000) -> AsyncIterator[list[Record]]:
    """Batches of every record of every partition of ``topic``, in offset order per partition (none if absent)."""
    for partition in range(await log.partitions(topic)):
        offset = 0
        while records := await read_available(log, topic, offset, partition=partition, limit=limit):
            yield records
            offset = records[-1].offset + 1
