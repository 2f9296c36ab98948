"""A chronology read through the store's index is the chronology a full read of the log gives, for every person."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from broker import topics
from broker.audit.chronology import build_chronology, to_json
from broker.audit.collect import read_topic
from broker.audit.verify import parse_recorded, record_time
from broker.log import EmbeddedLog, Log, Record
from broker.routing.model import Decision, Notification
from broker.routing.records import decode_ack
from broker.store import SqliteStore, Store
from broker.store.chronology_view import ChronologyFollower, _refs, child_records
from broker.validation import event_of
from tests.integration.test_replay import simulate
from tests.shared import SCENARIOS, need_shared

pytestmark = need_shared(SCENARIOS)
AT = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


@dataclasses.dataclass(frozen=True)
class _Everything:
    """The whole log as a full read gives it: the input topic, the notifications and the decisions."""

    inputs: list[Record]
    notifications: list[Record]
    decisions: list[Record]


async def read_snapshot(log: Log) -> _Everything:
    """Every record an index-free chronology would read."""
    return _Everything(
        await read_topic(log, topics.INPUT),
        await read_topic(log, topics.NOTIFICATIONS),
        await read_topic(log, topics.DECISIONS),
    )


async def _full_read(log: Log, nhs: str) -> str:
    """The chronology as the API built it before the index: from every record of the log."""
    snapshot = await read_snapshot(log)
    events, acks = [], []
    for record in snapshot.inputs:
        if record.value is None:
            continue
        if topics.is_ack(record):
            acks.append(decode_ack(record))
        elif topics.is_event(record):
            events.append((record_time(record), event_of(record.value)))
    notes = [
        Notification.from_dict(r.body) for r in parse_recorded(snapshot.notifications, "notification_id") if r.body
    ]
    decisions = [Decision.from_dict(r.body) for r in parse_recorded(snapshot.decisions, "decision_id") if r.body]
    return to_json(build_chronology(nhs, events, notes, decisions, acks, integrity="", generated_at=AT))


async def _indexed(log: Log, store: Store, nhs: str) -> tuple[str, int]:
    found = await child_records(log, store, nhs)
    chronology = build_chronology(
        nhs, found.events, found.notifications, found.decisions, found.acks, integrity="", generated_at=AT
    )
    read = len(found.events) + len(found.notifications) + len(found.decisions) + len(found.acks)
    return to_json(chronology), read


@pytest.mark.parametrize("scenario", ["child-1", "child-2", "child-3", "next/rules-1"])
async def test_every_persons_chronology_is_the_same_through_the_index(scenario: str, tmp_path: Path) -> None:
    """For each NHS number a scenario's log names, the indexed chronology equals the full read, from fewer records."""
    path = tmp_path / "log.db"
    simulate(scenario, path)
    log = EmbeddedLog(path)
    await log.start()
    store = SqliteStore(tmp_path / "store.db", durable=False)
    await store.start()
    try:
        await ChronologyFollower(log, store).start(background=False)
        snapshot = await read_snapshot(log)
        people = sorted(
            {
                str(ref["nhs_number"])
                for r in snapshot.inputs
                if r.value is not None and topics.is_event(r)
                for ref in _refs(event_of(r.value).data)
                if ref.get("nhs_number")
            }
        )
        total = len(snapshot.inputs) + len(snapshot.notifications) + len(snapshot.decisions)
        assert people
        for nhs in people:
            indexed, read = await _indexed(log, store, nhs)
            assert indexed == await _full_read(log, nhs), nhs
            assert read < total
    finally:
        await store.close()
        await log.close()
