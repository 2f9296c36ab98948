"""What the intake accepted lately: answered from memory exactly as a decode of the same bytes would be."""

from __future__ import annotations

import datetime as dt

from broker import topics
from broker.envelope.model import Envelope, decode_envelope
from broker.envelope.testing import make_keys, sample_directory, signed_sample
from broker.intake import Intake
from broker.log import MemoryLog
from broker.model import Event
from broker.recent import Recent, RecentEvents
from broker.submissions import content_digest
from broker.validation import event_of

NOW = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
KEYS = make_keys()


def _env(event_type: str, index: int) -> Envelope:
    return signed_sample(event_type, index, KEYS, now=NOW)


async def test_the_intake_remembers_what_it_appended_as_a_decode_reads_it() -> None:
    """Every event the intake appends is remembered by its bytes, with the event and digest a decode gives."""
    log = MemoryLog()
    intake = Intake(log, lambda: KEYS.registry)
    await intake.start()
    directory = sample_directory(KEYS, at=NOW)
    envs = [_env("police.domestic_abuse_incident", 1), _env("gp.registration", 2)]
    await intake.submit_many([*directory, envs[0]], caller=None, now=NOW)
    await intake.submit(envs[1], caller=None, now=NOW)
    records = [r for r in await log.read(topics.INPUT, 0) if topics.is_event(r)]
    assert len(records) == len(directory) + 2 and len(intake.recent) == len(records)
    for record in records:
        assert record.value is not None
        found = intake.recent.get(record.value)
        assert found is not None
        assert found.event == event_of(record.value)
        assert found.digest == content_digest(decode_envelope(record.value))
    await intake.close()


async def test_a_refused_event_is_not_remembered() -> None:
    """Bytes the intake refused are never answered from memory."""
    intake = Intake(MemoryLog(), lambda: KEYS.registry)
    await intake.start()
    forged = _env("police.domestic_abuse_incident", 3).with_signature(bytes(64))
    [outcome] = await intake.submit_many([forged], caller=None, now=NOW)
    assert outcome.status == "refused" and len(intake.recent) == 0
    await intake.close()


def test_memory_is_bounded_and_forgets_the_oldest_first() -> None:
    """Past its capacity the oldest bytes are forgotten; what is forgotten is decoded again."""
    recent = RecentEvents(capacity=2)
    decoded: list[bytes] = []
    event = Event("id", "t", "s", NOW, NOW, "basis", "given", {})

    def decode(raw: bytes) -> Event:
        decoded.append(raw)
        return event

    env = _env("gp.registration", 4)
    for raw in (b"one", b"two", b"three"):
        recent.remember(raw, Recent(env, event, raw.decode()))
    assert len(recent) == 2 and recent.get(b"one") is None and recent.get(b"three") is not None
    read = recent.event_of(decode)
    read(b"two")
    read(b"one")
    assert decoded == [b"one"]
