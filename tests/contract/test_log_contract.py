"""The Log protocol's contract, run against every backend: memory, embedded and real Kafka.

The ``log`` and ``log_backend`` fixtures (``tests/conftest.py``) parametrise each
test over the three backends; the Kafka case is marked ``kafka`` and needs a
real broker. Whatever one backend does here, the others must do the same.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from broker.log import Log, Record, partition_for
from broker.log.scan import read_fetched, read_new

if TYPE_CHECKING:
    from tests.conftest import LogBackend

TS = 1_600_000_000_123  # a fixed, past timestamp in milliseconds


async def _read_all(log: Log, topic: str, offset: int = 0, *, partition: int = 0) -> list[Record]:
    """Everything from ``offset`` to the end, in as many reads as it takes."""
    out: list[Record] = []
    while True:
        batch = await log.read(topic, offset, partition=partition, limit=7)
        if not batch:
            return out
        out += batch
        offset = batch[-1].offset + 1


async def test_round_trip_keeps_key_value_headers_and_timestamp(log: Log, topic: str) -> None:
    """A record reads back with the key, value bytes, headers and timestamp it was appended with."""
    value = bytes(range(256))
    headers = (("event_id", b"6f1c0d4e"), ("binary", b"\x00\xff\x10"), ("event_id", b"second"))
    position = await log.append(topic, value, key=b"subject-1", headers=headers, timestamp_ms=TS)

    [record] = await log.read(topic, position.offset)

    assert (position.topic, position.partition, position.offset) == (topic, 0, 0)
    assert (record.topic, record.partition, record.offset) == (topic, 0, 0)
    assert record.key == b"subject-1"
    assert record.value == value
    assert record.headers == headers
    assert record.header("event_id") == b"6f1c0d4e"
    assert record.header("missing") is None
    assert record.timestamp_ms == TS


async def test_append_without_key_headers_or_timestamp_stamps_now(log: Log, topic: str) -> None:
    """A bare append gets no key, no headers, and a timestamp of about now."""
    before = int(time.time() * 1000)
    await log.append(topic, b"bare")
    after = int(time.time() * 1000)

    [record] = await log.read(topic, 0)

    assert record.key is None
    assert record.headers == ()
    assert before - 1000 <= record.timestamp_ms <= after + 1000


async def test_tombstone_reads_back_as_none(log: Log, topic: str) -> None:
    """A record appended with value None reads back with value None."""
    await log.append(topic, None, key=b"gone")

    [record] = await log.read(topic, 0)

    assert record.key == b"gone"
    assert record.value is None


async def test_appends_get_consecutive_offsets(log: Log, topic: str) -> None:
    """Appends to one partition get offsets 0, 1, 2, ... in the order they were made."""
    positions = [await log.append(topic, f"v{i}".encode()) for i in range(5)]
    more = await log.append_many(topic, [(None, f"v{i}".encode(), ()) for i in range(5, 9)])

    assert [p.offset for p in positions + more] == list(range(9))
    assert [r.value for r in await _read_all(log, topic)] == [f"v{i}".encode() for i in range(9)]


async def test_append_many_keeps_order_headers_and_one_timestamp(log: Log, topic: str) -> None:
    """append_many lands every item in order, each with its own headers and the shared timestamp."""
    items = [(f"k{i}".encode(), f"v{i}".encode(), (("n", str(i).encode()),)) for i in range(50)]

    positions = await log.append_many(topic, items, timestamp_ms=TS)
    records = await _read_all(log, topic)

    assert [p.offset for p in positions] == list(range(50))
    assert [(r.key, r.value, r.headers) for r in records] == items
    assert {r.timestamp_ms for r in records} == {TS}


async def test_order_is_kept_per_key_across_partitions(log: Log, topic: str) -> None:
    """Every record of a key lands on the key's partition, and reads back in append order."""
    await log.create_topic(topic, partitions=3)
    keys = [f"subject-{n}".encode() for n in range(6)]
    sent: dict[bytes, list[bytes]] = {key: [] for key in keys}
    for round_ in range(5):
        for key in keys:
            value = key + b"/" + str(round_).encode()
            position = await log.append(topic, value, key=key)
            assert position.partition == partition_for(key, 3)
            sent[key].append(value)
    batch = await log.append_many(topic, [(key, key + b"/batch", ()) for key in keys])
    for key, position in zip(keys, batch, strict=True):
        assert position.partition == partition_for(key, 3)
        sent[key].append(key + b"/batch")

    seen: dict[bytes, list[bytes]] = {key: [] for key in keys}
    for partition in range(3):
        records = await _read_all(log, topic, partition=partition)
        assert [r.offset for r in records] == list(range(len(records)))
        for record in records:
            assert record.key is not None and record.value is not None
            assert record.partition == partition == partition_for(record.key, 3)
            seen[record.key].append(record.value)

    assert seen == sent


async def test_read_from_an_offset_respects_the_limit(log: Log, topic: str) -> None:
    """A read starts at the offset asked for and returns at most ``limit`` records."""
    await log.append_many(topic, [(None, f"v{i}".encode(), ()) for i in range(10)])

    assert [r.offset for r in await log.read(topic, 3, limit=4)] == [3, 4, 5, 6]
    assert [r.offset for r in await log.read(topic, 0, limit=1)] == [0]
    assert [r.offset for r in await log.read(topic, 8, limit=10)] == [8, 9]
    assert [r.offset for r in await log.read(topic, 5)] == [5, 6, 7, 8, 9]
    assert await log.read(topic, 10) == []
    assert await log.read(topic, 50) == []


async def test_read_with_timeout_waits_for_a_later_append(log: Log, topic: str) -> None:
    """A read at the end with a timeout returns a record appended while it waits."""
    await log.append(topic, b"first")

    async def append_later() -> None:
        await asyncio.sleep(0.3)
        await log.append(topic, b"later", key=b"k")

    writer = asyncio.create_task(append_later())
    started = time.monotonic()
    records = await log.read(topic, 1, timeout=10.0)
    elapsed = time.monotonic() - started
    await writer

    assert [(r.offset, r.value) for r in records] == [(1, b"later")]
    assert 0.2 <= elapsed < 5.0


async def test_read_with_timeout_returns_empty_when_nothing_comes(log: Log, topic: str) -> None:
    """A read at the end returns [] once its timeout passes with nothing appended."""
    await log.append(topic, b"only")

    started = time.monotonic()
    records = await log.read(topic, 1, timeout=0.5)
    elapsed = time.monotonic() - started

    assert records == []
    assert 0.4 <= elapsed < 5.0


async def test_read_fetched_brings_what_landed_and_keeps_its_place(log: Log, topic: str) -> None:
    """``read_fetched`` (the dispatcher's look at the deliveries topic before each step) brings what landed on
    every partition since its positions, moves them on, and finds nothing more once it has it all."""
    await log.create_topic(topic, partitions=2)
    await log.append(topic, b"a0", partition=0)
    await log.append(topic, b"b0", partition=1)
    positions: dict[int, int] = {}
    first = [r async for batch in read_new(log, topic, positions) for r in batch]
    assert sorted(r.value for r in first) == [b"a0", b"b0"]
    await log.append(topic, b"a1", partition=0)
    await log.append(topic, b"b1", partition=1)
    await log.append(topic, b"b2", partition=1)

    deadline, seen = time.monotonic() + 10, list[bytes | None]()
    while len(seen) < 3 and time.monotonic() < deadline:  # on Kafka what landed a moment ago may come next look
        seen += [r.value for batch in await _batches(read_fetched(log, topic, positions, 2, 0.05)) for r in batch]
    assert sorted(seen) == [b"a1", b"b1", b"b2"]  # type: ignore[type-var]
    assert positions == {0: 2, 1: 3}
    assert await _batches(read_fetched(log, topic, positions, 2, 0.05)) == []


async def _batches(batches: AsyncIterator[list[Record]]) -> list[list[Record]]:
    return [batch async for batch in batches]


async def test_unknown_topic_reads_empty(log: Log, topic: str) -> None:
    """A topic nobody created has no partitions, end offset 0 and nothing to read."""
    assert await log.partitions(topic) == 0
    assert await log.end_offset(topic) == 0
    assert await log.read(topic, 0, timeout=0.2) == []


async def test_end_offset_is_the_next_offset_per_partition(log: Log, topic: str) -> None:
    """end_offset is the offset the next append to that partition will get."""
    await log.create_topic(topic, partitions=2)
    assert await log.end_offset(topic) == 0

    await log.append_many(topic, [(None, b"a", ()), (None, b"b", ()), (None, b"c", ())])
    await log.append(topic, b"p1", partition=1)

    assert await log.end_offset(topic) == 3
    assert await log.end_offset(topic, partition=1) == 1
    assert await log.end_offsets(topic, [0, 1, 2]) == {0: 3, 1: 1, 2: 0}  # at once; no partition 2: nothing there
    assert (await log.append(topic, b"d")).offset == 3


async def test_end_offsets_of_an_unknown_topic_are_zero(log: Log, topic: str) -> None:
    """end_offsets answers for every partition asked about, 0 where the topic or partition does not exist."""
    assert await log.end_offsets(topic, [0, 3]) == {0: 0, 3: 0}
    assert await log.end_offsets(topic, []) == {}


async def test_commit_and_committed_per_group_and_partition(log: Log, topic: str, unique: Callable[[str], str]) -> None:
    """committed returns what a group last committed for a partition, None before any commit."""
    await log.create_topic(topic, partitions=2)
    await log.append_many(topic, [(None, f"v{i}".encode(), ()) for i in range(6)])
    await log.append(topic, b"x", partition=1)
    group, other = unique("group"), unique("group")

    assert await log.committed(group, topic) is None
    await log.commit(group, topic, 3)
    assert await log.committed(group, topic) == 3
    await log.commit(group, topic, 6)
    assert await log.committed(group, topic) == 6
    await log.commit(group, topic, 1, partition=1)

    assert await log.committed(group, topic, partition=1) == 1
    assert await log.committed(group, topic) == 6
    assert await log.committed(other, topic) is None


async def test_consumer_resumes_from_its_commit_after_a_restart(
    log_backend: LogBackend, topic: str, unique: Callable[[str], str]
) -> None:
    """After a restart a consumer resumes at its last commit: nothing lost, nothing before it replayed."""
    producer = await log_backend.open()
    group = unique("router")
    await producer.append_many(topic, [(b"k", f"m{i}".encode(), ()) for i in range(10)])

    consumer = await log_backend.open()
    start = await consumer.committed(group, topic)
    assert start is None
    first = await consumer.read(topic, 0, limit=4)
    assert [r.value for r in first] == [b"m0", b"m1", b"m2", b"m3"]
    await consumer.commit(group, topic, first[-1].offset + 1)  # work on m0..m3 done
    unfinished = await consumer.read(topic, first[-1].offset + 1, limit=3)  # m4..m6 read, never committed
    assert [r.value for r in unfinished] == [b"m4", b"m5", b"m6"]
    await consumer.close()  # the consumer dies here

    await producer.append_many(topic, [(b"k", f"m{i}".encode(), ()) for i in range(10, 12)])

    restarted = await log_backend.open()
    resume_at = await restarted.committed(group, topic)
    assert resume_at == 4
    rest = await _read_all(restarted, topic, resume_at)

    assert [r.value for r in rest] == [f"m{i}".encode() for i in range(4, 12)]
    assert [r.offset for r in rest] == list(range(4, 12))
    assert [r.value for r in first + rest] == [f"m{i}".encode() for i in range(12)]


async def test_read_compacted_keeps_the_latest_per_key_and_drops_tombstones(log: Log, topic: str) -> None:
    """read_compacted gives the latest record per key; a tombstone removes its key."""
    await log.create_topic(topic, partitions=2, compacted=True)
    await log.append(topic, b"a1", key=b"a", headers=(("v", b"1"),))
    await log.append(topic, b"b1", key=b"b")
    await log.append(topic, b"c1", key=b"c")
    await log.append(topic, b"a2", key=b"a", headers=(("v", b"2"),), timestamp_ms=TS)
    await log.append(topic, None, key=b"b")
    await log.append(topic, b"c2", key=b"c")
    await log.append(topic, None, key=b"never-set")
    await log.append(topic, b"d1", key=b"d")
    await log.append(topic, None, key=b"d")
    await log.append(topic, b"d2", key=b"d")

    latest = await log.read_compacted(topic)

    assert {key: record.value for key, record in latest.items()} == {b"a": b"a2", b"c": b"c2", b"d": b"d2"}
    assert latest[b"a"].headers == (("v", b"2"),)
    assert latest[b"a"].timestamp_ms == TS
    assert latest[b"a"].partition == partition_for(b"a", 2)
    assert await log.read_compacted(f"{topic}.unknown") == {}


async def test_create_topic_is_idempotent(log: Log, topic: str) -> None:
    """Creating a topic that exists changes nothing: same partitions, same records."""
    await log.create_topic(topic, partitions=2)
    await log.append(topic, b"kept", key=b"k")

    await log.create_topic(topic, partitions=2)
    await log.create_topic(topic, partitions=5, compacted=True)

    assert await log.partitions(topic) == 2
    records = await _read_all(log, topic, partition=partition_for(b"k", 2))
    assert [r.value for r in records] == [b"kept"]


async def test_status_reports_a_healthy_backend(log: Log) -> None:
    """status names the backend and says ok once started."""
    status = await log.status()

    assert status["backend"] == log.name
    assert status["ok"] is True
