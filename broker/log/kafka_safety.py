"""The settings Jigsaw never leaves to aiokafka's defaults, and reading them back from the live clients.

aiokafka's producer defaults to ``acks=1`` without idempotence and its consumer
commits automatically every 5 s: not safe for a record of safeguarding events.
The safe settings are data here so a test can check them, and ``safety_report``
reads them back from the live objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

from broker.log.base import partition_for

__all__ = [
    "CONSUMER_SAFETY",
    "PRODUCER_SAFETY",
    "TOPIC_DEFAULTS",
    "TXN_RETRY_S",
    "describe_error",
    "partitioner",
    "quick_transaction_retry",
    "safety_report",
    "track",
]

# Never rely on aiokafka's defaults for these (see the module docstring).
PRODUCER_SAFETY: Final[Mapping[str, Any]] = MappingProxyType({"acks": "all", "enable_idempotence": True})
CONSUMER_SAFETY: Final[Mapping[str, Any]] = MappingProxyType(
    {"enable_auto_commit": False, "isolation_level": "read_committed"}
)
# Every topic keeps its records until an operator decides otherwise, as the other backends do.
# Time retention would also judge records by their own timestamps, and Jigsaw appends records
# stamped with when things happened, which may be long ago.
TOPIC_DEFAULTS: Final[Mapping[str, str]] = MappingProxyType({"retention.ms": "-1", "retention.bytes": "-1"})


def partitioner(key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
    """aiokafka partitioner that places keys exactly as the other backends do."""
    ordered = sorted(all_partitions)
    return ordered[partition_for(key, len(ordered))]


async def track(producer: Any, topic: str, tracked: set[str]) -> None:
    """Have ``producer`` keep ``topic`` in its metadata from now on (once per topic; ``tracked`` remembers).

    aiokafka's client asks for every topic's metadata while it tracks none, and later only for the topics
    it tracks; a send to a topic it already knew from such an answer does not track it. The next refresh
    (caused by a send to a new topic) then drops that topic, and a batch queued for it waits for a leader
    until its request times out with ``NotLeaderForPartitionError``: the router's first transaction on a
    fresh broker stalled 30 s that way.
    """
    if topic not in tracked:
        await producer.client.add_topic(topic)
        tracked.add(topic)


# How soon a transaction that follows another asks again to add its first partitions (aiokafka: 20 ms).
TXN_RETRY_S: Final = 0.002


def quick_transaction_retry() -> bool:
    """Have a transaction that follows another start within milliseconds, not after aiokafka's 20 ms wait.

    The coordinator answers ``EndTxn`` before it has written the commit markers, and until they are
    written it refuses the next transaction's first ``AddPartitionsToTxn`` with ``CONCURRENT_TRANSACTIONS``
    (KAFKA-5477). aiokafka then waits ``BACKOFF_OVERRIDE`` (20 ms), a module constant with no setting, so
    back-to-back transactions took 24 ms each on Kafka 3.9 on loopback, 17 ms of it waiting; asking again
    after 2 ms they take 6.6 ms, with about the same number of requests (the markers are written within
    2 ms). The router commits every batch in a transaction, so this wait was on every notification's path.
    Returns False (and changes nothing) if this aiokafka has no such constant.
    """
    from aiokafka.producer import sender

    if not isinstance(getattr(sender, "BACKOFF_OVERRIDE", None), float):
        return False
    sender.BACKOFF_OVERRIDE = TXN_RETRY_S
    return True


def describe_error(exc: BaseException) -> str:
    """An aiokafka error as one line (some already start with their class name, some are empty)."""
    text, name = str(exc), type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}" if text else name


def safety_report(producer: Any, consumers: Sequence[Any]) -> dict[str, Any]:
    """The safety settings as the live aiokafka objects hold them (not as configured).

    Reads private attributes of aiokafka 0.14, so a missing one shows as None rather than raising.
    """
    txn = getattr(producer, "_txn_manager", None)  # aiokafka keeps idempotence state here
    return {
        "producer_acks": getattr(getattr(producer, "_sender", None), "_acks", None),  # "all" is -1
        "producer_idempotent": txn is not None,
        "producer_id": getattr(txn, "producer_id", None),  # assigned by the broker once it has sent
        "consumers_auto_commit": [getattr(c, "_enable_auto_commit", None) for c in consumers],
        "consumers_isolation": [getattr(c, "_isolation_level", None) for c in consumers],
    }
