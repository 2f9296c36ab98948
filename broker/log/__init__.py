"""Log backends behind one protocol: memory, embedded (SQLite) and Kafka."""

from __future__ import annotations

from broker.log.base import Headers, Log, Position, Record, partition_for
from broker.log.embedded import EmbeddedLog
from broker.log.memory import MemoryLog
from broker.settings import Settings

__all__ = ["EmbeddedLog", "Headers", "Log", "MemoryLog", "Position", "Record", "open_log", "partition_for"]


def open_log(settings: Settings) -> Log:
    """The backend the settings name (not yet started)."""
    if settings.log_backend == "memory":
        return MemoryLog()
    if settings.log_backend == "kafka":
        from broker.log.kafka import KafkaLog  # imported late: aiokafka is only needed here
        from broker.log.kafka_security import KafkaSecurity

        kafka: Log = KafkaLog(
            settings.kafka_bootstrap,
            client_id=settings.kafka_client_id,
            replication_factor=settings.kafka_replication_factor,
            security=KafkaSecurity.from_settings(settings),
            min_insync_replicas=settings.kafka_min_insync_replicas,
        )
        if settings.kafka_topic_prefix:  # several deployments on one cluster, each under its own prefix
            from broker.log.namespace import NamespacedLog

            kafka = NamespacedLog(kafka, settings.kafka_topic_prefix)
        return kafka
    return EmbeddedLog(settings.log_path)
