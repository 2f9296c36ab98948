"""The Kafka log backend (aiokafka).

aiokafka's defaults are not safe for a record of safeguarding events: its
producer defaults to ``acks=1`` without idempotence and its consumer commits
automatically every 5 s. Every setting that matters is set explicitly here and
kept as data (``PRODUCER_SAFETY``, ``CONSUMER_SAFETY``) so a test can check
them, and ``KafkaLog.safety_report()`` reads them back from the live objects.

How the protocol maps onto Kafka:

- appends go through one idempotent producer; ``append_many`` sends every item
  and then awaits them all, so they travel in batches. Keys are placed with
  ``partition_for`` like every other backend, so a key lands on the same
  partition whichever log holds it.
- a topic is created (with the configured replication factor) on its first
  append, so the log does not rely on the broker's ``auto.create.topics.enable``.
- reads use one group-less, manually assigned consumer per topic partition,
  kept between calls (``kafka_reader``); end offsets are asked on another
  consumer's connection (``_ends``), never behind a reader's parked fetch.
- commits go through one consumer per group, manually assigned and paused
  (``kafka_group.Committer``); committed positions are read with the admin
  client. Roles that run as several processes use group members and
  transactions instead (``kafka_group``).

A send that timed out may still have landed: everything downstream dedupes on
ids. aiokafka's errors become ``LogUnavailable`` (with the cause chained).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import ConsumerStoppedError, KafkaError

from broker.errors import ConfigError, LogUnavailable
from broker.log.base import Headers, Position, Record
from broker.log.durability import min_insync_replicas_for
from broker.log.kafka_group import Committer, committed_offset
from broker.log.kafka_reader import READER_SETTINGS, PartitionReader, to_record
from broker.log.kafka_safety import (
    CONSUMER_SAFETY,
    PRODUCER_SAFETY,
    TOPIC_DEFAULTS,
    describe_error,
    partitioner,
    safety_report,
    track,
)
from broker.log.kafka_security import KafkaSecurity
from broker.log.scan import latest_by_key

__all__ = ["CONSUMER_SAFETY", "PRODUCER_SAFETY", "TOPIC_DEFAULTS", "KafkaLog"]

_TOPIC_EXISTS = 36  # TOPIC_ALREADY_EXISTS
_CONFIG_ERRORS = {17: "invalid topic name", 37: "invalid partition count", 38: "invalid replication factor"}
_POLL_S = 0.1
_PARTITIONS_TTL_S = 10.0  # how long a partition count is taken as known (describing every topic is costly)


class KafkaLog:
    """The log on a Kafka cluster, through aiokafka with safe settings."""

    name = "kafka"

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "jigsaw",
        replication_factor: int = 1,
        min_insync_replicas: int | None = None,
        request_timeout_ms: int = 30_000,
        max_readers: int = 64,
        security: KafkaSecurity | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        # TLS and SASL (read once here, so a bad file fails at construction); PLAINTEXT when not given.
        self.security = security or KafkaSecurity()
        self.security.check(bootstrap)
        self._security_options = self.security.client_options()
        self.client_id = client_id
        self.replication_factor = replication_factor
        self.min_insync_replicas = min_insync_replicas_for(replication_factor, min_insync_replicas)
        self._timeout_ms = request_timeout_ms
        self._max_readers = max_readers
        self._producer: Any = None
        self._admin: Any = None
        self._meta: Any = None  # a group-less consumer that only asks for end offsets
        self._readers: collections.OrderedDict[tuple[str, int], PartitionReader] = collections.OrderedDict()
        self._committers: dict[str, Committer] = {}
        self._ensured: set[str] = set()  # topics this object created or saw created
        self._partition_counts: dict[str, int] = {}
        self._counted_at: dict[str, float] = {}
        self._lock = asyncio.Lock()

    # -- plumbing -------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (KafkaError, ConsumerStoppedError, TimeoutError) as exc:  # closed while a read waited; a bare timeout
            raise LogUnavailable(
                f"Kafka at {self.bootstrap} could not {doing}: {describe_error(exc)}",
                bootstrap=self.bootstrap,
                kafka_error=type(exc).__name__,
                kafka_retriable=bool(getattr(exc, "retriable", False)),
            ) from exc

    def _common(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.bootstrap,
            "client_id": self.client_id,
            "request_timeout_ms": self._timeout_ms,
            **self._security_options,
        }

    def _consumer(self, group: str | None, **extra: Any) -> Any:
        return AIOKafkaConsumer(group_id=group, **self._common(), **CONSUMER_SAFETY, **extra)

    async def start(self) -> None:
        async with self._lock:
            if self._producer is not None:
                return
            producer = AIOKafkaProducer(**self._common(), **PRODUCER_SAFETY, partitioner=partitioner)
            admin = AIOKafkaAdminClient(**self._common())
            # It meets each topic on its first question, then waits out a metadata retry backoff.
            meta = self._consumer(None, retry_backoff_ms=20)
            try:
                with self._errors("start (is the broker running?)"):
                    for client in (producer, admin, meta):
                        await client.start()
            except LogUnavailable as exc:
                # Close all three, started or not: aiokafka warns about any left unclosed.
                for client in (meta, admin, producer):
                    with contextlib.suppress(Exception):
                        await (client.close() if client is admin else client.stop())
                await self.security.explain(self.bootstrap, exc, self._security_options)  # a clearer error, if it can
                raise
            self._producer, self._admin, self._meta = producer, admin, meta
            self._tracked: set[str] = set()  # topics the producer keeps in its metadata (``kafka_safety.track``)

    async def _started(self) -> None:
        if self._producer is None:
            await self.start()

    async def _ends(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        if self._meta is None:  # closed while a read was waiting
            raise LogUnavailable("the Kafka log is closed")
        return await self._meta.end_offsets(tps)  # type: ignore[no-any-return]

    async def close(self) -> None:
        async with self._lock:
            if self._producer is None:
                return
            producer, admin, meta = self._producer, self._admin, self._meta
            self._producer = self._admin = self._meta = None
            consumers = [r.consumer for r in self._readers.values()]
            consumers += [c.consumer for c in self._committers.values()]
            self._readers.clear()
            self._committers.clear()
            self._ensured.clear()
            self._partition_counts.clear()
            for stop in [*(c.stop for c in [*consumers, meta]), admin.close, producer.stop]:  # the producer flushes
                with contextlib.suppress(KafkaError):
                    await stop()

    def safety_report(self) -> dict[str, Any]:
        """The safety settings as the live aiokafka objects hold them (not as configured).

        Reads private attributes of aiokafka 0.14, so a missing one shows as None
        rather than raising.
        """
        consumers = [self._meta, *(r.consumer for r in self._readers.values())]
        consumers += [c.consumer for c in self._committers.values()]
        return safety_report(self._producer, [c for c in consumers if c])

    # -- topics ---------------------------------------------------------------

    async def create_topic(self, topic: str, *, partitions: int = 1, compacted: bool = False) -> None:
        await self._started()
        configs = dict(TOPIC_DEFAULTS)
        if self.min_insync_replicas is not None:
            configs["min.insync.replicas"] = str(self.min_insync_replicas)
        if compacted:
            configs["cleanup.policy"] = "compact"
        new = NewTopic(topic, partitions, self.replication_factor, topic_configs=configs)
        with self._errors(f"create topic {topic}"):
            response = await self._admin.create_topics([new])
        for name, code, *rest in response.topic_errors:
            message = rest[0] if rest and rest[0] else ""
            if code in _CONFIG_ERRORS:
                raise ConfigError(
                    f"Kafka refused to create topic {name} ({_CONFIG_ERRORS[code]}, "
                    f"replication factor {self.replication_factor}): {message}"
                )
            if code not in (0, _TOPIC_EXISTS):
                raise LogUnavailable(f"Kafka at {self.bootstrap} could not create topic {name}: error {code} {message}")
        self._ensured.add(topic)

    async def partitions(self, topic: str) -> int:
        await self._started()
        known = self._partition_counts.get(topic)
        loop = asyncio.get_running_loop()
        if known and loop.time() - self._counted_at.get(topic, 0.0) < _PARTITIONS_TTL_S:
            return known  # partitions are only ever added, and rarely: ask the cluster at most every few seconds
        # Metadata for all topics: asking for one by name may auto-create it on some brokers.
        with self._errors("describe topics"):
            topics = await self._admin.describe_topics()
        for entry in topics:
            if entry["topic"] == topic and entry["error_code"] == 0:
                count = len(entry["partitions"])
                self._partition_counts[topic] = count
                self._counted_at[topic] = asyncio.get_running_loop().time()
                return count
        return 0

    async def _exists(self, topic: str, partition: int) -> bool:
        return partition < self._partition_counts.get(topic, 0) or partition < await self.partitions(topic)

    async def _wait_exists(self, topic: str, partition: int, deadline: float) -> bool:
        loop = asyncio.get_running_loop()
        while not await self._exists(topic, partition):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(remaining, _POLL_S * 2))
        return True

    # -- writing --------------------------------------------------------------

    async def append(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Headers = (),
        timestamp_ms: int | None = None,
        partition: int | None = None,
    ) -> Position:
        [position] = await self._send(topic, [(key, value, headers)], timestamp_ms, partition)
        return position

    async def append_many(
        self,
        topic: str,
        items: Sequence[tuple[bytes | None, bytes | None, Headers]],
        *,
        timestamp_ms: int | None = None,
    ) -> list[Position]:
        return await self._send(topic, items, timestamp_ms, None)

    async def _send(
        self,
        topic: str,
        items: Sequence[tuple[bytes | None, bytes | None, Headers]],
        timestamp_ms: int | None,
        partition: int | None,
    ) -> list[Position]:
        await self._started()
        if topic not in self._ensured:
            await self.create_topic(topic)
        with self._errors(f"append to {topic}"):
            await track(self._producer, topic, self._tracked)
            # Queue everything first so the producer batches it, then wait for every ack. When queueing fails
            # part-way, what was queued is still waited for: when this returns or raises, every record's fate
            # is final (the intake releases an id only then).
            futures, failure = [], None
            try:
                for key, value, headers in items:
                    futures.append(
                        await self._producer.send(
                            topic, value, key=key, partition=partition, timestamp_ms=timestamp_ms, headers=list(headers)
                        )
                    )
            except Exception as exc:
                failure = exc
            results = await asyncio.gather(*futures, return_exceptions=True)
            if failure is not None:
                raise failure
            positions = []
            for result in results:
                if isinstance(result, BaseException):
                    raise result
                positions.append(Position(result.topic, result.partition, result.offset))
        return positions

    # -- reading --------------------------------------------------------------

    async def _reader(self, topic: str, partition: int) -> PartitionReader:
        key = (topic, partition)
        async with self._lock:
            reader = self._readers.get(key)
            if reader is not None:
                self._readers.move_to_end(key)
                return reader
            consumer = self._consumer(None, **READER_SETTINGS)
            with self._errors(f"open a reader on {topic}"):
                await consumer.start()
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            reader = self._readers[key] = PartitionReader(consumer, tp, self._ends)
            evicted = []
            while len(self._readers) > self._max_readers:
                evicted.append(self._readers.popitem(last=False)[1])
        for old in evicted:
            async with old.lock:
                old.closed = True
                with contextlib.suppress(KafkaError):
                    await old.consumer.stop()
        return reader

    async def read(
        self, topic: str, offset: int, *, partition: int = 0, limit: int = 500, timeout: float = 0.0
    ) -> list[Record]:
        await self._started()
        if limit <= 0:
            return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if not await self._wait_exists(topic, partition, deadline):
            return []
        while True:
            reader = await self._reader(topic, partition)
            async with reader.lock:
                if reader.closed:
                    continue
                with self._errors(f"read {topic}[{partition}]"):
                    messages = await reader.read(offset, limit, deadline)
            return [to_record(m) for m in messages]

    async def end_offset(self, topic: str, *, partition: int = 0) -> int:
        return (await self.end_offsets(topic, [partition]))[partition]

    async def end_offsets(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        await self._started()
        there = {p: TopicPartition(topic, p) for p in partitions if await self._exists(topic, p)}
        with self._errors(f"read the end offsets of {topic}{sorted(there)}"):
            offsets = await self._meta.end_offsets(list(there.values())) if there else {}
        ends = {p: int(offsets[there[p]]) if p in there else 0 for p in partitions}
        for p, end in ends.items():  # a reader of a partition known to hold records waits for them, asking nothing
            if (reader := self._readers.get((topic, p))) is not None and end > reader.seen_end:
                reader.seen_end = end
        return ends

    async def read_compacted(self, topic: str) -> dict[bytes, Record]:
        return await latest_by_key(self, topic)

    # -- consumer groups ------------------------------------------------------

    async def commit(self, group: str, topic: str, offset: int, *, partition: int = 0) -> None:
        await self._started()
        async with self._lock:
            committer = self._committers.get(group)
            if committer is None:
                consumer = self._consumer(group, auto_offset_reset="earliest")
                with self._errors(f"join group {group} for commits"):
                    await consumer.start()
                committer = self._committers[group] = Committer(consumer)
        with self._errors(f"commit {topic}[{partition}]@{offset} for group {group}"):
            await committer.commit(TopicPartition(topic, partition), offset)

    async def committed(self, group: str, topic: str, *, partition: int = 0) -> int | None:
        await self._started()
        with self._errors(f"read the committed offset of group {group}"):
            return await committed_offset(self._admin, group, TopicPartition(topic, partition))

    def member(self, group: str, topic: str) -> Any:
        """A consumer-group member of ``group`` over ``topic`` (``kafka_group.KafkaMember``)."""
        from broker.log.kafka_group import KafkaMember

        return KafkaMember(self._common(), group, topic, full_group=group, full_topic=topic)

    def writer(self, transactional_id: str) -> Any:
        """Kafka transactions under ``transactional_id`` (``kafka_group.KafkaTransactions``)."""
        from broker.log.kafka_group import KafkaTransactions

        return KafkaTransactions(self._common(), transactional_id)

    # -- health ---------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        report: dict[str, Any] = {"backend": self.name, "ok": False, "bootstrap": self.bootstrap}
        if self._admin is None:
            report["error"] = "not started"
            return report
        try:
            cluster = await asyncio.wait_for(self._admin.describe_cluster(), 5)
        except (KafkaError, TimeoutError) as exc:
            report["error"] = describe_error(exc)
            return report
        report.update(ok=True, brokers=len(cluster.get("brokers", [])))
        return report
