"""Kafka group membership: what the rebalance listener tells the member and awaits from it (no broker needed)."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from broker.log.kafka_group import KafkaMember, _Listener


async def test_a_rebalance_awaits_the_members_revoke_hook_with_its_own_partitions() -> None:
    """Partitions of this member's topic are passed to ``on_revoked``, which the rebalance waits for; with them
    every partition the member was last given, as it holds none once the hook is called."""
    member = KafkaMember({"bootstrap_servers": "127.0.0.1:9"}, "g", "t", full_group="p.g", full_topic="p.t")
    member.held = frozenset({0, 2})
    seen: list[frozenset[int]] = []
    finished = asyncio.Event()

    async def finish(partitions: frozenset[int]) -> None:
        seen.append(partitions)
        await asyncio.sleep(0.05)  # work in flight being recorded
        finished.set()

    member.on_revoked = finish
    await _Listener(member).on_partitions_revoked([TopicPartition("p.t", 0), TopicPartition("p.other", 1)])
    assert seen == [frozenset({0, 2})] and finished.is_set() and member.held == frozenset()


async def test_a_failing_revoke_hook_does_not_stop_the_rebalance() -> None:
    """An error in the hook is logged; the member still lets go of its partitions."""
    member = KafkaMember({"bootstrap_servers": "127.0.0.1:9"}, "g", "t", full_group="g", full_topic="t")
    member.held = frozenset({2})

    async def broken(partitions: frozenset[int]) -> None:
        raise RuntimeError("the ledger could not be written")

    member.on_revoked = broken
    await _Listener(member).on_partitions_revoked([TopicPartition("t", 2)])
    assert member.held == frozenset()


async def test_a_revoke_hook_set_on_a_prefixed_member_is_the_one_the_group_calls() -> None:
    """Under ``JIGSAW_KAFKA_TOPIC_PREFIX`` the dispatcher holds a namespaced member: the hook it sets there must
    be the inner member's, which the rebalance calls (it was not, and two dispatchers sent the same webhooks
    around a rebalance: the chaos test's rare duplicates)."""
    from broker.log.kafka import KafkaLog
    from broker.log.namespace import NamespacedLog

    member = NamespacedLog(KafkaLog("127.0.0.1:9"), "p.").member("g", "t")
    inner = member.inner
    assert (inner.full_group, inner.full_topic) == ("p.g", "p.t")
    inner.held = frozenset({1})
    seen: list[frozenset[int]] = []

    async def finish(partitions: frozenset[int]) -> None:
        seen.append(partitions)

    member.on_revoked = finish
    assert member.on_revoked is finish
    await _Listener(inner).on_partitions_revoked([TopicPartition("p.t", 1)])
    assert seen == [frozenset({1})]
