"""The auditor's tree check names altered, removed, reordered and inserted records, also under a later head."""

from __future__ import annotations

import dataclasses
import datetime as dt

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker import topics
from broker.audit.findings import Finding
from broker.audit.integrity import TreeCheck
from broker.audit.sealer import Sealer
from broker.client import build_envelope
from broker.envelope.testing import make_keys, publisher_for, sample_data
from broker.intake import Intake
from broker.log import MemoryLog, Record

NOW = dt.datetime(2022, 3, 1, 9, 0, tzinfo=dt.UTC)
KEYS = make_keys()
JIGSAW = Ed25519PrivateKey.from_private_bytes(b"\x05" * 32)


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
    assert (await intake.submit(env, caller=None, now=at)).status == "accepted"


async def _seal(log: MemoryLog, every: int = 3) -> None:
    """A sealer started afresh from the log (a restart), fed every input record, sealing what is left."""
    sealer = Sealer(log, key=JIGSAW, every=every)
    await sealer.start()
    for record in await log.read(topics.INPUT, 0, limit=10_000):
        sealer.observe(record)
        if sealer.due():
            await sealer.seal(NOW)
    await sealer.seal(NOW)


async def _log(events: int) -> tuple[MemoryLog, Intake]:
    log = MemoryLog()
    intake = Intake(log, lambda: KEYS.registry)
    await intake.start()
    for i in range(events):
        await _submit(intake, i)
    await _seal(log)
    return log, intake


def _inputs(log: MemoryLog) -> list[Record]:
    return log._topics[topics.INPUT][0]  # the test tampers with the stored records themselves


async def _findings(log: MemoryLog, inputs: list[Record] | None = None) -> list[Finding]:
    check = TreeCheck(JIGSAW.public_key(), every=100)
    for record in await log.read(topics.TREE_HEADS, 0, limit=10_000):
        check.feed_seal(record)
    for record in inputs if inputs is not None else await log.read(topics.INPUT, 0, limit=10_000):
        check.feed(record, 2 * record.offset + 1)
    check.finish({}, any_input=True)
    return [f for f in check.findings if f.severity == "error"]


def _named(found: list[Finding], code: str) -> set[int | None]:
    return {f.offset for f in found if f.code == code}


async def test_a_clean_log_checks_clean_under_several_heads() -> None:
    """Seven records under heads of sizes 3, 6 and 7 give no findings."""
    log, _ = await _log(7)
    assert await _findings(log) == []


async def test_altering_a_record_under_an_older_head_is_named_after_the_log_grew() -> None:
    """A record altered before the last head, the log then extended and sealed again, is named by offset and id."""
    log, intake = await _log(6)
    records = _inputs(log)
    assert records[1].value is not None
    records[1] = dataclasses.replace(records[1], value=records[1].value[:-1] + bytes([records[1].value[-1] ^ 0xFF]))
    for i in range(6, 9):
        await _submit(intake, i)
    await _seal(log)
    found = await _findings(log)
    assert _named(found, "record_altered") == {1}
    assert [f.event_id for f in found] == [records[1].header("event_id").decode()]  # type: ignore[union-attr]


async def test_deleting_reordering_and_inserting_under_an_older_head_are_named() -> None:
    """Each kind of tampering before the last head is named at the offsets it touched."""
    log, intake = await _log(6)
    for i in range(6, 8):
        await _submit(intake, i)
    await _seal(log)
    records = list(await log.read(topics.INPUT, 0, limit=100))
    deleted = records[:2] + records[3:]
    assert _named(await _findings(log, deleted), "record_missing") == {2}
    swapped = list(records)
    swapped[1], swapped[4] = (
        dataclasses.replace(records[4], offset=1),
        dataclasses.replace(records[1], offset=4),
    )
    assert _named(await _findings(log, swapped), "record_altered") == {1, 4}
    forged = dataclasses.replace(records[0], offset=3, timestamp_ms=records[3].timestamp_ms)
    inserted = records[:3] + [forged] + [dataclasses.replace(r, offset=r.offset + 1) for r in records[3:]]
    altered = _named(await _findings(log, inserted), "record_altered")
    assert 3 in altered and altered == set(range(3, len(records)))  # everything from the insertion on moved


async def test_an_insertion_sealed_by_a_later_head_is_still_named() -> None:
    """A record slipped in under an old head shifts what follows; the next head seals the shifted tail, the old
    head still names every moved record, and the heads stay consistent (the sealer only appends)."""
    log, intake = await _log(6)
    records = _inputs(log)
    forged = dataclasses.replace(records[0], offset=2)
    records[2:] = [forged] + [dataclasses.replace(r, offset=r.offset + 1) for r in records[2:]]
    await _submit(intake, 6)
    await _seal(log)
    found = await _findings(log)
    assert _named(found, "record_altered") == {2, 3, 4, 5}
    assert not _named(found, "tree_heads_inconsistent")


async def test_a_removed_head_a_forged_head_and_a_cut_tail_are_named() -> None:
    """Removing a seal, re-signing one with another key, or cutting records off the end are all findings."""
    log, _ = await _log(7)
    heads = log._topics[topics.TREE_HEADS][0]
    first, second, third = heads
    del heads[1]
    codes = {f.code for f in await _findings(log)}
    assert "tree_head_missing" in codes
    heads.insert(1, dataclasses.replace(second, value=(second.value or b"").replace(b'"first":3', b'"first":2')))
    assert "tree_head_signature_invalid" in {f.code for f in await _findings(log)}
    heads[1] = second
    inputs = list(await log.read(topics.INPUT, 0, limit=100))[:-1]
    assert any(f.code == "log_truncated" for f in await _findings(log, inputs))
    assert first.offset == 0 and third.offset == 2


async def test_a_long_unsealed_tail_is_owed_a_head_only_up_to_the_routers_position() -> None:
    """Records the router has not reached yet are unsealed by right; routed ones past the interval are a finding."""
    log, intake = await _log(6)
    for i in range(6, 11):
        await _submit(intake, i)

    async def codes(routed: int | None) -> set[str]:
        check = TreeCheck(JIGSAW.public_key(), every=3)
        for record in await log.read(topics.TREE_HEADS, 0, limit=100):
            check.feed_seal(record)
        for record in await log.read(topics.INPUT, 0, limit=100):
            check.feed(record, 2 * record.offset + 1)
        check.finish({}, any_input=True, routed=routed)
        return {f.code for f in check.findings}

    assert await codes(routed=6) == {"unsealed"}
    assert "tree_head_missing" in await codes(routed=None)
