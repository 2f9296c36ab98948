"""Inboxes as the API lists them: the store's rows for one organisation, its filters, pages and acknowledgements."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broker.delivery.inboxes import Query, ack_of, children_of, item_json, notification_of, store_query
from broker.nhs import synthetic_nhs_number
from broker.routing.model import Ack, Notification
from broker.routing.records import encode_json
from broker.store import InboxAck, InboxNotification, SqliteStore, Store

T0 = dt.datetime(2024, 1, 1, 9, tzinfo=dt.UTC)
CHILD = synthetic_nhs_number(1)


def _note(nid: str, recipient: str, *, kind: str = "alert", priority: str = "urgent", hours: int = 0) -> Notification:
    at = T0 + dt.timedelta(hours=hours)
    return Notification(
        notification_id=nid,
        kind=kind,
        event_id=f"e-{nid}",
        event_type="police.domestic_abuse_incident",
        recipient=recipient,
        at=at,
        priority=priority,
        flags=(),
        view="full",
        reason="synthetic",
        also_notified=(),
        ack_by=at + dt.timedelta(hours=24),
        rule="R1",
        content={"child": {"nhs_number": CHILD, "local_id": None}, "others": [{"nhs_number": "not a number"}]},
    )


def _row(note: Notification) -> InboxNotification:
    return InboxNotification.of(note, children=children_of(note), record=encode_json(note.to_dict()))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A store holding three notifications for GP-A (an alert, a routine one, an escalation) and one for HV-B."""
    store = SqliteStore(tmp_path / "store.db", durable=False)
    await store.start()
    notes = [
        _note("a", "GP-A", hours=0),
        _note("b", "GP-A", priority="routine", hours=1),
        _note("c", "GP-A", kind="escalation", hours=2),
        _note("x", "HV-B", hours=0),
    ]
    await store.add_notifications([_row(n) for n in notes])
    yield store
    await store.close()


async def _ids(store: Store, query: Query, org: str = "GP-A") -> list[str]:
    page = await store.list_inbox(store_query(org, query))
    return [notification_of(i).notification_id for i in page.items]


async def test_an_organisation_sees_only_its_own(store: Store) -> None:
    """A listing and a lookup return only the organisation's own notifications, oldest first."""
    assert await _ids(store, Query()) == ["a", "b", "c"]
    assert await store.notification("GP-A", "x") is None
    assert await store.notification("HV-B", "x") is not None


async def test_filters(store: Store) -> None:
    """Priority, since and unacknowledged filter; escalations never count as awaiting acknowledgement."""
    assert await _ids(store, Query(priority="routine")) == ["b"]
    assert await _ids(store, Query(since=T0 + dt.timedelta(hours=1))) == ["b", "c"]
    await store.acknowledge(InboxAck("GP-A", "a", "Dr Example", T0))
    assert await _ids(store, Query(unacknowledged=True)) == ["b"]


async def test_pages_follow_on_from_the_cursor(store: Store) -> None:
    """A limit cuts the list and gives a cursor; the next page starts after it, in the same order."""
    first = await store.list_inbox(store_query("GP-A", Query(limit=2)))
    assert [i.notification.notification_id for i in first.items] == ["a", "b"] and first.next is not None
    rest = await store.list_inbox(store_query("GP-A", Query(limit=2, after=first.next)))
    assert [i.notification.notification_id for i in rest.items] == ["c"] and rest.next is None


async def test_first_acknowledgement_counts(store: Store) -> None:
    """A second acknowledgement of the same notification changes nothing; a withdrawn one frees it."""
    assert (await store.acknowledge(InboxAck("GP-A", "a", "First", T0))).status == "acknowledged"
    second = await store.acknowledge(InboxAck("GP-A", "a", "Second", T0 + dt.timedelta(hours=1)))
    assert second.status == "already_acknowledged" and second.ack is not None and second.ack.by == "First"
    item = await store.notification("GP-A", "a")
    assert item is not None and (ack := ack_of(item)) is not None and ack.by == "First"
    assert not await store.release_ack(InboxAck("GP-A", "a", "Second", T0 + dt.timedelta(hours=1)))
    assert await store.release_ack(InboxAck("GP-A", "a", "First", T0))
    item = await store.notification("GP-A", "a")
    assert item is not None and item.ack is None and item.status == "awaiting"


async def test_an_acknowledgement_by_another_organisation_does_not_count(store: Store) -> None:
    """An ack naming another recipient is not an acknowledgement of this organisation's notification."""
    assert (await store.acknowledge(InboxAck("HV-B", "a", "Someone else", T0))).status == "not_found"
    item = await store.notification("GP-A", "a")
    assert item is not None and item.ack is None


async def test_duplicates_are_ignored(store: Store) -> None:
    """The same notification read twice from the log is in the inbox once."""
    await store.add_notifications([_row(_note("a", "GP-A"))])
    assert (await store.count_inbox("GP-A", now=T0)).total == 3


def test_children_are_the_valid_nhs_numbers_the_content_names() -> None:
    """A notification is indexed under each valid NHS number in its content, once."""
    assert children_of(_note("a", "GP-A")) == [CHILD]


def test_item_json_carries_the_acknowledgement() -> None:
    """The API form is the notification plus whether it needs and has an acknowledgement."""
    note = _note("a", "GP-A")
    item = item_json(note, Ack("a", "GP-A", "Dr Example", T0))
    assert item["notification_id"] == "a" and item["requires_ack"] is True
    assert item["acknowledged"] == {"by": "Dr Example", "at": "2024-01-01T09:00:00Z"}
    assert item_json(_note("c", "GP-A", kind="escalation"), None)["requires_ack"] is False
