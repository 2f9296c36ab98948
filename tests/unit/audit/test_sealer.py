"""The sealer builds the Merkle tree over the input topic after the append and publishes signed heads."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker import topics
from broker.audit.integrity import TreeCheck
from broker.audit.merkle import MemoryTree
from broker.audit.merkle_leaf import record_leaf_hash
from broker.audit.seal import Seal, decode_seal, seal_valid
from broker.audit.sealer import Sealer, last_seal
from broker.audit.tree_store import TreeStore
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


async def _sealer(log: MemoryLog, every: int = 3, key: object = JIGSAW, **options: object) -> Sealer:
    sealer = Sealer(log, key=key, every=every, **options)  # type: ignore[arg-type]
    await sealer.start()
    return sealer


async def _seal_all(log: MemoryLog, sealer: Sealer, *, at: dt.datetime = NOW) -> None:
    """Feed the sealer every input record, sealing whenever it is due, as the router does."""
    for record in await _records(log, topics.INPUT):
        sealer.observe(record)
        if sealer.due():
            await sealer.seal(at)


async def _seals(log: MemoryLog) -> list[Seal]:
    return [decode_seal(r) for r in await _records(log, topics.TREE_HEADS)]


async def _check(log: MemoryLog) -> TreeCheck:
    """Every seal, then every input record, through the auditor's check."""
    check = TreeCheck(JIGSAW.public_key(), every=100)
    for record in await _records(log, topics.TREE_HEADS):
        check.feed_seal(record)
    for record in await _records(log, topics.INPUT):
        check.feed(record, 2 * record.offset + 1)
    check.finish({}, any_input=True)
    return check


def _errors(check: TreeCheck) -> list[str]:
    return [f.code for f in check.findings if f.severity == "error"]


async def test_writers_do_not_hash_the_sealer_does_after_the_append() -> None:
    """Accepted records carry no chain or tree header; the sealer's head lists one leaf per record and checks."""
    log = MemoryLog()
    intake = await _intake(log)
    for i in range(5):
        await _submit(intake, i)
    records = await _records(log, topics.INPUT)
    assert all(name not in ("chain", "leaf") for r in records for name, _ in r.headers)
    sealer = await _sealer(log, every=100)
    await _seal_all(log, sealer)
    await sealer.seal(NOW)
    [seal] = await _seals(log)
    assert seal.size == 5 and seal.first == 0 and len(seal.leaves) == 5
    assert seal.head.root_hash == MemoryTree(record_leaf_hash(r) for r in records).root()
    assert seal.peaks_match()
    assert _errors(await _check(log)) == []


async def test_a_head_is_published_every_n_records_and_at_seal() -> None:
    """With every=3, seven records give heads of sizes 3 and 6, and seal adds one of size 7."""
    log = MemoryLog()
    intake = await _intake(log)
    for i in range(7):
        await _submit(intake, i)
    sealer = await _sealer(log, every=3)
    await _seal_all(log, sealer)
    await sealer.seal(NOW + dt.timedelta(hours=1))
    assert await sealer.seal(NOW + dt.timedelta(hours=2)) is None  # nothing new: no head
    seals = await _seals(log)
    assert [(s.first, s.size) for s in seals] == [(0, 3), (3, 6), (6, 7)]
    assert all(seal_valid(s, JIGSAW.public_key()) for s in seals)
    check = await _check(log)
    assert _errors(check) == [] and check.heads == 3


async def test_a_head_is_due_after_the_interval_even_below_the_count() -> None:
    """One record waiting longer than the interval makes a head due."""
    clock = [0.0]
    log = MemoryLog()
    intake = await _intake(log)
    await _submit(intake, 0)
    sealer = await _sealer(log, every=100, interval=10.0, clock=lambda: clock[0])
    sealer.observe((await _records(log, topics.INPUT))[0])
    assert not sealer.due()
    clock[0] = 10.5
    assert sealer.due()
    await sealer.seal(NOW)
    assert not sealer.due()


async def test_heads_record_where_the_output_topics_ended() -> None:
    """Each seal lists the end offsets of notifications, decisions and rejections."""
    log = MemoryLog()
    await log.create_topic(topics.NOTIFICATIONS)
    await log.append(topics.NOTIFICATIONS, b"{}", key=b"x")
    intake = await _intake(log)
    await _submit(intake, 0)
    sealer = await _sealer(log, every=1)
    await _seal_all(log, sealer)
    [seal] = await _seals(log)
    ends = {(t, p): e for t, p, e in seal.ends}
    assert ends[(topics.NOTIFICATIONS, 0)] == 1
    assert (topics.REJECTED, 0) in ends


async def test_a_restarted_sealer_goes_on_from_the_last_head() -> None:
    """After a restart the sealer skips what is sealed and extends the tree from the last head's peaks."""
    log = MemoryLog()
    intake = await _intake(log)
    for i in range(4):
        await _submit(intake, i)
    first = await _sealer(log, every=3)
    await _seal_all(log, first)  # one head of size 3; offset 3 observed but not sealed
    for i in range(4, 6):
        await _submit(intake, i)
    second = await _sealer(log, every=3)
    assert second.next_offset == 3
    await _seal_all(log, second)
    assert [s.size for s in await _seals(log)] == [3, 6]
    found = await last_seal(log)
    assert found is not None and found[0].size == 6
    assert _errors(await _check(log)) == []


async def test_a_sealer_on_a_machine_with_no_files_rebuilds_its_tree_file_from_the_log(tmp_path: Path) -> None:
    """The tree file is rebuilt up to the last head from the log, cut back to it when longer, and matches the head."""
    log = MemoryLog()
    intake = await _intake(log)
    for i in range(5):
        await _submit(intake, i)
    first = await _sealer(log, every=4, tree=tmp_path / "a.tree")
    await _seal_all(log, first)
    first.close()
    [seal] = await _seals(log)
    fresh = await _sealer(log, every=4, tree=tmp_path / "elsewhere" / "b.tree")
    assert fresh.store is not None and fresh.store.size == 4
    assert fresh.store.root(4) == seal.head.root_hash
    fresh.close()
    with TreeStore(tmp_path / "a.tree") as store:  # a torn tail past the head
        store.append(b"\x09" * 32)
    again = await _sealer(log, every=4, tree=tmp_path / "a.tree")
    assert again.store is not None and again.store.size == 4
    await _seal_all(log, again)
    await again.seal(NOW)
    assert again.store.size == 5 and again.store.root() == (await _seals(log))[-1].head.root_hash
    again.close()


async def test_two_intakes_writing_at_once_keep_the_tree_valid() -> None:
    """Several gateways append to the input topic concurrently; the sealer's heads over the result check clean."""
    log = MemoryLog()
    one, two = await _intake(log), await _intake(log)
    await asyncio.gather(*(_submit(one if i % 2 else two, i) for i in range(10)))
    sealer = await _sealer(log, every=4)
    await _seal_all(log, sealer)
    await sealer.seal(NOW)
    assert len(await _records(log, topics.INPUT)) == 10
    check = await _check(log)
    assert _errors(check) == [] and check.heads == 3


async def test_without_a_key_no_head_is_published() -> None:
    """A sealer with no signing key writes nothing."""
    log = MemoryLog()
    intake = await _intake(log)
    await _submit(intake, 0)
    sealer = await _sealer(log, every=1, key=None)
    await _seal_all(log, sealer)
    assert await sealer.seal(NOW) is None
    assert await _records(log, topics.TREE_HEADS) == []


async def test_the_key_may_be_given_as_a_callable_used_on_the_first_head() -> None:
    """A key source that is a callable is not called until a head is due."""
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


async def test_a_router_starting_from_a_snapshot_catches_the_sealer_up_from_the_log() -> None:
    """catch_up observes the records between the last head and the snapshot's offset, so none goes unsealed."""
    log = MemoryLog()
    intake = await _intake(log)
    for i in range(5):
        await _submit(intake, i)
    sealer = await _sealer(log, every=100)
    await sealer.catch_up(4)
    assert sealer.next_offset == 4
    sealer.observe((await _records(log, topics.INPUT))[4])
    await sealer.seal(NOW)
    assert [s.size for s in await _seals(log)] == [5]
    assert _errors(await _check(log)) == []


async def test_a_second_sealer_on_the_same_tree_file_seals_without_it(tmp_path: Path) -> None:
    """The tree file has one writer; a standby that cannot lock it still publishes correct heads."""
    log = MemoryLog()
    intake = await _intake(log)
    await _submit(intake, 0)
    active = await _sealer(log, every=1, tree=tmp_path / "t.tree")
    standby = await _sealer(log, every=1, tree=tmp_path / "t.tree")
    assert active.store is not None and standby.store is None
    await _seal_all(log, standby)
    assert _errors(await _check(log)) == []
    active.close()


async def test_a_head_that_could_not_be_published_is_sealed_again_without_doubling_the_tree_file(
    tmp_path: Path,
) -> None:
    """prepare puts the leaves in the tree file once; a failed append and a second try keep the file right."""
    log = MemoryLog()
    intake = await _intake(log)
    for i in range(3):
        await _submit(intake, i)
    sealer = await _sealer(log, every=100, tree=tmp_path / "t.tree")
    for record in await _records(log, topics.INPUT):
        sealer.observe(record)
    lost = await sealer.prepare(NOW)  # as if the append of this seal failed
    assert lost is not None and sealer.store is not None and sealer.store.size == 3
    await sealer.seal(NOW)
    [seal] = await _seals(log)
    assert seal.size == 3 and sealer.store.size == 3 and sealer.store.root() == seal.head.root_hash
    sealer.close()
