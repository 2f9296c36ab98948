"""What only the Kafka backend has to prove: safe settings, topic configuration, errors."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from broker.errors import ConfigError, LogUnavailable
from broker.log import open_log
from broker.log.kafka import CONSUMER_SAFETY, PRODUCER_SAFETY, TOPIC_DEFAULTS, KafkaLog
from broker.log.scan import GLANCE_S
from broker.settings import Settings


@pytest.fixture
async def kafka_log(kafka_bootstrap: str) -> AsyncIterator[KafkaLog]:
    log = KafkaLog(kafka_bootstrap, client_id="jigsaw-tests")
    await log.start()
    yield log
    await log.close()


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_safety_settings_are_set_explicitly() -> None:
    """The producer acks on all in-sync replicas with idempotence; consumers never auto-commit."""
    assert PRODUCER_SAFETY["acks"] == "all"
    assert PRODUCER_SAFETY["enable_idempotence"] is True
    assert CONSUMER_SAFETY["enable_auto_commit"] is False
    assert TOPIC_DEFAULTS["retention.ms"] == "-1"


@pytest.mark.kafka
async def test_live_clients_hold_the_safety_settings(kafka_log: KafkaLog, topic: str) -> None:
    """The running producer and every consumer (meta, reader, committer) hold the safe settings."""
    await kafka_log.append(topic, b"v", key=b"k")
    await kafka_log.read(topic, 0)
    await kafka_log.commit("safety-check", topic, 1)

    report = kafka_log.safety_report()

    assert report["producer_acks"] == -1  # aiokafka's spelling of acks="all"
    assert report["producer_idempotent"] is True
    assert report["producer_id"] is not None and report["producer_id"] >= 0  # the broker granted one
    assert len(report["consumers_auto_commit"]) == 3
    assert report["consumers_auto_commit"] == [False, False, False]
    assert set(report["consumers_isolation"]) == {"read_committed"}


@pytest.mark.kafka
async def test_created_topics_keep_records_forever_and_compact_when_asked(
    kafka_log: KafkaLog, kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    """Topics are created with no time or size retention, and link topics with cleanup.policy=compact."""
    plain, compacted, implicit = unique("plain"), unique("links"), unique("implicit")
    await kafka_log.create_topic(plain, partitions=2)
    await kafka_log.create_topic(compacted, compacted=True)
    await kafka_log.append(implicit, b"created on first append")

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in (plain, compacted, implicit)]
        )
    finally:
        await admin.close()
    configs = {
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}
        for response in responses
        for resource in response.resources
    }

    for name in (plain, compacted, implicit):
        assert configs[name]["retention.ms"] == "-1"
        assert configs[name]["retention.bytes"] == "-1"
    assert configs[plain]["cleanup.policy"] == "delete"
    assert configs[compacted]["cleanup.policy"] == "compact"
    assert await kafka_log.partitions(plain) == 2


@pytest.mark.kafka
async def test_old_timestamps_read_back_whole(kafka_log: KafkaLog, topic: str) -> None:
    """Records stamped long ago (which roll Kafka's segments) still read back in full batches."""
    await kafka_log.append(topic, b"old", timestamp_ms=1_000)
    await kafka_log.append_many(topic, [(None, b"new", ())] * 20)

    records = await kafka_log.read(topic, 0, limit=10)

    assert [r.offset for r in records] == list(range(10))
    assert records[0].timestamp_ms == 1_000


@pytest.mark.kafka
async def test_sequential_reads_reuse_one_consumer(kafka_log: KafkaLog, topic: str) -> None:
    """Walking a partition forward reuses one reader, served from what it already fetched."""
    await kafka_log.append_many(topic, [(None, b"%d" % i, ()) for i in range(300)])

    offset, started = 0, time.monotonic()
    while batch := await kafka_log.read(topic, offset, limit=3):
        offset = batch[-1].offset + 1
    elapsed = time.monotonic() - started

    assert offset == 300
    assert len(kafka_log._readers) == 1
    assert elapsed < 5.0


@pytest.mark.kafka
async def test_a_read_at_the_end_asks_the_end_offset_beside_its_fetches(kafka_log: KafkaLog, topic: str) -> None:
    """A read that finds nothing buffered asks where the partition ends on another connection.

    A broker answers one connection's requests in order, so asked on the reader's own
    connection the question waits behind its parked fetch (up to ``fetch_max_wait_ms``):
    the router's linger read waited for the next event to arrive, 45 ms at 20 events/s.
    """
    await kafka_log.append_many(topic, [(None, b"%d" % i, ()) for i in range(3)])
    assert len(await kafka_log.read(topic, 0, limit=10)) == 3
    [reader] = kafka_log._readers.values()
    asked_own: list[object] = []
    own = reader.consumer.end_offsets

    async def spy(partitions: list[object]) -> object:
        asked_own.append(partitions)
        return await own(partitions)

    reader.consumer.end_offsets = spy
    assert await kafka_log.read(topic, 3, timeout=0) == []
    await kafka_log.append_many(topic, [(None, b"3", ())])
    assert [r.value for r in await kafka_log.read(topic, 3, timeout=0)] == [b"3"]
    assert asked_own == []


@pytest.mark.kafka
async def test_a_walking_reader_waits_on_its_own_fetch_and_asks_no_end_offset(kafka_log: KafkaLog, topic: str) -> None:
    """A reader that goes on from where it stopped waits on its consumer's fetch, which the broker answers as soon
    as a record is there: an idle wait asks nothing more (it asked the end offset after every one, most of a
    dispatcher's requests). A record appended during a wait still comes back at once; after a seek, a read that
    must not wait still asks the end and finds what is there."""
    await kafka_log.append_many(topic, [(None, b"%d" % i, ()) for i in range(3)])
    assert len(await kafka_log.read(topic, 0, limit=10)) == 3
    [reader] = kafka_log._readers.values()
    asked: list[object] = []
    ends = reader._ends

    async def spy(partitions: list[object]) -> object:
        asked.append(partitions)
        return await ends(partitions)

    reader._ends = spy
    assert await kafka_log.read(topic, 3, timeout=0.3) == []
    assert asked == []

    async def later() -> None:
        await asyncio.sleep(0.2)
        await kafka_log.append(topic, b"3")

    writing = asyncio.create_task(later())
    started = time.monotonic()
    assert [r.value for r in await kafka_log.read(topic, 3, timeout=10)] == [b"3"]
    assert time.monotonic() - started < 5.0  # it came when appended, not at the timeout
    await writing
    assert asked == []
    # A seek back: a read with no wait asks where the partition ends and fetches what is there.
    assert [r.value for r in await kafka_log.read(topic, 1, timeout=0)] == [b"1", b"2", b"3"]
    assert [r.value for r in await kafka_log.read(topic, 1, limit=1, timeout=0)] == [b"1"]
    await kafka_log.append(topic, b"4")
    assert [r.value for r in await kafka_log.read(topic, 2, limit=2, timeout=0)] == [b"2", b"3"]
    assert [r.value for r in await kafka_log.read(topic, 4, timeout=0)] == [b"4"]  # no wait: it asks


@pytest.mark.kafka
@pytest.mark.parametrize("wait", [GLANCE_S, 0.05])
async def test_a_walking_reader_at_the_end_does_not_spin_out_its_last_millisecond(
    kafka_log: KafkaLog, topic: str, wait: float
) -> None:
    """``getmany`` waits whole milliseconds: asked again with under one left, it returns at once, and a read
    that kept asking until its deadline spun (a dispatcher's 1 ms glance at its ledger called it some 60
    times, a fifth of the dispatcher's CPU). A walking reader with nothing new asks once or twice."""
    await kafka_log.append_many(topic, [(None, b"%d" % i, ()) for i in range(3)])
    assert len(await kafka_log.read(topic, 0, limit=10)) == 3
    [reader] = kafka_log._readers.values()
    fetches: list[float] = []
    fetch = reader.consumer.getmany

    async def counted(*args: object, **kwargs: object) -> object:
        fetches.append(time.monotonic())
        return await fetch(*args, **kwargs)

    reader.consumer.getmany = counted
    for _ in range(5):
        assert await kafka_log.read(topic, 3, timeout=wait) == []
    assert 5 <= len(fetches) <= 15, fetches
    await kafka_log.append(topic, b"3")
    assert [r.value for r in await kafka_log.read(topic, 3, timeout=10)] == [b"3"]


async def test_a_transaction_after_another_asks_again_within_milliseconds() -> None:
    """aiokafka waits a fixed 20 ms before asking again when the coordinator is still writing the last
    transaction's markers (KAFKA-5477): every router batch waited it. Making a transactional writer shortens it."""
    from aiokafka.producer import sender

    from broker.log.kafka_group import KafkaTransactions
    from broker.log.kafka_safety import TXN_RETRY_S

    await KafkaTransactions({"bootstrap_servers": "127.0.0.1:9"}, "jigsaw-tests-never-started").close()
    assert sender.BACKOFF_OVERRIDE == TXN_RETRY_S < 0.02


@pytest.mark.kafka
async def test_replication_beyond_the_cluster_is_a_config_error(kafka_bootstrap: str, topic: str) -> None:
    """Asking a one-broker cluster for three replicas fails as a configuration error, not a hang."""
    log = KafkaLog(kafka_bootstrap, replication_factor=3)
    try:
        with pytest.raises(ConfigError, match="replication factor"):
            await log.create_topic(topic)
    finally:
        await log.close()


async def test_unreachable_broker_is_log_unavailable() -> None:
    """With no broker at the address, using the log raises LogUnavailable, marked retriable."""
    log = KafkaLog(f"127.0.0.1:{_closed_port()}")

    with pytest.raises(LogUnavailable) as caught:
        await log.append("jigsaw.events.police", b"v")

    assert caught.value.retriable is True
    assert caught.value.code == "log_unavailable"
    status = await log.status()
    assert status == {"backend": "kafka", "ok": False, "bootstrap": log.bootstrap, "error": "not started"}


def test_open_log_builds_a_kafka_log_from_settings() -> None:
    """JIGSAW_LOG_BACKEND=kafka gives a KafkaLog on the configured bootstrap, client id and replication."""
    settings = Settings.from_env(
        {
            "JIGSAW_LOG_BACKEND": "kafka",
            "JIGSAW_KAFKA_BOOTSTRAP": "kafka-1:9092,kafka-2:9092",
            "JIGSAW_KAFKA_CLIENT_ID": "jigsaw-router",
            "JIGSAW_KAFKA_REPLICATION_FACTOR": "3",
        }
    )

    log = open_log(settings)

    assert isinstance(log, KafkaLog)
    assert (log.bootstrap, log.client_id, log.replication_factor) == (
        "kafka-1:9092,kafka-2:9092",
        "jigsaw-router",
        3,
    )


@pytest.mark.kafka
async def test_readers_beyond_the_cap_are_recycled(kafka_bootstrap: str, unique: Callable[[str], str]) -> None:
    """With more partitions read than the reader cap, the oldest readers close and reads stay correct."""
    log = KafkaLog(kafka_bootstrap, max_readers=2)
    topics = [unique("cap") for _ in range(4)]
    try:
        for name in topics:
            await log.append_many(name, [(None, name.encode() + b"/%d" % i, ()) for i in range(3)])
        for _ in range(2):
            for name in topics:
                records = await log.read(name, 1)
                assert [r.value for r in records] == [name.encode() + b"/1", name.encode() + b"/2"]
        assert len(log._readers) == 2
    finally:
        await log.close()


async def test_a_transaction_writes_a_topic_known_from_start_beside_a_new_one(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    """aiokafka's producer knows every topic from its first metadata but refreshes only the topics it was asked
    about: a transaction to a topic it knew from the start and to one created since lost the first's leader at
    the refresh the second caused, and waited out its request timeout (the router's first transaction on a fresh
    broker stalled 30 s, then failed with NotLeaderForPartitionError). Every topic written is now asked about."""
    known, later = unique("known"), unique("later")
    setup = KafkaLog(kafka_bootstrap, client_id="jigsaw-tests")
    await setup.start()
    await setup.create_topic(known)
    log = KafkaLog(kafka_bootstrap, client_id="jigsaw-tests", request_timeout_ms=5_000)
    await log.start()
    writer = log.writer(unique("txn"))
    try:
        await writer.start()
        # A refresh while the producer tracks no topic asks for all of them: ``known`` is in, untracked.
        await writer.producer.client.force_metadata_update()
        assert writer.producer.client.cluster.partitions_for_topic(known) == {0}
        await setup.create_topic(later)
        started = time.monotonic()
        await writer.write([(known, [(b"k", b"one", ())], None), (later, [(b"k", b"two", ())], None)], {}, "g")
        assert time.monotonic() - started < 4.0
        # After a refresh the producer's metadata still holds both (a queued batch for a lost one never drains).
        await writer.producer.client.force_metadata_update()
        for topic in (known, later):
            assert writer.producer.client.cluster.partitions_for_topic(topic) == {0}, topic
        assert [r.value for r in await setup.read(known, 0, timeout=5)] == [b"one"]
        assert [r.value for r in await setup.read(later, 0, timeout=5)] == [b"two"]
        # The log's own producer (the gateway's appends) likewise.
        client = log._producer.client
        await client.force_metadata_update()  # tracking nothing yet: every topic
        await log.append(known, b"three", key=b"k")
        await log.append(later, b"four", key=b"k")
        await client.force_metadata_update()
        assert client.cluster.partitions_for_topic(known) == {0} and client.cluster.partitions_for_topic(later) == {0}
    finally:
        await writer.close()
        await log.close()
        await setup.close()
