"""What each recipient may see (``routing.md``): flags, views, hidden organisations.

- Every notification to a GP practice carries ``restricted``; to the GP of the
  alleged perpetrator (of the event, or of an incident a pre-birth alert
  lists) also ``perpetrator_record``.
- Schools get the ``education`` view: event type, date, which child, whether
  the child was present. The alleged perpetrator's GP practice, when every
  path to it runs through the perpetrator of the notified incident or MARAC
  case, gets the ``perpetrator`` view: event type, date, risk level, that its
  patient is named as the alleged perpetrator, the number and ages of the
  children of the event; nobody else's identity, no free text; and its
  ``also_notified`` names only police, children's social care, MARAC and
  partnership organisations (the others would say where the victim and the
  children are). Everyone else gets ``full``.
- Organisations that would reveal where a sensitive person is are hidden: a
  notification to an organisation that is not itself hidden names none of
  them, anywhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from broker.model import Event
from broker.routing.graph import FamilyGraph
from broker.routing.model import iso
from broker.routing.people import ref_keys

__all__ = [
    "PERPETRATOR_ALSO_KINDS",
    "PERPETRATOR_VIEW_TYPES",
    "WITHHELD_ORG",
    "education_view",
    "flags_for",
    "full_view",
    "hidden_orgs",
    "jsonable",
    "perpetrator_also_notified",
    "perpetrator_view",
    "retraction_view",
    "scrub",
    "view_for",
]

WITHHELD_ORG = "(withheld: sensitive record)"
PERPETRATOR_VIEW_TYPES = frozenset({"police.domestic_abuse_incident", "marac.case_heard"})
# The kinds a perpetrator's GP may see in ``also_notified``: none of them says where the victim
# or the children are registered, live or go to school.
PERPETRATOR_ALSO_KINDS = frozenset({"police", "childrens_social_care", "marac", "partnership"})


def jsonable(value: Any) -> Any:
    """Event data as JSON: dates and times as ISO 8601 text."""
    if isinstance(value, dt.datetime):
        return iso(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def flags_for(
    graph: FamilyGraph, org: str, *, perpetrators: Iterable[str], day: dt.date, perpetrator_gp: bool = False
) -> tuple[str, ...]:
    """Sorted flags for a notification to ``org``."""
    if graph.org_kind(org) != "gp_practice":
        return ()
    flags = {"restricted"}
    if perpetrator_gp or any(graph.gp_on(p, day)[0] == org for p in perpetrators):
        flags.add("perpetrator_record")
    return tuple(sorted(flags))


def view_for(graph: FamilyGraph, org: str, *, event_type: str = "", perpetrator_only: bool = False) -> str:
    """``education`` for a school; ``perpetrator`` for a GP reached only through the alleged
    perpetrator of an incident or MARAC case; else ``full``."""
    kind = graph.org_kind(org)
    if kind == "school":
        return "education"
    if perpetrator_only and kind == "gp_practice" and event_type in PERPETRATOR_VIEW_TYPES:
        return "perpetrator"
    return "full"


def perpetrator_view(graph: FamilyGraph, event: Event, children: Iterable[str], day: dt.date) -> dict[str, Any]:
    """What the alleged perpetrator's GP may see: no free text, nobody else's identity.

    ``children.ages`` are whole years on ``day``, youngest first; null for an unborn child or
    one whose date of birth is not known.
    """
    d = event.data
    found = d.get("perpetrator")
    patient: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    ages: list[int | None] = []
    for child in children:
        ages.append(None if child.startswith("unborn:") else graph.people.age_on(child, day))
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "date": event.occurred_at.date().isoformat(),
        "risk_level": d.get("risk_level"),  # none for a MARAC case: a case is heard because the risk is high
        "patient": {k: jsonable(patient.get(k)) for k in ("nhs_number", "local_id", "name", "date_of_birth")},
        "patient_named_as": "alleged_perpetrator",
        "children": {
            "count": len(ages),
            "ages": sorted(ages, key=lambda a: (a is None, a or 0)),
        },
    }


def perpetrator_also_notified(graph: FamilyGraph, orgs: Iterable[str]) -> list[str]:
    """The organisations a perpetrator's GP may see listed: police, CSC, MARAC, partnership."""
    return [o for o in orgs if graph.org_kind(o) in PERPETRATOR_ALSO_KINDS]


def full_view(event: Event) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "occurred_at": iso(event.occurred_at),
        "source": event.source,
        "lawful_basis": event.lawful_basis,
        "data": jsonable(event.data),
    }


def education_view(graph: FamilyGraph, event: Event, child: str | None, present: bool) -> dict[str, Any]:
    """Event type, date, which child, and whether the child was present: nothing else."""
    ref: dict[str, Any] = {}
    if child:
        for r in _child_refs(event.data):
            keys = ref_keys(r)
            if keys and graph.people.find(keys[0]) == graph.people.find(child):
                ref = {
                    "nhs_number": r.get("nhs_number"),
                    "local_id": r.get("local_id"),
                    "name": r.get("name"),
                }
                break
        else:
            label = graph.people.label(child)
            ref = {"nhs_number": label} if label.isdigit() else {"local_id": label}
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "date": event.occurred_at.date().isoformat(),
        "child": ref,
        "child_present": present,
    }


def _child_refs(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    if isinstance(data.get("child"), Mapping):
        out.append(data["child"])
    for f in ("children", "children_present", "children_in_household"):
        out.extend(r for r in data.get(f) or [] if isinstance(r, Mapping))
    return out


def hidden_orgs(graph: FamilyGraph, persons: Iterable[str], day: dt.date) -> set[str]:
    """Organisations that would reveal where a sensitive person among ``persons`` is."""
    hidden: set[str] = set()
    # A child's organisations also reveal a sensitive adult the child lives with, even when the
    # event does not name that adult (a school's challenge about a child living with a victim who fled).
    around = set(persons)
    for person in persons:
        preg = graph.pregnancy(person)
        if preg is not None:
            around.update(p for p in (preg.mother, preg.expected_father) if p)
        elif not person.startswith("unborn:"):
            around |= graph.lives_with(person)
    for person in around:
        if person.startswith("unborn:") or not graph.people.is_sensitive(person):
            continue
        gp, _ = graph.gp_on(person, day)
        if gp:
            hidden.add(gp)
        hidden.update(p.midwifery_service for p in graph.active_pregnancies(person, day))
        for child in graph.children_living_with(person):
            gp, _ = graph.gp_on(child, day)
            if gp:
                hidden.add(gp)
            for role in ("school", "health_visiting"):
                org, _ = graph.slot(child, role)
                if org:
                    hidden.add(org)
    return hidden


def scrub(value: Any, hidden: set[str]) -> Any:
    """A copy of ``value`` with every hidden organisation's id replaced."""
    if not hidden:
        return value
    if isinstance(value, str):
        for org in hidden:
            if org in value:
                value = value.replace(org, WITHHELD_ORG)
        return value
    if isinstance(value, Mapping):
        return {k: scrub(v, hidden) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, hidden) for v in value]
    return value


def retraction_view(event: Event, original: str, view: str) -> dict[str, Any]:
    """What a retraction says: which notification to disregard, and (in the full view only) why."""
    content: dict[str, Any] = {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "date": event.occurred_at.date().isoformat(),
        "original_event_id": original,
    }
    if view == "full":
        content["reason"] = str(event.data.get("reason", ""))
    return content
