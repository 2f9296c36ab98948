"""The intake chains what it accepts and writes signed checkpoints at intervals, at seal, and after a restart."""

from __future__ import annotations

import datetime as dt

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker import topics
from broker.audit.chain import CHAIN_HEADER, ChainCheck
from broker.audit.checkpoint import checkpoint_valid, decode_checkpoint
from broker.client import build_envelope
from broker.envelope.testing import make_keys, publisher_for, sample_data
from broker.intake import Intake
from broker.log import MemoryLog, Record

NOW = dt.datetime(2022, 3, 1, 9, 0, tzinfo=dt.UTC)
KEYS = make_keys()
JIGSAW = Ed25519PrivateKey.from_private_bytes(b"\x05" * 32)
POLICE = topics.events_topic("police")


async def _submit(intake: Intake, index: int) -> None:
    source = publisher_for("police.domestic_abuse_incident")
    at = NOW + dt.timedelta(minutes=index)
    env = build_envelope(
        "police.domestic_abuse_incident",
        sample_data("police.domestic_abuse_incident", index),
        source=source,
        key=KEYS.signing[source],
        occurred_at=at,
        issued_at=at,
    )
    outcome = await intake.submit(env, caller=None, now=at)
    assert outcome.status == "accepted", outcome.error


async def _records(log: MemoryLog, topic: str) -> list[Record]:
    return await log.read(topic, 0, limit=10_000)


async def _intake(log: MemoryLog, every: int = 3) -> Intake:
    intake = Intake(log, lambda: KEYS.registry, checkpoint_key=JIGSAW, checkpoint_every=every)
    await intake.start()
    return intake


async def test_every_accepted_record_carries_a_chain_value_that_checks() -> None:
    """The chain header on each appended record is what ChainCheck recomputes."""
    log = MemoryLog()
    intake = await _intake(log, every=100)
    for i in range(5):
        await _submit(intake, i)
    records = await _records(log, POLICE)
    assert all(len(r.header(CHAIN_HEADER) or b"") == 32 for r in records)
    check = ChainCheck()
    for record in records:
        check.feed(record)
    assert check.breaks == []


async def test_a_checkpoint_is_written_every_n_events_and_at_seal() -> None:
    """With every=3, seven events give checkpoints after offsets 2 and 5, and seal adds one after 6."""
    log = MemoryLog()
    intake = await _intake(log, every=3)
    for i in range(7):
        await _submit(intake, i)
    await intake.seal(NOW + dt.timedelta(hours=1))
    await intake.seal(NOW + dt.timedelta(hours=2))  # nothing new: no checkpoint
    checkpoints = [decode_checkpoint(r) for r in await _records(log, topics.CHECKPOINTS)]
    assert [(c.topic, c.offset) for c in checkpoints] == [(POLICE, 2), (POLICE, 5), (POLICE, 6)]
    assert all(checkpoint_valid(c, JIGSAW.public_key()) for c in checkpoints)
    records = await _records(log, POLICE)
    assert [c.chain for c in checkpoints] == [records[o].header(CHAIN_HEADER) for o in (2, 5, 6)]


async def test_checkpoints_record_where_the_output_topics_ended() -> None:
    """Each checkpoint lists the end offsets of notifications, decisions, acks and rejections."""
    log = MemoryLog()
    for topic in (topics.NOTIFICATIONS, topics.ACKS):
        await log.create_topic(topic)
    await log.append(topics.NOTIFICATIONS, b"{}", key=b"x")
    intake = await _intake(log, every=1)
    await _submit(intake, 0)
    [checkpoint] = [decode_checkpoint(r) for r in await _records(log, topics.CHECKPOINTS)]
    ends = {(t, p): e for t, p, e in checkpoint.ends}
    assert ends[(topics.NOTIFICATIONS, 0)] == 1 and ends[(topics.ACKS, 0)] == 0
    assert (topics.REJECTED, 0) in ends


async def test_a_restarted_intake_carries_the_chain_on_and_remembers_the_last_checkpoint() -> None:
    """After a restart the chain continues unbroken, and the interval counts from the last checkpoint."""
    log = MemoryLog()
    first = await _intake(log, every=3)
    for i in range(4):
        await _submit(first, i)
    second = await _intake(log, every=3)
    for i in range(4, 6):
        await _submit(second, i)
    check = ChainCheck()
    for record in await _records(log, POLICE):
        check.feed(record)
    assert check.breaks == []
    checkpoints = [decode_checkpoint(r) for r in await _records(log, topics.CHECKPOINTS)]
    assert [c.offset for c in checkpoints] == [2, 5]


async def test_without_a_key_the_chain_is_written_but_no_checkpoint() -> None:
    """An intake with no signing key still chains its records."""
    log = MemoryLog()
    intake = Intake(log, lambda: KEYS.registry, checkpoint_every=1)
    await intake.start()
    await _submit(intake, 0)
    await intake.seal(NOW)
    assert (await _records(log, POLICE))[0].header(CHAIN_HEADER) is not None
    assert await _records(log, topics.CHECKPOINTS) == []


async def test_the_key_may_be_given_as_a_callable_used_on_the_first_checkpoint() -> None:
    """A key source that is a callable is not called until a checkpoint is due."""
    calls: list[int] = []

    def key() -> Ed25519PrivateKey:
        calls.append(1)
        return JIGSAW

    log = MemoryLog()
    intake = Intake(log, lambda: KEYS.registry, checkpoint_key=key, checkpoint_every=2)
    await intake.start()
    await _submit(intake, 0)
    assert calls == []
    await _submit(intake, 1)
    await _submit(intake, 2)
    await intake.seal(NOW + dt.timedelta(hours=1))
    assert calls == [1]


async def test_a_batch_is_chained_and_checkpointed_like_single_appends() -> None:
    """submit_many chains each record and checkpoints when the interval is passed within the batch."""
    log = MemoryLog()
    intake = await _intake(log, every=3)
    source = publisher_for("police.domestic_abuse_incident")
    envs = [
        build_envelope(
            "police.domestic_abuse_incident",
            sample_data("police.domestic_abuse_incident", i),
            source=source,
            key=KEYS.signing[source],
            occurred_at=NOW,
            issued_at=NOW,
        )
        for i in range(5)
    ]
    outcomes = await intake.submit_many(envs, caller=None, now=NOW)
    assert [o.status for o in outcomes] == ["accepted"] * 5
    checkpoints = [decode_checkpoint(r) for r in await _records(log, topics.CHECKPOINTS)]
    assert [c.offset for c in checkpoints] == [4]
    check = ChainCheck({c.offset: c.chain for c in checkpoints})
    for record in await _records(log, POLICE):
        check.feed(record)
    check.finish()
    assert check.breaks == [] and check.unsealed == 0
