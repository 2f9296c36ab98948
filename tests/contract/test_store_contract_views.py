"""The Store contract, continued: delivery ledger, chronology index, snapshots, materialiser positions, migrations.

Parametrised over SQLite and a real PostgreSQL like ``test_store_contract.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest

from broker.delivery.ledger import Job
from broker.delivery.records import DeliveryRecord
from broker.errors import ConfigError
from broker.store import Batch, ChronologyRef, InboxAck, Snapshot, Store
from broker.store.model import AcceptedId
from broker.store.sqlstore import SqlStore
from tests.contract.store_support import (
    T0,
    StoreBackend,
    child,
    note,
)


def attempt(nid: str, n: int, outcome: str, *, minutes: int, retry_in: int | None = None) -> DeliveryRecord:
    """A webhook attempt record for ORG-A's notification ``nid``."""
    at = T0 + dt.timedelta(minutes=minutes)
    return DeliveryRecord(
        "attempt",
        nid,
        "ORG-A",
        at,
        outcome,
        partition=1,
        offset=40 + n,
        attempt=n,
        endpoint="https://receiver.example/hook",
        status=200 if outcome == "delivered" else 503,
        error=None if outcome == "delivered" else "HTTP 503",
        next_attempt_at=at + dt.timedelta(minutes=retry_in) if retry_in is not None else None,
    )


# -- delivery ledger ------------------------------------------------------------------


async def test_the_ledger_keeps_attempts_in_order_and_the_final_outcome(store: Store) -> None:
    """Attempts read back in order; delivery is recorded only once final; re-recording changes nothing."""
    records = [
        attempt("nid-1", 1, "failed", minutes=0, retry_in=5),
        attempt("nid-1", 2, "delivered", minutes=5),
        attempt("nid-2", 1, "failed", minutes=1, retry_in=10),
    ]
    await store.record_deliveries(records)
    await store.record_deliveries(records[:2])

    history = await store.delivery("nid-1")
    pending = await store.delivery("nid-2")

    assert history is not None and history.records == tuple(records[:2]) and history.outcome == "delivered"
    assert pending is not None and pending.outcome is None
    assert await store.delivery("nid-none") is None
    assert await store.delivered(["nid-1", "nid-2", "nid-none"]) == {"nid-1"}
    due = await store.due_retries(before=T0 + dt.timedelta(hours=1))
    assert due == [Job("nid-2", "ORG-A", 1, 41, 2, T0 + dt.timedelta(minutes=11))]
    assert await store.due_retries(before=T0 + dt.timedelta(minutes=11)) == []
    assert await store.due_retries(before=T0 + dt.timedelta(hours=1), partitions=[0]) == []


async def test_a_dead_letter_is_final_and_counted_in_the_organisations_status(store: Store) -> None:
    """Per-organisation status counts deliveries, failures and dead letters, with the last of each."""
    dead = DeliveryRecord(
        "dead_letter", "nid-2", "ORG-A", T0 + dt.timedelta(minutes=9), "dead_letter", 1, 42, attempt=2, error="gave up"
    )
    inbox = DeliveryRecord("inbox", "nid-3", "ORG-A", T0 + dt.timedelta(minutes=2), "inbox", 1, 43)
    await store.record_deliveries(
        [
            attempt("nid-1", 1, "delivered", minutes=0),
            attempt("nid-2", 1, "failed", minutes=1, retry_in=5),
            attempt("nid-2", 2, "failed", minutes=9),
            dead,
            inbox,
            dataclasses.replace(attempt("nid-9", 1, "delivered", minutes=3), recipient="ORG-B"),
        ]
    )

    status = await store.delivery_status("ORG-A")

    assert (status.notifications, status.delivered, status.dead_letters, status.in_inbox) == (3, 1, 1, 1)
    assert (status.awaiting_retry, status.failed_attempts) == (0, 2)
    assert status.last_attempt_at == T0 + dt.timedelta(minutes=9)
    assert status.last_delivered_at == T0
    assert status.last_failure_at == T0 + dt.timedelta(minutes=9) and status.last_error == "HTTP 503"
    assert await store.delivered(["nid-2", "nid-3"]) == {"nid-2", "nid-3"}
    assert (await store.delivery_status("ORG-NONE")).notifications == 0


# -- chronology index -------------------------------------------------------------------


async def test_a_childs_chronology_index_pages_oldest_first(store: Store) -> None:
    """Entries come back oldest first in keyset pages, one child's only; adding one again is a no-op."""
    refs = [
        ChronologyRef(child(1), f"jigsaw.events.{t}", 0, i, "event", T0 + dt.timedelta(hours=i % 7))
        for i, t in enumerate(["police", "gp", "csc"] * 5)
    ]
    await store.index_chronology([*refs, ChronologyRef(child(2), "jigsaw.events.gp", 0, 99, "event", T0)])
    await store.index_chronology(refs[:3])
    expected = sorted(refs, key=lambda r: (r.at, r.topic, r.partition, r.offset))

    seen: list[ChronologyRef] = []
    cursor = None
    while True:
        page = await store.chronology(child(1), limit=4, after=cursor)
        seen += page.items
        if page.next is None:
            break
        cursor = page.next

    assert seen == expected
    assert (await store.chronology(child(3))).items == ()


# -- snapshots ------------------------------------------------------------------------


async def test_snapshots_keep_the_last_few_and_give_back_the_latest(store: Store) -> None:
    """The latest snapshot is the highest offset; only the newest ``keep`` of a name are kept."""
    assert await store.latest_snapshot("router") is None
    for offset in (10, 30, 20, 40):
        blob = bytes([offset % 256]) * 1000 + b"\x00\xff"
        await store.put_snapshot(Snapshot("router", offset, blob, T0 + dt.timedelta(minutes=offset)), keep=2)
    await store.put_snapshot(Snapshot("other", 5, b"x", T0))

    latest = await store.latest_snapshot("router")

    assert latest == Snapshot("router", 40, bytes([40]) * 1000 + b"\x00\xff", T0 + dt.timedelta(minutes=40))
    await store.put_snapshot(Snapshot("router", 50, b"y", T0), keep=1)
    assert (await store.latest_snapshot("router")) == Snapshot("router", 50, b"y", T0)
    assert (await store.latest_snapshot("other")) == Snapshot("other", 5, b"x", T0)


# -- materialisation ------------------------------------------------------------------


async def test_apply_writes_rows_and_position_together_exactly_once(store: Store) -> None:
    """A batch's rows and position land together; the same batch again is refused and changes nothing."""
    batch = Batch("inbox", notifications=[note(1), note(2)])
    batch.advance("jigsaw.notifications", 0, 2)
    assert await store.position("inbox", "jigsaw.notifications") == 0

    assert await store.apply(batch)
    await store.acknowledge(InboxAck("ORG-A", "nid-0001", "A. Worker", T0))
    assert not await store.apply(batch)

    assert await store.position("inbox", "jigsaw.notifications") == 2
    assert await store.positions("inbox") == {("jigsaw.notifications", 0): 2}
    assert await store.positions("deliveries") == {}
    assert (await store.count_inbox("ORG-A", now=T0)).total == 2
    item = await store.notification("ORG-A", "nid-0001")
    assert item is not None and item.status == "acknowledged"


async def test_materialisers_racing_on_one_batch_apply_it_once(store_backend: StoreBackend) -> None:
    """Two processes applying the same stretch of the log at once: one applies it, the other is told it was."""
    stores = [await store_backend.open() for _ in range(2)]
    batch = Batch("deliveries", deliveries=[attempt("nid-1", 1, "failed", minutes=0, retry_in=5)])
    batch.advance("jigsaw.deliveries", 0, 1)

    applied = await asyncio.gather(*(s.apply(batch) for s in stores * 3))

    assert sorted(applied) == [False] * 5 + [True]
    assert await stores[1].position("deliveries", "jigsaw.deliveries") == 1


async def test_a_failed_batch_leaves_neither_rows_nor_position(store: Store) -> None:
    """A batch that fails part-way is rolled back whole: no accepted ids, no position."""
    bad = dataclasses.replace(note(2), created_at=dt.datetime(2024, 3, 1, 9, 0))  # naive: refused
    batch = Batch("accepted", accepted=[AcceptedId("evt-1", "d", "ORG-P", "t", 0, 0)], notifications=[bad])
    batch.advance("t", 0, 1)

    with pytest.raises(ValueError):
        await store.apply(batch)

    assert await store.accepted("evt-1") is None
    assert await store.position("accepted", "t") == 0


async def test_materialised_ids_settle_claims_and_a_view_can_be_rebuilt(store: Store) -> None:
    """An id read back from the log gives a claim its position; reset_view empties a view for a rebuild."""
    await store.claim(AcceptedId("evt-1", "d1", "ORG-P"))
    rows = [AcceptedId("evt-1", "d1", "ORG-P", "t", 0, 5), AcceptedId("evt-2", "d2", "ORG-P", "t", 0, 6)]
    batch = Batch("accepted", accepted=rows)
    batch.advance("t", 0, 7)
    await store.apply(batch)

    row = await store.accepted("evt-1")
    assert row is not None and row.offset == 5
    await store.reset_view("accepted")
    assert await store.accepted_many(["evt-1", "evt-2"]) == {}
    assert await store.position("accepted", "t") == 0
    assert await store.apply(batch)
    assert set(await store.accepted_many(["evt-1", "evt-2"])) == {"evt-1", "evt-2"}


# -- migrations ---------------------------------------------------------------------


async def test_stores_starting_at_once_migrate_once(store_backend: StoreBackend) -> None:
    """Several processes starting on an empty database at once: each migration is applied once, all start."""
    stores = [store_backend.new() for _ in range(4)]

    await asyncio.gather(*(s.start() for s in stores))

    versions = {await s.schema_version() for s in stores}
    assert versions == {1}
    sql = stores[0]
    assert isinstance(sql, SqlStore)
    rows = await sql._reading(lambda conn: conn.fetch("SELECT version FROM store_schema"))
    assert [int(r[0]) for r in rows] == [1]
    status = await stores[1].status()
    assert status["ok"] is True and status["schema"] == 1


async def test_a_store_newer_than_the_code_is_refused(store_backend: StoreBackend) -> None:
    """A database migrated by a newer Jigsaw is refused with a ConfigError, not half-used."""
    first = await store_backend.open()
    assert isinstance(first, SqlStore)
    future = "INSERT INTO store_schema (version, name, applied_ms) VALUES (?, ?, ?)"
    await first._writing(lambda conn: conn.execute(future, 99, "future", 0))

    with pytest.raises(ConfigError, match="newer"):
        await store_backend.open()
