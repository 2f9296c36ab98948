"""The shared intake: batches are checked one by one and appended together, chained as single appends are."""

from __future__ import annotations

import datetime as dt

from broker import topics
from broker.audit.chain import CHAIN_HEADER, GENESIS, record_link
from broker.client import build_envelope
from broker.envelope.testing import make_keys, publisher_for, sample_data, sample_directory
from broker.intake import Intake
from broker.log import MemoryLog

NOW = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)


def _env(keys, event_type="police.domestic_abuse_incident", index=0, **changes):  # type: ignore[no-untyped-def]
    source = publisher_for(event_type)
    data = {**sample_data(event_type, index), **changes}
    return build_envelope(event_type, data, source=source, key=keys.signing[source], occurred_at=NOW, issued_at=NOW)


async def test_a_batch_accepts_refuses_and_recognises_copies_each_on_its_own() -> None:
    """Good events are appended once, a forged one is refused and recorded, copies in the batch are re-sends."""
    keys = make_keys()
    log = MemoryLog()
    intake = Intake(log, lambda: keys.registry)
    await intake.start()
    first, second = _env(keys, index=1), _env(keys, "gp.registration", index=2)
    forged = _env(keys, index=3).with_signature(bytes(64))
    retraction = build_envelope(
        "record.retracted",
        {"original_event_id": first.event_id, "reason": "wrong child"},
        source=first.source,
        key=keys.signing[first.source],
        occurred_at=NOW,
        issued_at=NOW,
    )
    directory = sample_directory(keys, at=NOW)  # listed earlier in the same batch: the registration may name them
    outcomes = await intake.submit_many([*directory, first, second, forged, first, retraction], caller=None, now=NOW)
    assert {o.status for o in outcomes[: len(directory)]} == {"accepted"}
    outcomes = outcomes[len(directory) :]
    assert [o.status for o in outcomes] == ["accepted", "accepted", "refused", "duplicate", "accepted"]
    assert outcomes[3].position == outcomes[0].position
    assert outcomes[2].error is not None and outcomes[2].error.code == "signature_invalid"
    police = await log.read(topics.events_topic("police"), 0)
    assert len(police) == 2 and len(await log.read(topics.events_topic("gp_practice"), 0)) == 1
    assert len(await log.read(topics.REJECTED, 0)) == 1
    changed = build_envelope(
        first.event_type,
        {**sample_data(first.event_type, 1), "summary": "changed"},
        source=first.source,
        key=keys.signing[first.source],
        occurred_at=NOW,
        issued_at=NOW,
        event_id=first.event_id,
    )
    again = await intake.submit_many([first, changed], caller=None, now=NOW)
    assert again[0].status == "duplicate" and await log.end_offset(topics.events_topic("police")) == 2
    assert again[1].error is not None and again[1].error.code == "duplicate_event"


async def test_batched_appends_carry_the_same_hash_chain_as_single_ones() -> None:
    """Each record's chain header links to the one before it, whether it came alone or in a batch."""
    keys = make_keys()
    log = MemoryLog()
    intake = Intake(log, lambda: keys.registry)
    await intake.start()
    await intake.submit(_env(keys, index=1), caller=None, now=NOW)
    await intake.submit_many([_env(keys, index=i) for i in range(2, 6)], caller=None, now=NOW)
    await intake.submit(_env(keys, index=7), caller=None, now=NOW)
    prev = GENESIS
    records = await log.read(topics.events_topic("police"), 0)
    assert len(records) == 6
    for record in records:
        link = record_link(prev, record)
        assert record.header(CHAIN_HEADER) == link
        prev = link
