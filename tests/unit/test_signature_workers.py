"""A batch's signatures checked on worker processes: the same outcomes as on the event loop, and a lost worker
costs only speed."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import struct
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from broker import topics
from broker.client import build_envelope
from broker.codec import DEFAULT_LIMITS
from broker.envelope import verifiers
from broker.envelope.model import Envelope, encode_envelope
from broker.envelope.testing import make_keys, publisher_for, retraction_of, sample_data, sample_directory
from broker.envelope.verifier_worker import answer
from broker.intake import Intake
from broker.log import MemoryLog
from broker.nhs import is_valid_nhs_number
from broker.schemas import default_catalogue

NOW = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
KEYS = make_keys()


def _env(
    event_type: str = "police.domestic_abuse_incident", index: int = 0, *, signer: str | None = None, **changes: Any
) -> Envelope:
    source = publisher_for(event_type)
    data = {**sample_data(event_type, index), **changes}
    key = KEYS.signing[signer or source]
    return build_envelope(event_type, data, source=source, key=key, occurred_at=NOW, issued_at=NOW)


def _mixed_batch() -> list[bytes]:
    """Every way a batch's envelope can pass or fail, in an order that makes the order of checks matter."""
    bad_nhs = next(n for n in (f"99900000{i:02d}" for i in range(100)) if not is_valid_nhs_number(n))
    victim = {**sample_data("police.domestic_abuse_incident", 5)["victim"], "nhs_number": bad_nhs}
    first = _env(index=1)
    other_org = next(org for org in KEYS.signing if org != first.source)
    retraction = retraction_of(first, KEYS, at=NOW)
    envelopes = [
        *sample_directory(KEYS, at=NOW),
        first,
        _env("gp.registration", 2),
        _env(index=3).with_signature(bytes(64)),  # forged
        _env(index=4, victim=victim).with_signature(bytes(64)),  # forged, and a bad NHS number: forged wins
        _env(index=5, victim=victim),  # signed, but a bad NHS number
        _env(index=6).with_signature(bytes(32)),  # a signature of the wrong length
        _env(index=7, signer=other_org),  # signed with another organisation's key
        first,  # a copy
        retraction,
    ]
    bodies = [encode_envelope(e) for e in envelopes]
    bodies.insert(len(bodies) // 2, b"\x00not an envelope")
    return bodies


def _summary(outcomes: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (o.status, o.event_id, o.position, o.error and (o.error.code, o.error.message, o.error.evidence))
        for o in outcomes
    ]


async def _submit(workers: int, batches: list[list[bytes]]) -> tuple[list[list[tuple[Any, ...]]], Intake, MemoryLog]:
    log = MemoryLog()
    intake = Intake(log, lambda: KEYS.registry, signature_workers=workers)
    await intake.start()
    try:
        return [_summary(await intake.submit_many(b, caller=None, now=NOW)) for b in batches], intake, log
    finally:
        await intake.close()


async def test_workers_accept_and_refuse_exactly_as_the_event_loop_does() -> None:
    """Same statuses, positions, refusal codes, messages and evidence; the workers really checked the signatures."""
    batch = _mixed_batch()
    inline, _, inline_log = await _submit(0, [batch])
    pooled, intake, pooled_log = await _submit(1, [batch])
    assert pooled == inline
    statuses = [row[0] for row in pooled[0]]
    assert statuses.count("refused") == 6 and statuses.count("duplicate") == 1
    codes = [row[3][0] for row in pooled[0] if row[3]]
    assert codes.count("signature_invalid") == 4 and "invalid_nhs_number" in codes and "schema_invalid" in codes
    keyed = len(batch) - 3  # all but the undecodable body, the short signature and the other organisation's key
    assert intake.signatures.checked == keyed and intake.signatures.inline == 0
    assert [r.value for r in await pooled_log.read(topics.INPUT, 0)] == [
        r.value for r in await inline_log.read(topics.INPUT, 0)
    ]


async def test_a_killed_worker_leaves_its_signatures_to_the_event_loop_and_is_started_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGKILL the worker between batches: the next batch is checked inline, the one after by a new worker."""
    batches = [[encode_envelope(_env(index=i)) for i in range(n, n + 10)] for n in (0, 100, 200)]
    log = MemoryLog()
    intake = Intake(log, lambda: KEYS.registry, signature_workers=1)
    await intake.start()
    try:
        await intake.submit_many(sample_directory(KEYS, at=NOW), caller=None, now=NOW)
        first = await intake.submit_many(batches[0], caller=None, now=NOW)
        assert {o.status for o in first} == {"accepted"} and intake.signatures.checked == 10
        [worker] = intake.signatures._workers
        os.kill(worker.process.pid, signal.SIGKILL)
        await worker.process.wait()
        second = await intake.submit_many(batches[1], caller=None, now=NOW)
        assert {o.status for o in second} == {"accepted"}
        assert intake.signatures.checked == 10 and intake.signatures.inline == 10
        monkeypatch.setattr(verifiers, "_RESTART_AFTER_S", 0.0)
        third = await intake.submit_many(batches[2], caller=None, now=NOW)
        assert {o.status for o in third} == {"accepted"} and intake.signatures.checked == 20
        [again] = intake.signatures._workers
        assert again.process.pid != worker.process.pid
    finally:
        await intake.close()
    assert await log.end_offset(topics.INPUT) == 30 + len(sample_directory(KEYS, at=NOW))


def test_the_worker_answers_each_item_in_order() -> None:
    """The frame format of ``verifier_worker``: 1 for a valid signature, 0 for any other."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    items = []
    for message, signature in [(b"a", key.sign(b"a")), (b"b", key.sign(b"c")), (b"", key.sign(b"")), (b"d", bytes(64))]:
        items.append(public + signature + struct.pack(">I", len(message)) + message)
    assert answer(b"".join(items), {}) == bytes([1, 0, 1, 0])


async def test_a_stuck_worker_is_killed_and_its_signatures_checked_on_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGSTOP the worker: the batch is answered after the answer deadline, every signature still checked."""
    monkeypatch.setattr(verifiers, "_ANSWER_WITHIN_S", 0.5)
    log = MemoryLog()
    intake = Intake(log, lambda: KEYS.registry, signature_workers=1)
    await intake.start()
    try:
        await intake.submit_many(sample_directory(KEYS, at=NOW), caller=None, now=NOW)
        await intake.submit_many([encode_envelope(_env(index=i)) for i in range(10)], caller=None, now=NOW)
        [worker] = intake.signatures._workers
        os.kill(worker.process.pid, signal.SIGSTOP)
        forged = _env(index=99).with_signature(bytes(64))
        batch = [encode_envelope(e) for e in [*(_env(index=i) for i in range(10, 20)), forged]]
        outcomes = await intake.submit_many(batch, caller=None, now=NOW)
        assert [o.status for o in outcomes] == ["accepted"] * 10 + ["refused"]
        assert outcomes[-1].error is not None and outcomes[-1].error.code == "signature_invalid"
        assert intake.signatures.inline == 11 and await worker.process.wait() == -signal.SIGKILL
    finally:
        await intake.close()


async def test_batches_arriving_together_start_the_workers_once() -> None:
    """Two batches at once on a fresh intake: one worker process, both batches accepted."""
    log = MemoryLog()
    intake = Intake(log, lambda: KEYS.registry, signature_workers=1)
    await intake.start()
    try:
        await intake.submit_many(sample_directory(KEYS, at=NOW), caller=None, now=NOW)
        batches = [[encode_envelope(_env(index=i)) for i in range(n, n + 10)] for n in (0, 100)]
        results = await asyncio.gather(*(intake.submit_many(b, caller=None, now=NOW) for b in batches))
        assert [o.status for r in results for o in r] == ["accepted"] * 20
        assert len(intake.signatures._workers) == 1 and intake.signatures.checked == 20
    finally:
        await intake.close()


async def test_a_body_waits_only_for_its_own_chunk_of_answers() -> None:
    """``get(i)`` settles body ``i``'s chunk alone (the intake checks the first events while the worker checks
    the rest); every chunk's answers, taken in any order, match the signatures: forged ones are answered 0."""
    workers = verifiers.SignatureWorkers(1)
    envelopes = [_env(index=i) for i in range(3 * verifiers._CHUNK)]
    envelopes[-1] = envelopes[-1].with_signature(bytes(64))  # forged, in the last chunk
    try:
        batch = await workers.presign(
            [encode_envelope(e) for e in envelopes], KEYS.registry, default_catalogue(), DEFAULT_LIMITS
        )
        assert len(batch._chunks) == 3
        first = await batch.get(0)
        assert first is not None and first.valid and first.public_key is not None
        assert batch._chunks[0] is None and batch._chunks[1] is not None and batch._chunks[2] is not None
        last = await batch.get(len(envelopes) - 1)
        assert last is not None and last.public_key is not None and not last.valid
        assert batch._chunks[1] is not None  # still not needed
        answers = [await batch.get(i) for i in range(len(envelopes))]
        assert [a.valid for a in answers if a is not None] == [True] * (len(envelopes) - 1) + [False]
        assert workers.checked == len(envelopes) and workers.inline == 0
    finally:
        await workers.close()
