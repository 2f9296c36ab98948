"""Gateways share the store's accepted-id index: racing on one id, exactly one appends (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from broker import topics
from broker.client import build_envelope
from broker.envelope.model import Envelope
from broker.envelope.testing import make_keys, publisher_for, sample_data
from broker.errors import EventPending, LogUnavailable
from broker.intake import Intake
from broker.log import MemoryLog
from broker.store import AcceptedId
from tests.contract.store_support import StoreBackend

NOW = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
KEYS = make_keys()


def _env(index: int, *, summary: str | None = None, event_id: str | None = None) -> Envelope:
    event_type = "police.domestic_abuse_incident"
    source = publisher_for(event_type)
    data: dict[str, Any] = dict(sample_data(event_type, index))
    if summary is not None:
        data["summary"] = summary
    return build_envelope(
        event_type, data, source=source, key=KEYS.signing[source], occurred_at=NOW, issued_at=NOW, event_id=event_id
    )


async def _gateways(backend: StoreBackend, log: MemoryLog, n: int = 2, **kw: Any) -> list[Intake]:
    intakes = [Intake(log, lambda: KEYS.registry, store=await backend.open(), **kw) for _ in range(n)]
    for intake in intakes:
        await intake.start()
    return intakes


async def test_two_gateways_racing_on_one_id_append_it_once(store_backend: StoreBackend) -> None:
    """The same event sent to two gateways at once: one accepts it, the other answers 200 with its position."""
    log = MemoryLog()
    one, two = await _gateways(store_backend, log)
    for index in range(1, 6):
        env = _env(index)
        first, second = await asyncio.gather(
            one.submit(env, caller=None, now=NOW), two.submit(env, caller=None, now=NOW)
        )
        assert sorted([first.status, second.status]) == ["accepted", "duplicate"]
        assert first.position == second.position and first.position is not None
    events = [r for r in await log.read(topics.INPUT, 0) if topics.is_event(r)]
    assert len(events) == 5 and len({r.header("event_id") for r in events}) == 5
    for intake in (one, two):
        await intake.close()


async def test_racing_on_one_id_with_other_content_is_one_accept_and_one_409(store_backend: StoreBackend) -> None:
    """Two different bodies under one id at two gateways: exactly one is appended, the other is 409."""
    log = MemoryLog()
    one, two = await _gateways(store_backend, log)
    env = _env(1)
    changed = _env(1, summary="changed", event_id=env.event_id)
    outcomes = await asyncio.gather(one.submit(env, caller=None, now=NOW), two.submit(changed, caller=None, now=NOW))
    assert sorted(o.http_status for o in outcomes) == [202, 409]
    assert await log.end_offset(topics.INPUT) == 1
    winner, loser = (env, changed) if outcomes[0].http_status == 202 else (changed, env)
    batch = await two.submit_many([winner], caller=None, now=NOW) + await one.submit_many([loser], caller=None, now=NOW)
    assert [o.http_status for o in batch] == [200, 409]
    assert await log.end_offset(topics.INPUT) == 1
    for intake in (one, two):
        await intake.close()


async def test_a_claim_still_appending_answers_event_pending(store_backend: StoreBackend) -> None:
    """While another gateway holds an id without a position, a re-send waits briefly, then gets 503 event_pending."""
    log = MemoryLog()
    [intake] = await _gateways(store_backend, log, n=1, claim_wait=0.1)
    env = _env(1)
    from broker.intake import content_digest

    other = await store_backend.open()  # a gateway that claimed and is still appending
    await other.claim(AcceptedId(env.event_id, content_digest(env), env.source), now=dt.datetime.now(dt.UTC))
    with pytest.raises(EventPending) as caught:
        await intake.submit(env, caller=None, now=NOW)
    assert caught.value.retriable and caught.value.http_status == 503
    [pending] = await intake.submit_many([env], caller=None, now=NOW)
    assert pending.http_status == 503 and pending.status == "pending"
    assert await log.end_offset(topics.INPUT) == 0
    await intake.close()


async def test_a_failed_append_is_released_after_a_look_at_the_log(store_backend: StoreBackend) -> None:
    """An append that fails leaves a claim; once the log shows it did not land, the claim is released."""

    class Broken(MemoryLog):
        fail = True

        async def append_many(self, *args: Any, **kwargs: Any) -> Any:
            if self.fail:
                raise LogUnavailable("the log is down", retry_after=1)
            return await super().append_many(*args, **kwargs)

    log = Broken()
    store = await store_backend.open()
    intake = Intake(log, lambda: KEYS.registry, store=store, append_timeout=0.2, claim_wait=0.05)
    await intake.start()
    env = _env(1)
    with pytest.raises(LogUnavailable):
        await intake.submit(env, caller=None, now=NOW)
    row = await store.accepted(env.event_id)
    assert row is not None and row.position is None  # held until the log has been looked at
    log.fail = False
    for _ in range(100):
        if await store.accepted(env.event_id) is None:
            break
        await asyncio.sleep(0.02)
    again = await intake.submit(env, caller=None, now=NOW)
    assert again.status == "accepted" and await log.end_offset(topics.INPUT) == 1
    await intake.close()


async def test_an_empty_store_is_rebuilt_from_the_log_at_start(store_backend: StoreBackend, tmp_path: Any) -> None:
    """A gateway that starts on an empty store reads the accepted ids from the log: a re-send is still 200."""
    from broker.store import SqliteStore

    log = MemoryLog()
    [first] = await _gateways(store_backend, log, n=1)
    envs = [_env(i) for i in range(1, 4)]
    accepted = await first.submit_many(envs, caller=None, now=NOW)
    await first.close()
    empty = SqliteStore(tmp_path / "empty.db")
    await empty.start()
    fresh = Intake(log, lambda: KEYS.registry, store=empty)
    await fresh.start()
    again = await fresh.submit_many(envs, caller=None, now=NOW)
    assert [o.status for o in again] == ["duplicate"] * 3
    assert [o.position for o in again] == [o.position for o in accepted]
    assert await log.end_offset(topics.INPUT) == 3
    await fresh.close()
    await empty.close()
