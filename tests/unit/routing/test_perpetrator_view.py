"""The perpetrator view (routing.md, What each recipient may see): his GP learns only what it must.

Issue 11's attack "the perpetrator's GP got the victim's record" is the first test, repeated: it now
gets no name, NHS number, children's identities or free-text summary of anyone but its patient.
"""

from __future__ import annotations

import json

from broker.routing.model import Notification
from tests.unit.routing.world import World, notes, person


def _family(w: World) -> tuple[dict, dict, dict]:
    """A mother and her six-year-old at GP-A with a school; her former partner at GP-B."""
    w.standard_orgs()
    mother = person("1995-08-21", name="Mother P")
    child = person("2017-09-14", name="Child P")
    ex = person("1991-03-02", name="Former partner P")
    w.register(mother, "GP-A")
    w.register(child, "GP-A")
    w.register(ex, "GP-B")
    w.household(child, [(mother, "mother", True)], school="SCHOOL")
    return mother, child, ex


def _text(note: Notification) -> str:
    return json.dumps(note.to_dict())


def test_the_perpetrators_own_gp_gets_the_perpetrator_view_and_nothing_else_of_the_family() -> None:
    """No summary, no name or number of the victim or child, no GP or school of theirs: only the facts the GP needs."""
    w = World()
    mother, child, ex = _family(w)
    w.send(
        "police.domestic_abuse_incident",
        "POLICE",
        "2024-02-03T21:30:00",
        incident_ref="I-P",
        victim=mother,
        perpetrator=ex,
        children_present=[],
        children_in_household=[child],
        risk_level="medium",
        marac_referral=False,
        summary="Refuge at 12 Secret Lane",
    )
    got = notes(w.outputs)
    perp = got["GP-B"]
    assert perp.view == "perpetrator" and perp.flags == ("perpetrator_record", "restricted")
    assert perp.content["risk_level"] == "medium" and perp.content["patient_named_as"] == "alleged_perpetrator"
    assert perp.content["patient"]["nhs_number"] == ex["nhs_number"]
    assert perp.content["children"] == {"count": 1, "ages": [6]}
    assert perp.also_notified == ("CSC",)  # not GP-A or SCHOOL: they say where the victim and child are
    text = _text(perp)
    for secret in ("Secret Lane", "Mother P", "Child P", mother["nhs_number"], child["nhs_number"], "GP-A", "SCHOOL"):
        assert secret not in text, secret
    assert got["GP-A"].view == "full" and "Secret Lane" in _text(got["GP-A"])
    assert got["SCHOOL"].view == "education"


def test_a_practice_that_is_also_the_victims_gp_gets_the_full_view() -> None:
    """When the perpetrator's practice is also the victim's or a child's GP, not every path runs through him."""
    w = World()
    mother, child, ex = _family(w)
    w.register(ex, "GP-A", on="2020-01-01")
    w.incident(mother, ex, household=[child], at="2024-02-03T21:30:00")
    gp = notes(w.outputs)["GP-A"]
    assert gp.view == "full" and gp.flags == ("perpetrator_record", "restricted")
    assert "GP-B" not in notes(w.outputs)


def test_a_marac_case_gives_the_perpetrators_gp_the_perpetrator_view_with_marac_listed() -> None:
    """R7: the view holds for a MARAC case; MARAC, police and partnership may appear in also_notified."""
    w = World()
    mother, child, ex = _family(w)
    w.incident(mother, ex, household=[child], risk="high", at="2024-02-03T21:30:00")
    w.send(
        "marac.case_heard",
        "MARAC",
        "2024-02-10T10:00:00",
        marac_ref="M-P",
        victim=mother,
        perpetrator=ex,
        children=[child],
        heard_on=w.clock.date(),
        actions="Move her to the refuge on Secret Lane",
    )
    marac = [o for o in w.outputs if isinstance(o, Notification) and o.event_type == "marac.case_heard"]
    perp = next(o for o in marac if o.recipient == "GP-B")
    assert perp.view == "perpetrator" and perp.content["risk_level"] is None
    assert set(perp.also_notified) <= {"CSC", "POLICE", "MARAC", "PSHIP"}
    assert "Secret Lane" not in _text(perp) and "GP-A" not in _text(perp)
    incident = next(o for o in w.outputs if isinstance(o, Notification) and o.recipient == "GP-B")
    assert incident.view == "perpetrator" and incident.also_notified == ("CSC", "MARAC")


def test_a_plan_is_never_sent_in_the_perpetrator_view() -> None:
    """The view is for incidents and MARAC cases: a carer's GP hears of a plan in full."""
    w = World()
    mother, child, ex = _family(w)
    w.household(child, [(mother, "mother", True), (ex, "father", False)], school="SCHOOL")
    w.send(
        "csc.child_in_need_plan",
        "CSC",
        plan_ref="CIN-P",
        child=child,
        status="started",
        summary="Support",
        next_review=None,
    )
    assert notes(w.outputs)["GP-B"].view == "full"


def test_a_retraction_to_the_perpetrators_gp_keeps_to_the_perpetrator_view() -> None:
    """The retraction of an incident carries no free-text reason to a practice that had the perpetrator view."""
    w = World()
    mother, child, ex = _family(w)
    incident, _ = w.incident(mother, ex, household=[child], at="2024-02-03T21:30:00")
    _, out = w.send(
        "record.retracted", "POLICE", original_event_id=incident, reason="entered on the wrong child at Secret Lane"
    )
    retractions = notes(out, "retraction")
    assert retractions["GP-B"].view == "perpetrator" and "reason" not in retractions["GP-B"].content
    assert retractions["GP-A"].view == "full" and "Secret Lane" in retractions["GP-A"].content["reason"]


def test_a_late_registration_sends_the_perpetrator_view_as_a_catch_up() -> None:
    """A perpetrator who registers at a practice after the incident: it hears of it once, in the perpetrator view."""
    w = World()
    mother, child, _ = _family(w)
    newcomer = person("1990-06-06", name="Newcomer P")
    w.incident(mother, newcomer, household=[child], at="2024-02-03T21:30:00")
    w.register(newcomer, "GP-C", on="2024-02-03")
    caught = notes(w.outputs, "catch_up")["GP-C"]
    assert caught.view == "perpetrator" and "GP-A" not in caught.also_notified
    assert caught.content["children"] == {"count": 1, "ages": [6]}
