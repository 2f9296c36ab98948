"""The words of routing.md, each checked on a small family."""

from __future__ import annotations

import datetime as dt

from broker.routing.model import Notification
from tests.unit.routing.world import World, notes, person, withheld


def test_a_person_named_as_child_with_no_date_of_birth_is_a_child() -> None:
    """A child field with no date of birth still makes the person a child whose professionals hear."""
    w = World()
    w.standard_orgs()
    child, mother = person(None), person("1990-01-01")
    w.register(child, "GP-A")
    _, out = w.incident(mother, None, present=[child])
    assert "GP-A" in notes(out)


def test_an_adult_named_in_a_child_field_is_not_a_child() -> None:
    """Someone 18 or over on the event's date is not a child, so the child rules do not reach their GP."""
    w = World()
    w.standard_orgs()
    adult = person("1990-01-01")
    w.register(adult, "GP-A")
    _, out = w.incident(person("1980-01-01"), None, present=[adult])
    assert "GP-A" not in notes(out)


def test_a_father_who_does_not_live_with_the_child_is_a_carer() -> None:
    """Think Father: a father's GP hears of a plan even though he lives elsewhere."""
    w = World()
    w.standard_orgs()
    child, mother, father = person("2021-06-01"), person("1995-01-01"), person("1993-01-01")
    w.register(father, "GP-B")
    w.household(child, [(mother, "mother", True), (father, "father", False)])
    _, out = w.send(
        "csc.child_in_need_plan", "CSC", plan_ref="P", child=child, status="started", summary="s", next_review=None
    )
    assert "GP-B" in notes(out)
    assert "father" in notes(out)["GP-B"].reason


def test_other_adults_are_carers_only_when_they_live_with_the_child() -> None:
    """An other_adult who does not live with the child is not a carer; one who does is."""
    w = World()
    w.standard_orgs()
    child, lodger, visitor = person("2021-06-01"), person("1980-01-01"), person("1981-01-01")
    w.register(lodger, "GP-A")
    w.register(visitor, "GP-B")
    w.household(child, [(lodger, "other_adult", True), (visitor, "other_adult", False)])
    _, out = w.send(
        "csc.child_in_need_plan", "CSC", plan_ref="P", child=child, status="started", summary="s", next_review=None
    )
    assert "GP-A" in notes(out) and "GP-B" not in notes(out)


def test_the_latest_household_replaces_partners_but_parenthood_never_ends() -> None:
    """A partner dropped from the latest composition stops being a carer; a mother never does."""
    w = World()
    w.standard_orgs()
    child, mother, partner = person("2021-06-01"), person("1995-01-01"), person("1990-01-01")
    w.register(mother, "GP-A")
    w.register(partner, "GP-B")
    w.household(child, [(mother, "mother", True), (partner, "partner_of_parent", True)])
    w.household(child, [])
    _, out = w.send(
        "csc.child_in_need_plan", "CSC", plan_ref="P", child=child, status="started", summary="s", next_review=None
    )
    assert "GP-A" in notes(out) and "GP-B" not in notes(out)


def test_birth_parents_live_with_the_child_until_a_household_says_otherwise() -> None:
    """Children living with the victim come from the birth notification, then from the latest household."""
    w = World()
    w.standard_orgs()
    child, mother = person("2021-06-01"), person("1995-01-01")
    w.register(child, "GP-A")
    w.birth(child, mother, None, hv="HV")
    _, out = w.incident(mother, None, at="2021-07-01T10:00:00")
    assert {"GP-A", "HV"} <= set(notes(out))
    w.household(child, [(mother, "mother", False)])
    _, out = w.incident(mother, None, at="2021-07-02T10:00:00")
    assert "GP-A" not in notes(out) and "HV" not in notes(out)


def test_a_null_school_means_not_known_and_the_earlier_one_stands() -> None:
    """A later household with school null keeps the school named earlier."""
    w = World()
    w.standard_orgs()
    child, mother = person("2012-06-01"), person("1985-01-01")
    w.household(child, [(mother, "mother", True)], school="SCHOOL")
    w.household(child, [(mother, "mother", True)], school=None)
    _, out = w.incident(mother, None, present=[child])
    assert notes(out)["SCHOOL"].view == "education"


def test_an_ended_assignment_removes_the_organisation_and_is_recorded() -> None:
    """After a health visitor's assignment ends, it hears nothing new, and the decision not to tell it is kept."""
    w = World()
    w.standard_orgs()
    child, mother = person("2021-06-01"), person("1995-01-01")
    w.send("link.professional_assigned", "HV", person=child, org="HV", role="health_visitor", status="assigned")
    w.send("link.professional_assigned", "HV", person=child, org="HV", role="health_visitor", status="ended")
    _, out = w.incident(mother, None, present=[child], at="2021-07-01T10:00:00")
    assert "HV" not in notes(out)
    assert any(org == "HV" and "ended" in reason for org, _, reason in withheld(out))


def test_health_visitors_serve_under_fives_and_schools_fours_and_over() -> None:
    """A four-year-old's health visitor and school both hear; a ten-year-old's health visitor does not."""
    w = World()
    w.standard_orgs()
    w.org("HV2", "health_visiting")
    w.org("SCHOOL2", "school")
    four, ten, mother = person("2017-03-01"), person("2011-03-01"), person("1985-01-01")
    w.household(four, [(mother, "mother", True)], school="SCHOOL", hv="HV")
    w.household(ten, [(mother, "mother", True)], school="SCHOOL2", hv="HV2")
    _, out = w.incident(mother, None, present=[four, ten], at="2021-06-01T10:00:00")
    got = notes(out)
    assert {"HV", "SCHOOL", "SCHOOL2"} <= set(got)
    assert "HV2" not in got


def test_the_gp_of_a_person_is_where_they_are_registered_on_the_day() -> None:
    """After deregistration a practice hears nothing new, and that decision is recorded."""
    w = World()
    w.standard_orgs()
    victim = person("1990-01-01")
    w.register(victim, "GP-A", on="2015-01-01")
    w.register(victim, "GP-A", on="2020-06-01", status="deregistered")
    _, out = w.incident(victim, None, at="2021-01-10T10:00:00")
    assert "GP-A" not in notes(out)
    assert any(org == "GP-A" and "deregistered" in reason for org, _, reason in withheld(out))
    w.register(victim, "GP-B", on="2021-02-01")
    _, out = w.incident(victim, None, at="2021-03-01T10:00:00")
    assert "GP-B" in notes(out)


def test_responsible_csc_is_the_social_worker_then_the_latest_publisher_then_the_area() -> None:
    """Responsible CSC: the assigned social worker first, else whoever last published about the child."""
    w = World()
    w.standard_orgs()
    w.org("CSC-K", "childrens_social_care", area="kirklees")
    child, mother = person("2015-01-01"), person("1985-01-01")
    w.household(child, [(mother, "mother", True)])
    _, out = w.incident(mother, None)
    assert "CSC" in notes(out)  # the area's CSC published the household
    w.send(
        "csc.child_protection_plan",
        "CSC-K",
        plan_ref="K1",
        child=child,
        status="started",
        category="neglect",
        summary="s",
        next_review=None,
    )
    _, out = w.incident(mother, None)
    assert "CSC-K" in notes(out) and "CSC" not in notes(out)
    w.send("link.professional_assigned", "CSC", person=child, org="CSC", role="social_worker", status="assigned")
    _, out = w.incident(mother, None)
    assert "CSC" in notes(out) and "CSC-K" not in notes(out)


def test_an_active_pregnancy_ends_at_birth_or_28_days_after_the_expected_date() -> None:
    """The unborn child is a child of an incident only while the pregnancy is active."""
    w = World()
    w.standard_orgs()
    mother = person("1995-01-01")
    w.send(
        "midwifery.pregnancy_booked",
        "MW",
        "2021-02-01T10:00:00",
        booking_ref="B1",
        mother=mother,
        expected_father=None,
        expected_date=dt.date(2021, 8, 1),
        midwifery_service="MW",
    )
    _, out = w.incident(mother, None, at="2021-08-20T10:00:00")
    assert "MW" in notes(out)
    _, out = w.incident(mother, None, at="2021-09-01T10:00:00")
    assert "MW" not in notes(out)


def test_a_childs_perpetrator_parent_brings_the_child_in_wherever_the_child_lives() -> None:
    """¶22: the perpetrator's own children are children of the incident even if they live elsewhere."""
    w = World()
    w.standard_orgs()
    child, mother, father = person("2019-01-01"), person("1990-01-01"), person("1988-01-01")
    w.household(child, [(mother, "mother", True), (father, "father", False)], hv="HV")
    _, out = w.incident(person("1960-01-01"), father)
    assert "HV" in notes(out)
    assert "perpetrator" in notes(out)["HV"].reason


def test_same_person_joins_two_records() -> None:
    """A police record without an NHS number is joined to the child by identity.same_person."""
    w = World()
    w.standard_orgs()
    child = person("2021-01-01")
    police_ref = person(None, nhs=False, local="POLICE:C9")
    w.register(child, "GP-A")
    _, out = w.incident(person("1990-01-01"), None, present=[police_ref])
    assert "GP-A" not in notes(out)
    w.send("identity.same_person", "CSC", a=child, b=police_ref, basis="MASH confirmed")
    _, out = w.incident(person("1990-01-01"), None, present=[police_ref])
    assert "GP-A" in notes(out)


def test_every_notification_is_a_notification() -> None:
    """Sanity: the helpers return Notification objects with reasons."""
    w = World()
    w.standard_orgs()
    v = person("1990-01-01")
    w.register(v, "GP-A")
    _, out = w.incident(v, None)
    assert all(isinstance(n, Notification) and n.reason for n in notes(out).values())


def test_the_organisations_of_an_area_follow_the_directory_as_it_changes() -> None:
    """An organisation re-listed in another area or as another kind leaves its old place; the answer is sorted."""
    from broker.routing.graph import FamilyGraph

    g = FamilyGraph()
    for org, kind, area in (("MARAC-B", "marac", "north"), ("MARAC-A", "marac", "north"), ("CSC-N", "csc", "north")):
        g.list_organisation({"org_id": org, "kind": kind, "area": area})
    assert g.orgs_of_kind_in_area("marac", "north") == ["MARAC-A", "MARAC-B"]
    g.list_organisation({"org_id": "MARAC-B", "kind": "marac", "area": "south"})
    assert g.orgs_of_kind_in_area("marac", "north") == ["MARAC-A"]
    assert g.orgs_of_kind_in_area("marac", "south") == ["MARAC-B"]
    assert g.orgs_of_kind_in_area("marac", None) == []
    # A graph decoded from a snapshot written before the index was kept builds it from the directory.
    del g._in_area
    assert g.orgs_of_kind_in_area("marac", "south") == ["MARAC-B"]
    g.list_organisation({"org_id": "MARAC-C", "kind": "marac", "area": "south"})
    assert g.orgs_of_kind_in_area("marac", "south") == ["MARAC-B", "MARAC-C"]
    del g._in_area  # and when the first change after such a snapshot moves an organisation already listed
    g.list_organisation({"org_id": "MARAC-A", "kind": "marac", "area": "south"})
    assert g.orgs_of_kind_in_area("marac", "south") == ["MARAC-A", "MARAC-B", "MARAC-C"]
    assert g.orgs_of_kind_in_area("marac", "north") == []
