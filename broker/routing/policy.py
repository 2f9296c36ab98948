"""The routing policy, R1 to R10 (``routing.md``): who must hear of an event, and why.

One place to read who gets what. Each rule is a small function from an event
and the family graph (as it stands, with ages and registrations taken on the
``as_of`` day) to a ``Route``: recipients, each with the paths that reach it,
and the decisions not to share. Pure: no clock, no I/O, no awaiting.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from broker.model import Event
from broker.routing.graph import FamilyGraph, is_unborn
from broker.routing.items import Items
from broker.routing.model import Withheld

__all__ = ["RULES", "Candidate", "Route", "route_event", "rule_for"]

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


@dataclasses.dataclass(slots=True)
class Candidate:
    """One organisation the rules reach, with every path that reaches it."""

    org: str
    paths: list[str]
    child: str | None = None  # the child through whom it was reached (for the education view)
    present: bool = False
    perpetrator_gp: bool = False
    may_be_publisher: bool = False  # R5: the booking service hears the history it did not have


@dataclasses.dataclass(slots=True)
class Route:
    """The outcome of the policy for one event."""

    rule: str
    kind: str
    priority: str
    recipients: dict[str, Candidate]
    withheld: list[Withheld]
    involved: set[str]  # every person the routing looked at (sensitive persons hide organisations)
    items: tuple[str, ...] = ()  # R5: the history items a pre-birth alert lists
    perpetrators: frozenset[str] = frozenset()


class _Builder:
    """Collects recipients and paths while a rule walks the graph."""

    def __init__(self, graph: FamilyGraph, event: Event, as_of: dt.datetime, area: str | None, rule: str) -> None:
        self.g = graph
        self.event = event
        self.day = as_of.date()
        self.as_of = as_of
        self.area = area
        self.rule = rule
        self.recipients: dict[str, Candidate] = {}
        self.withheld: list[Withheld] = []
        self.involved: set[str] = set()

    def who(self, person: str) -> str:
        """``(label)`` for a person; for an unborn child, whose it is."""
        if is_unborn(person):
            preg = self.g.pregnancy(person)
            return f"of mother ({self.g.people.label(preg.mother)})" if preg else ""
        return f"({self.g.people.label(person)})"

    def child_label(self, child: str) -> str:
        return f"unborn child {self.who(child)}" if is_unborn(child) else f"child {self.who(child)}"

    def add(
        self,
        org: str,
        path: str,
        *,
        child: str | None = None,
        present: bool = False,
        perpetrator_gp: bool = False,
        may_be_publisher: bool = False,
    ) -> None:
        c = self.recipients.get(org)
        if c is None:
            c = self.recipients[org] = Candidate(org, [])
        if path not in c.paths:
            c.paths.append(path)
        if child and c.child is None:
            c.child, c.present = child, present
        c.present = c.present or (present and c.child == child)
        c.perpetrator_gp = c.perpetrator_gp or perpetrator_gp
        c.may_be_publisher = c.may_be_publisher or may_be_publisher

    def withhold(self, org: str | None, reason: str) -> None:
        w = Withheld(org, self.rule, reason)
        if w not in self.withheld:
            self.withheld.append(w)

    # -- the words of routing.md ----------------------------------------------------

    def gp(self, person: str, role: str, *, perpetrator: bool = False, tail: str = "") -> None:
        """The GP of a person: where registered on the day; nothing after deregistration."""
        self.involved.add(person)
        practice, left = self.g.gp_on(person, self.day)
        if practice:
            self.add(
                practice,
                f"registered GP ({practice}) of {role} {self.who(person)}{tail}",
                perpetrator_gp=perpetrator,
            )
        elif left is not None:
            self.withhold(left.practice, f"{role} {self.who(person)} deregistered on {left.effective_date}")

    def professionals(self, child: str, relation: str, *, present: bool = False, named_as_child: bool = True) -> None:
        """The child's GP, health visiting service (under 5), school (4 or over), midwifery (unborn)."""
        self.involved.add(child)
        if is_unborn(child):
            preg = self.g.pregnancy(child)
            if preg:
                self.involved.update(p for p in (preg.mother, preg.expected_father) if p)
                self.add(
                    preg.midwifery_service,
                    f"midwifery service ({preg.midwifery_service}) of {self.child_label(child)}{relation}",
                    child=child,
                )
            return
        self.gp(child, "child", tail=relation)
        age = self.g.people.age_on(child, self.day)
        for role, fits, label in (
            ("health_visiting", age is None or age < 5, "health visiting"),
            ("school", age is None or age >= 4, "school"),
        ):
            if not fits:
                continue
            org, ended = self.g.slot(child, role)
            if org:
                if role == "school":
                    # Schools see only the child: their reason names no adult.
                    self.add(org, f"school ({org}) of child {self.who(child)}", child=child, present=present)
                else:
                    self.add(
                        org,
                        f"{label} ({org}) of child {self.who(child)}{relation}",
                        child=child,
                        present=present,
                    )
            elif ended:
                self.withhold(ended, f"{label} assignment for child {self.who(child)} ended")

    def responsible_csc(self, child: str, relation: str = "") -> None:
        """The responsible children's social care of a child (born or unborn)."""
        self.involved.add(child)
        for org, basis in self.g.responsible_csc(child, self.area):
            self.add(
                org,
                f"children's social care ({org}) responsible for {self.child_label(child)}{relation} ({basis})",
                child=child,
            )

    def carers_gps(self, child: str) -> None:
        """The GP of each carer of the child, fathers included, at any practice."""
        for carer, how in self.g.carers(child):
            self.involved.add(carer)
            self.gp(carer, how, tail=f" of child {self.who(child)}")

    def children_named(self, refs: Any, *, present: bool = False) -> list[str]:
        out = []
        for ref in refs or []:
            person = self.g.people.resolve(ref)
            if person and self.g.people.is_child(person, self.day, named_as_child=True):
                out.append(person)
        return out

    def area_orgs(self, kind: str, label: str) -> None:
        for org in self.g.orgs_of_kind_in_area(kind, self.area):
            self.add(org, f"{label} ({org}) of the area ({self.area})")

    def route(self, kind: str, priority: str, **extra: Any) -> Route:
        return Route(self.rule, kind, priority, self.recipients, self.withheld, self.involved, **extra)


# -- children of an event ---------------------------------------------------------------


def incident_children(
    b: _Builder, d: Mapping[str, Any], named_fields: Mapping[str, str]
) -> dict[str, tuple[str, bool]]:
    """``{child: (relation, present)}``: named children, children living with the victim or the
    perpetrator, the perpetrator's children wherever they live, and unborn children of active
    pregnancies of either (``routing.md``: children of an event)."""
    g = b.g
    out: dict[str, tuple[str, bool]] = {}
    for field, relation in named_fields.items():
        for child in b.children_named(d.get(field)):
            present = field == "children_present"
            if child not in out or present:
                out[child] = (relation, present)
    for role in ("victim", "perpetrator"):
        person = g.people.resolve(d.get(role))
        if person is None:
            continue
        b.involved.add(person)
        for child in sorted(g.children_living_with(person)):
            if child not in out and g.people.is_child(child, b.day, named_as_child=True):
                out[child] = (f" living with the {role} {b.who(person)}", False)
        if role == "perpetrator":
            for child, rel in sorted(g.children_of(person).items()):
                if child not in out and g.people.is_child(child, b.day, named_as_child=True):
                    out[child] = (f" whose {rel} {b.who(person)} is the perpetrator", False)
        for preg in g.active_pregnancies(person, b.day):
            out.setdefault(preg.unborn, (f" (active pregnancy of the {role})", False))
    return out


# -- the rules ----------------------------------------------------------------------------


def _incident(b: _Builder, *, children_fields: Mapping[str, str], with_marac: bool) -> Route:
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
    )


def r1_domestic_abuse(b: _Builder, items: Items) -> Route:
    return _incident(
        b,
        with_marac=True,
        children_fields={
            "children_present": " present at the incident",
            "children_in_household": " in the household",
        },
    )


def r7_marac(b: _Builder, items: Items) -> Route:
    return _incident(b, with_marac=False, children_fields={"children": " named in the MARAC case"})


def _plan(b: _Builder) -> None:
    child = b.g.people.resolve(b.event.data["child"])
    if child:
        b.professionals(child, "")
        b.carers_gps(child)


def r2_child_in_need(b: _Builder, items: Items) -> Route:
    _plan(b)
    return b.route("alert", "routine")


def r3_child_protection(b: _Builder, items: Items) -> Route:
    _plan(b)
    b.area_orgs("police", "police")
    return b.route("alert", "urgent" if b.event.data["status"] == "started" else "routine")


def r4_strategy_meeting(b: _Builder, items: Items) -> Route:
    for child in b.children_named(b.event.data.get("children")):
        b.professionals(child, "")
        b.carers_gps(child)
    return b.route("alert", "urgent" if b.event.data["decision"] == "section_47" else "routine")


def r5_pregnancy_booked(b: _Builder, items: Items) -> Route:
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


def r6_birth(b: _Builder, items: Items) -> Route:
    d = b.event.data
    child = b.g.people.resolve(d["child"])
    hv = d.get("health_visiting")
    if hv and child:
        b.involved.add(child)
        b.add(str(hv), f"health visiting ({hv}) named at the birth of child {b.who(child)}", child=child)
    else:
        b.withhold(None, "no health visiting service named in the birth notification")
    return b.route("alert", "routine")


def _concern_children(b: _Builder, items: Items, person: str, *, any_child: bool) -> list[tuple[str, str]]:
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


def r8_safeguarding_information(b: _Builder, items: Items) -> Route:
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


def _hv_only(b: _Builder, child: str, relation: str) -> None:
    age = b.g.people.age_on(child, b.day)
    if age is not None and age >= 5:
        return
    org, ended = b.g.slot(child, "health_visiting")
    if org:
        b.add(org, f"health visiting ({org}) of child {b.who(child)}{relation}", child=child)
    elif ended:
        b.withhold(ended, f"health visiting assignment for child {b.who(child)} ended")


def r8a_concern_about_parent(b: _Builder, items: Items) -> Route:
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


def r8b_pre_birth_assessment(b: _Builder, items: Items) -> Route:
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


def r9_challenge_raised(b: _Builder, items: Items) -> Route:
    target = str(b.event.data["directed_to"])
    b.add(target, f"challenge directed to {target}")
    b.area_orgs("partnership", "safeguarding partnership")
    child = b.g.people.resolve(b.event.data.get("child"))
    if child:
        b.involved.add(child)
    return b.route("alert", "routine")


def r9b_challenge_resolved(b: _Builder, items: Items) -> Route:
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


_RULE_FUNCTIONS: dict[str, Callable[[_Builder, Items], Route]] = {
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
    b = _Builder(graph, event, as_of, graph.org_area(event.source), rule)
    route = _RULE_FUNCTIONS[rule](b, items)
    # A school never receives the types it may not see.
    if event.event_type in NOT_FOR_SCHOOLS:
        for org in [o for o in route.recipients if graph.org_kind(o) == "school"]:
            del route.recipients[org]
            b.withhold(org, f"a school may not receive {event.event_type}")
    return route
