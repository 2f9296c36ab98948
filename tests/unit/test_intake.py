"""The shared intake: batches are checked one by one and appended together to the one input topic."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from broker import topics
from broker.client import build_envelope
from broker.envelope.testing import make_keys, publisher_for, retraction_of, sample_data, sample_directory
from broker.intake import Intake
from broker.log import MemoryLog
from broker.store import SqliteStore

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
    retraction = retraction_of(first, keys, at=NOW)
    directory = sample_directory(keys, at=NOW)  # listed earlier in the same batch: the registration may name them
    outcomes = await intake.submit_many([*directory, first, second, forged, first, retraction], caller=None, now=NOW)
    assert {o.status for o in outcomes[: len(directory)]} == {"accepted"}
    outcomes = outcomes[len(directory) :]
    assert [o.status for o in outcomes] == ["accepted", "accepted", "refused", "duplicate", "accepted"]
    assert outcomes[3].position == outcomes[0].position
    assert outcomes[2].error is not None and outcomes[2].error.code == "signature_invalid"
    inputs = await log.read(topics.INPUT, 0)
    kinds = [k for r in inputs if (k := r.header(topics.SOURCE_KIND_HEADER)) != b"partnership"]
    assert kinds == [b"police", b"gp_practice", b"police"] and all(topics.is_event(r) for r in inputs)
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
    assert again[0].status == "duplicate" and await log.end_offset(topics.INPUT) == len(inputs)
    assert again[1].error is not None and again[1].error.code == "duplicate_event"


async def test_single_and_batched_appends_land_in_submission_order() -> None:
    """Whether alone or in a batch, accepted events are on the input topic in the order they were accepted."""
    keys = make_keys()
    log = MemoryLog()
    intake = Intake(log, lambda: keys.registry)
    await intake.start()
    envs = [_env(keys, index=i) for i in range(1, 8)]
    await intake.submit(envs[0], caller=None, now=NOW)
    await intake.submit_many(envs[1:6], caller=None, now=NOW)
    await intake.submit(envs[6], caller=None, now=NOW)
    records = await log.read(topics.INPUT, 0)
    assert [r.header("event_id") for r in records] == [e.event_id.encode() for e in envs]


async def test_an_id_accepted_by_another_intake_is_recognised() -> None:
    """A second gateway over the same log answers a re-send 200 with the first position, and a change 409."""
    keys = make_keys()
    log = MemoryLog()
    one, two = Intake(log, lambda: keys.registry), Intake(log, lambda: keys.registry)
    await one.start()
    await two.start()
    env = _env(keys, index=1)
    first = await one.submit(env, caller=None, now=NOW)
    again = await two.submit(env, caller=None, now=NOW)
    assert first.status == "accepted" and again.status == "duplicate" and again.position == first.position
    changed = _env(keys, index=1, summary="changed")
    changed = build_envelope(
        env.event_type,
        {**sample_data(env.event_type, 1), "summary": "changed"},
        source=env.source,
        key=keys.signing[env.source],
        occurred_at=NOW,
        issued_at=NOW,
        event_id=env.event_id,
    )
    conflict = await two.submit(changed, caller=None, now=NOW)
    assert conflict.error is not None and conflict.error.code == "duplicate_event"
    assert await log.end_offset(topics.INPUT) == 1


async def test_a_log_that_does_not_answer_gets_log_unavailable_in_bounded_time() -> None:
    """An append the log never confirms is answered log_unavailable (retriable, with Retry-After) within the timeout."""
    import asyncio

    keys = make_keys()

    class Stuck(MemoryLog):
        async def append_many(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            await asyncio.sleep(3600)
            raise AssertionError("unreachable")

    log = Stuck()
    intake = Intake(log, lambda: keys.registry, append_timeout=0.2)  # type: ignore[arg-type]
    await intake.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    from broker.errors import LogUnavailable

    try:
        await asyncio.gather(*(intake.submit(_env(keys, index=i), caller=None, now=NOW) for i in range(3)))
    except LogUnavailable as exc:
        assert exc.retriable and exc.evidence["retry_after"] > 0
    else:
        raise AssertionError("the stuck log was not reported")
    assert loop.time() - started < 2


async def test_an_append_that_lands_after_its_deadline_settles_its_claim_and_a_resend_is_not_appended_again(
    tmp_path: Path,
) -> None:
    """The log confirms an append only after the submission was answered log_unavailable: the claim is settled
    from that append's own outcome (not released on a timer), so the client's re-send of the same bytes is
    recognised as the event already accepted and the log holds it once."""
    import asyncio

    from broker.errors import LogUnavailable

    keys = make_keys()
    release = asyncio.Event()

    class Slow(MemoryLog):
        async def append_many(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            await release.wait()  # the broker is back only after the gateway gave up waiting
            return await super().append_many(*args, **kwargs)

    log = Slow()
    store = SqliteStore(tmp_path / "store.db")  # shared by gateways: nothing re-reads the log before a submission
    await store.start()
    intake = Intake(log, lambda: keys.registry, append_timeout=0.2, store=store)
    await intake.start()
    assert intake.ids._release_after > 0
    intake.ids._release_after = 0.0  # a release on a timer alone would free the claim before the append lands
    env = _env(keys, index=7)
    try:
        await intake.submit(env, caller=None, now=NOW)
    except LogUnavailable:
        pass
    else:
        raise AssertionError("the slow append was not reported")
    await asyncio.sleep(0.3)  # a release on a timer would have run by now
    release.set()
    for _ in range(100):
        if await log.end_offset(topics.INPUT) == 1:
            break
        await asyncio.sleep(0.01)
    again = await intake.submit(env, caller=None, now=NOW)
    assert again.status == "duplicate" and again.position is not None and again.position.offset == 0
    assert await log.end_offset(topics.INPUT) == 1
    await intake.close()
    await store.close()
