"""Late binding (routing.md): which children and carers a new link re-routes, and who then gets a catch_up.

Issue 11's "late binding missed a plan for a mother's new partner who registered at a new practice"
is the first test, repeated: the new practice now gets the plan once, as a catch_up.
"""

from __future__ import annotations

import datetime as dt

from broker.routing.words import rebound_persons
from tests.unit.routing.world import World, notes, person


def _household(w: World) -> tuple[dict, dict, dict, dict]:
    """A boy of six with his mother (GP-A) and her partner (GP-B); the boy's father lives elsewhere."""
    w.standard_orgs()
    mother, child = person("1995-08-21"), person("2017-09-14")
    partner, father = person("1993-11-30"), person("1990-01-01")
    w.register(mother, "GP-A")
    w.register(child, "GP-A")
    w.register(partner, "GP-B")
    w.household(
        child,
        [(mother, "mother", True), (partner, "partner_of_parent", True), (father, "father", False)],
        school="SCHOOL",
    )
    return mother, child, partner, father


def _plan(w: World, child: dict) -> str:
    event_id, _ = w.send(
        "csc.child_in_need_plan",
        "CSC",
        "2024-03-11T10:00:00",
        plan_ref="CIN-L",
        child=child,
        status="started",
        summary="Support with housing",
        next_review=None,
    )
    return event_id


def test_a_partner_of_a_parent_who_moves_practice_brings_his_new_gp_the_plan() -> None:
    """The partner's registration re-routes the plan of the child he cares for: his new GP gets it once."""
    w = World()
    _, child, partner, _ = _household(w)
    plan = _plan(w, child)
    assert "GP-B" in notes(w.outputs)
    w.register(partner, "GP-B", on="2024-04-19", status="deregistered")
    _, out = w.send(
        "gp.registration",
        "GP-C",
        "2024-04-22T09:00:00",
        person=partner,
        practice="GP-C",
        status="registered",
        effective_date=dt.date(2024, 4, 22),
    )
    caught = notes(out, "catch_up")
    assert set(caught) == {"GP-C"} and caught["GP-C"].event_id == plan
    assert "new link: gp.registration" in caught["GP-C"].reason


def test_a_link_naming_one_carer_re_routes_items_about_the_other_carers_of_the_child() -> None:
    """An incident naming only the mother reaches the father's new GP when the father's registration arrives."""
    w = World()
    mother, child, _, father = _household(w)
    w.incident(mother, None, household=[child], at="2024-02-03T21:30:00")
    plan = _plan(w, child)
    _, out = w.send(
        "gp.registration",
        "GP-C",
        "2024-03-20T09:00:00",
        person=father,
        practice="GP-C",
        status="registered",
        effective_date=dt.date(2024, 3, 20),
    )
    caught = notes(out, "catch_up")
    assert set(caught) == {"GP-C"} and caught["GP-C"].event_id == plan  # R2 reaches a father's GP; R1 does not


def test_the_persons_a_link_touches_are_exactly_those_routing_md_names() -> None:
    """Named people, children they care for (partners included), those children's other carers: no one else."""
    w = World()
    mother, child, partner, father = _household(w)
    stranger, adult_son = person("1980-01-01"), person("2000-01-01")
    w.household(adult_son, [(partner, "father", True)])
    people = w.state.graph.people
    keys = {
        name: people.resolve(ref)
        for name, ref in dict(
            mother=mother, child=child, partner=partner, father=father, stranger=stranger, adult_son=adult_son
        ).items()
    }
    touched = rebound_persons(w.state.graph, [keys["partner"]], dt.date(2024, 4, 22))
    assert touched == {keys["partner"], keys["child"], keys["mother"], keys["father"]}  # the adult son is no child
    assert rebound_persons(w.state.graph, [keys["stranger"]], dt.date(2024, 4, 22)) == {keys["stranger"]}
    assert rebound_persons(w.state.graph, [keys["child"]], dt.date(2024, 4, 22)) == {keys["child"]}


def test_the_other_parent_of_an_unborn_child_is_touched_by_a_parents_link() -> None:
    """A mother's new registration re-routes active items about the expected father of her active pregnancy."""
    w = World()
    w.standard_orgs()
    mother, father = person("1996-01-01"), person("1994-01-01")
    w.send(
        "midwifery.pregnancy_booked",
        "MW",
        "2024-01-10T10:00:00",
        booking_ref="B-L",
        mother=mother,
        expected_father=father,
        expected_date=dt.date(2024, 7, 1),
        midwifery_service="MW",
    )
    people = w.state.graph.people
    m, f = people.resolve(mother), people.resolve(father)
    assert m is not None and f is not None
    assert rebound_persons(w.state.graph, [m], dt.date(2024, 2, 1)) == {m, f}
