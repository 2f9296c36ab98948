"""The Store protocol's contract, run against every backend: SQLite and a real PostgreSQL.

The ``store`` and ``store_backend`` fixtures (``store_support.py``) parametrise each test
over both; the PostgreSQL case is marked ``postgres``. Whatever one backend does here, the
other must do the same. Ledger, chronology, snapshot, materialiser and migration cases are in
``test_store_contract_views.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import sys
import time
from typing import Any

import pytest

from broker.errors import InvalidRequest
from broker.log.base import Position
from broker.store import AcceptedId, InboxAck, InboxQuery, Store
from tests.contract.store_support import (
    T0,
    StoreBackend,
    child,
    note,
)

# -- accepted-id index ------------------------------------------------------------------


async def test_claim_puts_if_absent_and_returns_the_standing_row(store: Store) -> None:
    """The first claim of an id wins; a later one with other content loses and sees the first row."""
    first = AcceptedId("evt-1", "digest-a", "ORG-P")
    won = await store.claim(first)
    lost = await store.claim(AcceptedId("evt-1", "digest-b", "ORG-Q"))

    assert won.won and won.row == first
    assert not lost.won and lost.row == first
    assert await store.accepted("evt-1") == first
    assert await store.accepted("evt-missing") is None


async def test_racing_claims_on_one_id_have_exactly_one_winner(store_backend: StoreBackend) -> None:
    """Many connections claiming the same ids at once: exactly one wins each id, and all agree on its row."""
    stores = [await store_backend.open() for _ in range(4)]
    ids = [f"evt-race-{i}" for i in range(5)]

    async def contender(n: int) -> list[tuple[str, bool, str]]:
        store = stores[n % len(stores)]
        out = []
        for event_id in ids:
            claim = await store.claim(AcceptedId(event_id, f"digest-{n}", f"ORG-{n}"))
            out.append((event_id, claim.won, claim.row.digest))
        return out

    results = [r for rs in await asyncio.gather(*(contender(n) for n in range(12))) for r in rs]

    for event_id in ids:
        answers = [(won, digest) for eid, won, digest in results if eid == event_id]
        winners = [digest for won, digest in answers if won]
        assert len(winners) == 1, f"{event_id}: {len(winners)} winners"
        assert {digest for _, digest in answers} == {winners[0]}
        standing = await stores[0].accepted(event_id)
        assert standing is not None and standing.digest == winners[0]


async def test_claim_many_answers_in_order_and_a_repeat_in_the_batch_loses(store: Store) -> None:
    """claim_many answers per row in the order given; an id already there or earlier in the batch loses."""
    await store.claim(AcceptedId("evt-old", "d-old", "ORG-P", "jigsaw.events.police", 0, 7))
    rows = [
        AcceptedId("evt-b", "d-b", "ORG-P"),
        AcceptedId("evt-old", "d-other", "ORG-P"),
        AcceptedId("evt-a", "d-a", "ORG-P"),
        AcceptedId("evt-b", "d-b2", "ORG-P"),
    ]

    claims = await store.claim_many(rows)

    assert [c.won for c in claims] == [True, False, True, False]
    assert claims[1].row.position == Position("jigsaw.events.police", 0, 7)
    assert claims[3].row.digest == "d-b"
    assert set(await store.accepted_many(["evt-a", "evt-b", "evt-old", "evt-none"])) == {"evt-a", "evt-b", "evt-old"}


async def test_a_large_batch_of_claims_is_decided_row_by_row(store: Store) -> None:
    """Over a thousand ids in one claim_many: each id already there loses with its row, every other one wins."""
    there = [AcceptedId(f"evt-{i:05d}", "d-old", "ORG-P", "jigsaw.input", 0, i) for i in range(0, 1200, 7)]
    await store.claim_many(there)
    rows = [AcceptedId(f"evt-{i:05d}", "d-new", "ORG-P") for i in reversed(range(1200))]

    claims = await store.claim_many(rows)

    for row, claim in zip(rows, claims, strict=True):
        old = int(row.event_id[4:]) % 7 == 0
        assert claim.won is not old and claim.row.digest == ("d-old" if old else "d-new"), row.event_id
        assert claim.row.position == (Position("jigsaw.input", 0, int(row.event_id[4:])) if old else None)


async def test_settle_many_answers_each_claim_as_settle_would(store: Store) -> None:
    """settle_many: a claim's own digest settles (the same position again too); another digest or position not."""
    await store.claim_many([AcceptedId(f"evt-{i}", f"d{i}", "ORG-P") for i in range(4)])
    first = Position("jigsaw.input", 0, 10)
    assert await store.settle_many([("evt-0", "d0", first)]) == [True]

    answers = await store.settle_many(
        [
            ("evt-0", "d0", first),  # the same position again
            ("evt-0", "d0", Position("jigsaw.input", 0, 11)),  # another position
            ("evt-1", "wrong", Position("jigsaw.input", 0, 12)),
            ("evt-2", "d2", Position("jigsaw.input", 0, 13)),
            ("evt-none", "d9", Position("jigsaw.input", 0, 14)),
        ]
    )

    assert answers == [True, False, False, True, False]
    found = await store.accepted_many(["evt-0", "evt-1", "evt-2", "evt-3"])
    assert found["evt-0"].position == first and found["evt-1"].position is None
    assert found["evt-2"].position == Position("jigsaw.input", 0, 13) and found["evt-3"].position is None


async def test_settle_gives_a_claim_its_position_and_release_drops_an_unsettled_one(store: Store) -> None:
    """A claim gets its log position once (for its own digest); only a claim without one can be released."""
    await store.claim(AcceptedId("evt-1", "d1", "ORG-P"))
    await store.claim(AcceptedId("evt-2", "d2", "ORG-P"))
    where = Position("jigsaw.events.police", 0, 3)

    assert not await store.settle("evt-1", "wrong-digest", where)
    assert await store.settle("evt-1", "d1", where)
    assert await store.settle("evt-1", "d1", where)  # the same position again is fine
    assert not await store.settle("evt-1", "d1", Position("jigsaw.events.police", 0, 4))
    row = await store.accepted("evt-1")
    assert row is not None and row.position == where

    assert not await store.release("evt-1", "d1")
    assert await store.release("evt-2", "d2")
    assert await store.accepted("evt-2") is None


async def test_a_stale_claim_without_a_position_is_taken_over(store: Store) -> None:
    """A claim that never got a position is taken over after stale_after; a fresh or settled one is not."""
    await store.claim(AcceptedId("evt-1", "d1", "ORG-P"), now=T0)
    await store.claim(AcceptedId("evt-2", "d2", "ORG-P", "t", 0, 1), now=T0)
    stale = dt.timedelta(seconds=30)

    fresh = await store.claim(AcceptedId("evt-1", "d9", "ORG-P"), now=T0 + dt.timedelta(seconds=10), stale_after=stale)
    late = await store.claim(AcceptedId("evt-1", "d9", "ORG-P"), now=T0 + dt.timedelta(seconds=60), stale_after=stale)
    settled = await store.claim(AcceptedId("evt-2", "d9", "ORG-P"), now=T0 + dt.timedelta(hours=1), stale_after=stale)

    assert not fresh.won and fresh.row.digest == "d1"
    assert late.won and late.row.digest == "d9"
    assert not settled.won and settled.row.digest == "d2"


_CLAIMER = """
import asyncio, json, sys, time
from broker.store import AcceptedId, SqliteStore
from broker.store.postgres import PostgresStore

async def main(target, me, start_at):
    store = PostgresStore(target) if target.startswith("postgresql") else SqliteStore(target)
    await store.start()
    time.sleep(max(0.0, start_at - time.time()))
    won = [eid for eid in (f"evt-{i}" for i in range(40)) if (await store.claim(AcceptedId(eid, me, me))).won]
    await store.close()
    print(json.dumps(won))

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
"""


async def test_claims_racing_from_separate_processes_have_exactly_one_winner(store_backend: StoreBackend) -> None:
    """Four processes claiming the same ids at the same moment: each id is won by exactly one of them."""
    store = await store_backend.open()  # migrated before the race
    start_at = time.time() + 2.5
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CLAIMER, store_backend.target, f"proc-{n}", str(start_at),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
        for n in range(4)
    ]  # fmt: skip
    outputs = [await p.communicate() for p in procs]

    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    winners: dict[str, list[str]] = {}
    for n, (out, _) in enumerate(outputs):
        for event_id in json.loads(out.decode().strip().splitlines()[-1]):
            winners.setdefault(event_id, []).append(f"proc-{n}")
    assert sorted(winners) == sorted(f"evt-{i}" for i in range(40))
    assert all(len(w) == 1 for w in winners.values()), winners
    rows = await store.accepted_many(list(winners))
    assert {eid: [row.digest] for eid, row in rows.items()} == winners


# -- inboxes ------------------------------------------------------------------------------


async def test_a_notification_is_found_only_in_its_recipients_inbox(store: Store) -> None:
    """A notification reads back whole from its recipient's inbox only; adding it again changes nothing."""
    n = note(1, children=(child(0), child(1)))
    await store.add_notifications([n])
    await store.add_notifications([dataclasses.replace(n, record=b"changed")])

    item = await store.notification("ORG-A", n.notification_id)

    assert item is not None and item.notification == n
    assert (item.status, item.ack, item.read_at, item.escalated_at) == ("awaiting", None, None, None)
    assert await store.notification("ORG-B", n.notification_id) is None
    assert (await store.count_inbox("ORG-A", now=T0)).total == 1


async def test_listing_is_newest_first_in_pages_without_gaps_or_repeats(store: Store) -> None:
    """Keyset pages walk the whole inbox newest first, ties on time broken by id, nothing missed or repeated."""
    notes = [note(i, at=T0 + dt.timedelta(minutes=i // 3)) for i in range(25)]  # three per minute
    await store.add_notifications([*notes, note(99, recipient="ORG-B")])
    expected = [n.notification_id for n in sorted(notes, key=lambda n: (n.created_at, n.notification_id), reverse=True)]

    seen: list[str] = []
    cursor = None
    while True:
        page = await store.list_inbox(InboxQuery("ORG-A", limit=10, after=cursor))
        seen += [i.notification.notification_id for i in page.items]
        if page.next is None:
            break
        cursor = page.next

    assert seen == expected
    # A notification that arrives while paging, newer than the cursor, does not shift later pages.
    first = await store.list_inbox(InboxQuery("ORG-A", limit=10))
    await store.add_notifications([note(50, at=T0 + dt.timedelta(days=1))])
    second = await store.list_inbox(InboxQuery("ORG-A", limit=10, after=first.next))
    assert [i.notification.notification_id for i in second.items] == expected[10:20]


async def test_listing_filters_by_status_priority_and_child(store: Store) -> None:
    """Each filter returns exactly its notifications: by status, overdue at a time, priority and child."""
    await store.add_notifications(
        [
            note(1, priority="urgent", children=(child(1),), ack_hours=1),
            note(2, priority="routine", children=(child(2),), ack_hours=120),
            note(3, priority="routine", children=(child(1), child(2))),
            note(4, kind="retraction", priority="urgent", children=(child(1),)),
            note(5, kind="escalation", priority="urgent", follows="nid-0001", children=(child(1),)),
            note(6, recipient="ORG-B", children=(child(1),)),
        ]
    )
    await store.acknowledge(InboxAck("ORG-A", "nid-0003", "A. Worker", T0 + dt.timedelta(hours=1)))
    await store.mark_read("ORG-A", "nid-0002", by="A. Worker", at=T0 + dt.timedelta(hours=1))
    now = T0 + dt.timedelta(hours=10)

    async def ids(**filters: object) -> list[str]:
        page = await store.list_inbox(InboxQuery("ORG-A", **filters))  # type: ignore[arg-type]
        return [i.notification.notification_id[-1] for i in page.items]

    assert await ids() == ["5", "4", "3", "2", "1"]
    assert await ids(state="awaiting") == ["2", "1"]
    assert await ids(state="overdue", now=now) == ["1"]
    assert await ids(state="escalated") == ["1"]
    assert await ids(state="acknowledged") == ["3"]
    assert await ids(state="unread") == ["5", "4", "3", "1"]
    assert await ids(priority="routine") == ["3", "2"]
    assert await ids(child=child(1)) == ["5", "4", "3", "1"]
    assert await ids(child=child(2), state="awaiting") == ["2"]
    assert await ids(child=child(1), priority="urgent", limit=2) == ["5", "4"]
    assert await ids(child=child(9)) == []
    page = await store.list_inbox(InboxQuery("ORG-A", child=child(1), limit=2))
    rest = await store.list_inbox(InboxQuery("ORG-A", child=child(1), limit=2, after=page.next))
    assert [i.notification.notification_id for i in rest.items] == ["nid-0003", "nid-0001"]
    assert rest.next is None

    counts = await store.count_inbox("ORG-A", now=now)
    assert (counts.total, counts.unread, counts.awaiting, counts.overdue, counts.escalated, counts.acknowledged) == (
        5,
        4,
        2,
        1,
        1,
        1,
    )


async def test_count_listing_counts_what_the_filters_match(store: Store) -> None:
    """A listing's count covers every page of its filters (child, priority, status), never its cursor."""
    await store.add_notifications(
        [
            note(1, priority="urgent", children=(child(1),)),
            note(2, priority="routine", children=(child(1),)),
            note(3, priority="urgent", children=(child(2),)),
            note(4, priority="urgent", recipient="ORG-B", children=(child(1),)),
        ]
    )
    await store.acknowledge(InboxAck("ORG-A", "nid-0001", "A. Worker", T0 + dt.timedelta(hours=1)))
    first = await store.list_inbox(InboxQuery("ORG-A", limit=1))

    assert await store.count_listing(InboxQuery("ORG-A")) == 3
    assert await store.count_listing(InboxQuery("ORG-A", limit=1, after=first.next)) == 3
    assert await store.count_listing(InboxQuery("ORG-A", priority="urgent")) == 2
    assert await store.count_listing(InboxQuery("ORG-A", child=child(1))) == 2
    assert await store.count_listing(InboxQuery("ORG-A", child=child(1), state="awaiting")) == 1
    assert await store.count_listing(InboxQuery("ORG-A", child=child(1), priority="urgent", state="acknowledged")) == 1


async def test_acknowledging_counts_the_first_only(store: Store) -> None:
    """The first acknowledgement is recorded with who, when and a note; later ones answer already_acknowledged."""
    await store.add_notifications([note(1), note(2, recipient="ORG-B")])
    at = T0 + dt.timedelta(hours=2)

    first = await store.acknowledge(InboxAck("ORG-A", "nid-0001", "A. Worker", at, "seen; calling the school"))
    again = await store.acknowledge(InboxAck("ORG-A", "nid-0001", "B. Other", at + dt.timedelta(hours=1)))
    elsewhere = await store.acknowledge(InboxAck("ORG-A", "nid-0002", "A. Worker", at))

    assert first.status == "acknowledged" and first.ack is not None
    assert (first.ack.by, first.ack.at, first.ack.note) == ("A. Worker", at, "seen; calling the school")
    assert again.status == "already_acknowledged" and again.ack == first.ack
    assert elsewhere.status == "not_found"
    item = await store.notification("ORG-A", "nid-0001")
    assert item is not None and item.status == "acknowledged" and item.ack == first.ack
    assert not item.overdue(T0 + dt.timedelta(days=30))


async def test_racing_acknowledgements_record_exactly_one(store_backend: StoreBackend) -> None:
    """Acknowledgements racing from several connections: exactly one is recorded, and all report it."""
    stores = [await store_backend.open() for _ in range(3)]
    await stores[0].add_notifications([note(1)])

    outcomes = await asyncio.gather(
        *(stores[n % 3].acknowledge(InboxAck("ORG-A", "nid-0001", f"Person {n}", T0)) for n in range(9))
    )

    assert [o.status for o in outcomes].count("acknowledged") == 1
    assert len({o.ack for o in outcomes}) == 1


async def test_an_ack_or_escalation_before_its_notification_applies_when_it_arrives(store: Store) -> None:
    """Rebuilt out of order, an inbox ends the same: an earlier-recorded ack and escalation mark the notification."""
    from broker.store import Batch

    batch = Batch("inbox", acks=[InboxAck("ORG-A", "nid-0001", "A. Worker", T0 + dt.timedelta(hours=3))])
    batch.notifications.append(note(2, kind="escalation", follows="nid-0001"))
    await store.apply(batch)
    await store.add_notifications([note(1)])

    item = await store.notification("ORG-A", "nid-0001")

    assert item is not None and item.status == "acknowledged"
    assert item.ack is not None and item.ack.by == "A. Worker"
    assert item.escalated_at == T0 + dt.timedelta(minutes=2)


async def test_mark_read_records_the_first_opening(store: Store) -> None:
    """Reading is recorded once, with who and when; a notification not in the inbox is not marked."""
    await store.add_notifications([note(1)])
    at = T0 + dt.timedelta(hours=1)

    assert await store.mark_read("ORG-A", "nid-0001", by="A. Worker", at=at)
    assert not await store.mark_read("ORG-A", "nid-0001", by="B. Other", at=at + dt.timedelta(hours=1))
    assert not await store.mark_read("ORG-B", "nid-0001", by="B. Other", at=at)
    item = await store.notification("ORG-A", "nid-0001")
    assert item is not None and (item.read_by, item.read_at) == ("A. Worker", at)


async def test_a_cursor_not_given_out_is_refused(store: Store) -> None:
    """A made-up or mangled page cursor is a clear InvalidRequest, never a database error."""
    for cursor in ("not-a-cursor", "WzEsMl0", "W10"):
        with pytest.raises(InvalidRequest):
            await store.list_inbox(InboxQuery("ORG-A", after=cursor))
    with pytest.raises(InvalidRequest):
        InboxQuery("ORG-A", state="overdue")  # overdue needs a now


async def test_a_write_body_that_fails_leaves_nothing_and_the_store_goes_on(store: Store) -> None:
    """A transaction body runs whole or not at all: a failure part-way rolls back what it wrote.

    On SQLite the body runs to its end in one hop to the store's thread, so a body that waits
    for anything but the database (here the event loop) is refused the same way.
    """
    from broker.store.sqlstore import SqlStore

    assert isinstance(store, SqlStore)
    insert = "INSERT INTO store_schema (version, name, applied_ms) VALUES (?, ?, ?)"

    async def fails(conn: Any) -> None:
        await conn.execute(insert, 90, "half", 0)
        raise ValueError("part-way")

    with pytest.raises(ValueError, match="part-way"):
        await store._writing(fails)
    if store.dialect == "sqlite":

        async def waits(conn: Any) -> None:
            await conn.execute(insert, 91, "waits", 0)
            await asyncio.sleep(0)

        with pytest.raises(RuntimeError, match="waited"):
            await store._writing(waits)
    rows = await store._reading(lambda conn: conn.fetch("SELECT version FROM store_schema WHERE version >= 90"))
    assert rows == []
    assert (await store.claim(AcceptedId("evt-after", "d1", "ORG-P"))).won
