"""Kafka durability: min.insync.replicas on created topics, and committed offsets on a fresh broker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import GroupCoordinatorNotAvailableError
from aiokafka.structs import OffsetAndMetadata

from broker.errors import ConfigError, LogUnavailable
from broker.log import kafka_group as kafka_module  # where the coordinator wait lives
from broker.log import open_log
from broker.log.durability import min_insync_replicas_for
from broker.log.kafka import KafkaLog
from broker.settings import Settings


class _FakeAdmin:
    """Stands in for aiokafka's admin client: records created topics, fails offset reads ``failures`` times."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.created: list[Any] = []
        self.calls = 0

    async def create_topics(self, new: list[Any]) -> Any:
        self.created.extend(new)

        class Response:
            topic_errors = [(t.name, 0, "") for t in new]

        return Response()

    async def list_consumer_group_offsets(self, group: str, partitions: list[TopicPartition]) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise GroupCoordinatorNotAvailableError()
        return {partitions[0]: OffsetAndMetadata(41, "")}


def _with_admin(log: KafkaLog, admin: _FakeAdmin) -> KafkaLog:
    log._producer, log._admin = object(), admin  # started, as far as these methods can tell
    return log


def test_min_insync_replicas_is_two_from_three_replicas_unless_configured() -> None:
    """Derived: the broker's own below three replicas, 2 from three up; a configured value wins if it can work."""
    assert [min_insync_replicas_for(n) for n in (1, 2, 3, 5)] == [None, None, 2, 2]
    assert min_insync_replicas_for(3, 3) == 3 and min_insync_replicas_for(1, 1) == 1
    for bad in (0, 4):
        with pytest.raises(ConfigError, match="JIGSAW_KAFKA_MIN_INSYNC_REPLICAS"):
            min_insync_replicas_for(3, bad)


def test_the_setting_reaches_the_kafka_log() -> None:
    """JIGSAW_KAFKA_MIN_INSYNC_REPLICAS, or its derived default, is what open_log's KafkaLog will set."""
    base = {"JIGSAW_LOG_BACKEND": "kafka", "JIGSAW_KAFKA_REPLICATION_FACTOR": "3"}
    derived = open_log(Settings.from_env(base))
    chosen = open_log(Settings.from_env({**base, "JIGSAW_KAFKA_MIN_INSYNC_REPLICAS": "3"}))
    assert isinstance(derived, KafkaLog) and isinstance(chosen, KafkaLog)
    assert (derived.min_insync_replicas, chosen.min_insync_replicas) == (2, 3)
    with pytest.raises(ConfigError):
        open_log(Settings.from_env({**base, "JIGSAW_KAFKA_MIN_INSYNC_REPLICAS": "4"}))


async def test_topics_with_three_replicas_are_created_with_min_insync_two() -> None:
    """create_topic asks for min.insync.replicas=2 beside the retention defaults when there are three replicas."""
    admin = _FakeAdmin()
    log = _with_admin(KafkaLog("kafka:9092", replication_factor=3), admin)
    await log.create_topic("t", compacted=True)
    [new] = admin.created
    assert new.replication_factor == 3
    assert new.topic_configs == {
        "retention.ms": "-1",
        "retention.bytes": "-1",
        "min.insync.replicas": "2",
        "cleanup.policy": "compact",
    }
    single = _FakeAdmin()
    await _with_admin(KafkaLog("kafka:9092"), single).create_topic("u")
    assert "min.insync.replicas" not in single.created[0].topic_configs


async def test_committed_waits_for_a_group_coordinator() -> None:
    """On a fresh broker the offset read is retried while no coordinator is available, then answers."""
    admin = _FakeAdmin(failures=3)
    log = _with_admin(KafkaLog("kafka:9092"), admin)
    assert await log.committed("g", "t") == 41
    assert admin.calls == 4


async def test_committed_gives_up_after_a_bounded_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """A coordinator that never appears is LogUnavailable (retriable), not a hang."""
    monkeypatch.setattr(kafka_module, "_COORDINATOR_WAIT_S", 0.2)
    log = _with_admin(KafkaLog("kafka:9092"), _FakeAdmin(failures=1_000))
    with pytest.raises(LogUnavailable) as caught:
        await log.committed("g", "t")
    assert caught.value.retriable is True
    assert "GroupCoordinatorNotAvailableError" in caught.value.message


@pytest.mark.kafka
async def test_a_real_broker_holds_the_topic_level_setting(kafka_bootstrap: str, unique: Callable[[str], str]) -> None:
    """The broker reports the configured min.insync.replicas as the topic's own setting, not its default."""
    log = KafkaLog(kafka_bootstrap, client_id="jigsaw-tests", min_insync_replicas=1)
    name = unique("insync")
    try:
        await log.create_topic(name)
        assert await log.committed(unique("fresh-group"), name) is None
    finally:
        await log.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    finally:
        await admin.close()
    entries = {entry[0]: entry for resource in response.resources for entry in resource[4]}
    _name, value, _read_only, source, *_ = entries["min.insync.replicas"]
    assert (value, source) == ("1", 1)  # source 1: DYNAMIC_TOPIC_CONFIG, set on the topic itself
