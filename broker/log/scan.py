"""Reading what a topic holds now, without waiting: one primitive for every reader that rebuilds from the log.

``read_available`` asks for the end offset first: on Kafka a read at the end of
a partition queues behind a fetch that waits up to 100 ms for data, and the
followers (directory, inbox, the live router's inputs) look at a dozen
partitions that are usually idle. Readers in one process share a partition's
consumer, so a read that finds nothing must not take it: the router's waiting
read and the sealer's, or a gateway's followers, would seek it back and forth
and wait on each other (tried: a median of 470 ms instead of 15 ms at 50
events/s in ``bench/latency.py``). ``scan`` walks every partition of a topic from
the start to where it ends now (the router, the intake, the sealer and the
auditor rebuild their state this way).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from broker.log.base import Log, Record

__all__ = [
    "GLANCE_S",
    "latest_by_key",
    "read_any",
    "read_available",
    "read_available_many",
    "read_fetched",
    "read_new",
    "scan",
]


async def read_available(log: Log, topic: str, offset: int, *, partition: int = 0, limit: int = 1000) -> list[Record]:
    """Records from ``offset`` on that are already in the log (none when ``offset`` is at the end)."""
    if offset >= await log.end_offset(topic, partition=partition):
        return []
    return await log.read(topic, offset, partition=partition, limit=limit)


async def read_available_many(log: Log, topic: str, positions: dict[int, int], *, limit: int = 1000) -> list[Record]:
    """``read_available`` on several partitions from their positions: one end-offset request for them all."""
    ends = await log.end_offsets(topic, sorted(positions)) if positions else {}
    out: list[Record] = []
    for partition, end in ends.items():
        if positions[partition] < end:
            out += await log.read(topic, positions[partition], partition=partition, limit=limit)
    return out


async def scan(log: Log, topic: str, *, limit: int = 5000) -> AsyncIterator[list[Record]]:
    """Batches of every record of every partition of ``topic``, in offset order per partition (none if absent)."""
    for partition in range(await log.partitions(topic)):
        offset = 0
        while records := await read_available(log, topic, offset, partition=partition, limit=limit):
            yield records
            offset = records[-1].offset + 1


async def read_new(
    log: Log, topic: str, positions: dict[int, int], *, limit: int = 5000
) -> AsyncIterator[list[Record]]:
    """Batches of what every partition of ``topic`` gained since ``positions`` (updated as it goes), no waiting."""
    count = max(1, await log.partitions(topic))
    ends = await log.end_offsets(topic, range(count))  # one request: most partitions gained nothing
    for partition in range(count):
        offset = positions.get(partition, 0)
        while offset < ends[partition] and (records := await log.read(topic, offset, partition=partition, limit=limit)):
            yield records
            offset = records[-1].offset + 1
            positions[partition] = offset


GLANCE_S = 0.001  # a read's wait that only looks at what a walking Kafka reader has fetched: it asks no end offset


async def read_fetched(
    log: Log, topic: str, positions: dict[int, int], partitions: int, wait: float, *, limit: int = 5000
) -> AsyncIterator[list[Record]]:
    """Batches of what partitions ``0..partitions-1`` gained since ``positions`` (updated), waiting ``wait`` s at most.

    Asks for no end offset: ``read_new``'s look at the end costs a request, and on Kafka a reader walking
    forward already keeps a fetch waiting there that the broker answers as soon as a record lands. What
    landed within the last moment is left for the next look. Other backends read up to their end.
    """
    for partition in range(partitions):
        offset = positions.get(partition, 0)
        while records := await log.read(topic, offset, partition=partition, limit=limit, timeout=wait):
            yield records
            offset = positions[partition] = records[-1].offset + 1


async def read_any(log: Log, topic: str, positions: dict[int, int], timeout: float) -> list[Record]:
    """Wait up to ``timeout`` s for records on any of these partitions (from their positions); the first wins.

    The reads on the other partitions are cancelled: a cancelled read loses nothing, the next read of that
    partition starts from the same position.
    """
    if not positions:
        await asyncio.sleep(timeout)
        return []
    reads = [
        asyncio.create_task(log.read(topic, position, partition=partition, timeout=timeout))
        for partition, position in positions.items()
    ]
    done, pending = await asyncio.wait(reads, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return [record for task in done for record in task.result()]


async def latest_by_key(log: Log, topic: str) -> dict[bytes, Record]:
    """The latest record per key across a topic as it stands, tombstones dropping their key (a compacted read)."""
    latest: dict[bytes, Record] = {}
    async for records in scan(log, topic, limit=1000):
        for record in records:
            if record.key is None:
                continue
            if record.value is None:
                latest.pop(record.key, None)
            else:
                latest[record.key] = record
    return latest
