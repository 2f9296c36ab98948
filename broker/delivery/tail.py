"""Reading what a topic holds now, without waiting: the followers' one read primitive."""

from __future__ import annotations

from broker.log.base import Log, Record

__all__ = ["read_available"]


async def read_available(log: Log, topic: str, offset: int, *, partition: int = 0, limit: int = 1000) -> list[Record]:
    """Records from ``offset`` on that are already in the log (none when ``offset`` is at the end).

    Asks for the end offset first: on Kafka a read at the end of a partition
    queues behind a fetch that waits up to 100 ms for data, and the followers
    (directory, inbox, the live router's inputs) look at a dozen partitions
    that are usually idle.
    """
    if offset >= await log.end_offset(topic, partition=partition):
        return []
    return await log.read(topic, offset, partition=partition, limit=limit)
