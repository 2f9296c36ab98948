"""The order the router applies its inputs in, which the auditor's replay must reproduce exactly.

Events (one topic per publishing kind) and acknowledgements are merged by the
record's timestamp (acceptance time, or the simulator's virtual clock), then by
a sequence number the writer stamps on each record (so records accepted in the
same millisecond keep the order they were accepted in), then by topic, partition
and offset. Records written before sequence numbers existed sort as 0.
"""

from __future__ import annotations

import threading
import time

from broker import topics
from broker.log.base import Record

__all__ = ["INPUT_TOPICS", "SEQ_HEADER", "merge_key", "next_seq"]

INPUT_TOPICS: tuple[str, ...] = (*topics.all_event_topics(), topics.ACKS)
SEQ_HEADER = "seq"
_RANK = {topic: i for i, topic in enumerate(INPUT_TOPICS)}
_lock = threading.Lock()
_last = 0


def next_seq() -> bytes:
    """A number larger than any this process gave before (nanoseconds since the epoch, at least)."""
    global _last
    with _lock:
        _last = max(_last + 1, time.time_ns())
        return _last.to_bytes(8, "big")


def merge_key(record: Record) -> tuple[int, int, int, int, int]:
    """Sort key of an input record in the router's merge order."""
    seq = record.header(SEQ_HEADER)
    return (
        record.timestamp_ms,
        int.from_bytes(seq, "big") if seq else 0,
        _RANK.get(record.topic, len(_RANK)),
        record.partition,
        record.offset,
    )
