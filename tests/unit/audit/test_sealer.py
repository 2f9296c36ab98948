"""The sealer chains the input topic after the append and checkpoints at intervals, at seal and after a restart."""

from __future__ import annotations

import asyncio
import datetime as dt

from broker.audit.chain import ChainCheck
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker import topics
from broker.audit.checkpoint import Checkpoint, checkpoint_valid, decode_checkpoint
from broker.audit.sealer import Sealer
from broker.client import build_envelope
from broker.envelope.testing import make_keys, publisher_for, sample_data
from broker.intake import Intake
from broker.log import MemoryLog, Record

NOW = dt.datetime(2022, 3, 1, 9, 0, tzinfo=dt.UTC)
KEYS = make_keys()
JIGSAW = Ed25519PrivateKey.from_private_bytes(b"\x05" * 32)


def _envelope(index: int) -> object:
    source = publisher_for("police.domestic_abuse_incident")
    at = NOW + dt.timedelta(minutes=index)
    return build_envelope(
        "police.domestic_abuse_incident",
        sample_data("police.domestic_abuse_incident", index),
        source=source,
        key=KEYS.signing[source],
        occurred_at=at,
        issued_at=at,
    )


async def _submit(intake: Intake, index: int) -> None:
    outcome = await intake.submit(_envelope(index), caller=None, now=NOW + dt.timedelta(minutes=index))  # type: ignore[arg-type]
    assert outcome.status == "accepted", outcome.error


async def _records(log: MemoryLog, topic: str) -> list[Record]:
    return await log.read(topic, 0, limit=10_000)


async def _intake(log: MemoryLog) -> Intake:
    intake = Intake(log, lambda: KEYS.registry)
    await intake.start()
    return intake


async def _sealer(log: MemoryLog, every: int = 3, key: object = JIGSAW) -> Sealer:
    sealer = Sealer(log, key=key, every=every)  # type: ignore[arg-type]
    await sealer.start()
    return sealer


async def _seal_all(log: MemoryLog, sealer: Sealer, *, at: dt.datetime = NOW) -> None:
    """Feed the sealer every input record, sealing whenever it is due, as the router does."""
    for record in await _records(log, topics.INPUT):
        sealer.observe(record)
        if sealer.due():
            await sealer.seal(at)


async def _checkpoints(log: MemoryLog) -> list[Checkpoint]:
    return [decode_checkpoint(r) for r in await _records(log, topics.CHECKPOINTS)]


def _check(records: list[Record], checkpoints: list[Checkpoint]) -> ChainCheck:
    links: dict[int, bytes] = {}
    for cp in checkpoints:
        links.update((cp.offset - len(cp.links) + 1 + i, v) for i, v in enumerate(cp.links))
    check = ChainCheck({c.offset: c.chain for c in checkpoints}, links)
    for record in records:
        check.feed(record)
    check.finish()
    return check


async def test_writers_do_not_chain_the_sealer_does_after_the_append() -> None:
    """Accepted records carry no chain value; the sealer's checkpoints list one per record, and they check."""
    log = MemoryLog()
    intake = await _intake(log)
    for i in range(5):
        await _submit(intake, i)
    records = await _records(log, topics.INPUT)
    assert all(name != "chain" for r in records for name, _ in r.headers)
    sealer = await _sealer(log, every=100)
    await _seal_all(log, sealer)
    await sealer.seal(NOW)
    [checkpoint] = await _checkpoints(log)
    assert checkpoint.offset == 4 and len(checkpoint.links) == 5
    check = _check(records, [checkpoint])
    assert check.breaks == [] and check.unsealed == 0


async def test_a_checkpoint_is_written_every_n_records_and_at_seal() -> None:
    """With every=3, seven records give checkpoints after offsets 2 and 5, and seal adds one after 6."""
    log = MemoryLog()
    intake = await _intake(log)
    for i in range(7):
        await _submit(intake, i)
    sealer = await _sealer(log, every=3)
    await _seal_all(log, sealer)
    await sealer.seal(NOW + dt.timedelta(hours=1))
    assert await sealer.seal(NOW + dt.timedelta(hours=2)) is None  # nothing new: no checkpoint
    checkpoints = await _checkpoints(log)
    assert [(c.topic, c.offset) for c in checkpoints] == [(topics.INPUT, 2), (topics.INPUT, 5), (topics.INPUT, 6)]
    assert all(checkpoint_valid(c, JIGSAW.public_key()) for c in checkpoints)
    assert _check(await _records(log, topics.INPUT), checkpoints).breaks == []


async def test_checkpoints_record_where_the_output_topics_ended() -> None:
    """Each checkpoint lists the end offsets of notifications, decisions and rejections."""
    log = MemoryLog()
    await log.create_topic(topics.NOTIFICATIONS)
    await log.append(topics.NOTIFICATIONS, b"{}", key=b"x")
    intake = await _intake(log)
    await _submit(intake, 0)
    sealer = await _sealer(log, every=1)
    await _seal_all(log, sealer)
    [checkpoint] = await _checkpoints(log)
    ends = {(t, p): e for t, p, e in checkpoint.ends}
    assert ends[(topics.NOTIFICATIONS, 0)] == 1
    assert (topics.REJECTED, 0) in ends


async def test_a_restarted_sealer_goes_on_from_the_last_checkpoint() -> None:
    """After a restart the sealer skips what is sealed and chains on from the signed value."""
    log = MemoryLog()
    intake = await _intake(log)
    for i in range(4):
        await _submit(intake, i)
    first = await _sealer(log, every=3)
    await _seal_all(log, first)  # one checkpoint after offset 2; offset 3 chained but not sealed
    for i in range(4, 6):
        await _submit(intake, i)
    second = await _sealer(log, every=3)
    await _seal_all(log, second)
    checkpoints = await _checkpoints(log)
    assert [c.offset for c in checkpoints] == [2, 5]
    check = _check(await _records(log, topics.INPUT), checkpoints)
    assert check.breaks == [] and check.unsealed == 0


async def test_two_intakes_writing_at_once_keep_the_chain_valid() -> None:
    """Several gateways append to the input topic concurrently; the sealer's chain over the result checks clean."""
    log = MemoryLog()
    one, two = await _intake(log), await _intake(log)
    await asyncio.gather(*(_submit(one if i % 2 else two, i) for i in range(10)))
    sealer = await _sealer(log, every=4)
    await _seal_all(log, sealer)
    await sealer.seal(NOW)
    records = await _records(log, topics.INPUT)
    assert len(records) == 10
    check = _check(records, await _checkpoints(log))
    assert check.breaks == [] and check.unsealed == 0


async def test_without_a_key_no_checkpoint_is_written() -> None:
    """A sealer with no signing key writes nothing."""
    log = MemoryLog()
    intake = await _intake(log)
    await _submit(intake, 0)
    sealer = await _sealer(log, every=1, key=None)
    await _seal_all(log, sealer)
    assert await sealer.seal(NOW) is None
    assert await _records(log, topics.CHECKPOINTS) == []


async def test_the_key_may_be_given_as_a_callable_used_on_the_first_checkpoint() -> None:
    """A key source that is a callable is not called until a checkpoint is due."""
    calls: list[int] = []

    def key() -> Ed25519PrivateKey:
        calls.append(1)
        return JIGSAW

    log = MemoryLog()
    intake = await _intake(log)
    await _submit(intake, 0)
    sealer = await _sealer(log, every=2, key=key)
    await _seal_all(log, sealer)
    assert calls == []
    await _submit(intake, 1)
    await _seal_all(log, sealer)
    assert calls == [1]
