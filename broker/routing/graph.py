"""The family graph, materialised from link events.

It answers the questions the routing rules ask (``routing.md``, "Words"):
children of a person, carers of a child, who lives with whom, a person's GP on
a date, a child's professionals, the responsible children's social care,
active pregnancies. It is plain data updated by ``apply``; it never awaits.

Facts are stored under the person key they arrived with and read through
``People.members``, so an ``identity.same_person`` that joins two records
later joins their facts too. Every fact keeps the id of the event that stated
it, so a retracted event stops counting.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from broker.model import Event
from broker.routing.facts import (
    LINK_TYPES,
    PARENT_RELATIONSHIPS,
    UNBORN,
    Assessment,
    Birth,
    Composition,
    Order,
    Pregnancy,
    Registration,
    Slot,
    is_unborn,
)
from broker.routing.organisations import Organisations
from broker.routing.people import People
from broker.routing.pregnancies import PregnancyQueries

__all__ = ["FamilyGraph"]


class FamilyGraph(Organisations, PregnancyQueries):
    """Links between people and organisations, as they stand after the events applied so far."""

    def __init__(self) -> None:
        super().__init__()
        self.people = People()
        self.retracted: set[str] = set()
        self._registrations: dict[str, list[Registration]] = defaultdict(list)
        self._compositions: dict[str, list[Composition]] = defaultdict(list)
        self._named_in_composition: dict[str, set[str]] = defaultdict(set)  # person key -> child keys
        self._births: dict[str, list[Birth]] = defaultdict(list)
        self._births_by_parent: dict[str, set[str]] = defaultdict(set)
        self._births_by_booking: dict[str, list[Birth]] = defaultdict(list)
        self._pregnancies: dict[str, Pregnancy] = {}
        self._pregnancies_by_person: dict[str, set[str]] = defaultdict(set)
        self._slots: dict[tuple[str, str], list[Slot]] = defaultdict(list)  # (child key, role)
        self._csc_publisher: dict[str, list[tuple[Order, str, str]]] = defaultdict(list)
        self._assessments: dict[str, list[Assessment]] = defaultdict(list)  # by mother key
        self._assessments_by_person: dict[str, set[str]] = defaultdict(set)

    # -- helpers --------------------------------------------------------------

    def ref(self, ref: Mapping[str, Any] | None, *, born_on: dt.date | None = None) -> str | None:
        """Observe a PersonRef and return its person key."""
        return self.people.observe(ref, born_on=born_on)

    # -- applying link events ---------------------------------------------------

    def apply(self, event: Event, seq: int) -> list[str]:
        """Apply one event's facts; returns the person keys a link event names (for late binding)."""
        d = event.data
        order: Order = (event.occurred_at, seq)
        t = event.event_type
        named: list[str | None] = []
        if t == "directory.organisation":
            self.list_organisation(d)
        elif t == "gp.registration":
            p = self.ref(d["person"])
            self.infer_kind(str(d["practice"]), "gp_practice")
            if p:
                reg = Registration(
                    str(d["practice"]),
                    d["status"] == "registered",
                    d["effective_date"],
                    order,
                    event.event_id,
                )
                self._registrations[p].append(reg)
            named = [p]
        elif t == "csc.household_composition":
            named = self._apply_composition(event, order)
        elif t == "midwifery.birth_notified":
            named = self._apply_birth(event, order)
        elif t == "midwifery.pregnancy_booked":
            mother, father = self.ref(d["mother"]), self.ref(d.get("expected_father"))
            service = str(d["midwifery_service"])
            self.infer_kind(service, "midwifery")
            if mother:
                preg = Pregnancy(
                    str(d["booking_ref"]),
                    mother,
                    father,
                    d["expected_date"],
                    service,
                    event.occurred_at,
                    order,
                    event.event_id,
                )
                self._pregnancies[preg.booking_ref] = preg
                for person in (mother, father):
                    if person:
                        self._pregnancies_by_person[person].add(preg.booking_ref)
            named = [mother, father]
        elif t == "link.professional_assigned":
            named = self._apply_assignment(event, order)
        elif t == "identity.same_person":
            a, b = self.ref(d["a"]), self.ref(d["b"])
            if a and b:
                self.people.union(a, b)
            named = [a, b]
        elif t == "identity.sensitive_record":
            p = self.ref(d["person"])
            if p:
                self.people.set_sensitive(p, bool(d["sensitive"]))
            named = [p]
        elif t in ("csc.child_in_need_plan", "csc.child_protection_plan"):
            child = self.ref(d["child"])
            if child:
                self._csc_publisher[child].append((order, event.source, event.event_id))
        elif t == "csc.strategy_meeting":
            for ref in d.get("children") or []:
                child = self.ref(ref)
                if child:
                    self._csc_publisher[child].append((order, event.source, event.event_id))
        elif t == "csc.pre_birth_assessment":
            mother, father = self.ref(d["mother"]), self.ref(d.get("expected_father"))
            if mother:
                assessment = Assessment(
                    str(d["assessment_ref"]),
                    mother,
                    father,
                    str(d["status"]),
                    event.source,
                    order,
                    event.event_id,
                )
                self._assessments[mother].append(assessment)
                for person in (mother, father):
                    if person:
                        self._assessments_by_person[person].add(mother)
        return [p for p in named if p] if t in LINK_TYPES else []

    def _apply_composition(self, event: Event, order: Order) -> list[str | None]:
        d = event.data
        child = self.ref(d["child"])
        if child is None:
            return []
        members = []
        for m in d.get("members") or []:
            p = self.ref(m["person"])
            if p:
                members.append((p, str(m["relationship"]), bool(m["lives_with_child"])))
                self._named_in_composition[p].add(child)
        self._compositions[child].append(Composition(child, tuple(members), event.source, order, event.event_id))
        self._csc_publisher[child].append((order, event.source, event.event_id))
        for role, field in (("health_visiting", "health_visiting"), ("school", "school")):
            if d.get(field):
                self.infer_kind(str(d[field]), role)
                self._slots[(child, role)].append(Slot(str(d[field]), None, order, event.event_id, "household"))
        return [child, *(m[0] for m in members)]

    def _apply_birth(self, event: Event, order: Order) -> list[str | None]:
        d = event.data
        child = self.ref(d["child"], born_on=d["born_on"])
        mother, father = self.ref(d.get("mother")), self.ref(d.get("father"))
        if child is None:
            return []
        birth = Birth(child, mother, father, d["born_on"], d.get("booking_ref"), order, event.event_id)
        self._births[child].append(birth)
        for parent in (mother, father):
            if parent:
                self._births_by_parent[parent].add(child)
        if birth.booking_ref:
            self._births_by_booking[birth.booking_ref].append(birth)
        if d.get("health_visiting"):
            hv = str(d["health_visiting"])
            self.infer_kind(hv, "health_visiting")
            self._slots[(child, "health_visiting")].append(Slot(hv, None, order, event.event_id, "birth"))
        return [child, mother, father]

    def _apply_assignment(self, event: Event, order: Order) -> list[str | None]:
        d = event.data
        person = self.ref(d["person"])
        if person is None:
            return []
        role = {
            "health_visitor": "health_visiting",
            "school": "school",
            "social_worker": "social_worker",
        }.get(str(d["role"]))
        if role is None:
            return [person]
        org = str(d["org"])
        self.infer_kind(
            org, {"health_visiting": "health_visiting", "school": "school"}.get(role, "childrens_social_care")
        )
        ended = d["status"] == "ended"
        self._slots[(person, role)].append(
            Slot(None if ended else org, org if ended else None, order, event.event_id, "assignment")
        )
        return [person]

    # -- questions the rules ask --------------------------------------------------

    def gp_on(self, person: str, day: dt.date) -> tuple[str | None, Registration | None]:
        """``(practice, None)`` where registered on ``day``; ``(None, deregistration)`` after leaving."""
        regs = [r for r in self._for_person(self._registrations, person) if r.effective_date <= day]
        if not regs:
            return None, None
        latest = max(regs, key=lambda r: (r.effective_date, r.order))
        return (latest.practice, None) if latest.registered else (None, latest)

    def _latest_composition(self, child: str) -> Composition | None:
        comps = self._for_person(self._compositions, child)
        return max(comps, key=lambda c: c.order) if comps else None

    def parents(self, child: str) -> list[tuple[str, str]]:
        """``(person, "mother"|"father")`` from births and every household composition: parenthood never ends."""
        out: dict[str, str] = {}
        for birth in self._for_person(self._births, child):
            if birth.mother:
                out.setdefault(self.people.find(birth.mother), "mother")
            if birth.father:
                out.setdefault(self.people.find(birth.father), "father")
        for comp in self._for_person(self._compositions, child):
            for person, rel, _ in comp.members:
                if rel in PARENT_RELATIONSHIPS:
                    out.setdefault(self.people.find(person), rel)
        return sorted(out.items())

    def carers(self, child: str) -> list[tuple[str, str]]:
        """Everyone who is a carer of the child, with how (``routing.md``: carers of a child)."""
        if is_unborn(child):
            preg = self._pregnancies.get(child[len(UNBORN) :])
            if preg is None:
                return []
            out = [(self.people.find(preg.mother), "mother")]
            if preg.expected_father:
                out.append((self.people.find(preg.expected_father), "expected father"))
            return out
        result = dict(self.parents(child))
        comp = self._latest_composition(child)
        if comp:
            for person, rel, lives in comp.members:
                key = self.people.find(person)
                if rel in ("step_parent", "partner_of_parent") or (rel == "other_adult" and lives):
                    result.setdefault(key, rel.replace("_", " "))
        return sorted(result.items())

    def lives_with(self, child: str) -> set[str]:
        """Who lives with the child: the latest household composition, else the birth parents."""
        comp = self._latest_composition(child)
        if comp:
            return {self.people.find(p) for p, _, lives in comp.members if lives}
        out = set()
        for birth in self._for_person(self._births, child):
            for parent in (birth.mother, birth.father):
                if parent:
                    out.add(self.people.find(parent))
        return out

    def _candidate_children(self, person: str) -> set[str]:
        keys = self._keys_for(self._named_in_composition, person) | self._keys_for(self._births_by_parent, person)
        return {self.people.find(k) for k in keys}

    def children_living_with(self, person: str) -> set[str]:
        me = self.people.find(person)
        return {c for c in self._candidate_children(person) if c != me and me in self.lives_with(c)}

    def children_of(self, person: str) -> dict[str, str]:
        """Children of whom the person is mother, father or step-parent: ``{child: relationship}``."""
        me = self.people.find(person)
        out: dict[str, str] = {}
        for child in self._candidate_children(person):
            for parent, rel in self.parents(child):
                if parent == me:
                    out[child] = rel
            comp = self._latest_composition(child)
            if comp and child not in out:
                for p, rel, _ in comp.members:
                    if rel == "step_parent" and self.people.find(p) == me:
                        out[child] = "step-parent"
        return out

    def cared_for(self, person: str) -> dict[str, str]:
        """Children (born) of whom the person is a carer: ``{child: how}``."""
        me = self.people.find(person)
        out: dict[str, str] = {}
        for child in self._candidate_children(person):
            for carer, how in self.carers(child):
                if carer == me:
                    out[child] = how
        return out

    def slot(self, child: str, role: str) -> tuple[str | None, str | None]:
        """``(org, None)`` serving the child in ``role``; ``(None, ended_org)`` after an ended assignment."""
        slots = self._slots_for(child, role)
        if not slots:
            return None, None
        latest = max(slots, key=lambda s: s.order)
        return latest.org, latest.ended_org

    def _slots_for(self, child: str, role: str) -> list[Slot]:
        out: list[Slot] = []
        for key in self.people.members(child):
            out.extend(self._slots.get((key, role), ()))
        out = self._live(out)
        # An ended assignment removes only the organisation it names.
        result: list[Slot] = []
        for s in sorted(out, key=lambda s: s.order):
            if s.org is None and result and result[-1].org not in (s.ended_org, None):
                continue
            result.append(s)
        return result

    def responsible_csc(self, child: str, area: str | None) -> list[tuple[str, str]]:
        """``[(org, why)]``: assigned social worker, else latest CSC publisher about the child, else the area's."""
        if is_unborn(child):
            preg = self._pregnancies.get(child[len(UNBORN) :])
            assessments = self._for_person(self._assessments, preg.mother) if preg else []
            if assessments:
                latest = max(assessments, key=lambda a: a.order)
                return [(latest.publisher, "publisher of the pre-birth assessment")]
        else:
            org, _ = self.slot(child, "social_worker")
            if org:
                return [(org, "the child's social worker")]
            pubs = [p for key in self.people.members(child) for p in self._csc_publisher.get(key, ())]
            pubs = [p for p in pubs if p[2] not in self.retracted]
            if pubs:
                return [(max(pubs)[1], "publisher of the child's latest plan, meeting or household record")]
        return [(o, f"of the area ({area})") for o in self.orgs_of_kind_in_area("childrens_social_care", area)]
