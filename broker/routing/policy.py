"""The routing policy, R1 to R10 (``routing.md``): who must hear of an event, and why.

One place to read who gets what. Each rule is a small function from an event
and the family graph (as it stands, with ages and registrations taken on the
``as_of`` day) to a ``Route``: recipients, each with the paths that reach it,
and the decisions not to share. Pure: no clock, no I/O, no awaiting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from broker.model import Event
from broker.routing.facts import is_unborn
from broker.routing.graph import FamilyGraph
from broker.routing.items import Items
from broker.routing.words import Builder, Route, incident_children

__all__ = ["NOT_FOR_SCHOOLS", "RULES", "route_event", "rule_for"]

# Which rule answers which event type (R10 is a timer: see state.py).
RULES: dict[str, str] = {
    "police.domestic_abuse_incident": "R1",
    "csc.child_in_need_plan": "R2",
    "csc.child_protection_plan": "R3",
    "csc.strategy_meeting": "R4",
    "midwifery.pregnancy_booked": "R5",
    "midwifery.birth_notified": "R6",
    "marac.case_heard": "R7",
    "gp.safeguarding_information": "R8",
    "midwifery.safeguarding_concern": "R8",
    "adult.concern_about_parent": "R8a",
    "csc.pre_birth_assessment": "R8b",
    "challenge.raised": "R9",
    "challenge.resolved": "R9b",
}

# Types a school never receives (``routing.md``: what each recipient may see).
NOT_FOR_SCHOOLS = frozenset(
    {"gp.safeguarding_information", "midwifery.safeguarding_concern", "adult.concern_about_parent"}
)


def rule_for(event_type: str) -> str | None:
    return RULES.get(event_type)


# -- the rules ----------------------------------------------------------------------------


def _incident(b: Builder, *, children_fields: Mapping[str, str], with_marac: bool) -> Route:
    d = b.event.data
    children = incident_children(b, d, children_fields)
    for child, (relation, present) in sorted(children.items()):
        b.professionals(child, relation, present=present)
        b.responsible_csc(child, relation)
    victim = b.g.people.resolve(d.get("victim"))
    perpetrator = b.g.people.resolve(d.get("perpetrator"))
    if victim:
        b.gp(victim, "victim")
        for preg in b.g.active_pregnancies(victim, b.day):
            b.add(
                preg.midwifery_service,
                f"midwifery service ({preg.midwifery_service}) of the victim's {b.who(victim)} active pregnancy",
            )
    if perpetrator:
        b.gp(perpetrator, "perpetrator", perpetrator=True)
    urgent = any(is_unborn(c) or b.g.people.age_on(c, b.day) == 0 for c in children)
    if with_marac:
        if d.get("risk_level") == "high" or d.get("marac_referral"):
            why = "high risk" if d.get("risk_level") == "high" else "referred to MARAC"
            for org in b.g.orgs_of_kind_in_area("marac", b.area):
                b.add(org, f"MARAC ({org}) of the area ({b.area}): {why}")
        urgent = urgent or d.get("risk_level") == "high"
    else:
        urgent = True  # R7: MARAC cases are always urgent
    return b.route(
        "alert",
        "urgent" if urgent else "routine",
        perpetrators=frozenset({perpetrator} if perpetrator else set()),
        children=tuple(sorted(children)),
    )


def r1_domestic_abuse(b: Builder, items: Items) -> Route:
    return _incident(
        b,
        with_marac=True,
        children_fields={
            "children_present": " present at the incident",
            "children_in_household": " in the household",
        },
    )


def r7_marac(b: Builder, items: Items) -> Route:
    return _incident(b, with_marac=False, children_fields={"children": " named in the MARAC case"})


def _plan(b: Builder) -> None:
    child = b.g.people.resolve(b.event.data["child"])
    if child:
        b.professionals(child, "")
        b.carers_gps(child)


def r2_child_in_need(b: Builder, items: Items) -> Route:
    _plan(b)
    return b.route("alert", "routine")


def r3_child_protection(b: Builder, items: Items) -> Route:
    _plan(b)
    b.area_orgs("police", "police")
    return b.route("alert", "urgent" if b.event.data["status"] == "started" else "routine")


def r4_strategy_meeting(b: Builder, items: Items) -> Route:
    for child in b.children_named(b.event.data.get("children")):
        b.professionals(child, "")
        b.carers_gps(child)
    return b.route("alert", "urgent" if b.event.data["decision"] == "section_47" else "routine")


def r5_pregnancy_booked(b: Builder, items: Items) -> Route:
    d = b.event.data
    mother = b.g.people.resolve(d["mother"])
    father = b.g.people.resolve(d.get("expected_father"))
    listed: dict[str, Event] = {}
    for person in (mother, father):
        if person:
            b.involved.add(person)
            for e in items.history(person, b.as_of):
                listed[e.event_id] = e
    if not listed:
        b.withhold(None, "no history for mother or expected father")
        return b.route("pre_birth_alert", "urgent")
    booking = str(d["booking_ref"])
    unborn = "unborn:" + booking
    b.responsible_csc(unborn)
    if mother:
        b.gp(mother, "mother")
    if father:
        b.gp(father, "expected father")
    service = str(d["midwifery_service"])
    b.add(service, f"booking midwifery service ({service}) of {b.child_label(unborn)}", may_be_publisher=True)
    perpetrators = set()
    for e in listed.values():
        if e.event_type in ("police.domestic_abuse_incident", "marac.case_heard"):
            p = b.g.people.resolve(e.data.get("perpetrator"))
            if p:
                perpetrators.add(p)
    ordered = sorted(listed.values(), key=lambda e: (e.occurred_at, items.seq[e.event_id]))
    return b.route(
        "pre_birth_alert",
        "urgent",
        items=tuple(e.event_id for e in ordered),
        perpetrators=frozenset(perpetrators),
    )


def r6_birth(b: Builder, items: Items) -> Route:
    d = b.event.data
    child = b.g.people.resolve(d["child"])
    hv = d.get("health_visiting")
    if hv and child:
        b.involved.add(child)
        b.add(str(hv), f"health visiting ({hv}) named at the birth of child {b.who(child)}", child=child)
    else:
        b.withhold(None, "no health visiting service named in the birth notification")
    return b.route("alert", "routine")


def _concern_children(b: Builder, items: Items, person: str, *, any_child: bool) -> list[tuple[str, str]]:
    """Children whose carer (or unborn child whose parent) the person is, with how."""
    out: list[tuple[str, str]] = []
    for child, how in sorted(b.g.cared_for(person).items()):
        if not b.g.people.is_child(child, b.day, named_as_child=True):
            continue
        if any_child or items.active_plans_of_child(child, b.as_of):
            out.append((child, f" of whom {b.who(person)} is {how}"))
    for preg in b.g.active_pregnancies(person, b.day):
        out.append((preg.unborn, ""))
    return out


def r8_safeguarding_information(b: Builder, items: Items) -> Route:
    d = b.event.data
    person = b.g.people.resolve(d.get("person") or d.get("mother"))
    if person is None:
        b.withhold(None, "no person")
        return b.route("alert", "routine")
    b.involved.add(person)
    children = _concern_children(b, items, person, any_child=False)
    assessments = b.g.open_assessments(person)
    for child, relation in children:
        b.responsible_csc(child, relation)
        if not is_unborn(child):
            _hv_only(b, child, relation)
    for a in assessments:
        b.add(
            a.publisher,
            f"children's social care ({a.publisher}) of the open pre-birth assessment "
            f"of mother ({b.g.people.label(a.mother)})",
        )
    if not children and not assessments:
        b.withhold(
            None,
            "not a carer of a child with an active plan, nor a parent of an active pregnancy "
            "or open pre-birth assessment: kept as a history item",
        )
    return b.route("alert", "routine")


def _hv_only(b: Builder, child: str, relation: str) -> None:
    age = b.g.people.age_on(child, b.day)
    if age is not None and age >= 5:
        return
    org, ended = b.g.slot(child, "health_visiting")
    if org:
        b.add(org, f"health visiting ({org}) of child {b.who(child)}{relation}", child=child)
    elif ended:
        b.withhold(ended, f"health visiting assignment for child {b.who(child)} ended")


def r8a_concern_about_parent(b: Builder, items: Items) -> Route:
    person = b.g.people.resolve(b.event.data["person"])
    if person is None:
        return b.route("alert", "routine")
    b.involved.add(person)
    children = _concern_children(b, items, person, any_child=True)
    if not children:
        b.withhold(None, "not a carer of any child: kept as a history item")
        return b.route("alert", "routine")
    for child, relation in children:
        b.responsible_csc(child, relation)
        if not is_unborn(child):
            _hv_only(b, child, relation)
    b.gp(person, "parent" if children else "person")
    return b.route("alert", "routine")


def r8b_pre_birth_assessment(b: Builder, items: Items) -> Route:
    d = b.event.data
    mother = b.g.people.resolve(d["mother"])
    father = b.g.people.resolve(d.get("expected_father"))
    if mother:
        b.gp(mother, "mother")
        for preg in b.g.active_pregnancies(mother, b.day):
            b.add(
                preg.midwifery_service,
                f"midwifery service ({preg.midwifery_service}) of the active pregnancy of mother {b.who(mother)}",
            )
    if father:
        b.gp(father, "expected father")
    return b.route("alert", "routine")


def r9_challenge_raised(b: Builder, items: Items) -> Route:
    target = str(b.event.data["directed_to"])
    b.add(target, f"challenge directed to {target}")
    b.area_orgs("partnership", "safeguarding partnership")
    child = b.g.people.resolve(b.event.data.get("child"))
    if child:
        b.involved.add(child)
    return b.route("alert", "routine")


def r9b_challenge_resolved(b: Builder, items: Items) -> Route:
    raised = items.challenge_event(str(b.event.data["challenge_ref"]))
    if raised is not None:
        child = b.g.people.resolve(raised.data.get("child"))
        if child:
            b.involved.add(child)
        b.add(raised.source, f"raised the challenge ({raised.source})")
        target = str(raised.data["directed_to"])
        b.add(target, f"challenge directed to {target}")
    b.area_orgs("partnership", "safeguarding partnership")
    return b.route("alert", "routine")


_RULE_FUNCTIONS: dict[str, Callable[[Builder, Items], Route]] = {
    "R1": r1_domestic_abuse,
    "R2": r2_child_in_need,
    "R3": r3_child_protection,
    "R4": r4_strategy_meeting,
    "R5": r5_pregnancy_booked,
    "R6": r6_birth,
    "R7": r7_marac,
    "R8": r8_safeguarding_information,
    "R8a": r8a_concern_about_parent,
    "R8b": r8b_pre_birth_assessment,
    "R9": r9_challenge_raised,
    "R9b": r9b_challenge_resolved,
}


def route_event(graph: FamilyGraph, items: Items, event: Event, as_of: dt.datetime) -> Route | None:
    """Who must hear of ``event`` under the graph as it stands, with ages and registrations on ``as_of``.

    Returns None for event types no rule routes (links other than births, directory entries).
    The publisher is not removed here (see ``state.py``: not to itself).
    """
    rule = RULES.get(event.event_type)
    if rule is None:
        return None
    b = Builder(graph, event, as_of, graph.org_area(event.source), rule)
    route = _RULE_FUNCTIONS[rule](b, items)
    # A school never receives the types it may not see.
    if event.event_type in NOT_FOR_SCHOOLS:
        for org in [o for o in route.recipients if graph.org_kind(o) == "school"]:
            del route.recipients[org]
            b.withhold(org, f"a school may not receive {event.event_type}")
    return route
