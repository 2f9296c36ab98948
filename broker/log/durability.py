"""How durable the Kafka topics Jigsaw creates are: the ``min.insync.replicas`` policy (pure).

With ``acks=all`` a write is confirmed once every in-sync replica has it, and
``min.insync.replicas`` says how few those may be. Kafka's default (1) confirms
a write that only the leader holds, so losing that broker loses it. Two of
three or more replicas survive one broker's loss while the topic stays
writable with one broker down.
"""

from __future__ import annotations

from broker.errors import ConfigError

__all__ = ["DURABLE_FROM_REPLICAS", "min_insync_replicas_for"]

DURABLE_FROM_REPLICAS = 3


def min_insync_replicas_for(replication_factor: int, configured: int | None = None) -> int | None:
    """The ``min.insync.replicas`` Jigsaw sets on the topics it creates, or None to keep the broker's.

    ``configured`` (``JIGSAW_KAFKA_MIN_INSYNC_REPLICAS``) wins; otherwise 2 from a replication factor
    of 3 up, and the broker's own setting below that (with fewer replicas, 2 would stop all writes
    whenever one broker is down).

    Raises:
        ConfigError: ``configured`` is below 1 or above the replication factor (no write could succeed).
    """
    if configured is not None:
        if not 1 <= configured <= replication_factor:
            raise ConfigError(
                f"JIGSAW_KAFKA_MIN_INSYNC_REPLICAS is {configured}, but it must be between 1 and the "
                f"replication factor ({replication_factor}): with more, no write could ever be confirmed"
            )
        return configured
    return 2 if replication_factor >= DURABLE_FROM_REPLICAS else None
