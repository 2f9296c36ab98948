"""The words of ``routing.md`` as a rule walks the graph: recipients, their paths, decisions not to share.

``Builder`` collects, for one event, every organisation the rules reach with
every path that reaches it (``Candidate``), and the decisions not to share;
``Route`` is what it hands to the state machine. ``incident_children`` is
"children of an event" for domestic abuse incidents and MARAC cases;
``rebound_persons`` is whom a new link touches (late binding). Pure.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from broker.model import Event
from broker.routing.facts import is_unborn
from broker.routing.graph import FamilyGraph
from broker.routing.model import Withheld

__all__ = ["Builder", "Candidate", "Route", "incident_children", "rebound_persons"]


@dataclasses.dataclass(slots=True)
class Candidate:
    """One organisation the rules reach, with every path that reaches it."""

    org: str
    paths: list[str]
    child: str | None = None  # the child through whom it was reached (for the education view)
    present: bool = False
    perpetrator_gp: bool = False
    may_be_publisher: bool = False  # R5: the booking service hears the history it did not have
    other_path: bool = False  # reached by a path that does not run through the perpetrator

    @property
    def perpetrator_only(self) -> bool:
        """Every path runs through the alleged perpetrator (it is not also the victim's or a child's GP)."""
        return self.perpetrator_gp and not self.other_path


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
    children: tuple[str, ...] = ()  # R1, R7: the children of the event (for the perpetrator view)


class Builder:
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
        c.other_path = c.other_path or not perpetrator_gp
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


def incident_children(b: Builder, d: Mapping[str, Any], named_fields: Mapping[str, str]) -> dict[str, tuple[str, bool]]:
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


def rebound_persons(graph: FamilyGraph, named: list[str], day: dt.date) -> set[str]:
    """Whom a link touches (``routing.md``, Late binding): each person it names, each child of whom
    such a person is a carer (step-parents and partners of a parent included; an unborn child of an
    active pregnancy too), and every other carer of such a child."""
    persons = {p for p in named if not is_unborn(p)}
    for person in list(persons):
        children = [c for c in graph.cared_for(person) if graph.people.is_child(c, day, named_as_child=True)]
        children += [p.unborn for p in graph.active_pregnancies(person, day)]
        for child in children:
            if not is_unborn(child):
                persons.add(child)
            persons.update(carer for carer, _ in graph.carers(child))
    return persons
