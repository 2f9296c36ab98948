"""Inbox state: one organisation's notifications, filters and acknowledgements."""

from __future__ import annotations

import datetime as dt

from broker.delivery.inboxes import Inboxes, Query, item_json
from broker.routing.model import Ack, Notification

T0 = dt.datetime(2024, 1, 1, 9, tzinfo=dt.UTC)


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
        content={},
    )


def _inboxes() -> Inboxes:
    inboxes = Inboxes()
    inboxes.add(_note("a", "GP-A", hours=0))
    inboxes.add(_note("b", "GP-A", priority="routine", hours=1))
    inboxes.add(_note("c", "GP-A", kind="escalation", hours=2))
    inboxes.add(_note("x", "HV-B", hours=0))
    return inboxes


def test_an_organisation_sees_only_its_own() -> None:
    """A query and a lookup return only the organisation's own notifications."""
    inboxes = _inboxes()
    notes, more = inboxes.query("GP-A", Query())
    assert [n.notification_id for n in notes] == ["a", "b", "c"] and not more
    assert inboxes.get("GP-A", "x") is None
    assert inboxes.get("HV-B", "x") is not None


def test_filters() -> None:
    """Priority, since and unacknowledged filter; escalations never count as awaiting acknowledgement."""
    inboxes = _inboxes()
    assert [n.notification_id for n in inboxes.query("GP-A", Query(priority="routine"))[0]] == ["b"]
    assert [n.notification_id for n in inboxes.query("GP-A", Query(since=T0 + dt.timedelta(hours=1)))[0]] == ["b", "c"]
    inboxes.acknowledge(Ack("a", "GP-A", "Dr Example", T0))
    assert [n.notification_id for n in inboxes.query("GP-A", Query(unacknowledged=True))[0]] == ["b"]


def test_limit_says_when_there_is_more() -> None:
    """A limit cuts the list and says more matched."""
    notes, more = _inboxes().query("GP-A", Query(limit=2))
    assert len(notes) == 2 and more


def test_first_acknowledgement_counts() -> None:
    """A second acknowledgement of the same notification changes nothing."""
    inboxes = _inboxes()
    assert inboxes.acknowledge(Ack("a", "GP-A", "First", T0))
    assert not inboxes.acknowledge(Ack("a", "GP-A", "Second", T0 + dt.timedelta(hours=1)))
    note = inboxes.get("GP-A", "a")
    assert note is not None
    ack = inboxes.ack_of(note)
    assert ack is not None and ack.by == "First"


def test_an_acknowledgement_by_another_organisation_does_not_count() -> None:
    """An ack naming another recipient is not an acknowledgement of this organisation's notification."""
    inboxes = _inboxes()
    inboxes.acknowledge(Ack("a", "HV-B", "Someone else", T0))
    note = inboxes.get("GP-A", "a")
    assert note is not None and inboxes.ack_of(note) is None


def test_duplicates_are_ignored() -> None:
    """The same notification read twice from the log is in the inbox once."""
    inboxes = _inboxes()
    assert not inboxes.add(_note("a", "GP-A"))
    assert inboxes.count("GP-A") == 3


def test_item_json_carries_the_acknowledgement() -> None:
    """The API form is the notification plus whether it needs and has an acknowledgement."""
    note = _note("a", "GP-A")
    item = item_json(note, Ack("a", "GP-A", "Dr Example", T0))
    assert item["notification_id"] == "a" and item["requires_ack"] is True
    assert item["acknowledged"] == {"by": "Dr Example", "at": "2024-01-01T09:00:00Z"}
    assert item_json(_note("c", "GP-A", kind="escalation"), None)["requires_ack"] is False
