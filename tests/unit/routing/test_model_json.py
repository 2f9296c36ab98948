"""The JSON form of what the router writes: every field, in declaration order, and back again."""

from __future__ import annotations

import dataclasses
import datetime as dt

from broker.routing.model import Decision, Notification, Withheld


def sample_notification() -> Notification:
    """A notification with every field set (other tests start from it)."""
    return Notification(
        notification_id="n-1",
        kind="alert",
        event_id="e-1",
        event_type="police.domestic_abuse_incident",
        recipient="GP-A",
        at=dt.datetime(2024, 3, 1, 8, 0, 0, 250_000, tzinfo=dt.UTC),
        priority="urgent",
        flags=("restricted",),
        view="full",
        reason="You are the registered GP",
        also_notified=("HV-A",),
        ack_by=dt.datetime(2024, 3, 2, 8, tzinfo=dt.UTC),
        rule="domestic_abuse",
        content={"summary": "Synthetic.", "children": [{"name": "Child Example"}]},
        cause=None,
        follows="n-0",
        trigger_event_id="e-0",
        safeguarding_lead="Dr Lead",
    )


def test_a_notification_writes_every_field_in_declaration_order() -> None:
    note = sample_notification()
    d = note.to_dict()
    assert list(d) == [f.name for f in dataclasses.fields(Notification)]
    assert d["at"] == "2024-03-01T08:00:00.250Z" and d["ack_by"] == "2024-03-02T08:00:00Z"
    assert d["flags"] == ["restricted"] and d["also_notified"] == ["HV-A"]
    assert Notification.from_dict(d) == note


def test_the_json_form_does_not_share_the_notifications_content() -> None:
    note = sample_notification()
    d = note.to_dict()
    d["content"]["summary"] = "changed"
    assert note.content["summary"] == "Synthetic."


def sample_decision() -> Decision:
    """A decision with something shared and something withheld (other tests start from it)."""
    return Decision(
        decision_id="d-1",
        event_id="e-1",
        event_type="police.domestic_abuse_incident",
        at=dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
        rule="domestic_abuse",
        kind="alert",
        shared=(("GP-A", "n-1"),),
        withheld=(Withheld("SCHOOL-A", "education_view_only", "a school is told only that something happened"),),
        lawful_basis="public_task",
        consent="not_required",
    )


def test_a_decision_round_trips() -> None:
    decision = sample_decision()
    assert Decision.from_dict(decision.to_dict()) == decision


def test_notification_ids_are_the_rfc_4122_name_based_uuids_they_always_were() -> None:
    """The fast id is exactly ``uuid5(namespace, parts joined by US)``: ids on existing logs stay the same."""
    import random
    import uuid

    from broker.routing.model import _NS, notification_id

    rng = random.Random(7)
    alphabet = "abcXYZ019-_ :\x1féü☃"
    for _ in range(2000):
        parts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(rng.randint(1, 4))]
        assert notification_id(*parts) == str(uuid.uuid5(_NS, "\x1f".join(parts)))
    assert notification_id("e", "GP-A") == "158f7a03-ad01-5730-93db-0f05bead38ed"  # the namespace is pinned too
