"""The rules that act on the graph, not on one event: late binding, history sweep, once only,
not to itself, retractions, acknowledgement escalations, and what recipients may see."""

from __future__ import annotations

import datetime as dt

from broker.routing.views import WITHHELD_ORG
from tests.unit.routing.world import World, notes, person


def test_late_binding_sends_catch_up_once_when_a_link_arrives() -> None:
    """A father registered after a plan started: his GP gets the plan once, kind catch_up, naming the link."""
    w = World()
    w.standard_orgs()
    child, mother, father = person("2021-01-01"), person("1995-01-01"), person("1993-01-01")
    w.household(child, [(mother, "mother", True), (father, "father", False)])
    plan, out = w.send(
        "csc.child_protection_plan",
        "CSC",
        "2021-03-01T10:00:00",
        plan_ref="P",
        child=child,
        status="started",
        category="neglect",
        summary="s",
        next_review=None,
    )
    assert "GP-B" not in notes(out)
    reg, out = w.send(
        "gp.registration",
        "GP-B",
        "2021-03-05T10:00:00",
        person=father,
        practice="GP-B",
        status="registered",
        effective_date=dt.date(2021, 3, 5),
    )
    catch = notes(out, kind="catch_up")
    assert set(catch) == {"GP-B"}
    assert catch["GP-B"].event_id == plan and reg in catch["GP-B"].reason
    assert catch["GP-B"].flags == ("restricted",)
    _, out = w.send(
        "gp.registration",
        "GP-B",
        "2021-03-06T10:00:00",
        person=father,
        practice="GP-B",
        status="registered",
        effective_date=dt.date(2021, 3, 6),
    )
    assert notes(out, kind="catch_up") == {}


def test_late_binding_skips_items_that_are_no_longer_active() -> None:
    """An ended plan is not an active item: a new link does not re-send it."""
    w = World()
    w.standard_orgs()
    child, father = person("2021-01-01"), person("1993-01-01")
    w.household(child, [(father, "father", False)])
    for status in ("started", "ended"):
        w.send("csc.child_in_need_plan", "CSC", plan_ref="P", child=child, status=status, summary="s", next_review=None)
    _, out = w.send(
        "gp.registration",
        "GP-B",
        person=father,
        practice="GP-B",
        status="registered",
        effective_date=dt.date(2020, 1, 1),
    )
    assert notes(out, kind="catch_up") == {}


def test_history_sweep_gives_csc_what_it_has_not_had_when_a_plan_starts() -> None:
    """¶16: the GP's disclosure, never shared, reaches the CSC as history when a plan starts."""
    w = World()
    w.standard_orgs()
    child, mother = person("2021-01-01"), person("1995-01-01")
    disclosure, out = w.send(
        "gp.safeguarding_information",
        "GP-A",
        "2021-02-01T10:00:00",
        person=mother,
        category="substance_misuse",
        summary="s",
    )
    assert notes(out) == {}
    w.household(child, [(mother, "mother", True)])
    _, out = w.send(
        "csc.child_in_need_plan",
        "CSC",
        "2021-03-01T10:00:00",
        plan_ref="P",
        child=child,
        status="started",
        summary="s",
        next_review=None,
    )
    history = notes(out, kind="history")
    assert set(history) == {"CSC"} and history["CSC"].event_id == disclosure
    assert history["CSC"].priority == "routine"
    _, out = w.send(
        "csc.child_in_need_plan",
        "CSC",
        "2021-03-02T10:00:00",
        plan_ref="P2",
        child=child,
        status="started",
        summary="s",
        next_review=None,
    )
    assert notes(out, kind="history") == {}  # it has had it now


def test_once_only_one_notification_naming_every_path() -> None:
    """A practice that is both the child's and the victim's GP gets one notification whose reason names both."""
    w = World()
    w.standard_orgs()
    child, mother = person("2021-01-01"), person("1995-01-01")
    w.register(child, "GP-A")
    w.register(mother, "GP-A")
    _, out = w.incident(mother, None, present=[child], at="2021-02-01T10:00:00")
    got = [o for o in out if getattr(o, "recipient", None) == "GP-A"]
    assert len(got) == 1
    assert "child" in got[0].reason and "victim" in got[0].reason


def test_not_to_itself() -> None:
    """The publishing organisation never receives its own event."""
    w = World()
    w.standard_orgs()
    w.org("CSC2", "childrens_social_care")
    child = person("2021-01-01")
    w.send("link.professional_assigned", "CSC", person=child, org="CSC", role="social_worker", status="assigned")
    _, out = w.send(
        "police.domestic_abuse_incident",
        "CSC",
        incident_ref="X",
        victim=person("1990-01-01"),
        perpetrator=None,
        children_present=[child],
        children_in_household=[],
        risk_level="high",
        marac_referral=False,
        summary="s",
    )
    assert "CSC" not in notes(out, kind=None)


def test_unacknowledged_notifications_escalate_once_at_ack_by() -> None:
    """Urgent: 24 hours; an acknowledged notification does not escalate; each escalates once."""
    w = World()
    w.standard_orgs()
    child, mother = person("2021-01-01"), person("1995-01-01")
    w.register(child, "GP-A")
    w.register(mother, "GP-B")
    incident, out = w.incident(mother, None, present=[child], at="2021-02-01T10:00:00")
    assert notes(out)["GP-A"].ack_by == dt.datetime(2021, 2, 2, 10, tzinfo=dt.UTC)
    w.ack(incident, "GP-A", "2021-02-02T09:59:00")
    esc = notes(w.run_until("2021-02-02T10:00:00"), kind="escalation")
    assert "GP-A" not in esc and esc["GP-B"].cause == "unacknowledged"
    assert esc["GP-B"].safeguarding_lead == "Lead"
    assert notes(w.run_until("2021-03-01T00:00:00"), kind="escalation") == {}


def test_nothing_escalates_before_the_time_next_due_names() -> None:
    """``next_due`` is when the clock may first raise something: the live router skips the clock until then."""
    w = World()
    w.standard_orgs()
    assert w.state.next_due() is None
    child, mother = person("2021-01-01"), person("1995-01-01")
    w.register(child, "GP-A")
    w.register(mother, "GP-B")
    w.incident(mother, None, present=[child], at="2021-02-01T10:00:00")
    due = w.state.next_due()
    assert due == dt.datetime(2021, 2, 2, 10, tzinfo=dt.UTC)
    assert notes(w.run_until("2021-02-02T09:59:59"), kind="escalation") == {}
    assert notes(w.run_until("2021-02-02T10:00:00"), kind="escalation")
    assert w.state.next_due() is None


def test_retraction_tells_everyone_told_and_stops_the_item() -> None:
    """A retracted incident goes as a retraction to each recipient and is no longer history or active."""
    w = World()
    w.standard_orgs()
    mother = person("1995-01-01")
    w.register(mother, "GP-A")
    incident, out = w.incident(mother, None, at="2021-02-01T10:00:00")
    assert set(notes(out)) == {"GP-A"}
    _, out = w.send(
        "record.retracted", "POLICE", "2021-02-01T11:00:00", original_event_id=incident, reason="wrong family"
    )
    retr = notes(out, kind="retraction")
    assert set(retr) == {"GP-A"} and retr["GP-A"].follows
    _, out = w.send(
        "midwifery.pregnancy_booked",
        "MW",
        "2021-02-02T10:00:00",
        booking_ref="B",
        mother=mother,
        expected_father=None,
        expected_date=dt.date(2021, 9, 1),
        midwifery_service="MW",
    )
    assert notes(out, kind="pre_birth_alert") == {} and notes(out, kind="catch_up") == {}
    assert notes(w.run_until("2021-03-01T00:00:00"), kind="escalation") == {}  # no ack chased for it


def test_schools_get_the_education_view_and_never_health_information() -> None:
    """Schools see type, date, child and presence only, and never GP, midwifery or adult concerns."""
    w = World()
    w.standard_orgs()
    child, mother = person("2012-01-01", name="Child Name"), person("1985-01-01", name="Adult Name")
    w.household(child, [(mother, "mother", True)], school="SCHOOL")
    w.send("csc.child_in_need_plan", "CSC", plan_ref="P", child=child, status="started", summary="s", next_review=None)
    _, out = w.incident(mother, None, present=[child])
    school = notes(out)["SCHOOL"]
    assert school.view == "education"
    assert set(school.content) == {"event_id", "event_type", "date", "child", "child_present"}
    assert school.content["child_present"] is True
    assert "Adult Name" not in str(school.to_dict()) and "synthetic incident" not in str(school.to_dict())
    _, out = w.send("adult.concern_about_parent", "ADULTS", person=mother, category="mental_health", summary="s")
    assert "SCHOOL" not in notes(out, kind=None)


def test_sensitive_persons_organisations_are_hidden_from_others() -> None:
    """A victim who fled: her new GP is told, but nobody else's notification names that practice."""
    w = World()
    w.standard_orgs()
    child, mother, father = person("2021-01-01"), person("1995-01-01"), person("1993-01-01")
    w.register(mother, "GP-A")
    w.register(father, "GP-B")
    w.register(child, "GP-A")
    w.send("identity.sensitive_record", "GP-A", person=mother, sensitive=True)
    _, out = w.incident(mother, father, present=[child], at="2021-02-01T10:00:00")
    got = notes(out)
    assert {"GP-A", "GP-B"} <= set(got)
    for org, note in got.items():
        if org != "GP-A":
            assert "GP-A" not in str(note.to_dict()), org
    assert "GP-B" in got["GP-A"].also_notified  # the hidden practice itself may see the others
    assert WITHHELD_ORG  # the placeholder exists for scrubbed content
