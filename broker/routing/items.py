"""Safeguarding events remembered as *history items* and *active items* (``routing.md``, "Words").

- History items of a person: domestic abuse incidents and MARAC cases naming
  them (victim, perpetrator or child), GP and midwifery safeguarding
  information and adult concerns about them, in the 24 months before now;
  and every event of any CP or CiN plan ever held by a child of theirs.
- Active items: plans whose latest status is not ``ended``; pre-birth
  assessments not ``completed``; incidents and MARAC cases for 365 days after
  they occurred; challenges until resolved.

Retracted events are neither.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from broker.model import PERSON_FIELDS, PERSON_LIST_FIELDS, Event
from broker.routing.graph import FamilyGraph
from broker.routing.people import ref_keys

__all__ = ["HISTORY_TYPES", "PLAN_TYPES", "REMEMBERED_TYPES", "Item", "Items", "person_refs"]

PLAN_TYPES = frozenset({"csc.child_in_need_plan", "csc.child_protection_plan"})
INCIDENT_TYPES = frozenset({"police.domestic_abuse_incident", "marac.case_heard"})
ABOUT_PERSON_TYPES = frozenset(
    {"gp.safeguarding_information", "midwifery.safeguarding_concern", "adult.concern_about_parent"}
)
HISTORY_TYPES = INCIDENT_TYPES | ABOUT_PERSON_TYPES
# What Items keeps: everything that can be a history or active item, or that a rule looks back at.
REMEMBERED_TYPES = (
    HISTORY_TYPES
    | PLAN_TYPES
    | frozenset(
        {
            "csc.pre_birth_assessment",
            "challenge.raised",
            "challenge.resolved",
            "csc.strategy_meeting",
            "midwifery.birth_notified",
            "midwifery.pregnancy_booked",
            "record.retracted",
        }
    )
)
HISTORY_WINDOW = dt.timedelta(days=730)  # 24 months
INCIDENT_ACTIVE = dt.timedelta(days=365)

# Fields that hold people, per event type: what an item "names".


def person_refs(data: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every PersonRef an event's data names."""
    for f in sorted(PERSON_FIELDS):
        ref = data.get(f)
        if isinstance(ref, Mapping):
            yield ref
    for f in sorted(PERSON_LIST_FIELDS):
        for ref in data.get(f) or ():
            if isinstance(ref, Mapping):
                yield ref


@dataclasses.dataclass(slots=True)
class Item:
    """An active item: one event, or a plan or assessment (all its events, latest last)."""

    key: str
    events: list[Event]
    seqs: list[int]

    @property
    def latest(self) -> Event:
        return self.events[-1]


class Items:
    """Remembered safeguarding events, indexed by the people they name."""

    def __init__(self, graph: FamilyGraph) -> None:
        self._graph = graph
        self.events: dict[str, Event] = {}
        self.seq: dict[str, int] = {}
        self._by_key: dict[str, set[str]] = defaultdict(set)  # person key -> event ids
        self._plans: dict[str, Item] = {}  # "plan:<source>:<ref>" / "pba:<source>:<ref>" -> item
        self._item_of: dict[str, str] = {}  # event id -> item key
        self._plans_by_child: dict[str, set[str]] = defaultdict(set)
        self._resolved: set[str] = set()  # challenge refs resolved ("<ref>")
        self._challenges: dict[str, str] = {}  # challenge ref -> raised event id

    def add(self, event: Event, seq: int) -> None:
        """Remember an accepted event (any type that can be a history or active item)."""
        t, d = event.event_type, event.data
        self.events[event.event_id] = event
        self.seq[event.event_id] = seq
        for ref in person_refs(d):
            for key in ref_keys(ref):
                self._by_key[key].add(event.event_id)
        item_key = None
        if t in PLAN_TYPES:
            item_key = f"plan:{event.source}:{d['plan_ref']}"
            for key in ref_keys(d["child"]):
                self._plans_by_child[key].add(item_key)
        elif t == "csc.pre_birth_assessment":
            item_key = f"pba:{event.source}:{d['assessment_ref']}"
        elif t == "challenge.raised":
            self._challenges[str(d["challenge_ref"])] = event.event_id
        elif t == "challenge.resolved":
            self._resolved.add(str(d["challenge_ref"]))
        if item_key:
            item = self._plans.setdefault(item_key, Item(item_key, [], []))
            item.events.append(event)
            item.seqs.append(seq)
            self._item_of[event.event_id] = item_key

    def item_key(self, event_id: str) -> str:
        """The item an event belongs to: its plan or assessment, else itself."""
        return self._item_of.get(event_id, event_id)

    def item_events(self, item_key: str) -> list[Event]:
        item = self._plans.get(item_key)
        if item is not None:
            return [e for e in item.events if e.event_id not in self._graph.retracted]
        event = self.events.get(item_key)
        return [event] if event and event.event_id not in self._graph.retracted else []

    def challenge_event(self, challenge_ref: str) -> Event | None:
        eid = self._challenges.get(challenge_ref)
        return self.events.get(eid) if eid else None

    def is_resolved(self, challenge_ref: str) -> bool:
        return challenge_ref in self._resolved

    def _naming(self, person: str) -> set[str]:
        out: set[str] = set()
        for key in self._graph.people.members(person):
            out |= self._by_key.get(key, set())
        return {e for e in out if e not in self._graph.retracted}

    def _plan_events_of_child(self, child: str) -> list[Event]:
        out: list[Event] = []
        for key in self._graph.people.members(child):
            for item_key in self._plans_by_child.get(key, ()):
                out.extend(self.item_events(item_key))
        return out

    def history(self, person: str, now: dt.datetime) -> list[Event]:
        """The person's history items as of ``now``, oldest first."""
        found: dict[str, Event] = {}
        for eid in self._naming(person):
            e = self.events[eid]
            if e.event_type in HISTORY_TYPES and now - HISTORY_WINDOW <= e.occurred_at <= now:
                if e.event_type in ABOUT_PERSON_TYPES and not self._about(e, person):
                    continue
                found[eid] = e
        for child in self._graph.children_of(person):
            for e in self._plan_events_of_child(child):
                if e.occurred_at <= now:
                    found[e.event_id] = e
        return sorted(found.values(), key=lambda e: (e.occurred_at, self.seq[e.event_id]))

    def _about(self, event: Event, person: str) -> bool:
        keys = ref_keys(event.data.get("person") or event.data.get("mother"))
        return bool(keys) and self._graph.people.find(keys[0]) == self._graph.people.find(person)

    def is_active(self, item_key: str, now: dt.datetime) -> bool:
        events = self.item_events(item_key)
        if not events:
            return False
        latest = events[-1]
        t = latest.event_type
        if t in PLAN_TYPES:
            return bool(latest.data["status"] != "ended")
        if t == "csc.pre_birth_assessment":
            return bool(latest.data["status"] != "completed")
        if t in INCIDENT_TYPES:
            return latest.occurred_at <= now <= latest.occurred_at + INCIDENT_ACTIVE
        if t == "challenge.raised":
            return not self.is_resolved(str(latest.data["challenge_ref"]))
        return False

    def active_concerning(self, persons: set[str], now: dt.datetime) -> list[str]:
        """Keys of active items that name any of ``persons``, in the order they arrived."""
        keys: set[str] = set()
        for person in persons:
            for eid in self._naming(person):
                keys.add(self.item_key(eid))
        active = [k for k in keys if self.is_active(k, now)]
        return sorted(active, key=lambda k: self.seq[self.item_events(k)[-1].event_id])

    def active_plans_of_child(self, child: str, now: dt.datetime) -> list[str]:
        keys: set[str] = set()
        for key in self._graph.people.members(child):
            keys |= self._plans_by_child.get(key, set())
        return sorted(k for k in keys if self.is_active(k, now))
