"""Views materialised from the log on each store backend: resumed from their position, rebuilt from the start.

The log is the in-memory one (its contract is proved elsewhere); the store is each backend in turn.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence

import pytest

from broker import topics
from broker.delivery.records import DeliveryRecord, encode_delivery
from broker.log import MemoryLog
from broker.log.base import Record
from broker.routing.model import Ack, Notification
from broker.routing.records import encode_ack, encode_output
from broker.store import Batch, InboxQuery, Store
from broker.store.materialise import accepted, acks, catch_up, chronology, deliveries, notifications
from broker.store.model import to_ms
from tests.contract.store_support import T0, StoreBackend, child


def _note(n: int) -> Notification:
    at = T0 + dt.timedelta(minutes=n)
    return Notification(
        notification_id=f"nid-{n:04d}",
        kind="alert",
        event_id=f"evt-{n:04d}",
        event_type="police.domestic_abuse_incident",
        recipient="ORG-A" if n % 2 else "ORG-B",
        at=at,
        priority="urgent",
        flags=(),
        view="summary",
        reason="a child in the household",
        also_notified=(),
        ack_by=at + dt.timedelta(hours=24),
        rule="R1",
        content={"child": {"nhs_number": child(n % 5), "local_id": None}},
    )


def _children(note: Notification) -> list[str]:
    return [str(note.content["child"]["nhs_number"])]


async def _append_notes(log: MemoryLog, numbers: range) -> None:
    for n in numbers:
        key, value, headers = encode_output(_note(n))
        await log.append(topics.NOTIFICATIONS, value, key=key, headers=headers)


async def _listing(store: Store, recipient: str) -> list[tuple[str, str]]:
    page = await store.list_inbox(InboxQuery(recipient, limit=1000))
    return [(i.notification.notification_id, i.status) for i in page.items]


async def test_a_view_catches_up_resumes_after_a_restart_and_rebuilds(store_backend: StoreBackend) -> None:
    """catch_up applies the log once, a restarted store reads only the tail, and a reset view rebuilds the same."""
    log = MemoryLog()
    store = await store_backend.open()
    derive = notifications(_children)
    await _append_notes(log, range(30))
    for n in range(1, 30, 4):
        key, value, headers = encode_ack(Ack(f"nid-{n:04d}", "ORG-A", "A. Worker", T0 + dt.timedelta(hours=1)))
        await log.append(topics.INPUT, value, key=key, headers=headers)

    assert await catch_up(log, store, "inbox", topics.INPUT, acks, limit=3) == 8  # acks before their notifications
    assert await catch_up(log, store, "inbox", topics.NOTIFICATIONS, derive, limit=7) == 30
    assert await catch_up(log, store, "inbox", topics.NOTIFICATIONS, derive, limit=7) == 0
    before = await _listing(store, "ORG-A")
    assert len(before) == 15 and sum(status == "acknowledged" for _, status in before) == 8

    await _append_notes(log, range(30, 35))
    restarted = await store_backend.open()
    assert await catch_up(log, restarted, "inbox", topics.NOTIFICATIONS, derive) == 5
    assert await restarted.position("inbox", topics.NOTIFICATIONS) == 35

    await restarted.reset_view("inbox")
    assert await _listing(restarted, "ORG-A") == []
    await catch_up(log, restarted, "inbox", topics.NOTIFICATIONS, derive)
    await catch_up(log, restarted, "inbox", topics.INPUT, acks)
    after = await _listing(restarted, "ORG-A")
    assert after[-15:] == before and len(after) == 17
    item = await restarted.notification("ORG-B", "nid-0002")
    assert item is not None and item.notification.children == (child(2),)
    assert item.notification.record == encode_output(_note(2))[1]


async def test_a_crash_part_way_loses_nothing_and_applies_nothing_twice(store: Store) -> None:
    """A materialiser that dies in its second batch leaves the first applied; the rerun finishes the rest once."""
    log = MemoryLog()
    for n in range(1, 11):
        record = DeliveryRecord("attempt", f"nid-{n}", "ORG-A", T0, "delivered", 0, n, attempt=1, endpoint="https://x")
        key, value, headers = encode_delivery(record)
        await log.append(topics.DELIVERIES, value, key=key, headers=headers)
    calls = 0

    def dies_on_the_second_batch(records: Sequence[Record], batch: Batch) -> None:
        nonlocal calls
        calls += 1
        deliveries(records, batch)
        if calls == 2:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        await catch_up(log, store, "deliveries", topics.DELIVERIES, dies_on_the_second_batch, limit=4)
    assert await store.position("deliveries", topics.DELIVERIES) == 4
    assert await store.delivered([f"nid-{n}" for n in range(1, 11)]) == {f"nid-{n}" for n in range(1, 5)}

    assert await catch_up(log, store, "deliveries", topics.DELIVERIES, deliveries, limit=4) == 6
    status = await store.delivery_status("ORG-A")
    assert (status.notifications, status.delivered) == (10, 10)


async def test_accepted_ids_and_chronology_entries_come_from_the_records_they_index(store: Store) -> None:
    """Accepted ids carry their log position and chronology entries the record's position and time."""
    log = MemoryLog()
    topic = "jigsaw.events.police"
    for n in range(3):
        value = json.dumps({"event_id": f"evt-{n}", "child": child(n % 2)}).encode()
        await log.append(topic, value, key=b"subject", timestamp_ms=to_ms(T0) + n)

    def identify(record: Record) -> tuple[str, str, str]:
        assert record.value is not None
        return json.loads(record.value)["event_id"], hashlib.sha256(record.value).hexdigest(), "ORG-P"

    def entries_of(record: Record) -> list[tuple[str, str]]:
        assert record.value is not None
        return [(json.loads(record.value)["child"], "event")]

    await catch_up(log, store, "accepted", topic, accepted(identify))
    await catch_up(log, store, "chronology", topic, chronology(entries_of))

    row = await store.accepted("evt-2")
    assert row is not None and (row.topic, row.partition, row.offset, row.source) == (topic, 0, 2, "ORG-P")
    page = await store.chronology(child(0))
    assert [(r.offset, r.kind, r.at) for r in page.items] == [
        (0, "event", T0),
        (2, "event", T0 + dt.timedelta(milliseconds=2)),
    ]
    assert await store.positions("chronology") == {(topic, 0): 3}
