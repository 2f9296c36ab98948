"""The router's state machine: the rules that act on the graph, not on one event.

``RoutingState`` takes accepted events and acknowledgements in log order and
returns what must be written: notifications and decision records. It applies
the policy (``policy.py``) and adds what no single event decides:

- once only: a notification's id comes from (event id, recipient), and no
  organisation gets the same event twice, whatever path reaches it;
- not to itself: the publisher never receives its own event;
- late binding: a link event re-routes every active item concerning a person
  it names, a child of whom such a person is a carer, or another carer of
  such a child (``rebound_persons``), and organisations that have not had
  the item get it once, kind ``catch_up``;
- history sweep: when a plan starts or a pre-birth assessment is requested,
  the responsible CSC gets the history items it has not had, kind ``history``;
- retractions, and escalations at ``ack_by`` (unacknowledged) and at 00:00Z
  the day after a challenge's ``respond_by`` (unanswered).

Deterministic: the same inputs in the same order always give the same
outputs, so an auditor can re-run it over the log and compare.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections import defaultdict
from typing import Any

from broker.model import Event
from broker.routing.facts import LINK_TYPES
from broker.routing.followups import ack_deadline, challenge_deadline, escalation
from broker.routing.graph import FamilyGraph
from broker.routing.items import PLAN_TYPES, REMEMBERED_TYPES, Items, person_refs
from broker.routing.model import ACK_KINDS, Ack, Decision, Notification, Withheld, decision_record, notification_id
from broker.routing.policy import route_event
from broker.routing.views import (
    education_view,
    flags_for,
    full_view,
    hidden_orgs,
    perpetrator_also_notified,
    perpetrator_view,
    retraction_view,
    scrub,
    view_for,
)
from broker.routing.words import Candidate, Route, rebound_persons

__all__ = ["Output", "RoutingState"]

Output = Notification | Decision


class RoutingState:
    """Everything the router knows, rebuilt from the log by applying it in order."""

    def __init__(self) -> None:
        self.graph = FamilyGraph()
        self.items = Items(self.graph)
        self.seq = 0
        self.had: dict[str, set[str]] = defaultdict(set)  # event id -> orgs that published or were told
        self.item_had: dict[str, set[str]] = defaultdict(set)  # item key -> orgs told about it
        self.told: dict[str, list[tuple[str, str, str]]] = defaultdict(list)  # event id -> (org, nid, kind)
        self._pending: list[tuple[dt.datetime, int, str]] = []  # heap of (ack_by, seq, nid)
        self._awaiting: dict[str, Notification] = {}  # nid -> notification awaiting acknowledgement
        self._challenges: list[tuple[dt.datetime, int, str]] = []  # heap of (deadline, seq, event id)
        self._challenge_recipients: dict[str, list[Notification]] = defaultdict(list)
        self._withheld_seen: set[tuple[str, str | None, str]] = set()
        self._pushed = 0
        self._views: dict[str, dict[str, Any]] = {}
        self._view_of: dict[str, str] = {}  # nid -> the view it was sent in (a retraction keeps to it)

    # -- inputs -------------------------------------------------------------------

    def apply_event(self, event: Event, at: dt.datetime) -> list[Output]:
        """Apply one accepted event, logged at ``at``; returns what to write, in order."""
        out = self.advance(at, inclusive=False)
        self.seq += 1
        seq = self.seq
        remembered = event.event_type in REMEMBERED_TYPES
        if remembered:  # links and directory entries are facts in the graph, never items
            self.had[event.event_id].add(event.source)
        named = self.graph.apply(event, seq)
        if remembered:
            self.items.add(event, seq)
        if event.event_type == "record.retracted":
            out += self._retract(event, at)
            return out
        route = route_event(self.graph, self.items, event, event.occurred_at)
        if route is not None:
            out += self._emit(event, route, at, kind=route.kind)
        t, d = event.event_type, event.data
        if (t in PLAN_TYPES and d["status"] == "started") or (
            t == "csc.pre_birth_assessment" and d["status"] == "requested"
        ):
            out += self._history_sweep(event, at)
        if t == "challenge.raised":
            heapq.heappush(self._challenges, (challenge_deadline(d["respond_by"]), seq, event.event_id))
        if t in LINK_TYPES:
            out += self._late_binding(event, named, at)
        return out

    def apply_ack(self, ack: Ack) -> list[Output]:
        """An acknowledgement; on time if logged no later than ``ack_by``."""
        out = self.advance(ack.at, inclusive=False)
        note = self._awaiting.get(ack.notification_id)
        if note is not None and note.recipient == ack.recipient:
            del self._awaiting[ack.notification_id]
        return out

    def next_due(self) -> dt.datetime | None:
        """The earliest time ``advance`` may raise something (an ack or a resolution since may cancel it)."""
        heads = [heap[0][0] for heap in (self._pending, self._challenges) if heap]
        return min(heads) if heads else None

    def advance(self, now: dt.datetime, *, inclusive: bool = True) -> list[Output]:
        """Escalations whose time has come (before ``now``, or at it when ``inclusive``)."""
        out: list[Output] = []

        def due(t: dt.datetime) -> bool:
            return t <= now if inclusive else t < now

        while True:
            ack_next = self._pending[0] if self._pending else None
            ch_next = self._challenges[0] if self._challenges else None
            if ack_next and due(ack_next[0]) and (not ch_next or ack_next[:2] <= ch_next[:2]):
                _, _, nid = heapq.heappop(self._pending)
                note = self._awaiting.pop(nid, None)
                if note is not None and note.event_id not in self.graph.retracted:
                    out.append(escalation(note, "unacknowledged", note.ack_by or now, self._lead(note)))
            elif ch_next and due(ch_next[0]):
                deadline, _, eid = heapq.heappop(self._challenges)
                raised = self.items.events.get(eid)
                if (
                    raised
                    and eid not in self.graph.retracted
                    and not self.items.is_resolved(str(raised.data["challenge_ref"]))
                ):
                    for note in self._challenge_recipients[eid]:
                        out.append(escalation(note, "unanswered_challenge", deadline, self._lead(note)))
            else:
                return out

    # -- emitting -------------------------------------------------------------------

    def _emit(
        self,
        event: Event,
        route: Route,
        at: dt.datetime,
        *,
        kind: str,
        trigger: Event | None = None,
        only_new_to_item: str | None = None,
    ) -> list[Output]:
        """Turn a route into notifications (once only, not to itself) and one decision record."""
        chosen: list[Candidate] = []
        for org in sorted(route.recipients):
            cand = route.recipients[org]
            if org == event.source and not cand.may_be_publisher:
                continue
            if self._sent(event.event_id, org):
                continue
            if only_new_to_item is not None and org in self.item_had[only_new_to_item]:
                continue
            chosen.append(cand)
        day = (trigger or event).occurred_at.date()
        persons = set(route.involved)
        for ref in person_refs(event.data):
            p = self.graph.people.resolve(ref)
            if p:
                persons.add(p)
        hidden = hidden_orgs(self.graph, persons, day)
        everyone = {org for org, _, _ in self.told[event.event_id]} | {c.org for c in chosen}
        notes: list[Output] = []
        shared = []
        for cand in chosen:
            note = self._notification(event, route, cand, at, kind, trigger, everyone, hidden, day)
            notes.append(note)
            shared.append((cand.org, note.notification_id))
        withheld = tuple(w for w in route.withheld if self._new_withheld(event.event_id, w))
        if shared or withheld or trigger is None:
            notes.append(decision_record(event, route.rule, kind, at, tuple(shared), withheld, trigger))
        return notes

    def _new_withheld(self, event_id: str, w: Withheld) -> bool:
        key = (event_id, w.org, w.reason)
        if key in self._withheld_seen:
            return False
        self._withheld_seen.add(key)
        return True

    def _notification(
        self,
        event: Event,
        route: Route,
        cand: Candidate,
        at: dt.datetime,
        kind: str,
        trigger: Event | None,
        everyone: set[str],
        hidden: set[str],
        day: dt.date,
    ) -> Notification:
        org = cand.org
        view = view_for(self.graph, org, event_type=event.event_type, perpetrator_only=cand.perpetrator_only)
        perpetrators = set(route.perpetrators)
        flags = flags_for(self.graph, org, perpetrators=perpetrators, day=day, perpetrator_gp=cand.perpetrator_gp)
        reason = "; ".join(cand.paths)
        if kind == "catch_up" and trigger is not None:
            reason += f" (new link: {trigger.event_type} {trigger.event_id})"
        content: dict[str, Any]
        if view == "education":
            content = education_view(self.graph, event, cand.child, cand.present)
        elif view == "perpetrator":
            content = perpetrator_view(self.graph, event, route.children, day)
        else:
            content = dict(self._full_view(event))
            if route.items:
                content["history"] = [self._full_view(self.items.events[eid]) for eid in route.items]
        also = sorted(everyone - {org})
        if view == "perpetrator":
            also = perpetrator_also_notified(self.graph, also)
        if org not in hidden:
            also = [o for o in also if o not in hidden]
            reason = scrub(reason, hidden)
            content = scrub(content, hidden)
        nid = notification_id(event.event_id, org)
        ack_by = ack_deadline(at, route.priority) if kind in ACK_KINDS else None
        note = Notification(
            notification_id=nid,
            kind=kind,
            event_id=event.event_id,
            event_type=event.event_type,
            recipient=org,
            at=at,
            priority=route.priority,
            flags=flags,
            view=view,
            reason=reason,
            also_notified=tuple(also),
            ack_by=ack_by,
            rule=route.rule,
            content=content,
            trigger_event_id=trigger.event_id if trigger else None,
            safeguarding_lead=self.graph.safeguarding_lead(org),
        )
        self._record(note)
        return note

    def _full_view(self, event: Event) -> dict[str, Any]:
        """The full view of an event, computed once per event (events never change)."""
        view = self._views.get(event.event_id)
        if view is None:
            if len(self._views) >= 4096:  # a small cache: routing touches recent events most
                self._views.pop(next(iter(self._views)))
            view = self._views[event.event_id] = full_view(event)
        return view

    def _record(self, note: Notification) -> None:
        """Remember a sent notification: once only, who has had what, what awaits an ack."""
        self.told[note.event_id].append((note.recipient, note.notification_id, note.kind))
        self._view_of[note.notification_id] = note.view
        if note.kind in ("alert", "catch_up", "history"):
            self.had[note.event_id].add(note.recipient)
            self.item_had[self.items.item_key(note.event_id)].add(note.recipient)
        if note.ack_by is not None:
            self._awaiting[note.notification_id] = note
            self._pushed += 1  # ties at one ack_by escalate in the order they were sent
            heapq.heappush(self._pending, (note.ack_by, self._pushed, note.notification_id))
        if note.event_type == "challenge.raised" and note.kind == "alert":
            self._challenge_recipients[note.event_id].append(note)

    def _sent(self, event_id: str, org: str) -> bool:
        """Once only: whether ``org`` was sent a notification of the event (retractions are of another event)."""
        return any(o == org and kind != "retraction" for o, _, kind in self.told.get(event_id, ()))

    def _lead(self, note: Notification) -> str | None:
        return note.safeguarding_lead or self.graph.safeguarding_lead(note.recipient)

    # -- rules over the graph ------------------------------------------------------------

    def _late_binding(self, link: Event, named: list[str], at: dt.datetime) -> list[Output]:
        """Re-route every active item concerning whom the link touches (``rebound_persons``)."""
        persons = rebound_persons(self.graph, named, link.occurred_at.date())
        out: list[Output] = []
        for key in self.items.active_concerning(persons, link.occurred_at):
            events = self.items.item_events(key)
            latest = events[-1]
            if latest.event_id == link.event_id:
                continue
            route = route_event(self.graph, self.items, latest, link.occurred_at)
            if route is None or route.kind != "alert":
                continue
            out += self._emit(latest, route, at, kind="catch_up", trigger=link, only_new_to_item=key)
        return out

    def _history_sweep(self, event: Event, at: dt.datetime) -> list[Output]:
        """The responsible CSC gets each history item of the carers that it has not had."""
        d = event.data
        g = self.graph
        targets: list[tuple[str, str]] = []
        cscs: list[str] = []
        if event.event_type in PLAN_TYPES:
            child = g.people.resolve(d["child"])
            if child is None:
                return []
            targets = [(c, how) for c, how in g.carers(child)]
            cscs = [org for org, _ in g.responsible_csc(child, g.org_area(event.source))]
            about = f"child ({g.people.label(child)})"
        else:
            mother = g.people.resolve(d["mother"])
            father = g.people.resolve(d.get("expected_father"))
            targets = [(p, how) for p, how in ((mother, "mother"), (father, "expected father")) if p]
            pregs = g.active_pregnancies(mother, event.occurred_at.date()) if mother else []
            cscs = sorted({o for p in pregs for o, _ in g.responsible_csc(p.unborn, g.org_area(event.source))}) or [
                event.source
            ]
            about = "the pre-birth assessment"
        out: list[Output] = []
        for csc in cscs:
            for person, how in targets:
                for item in self.items.history(person, event.occurred_at):
                    if csc in self.had.get(item.event_id, ()) or self._sent(item.event_id, csc):
                        continue
                    path = (
                        f"history item of {how} ({g.people.label(person)}) of {about}, for children's social care "
                        f"({csc}) starting {event.event_type} {event.event_id}"
                    )
                    cand = Candidate(csc, [path])
                    perps = set()
                    p = g.people.resolve(item.data.get("perpetrator")) if "perpetrator" in item.data else None
                    if p:
                        perps.add(p)
                    route = Route(
                        "sweep",
                        "history",
                        "routine",
                        {csc: cand},
                        [],
                        {person},
                        perpetrators=frozenset(perps),
                    )
                    out += self._emit(item, route, at, kind="history", trigger=event)
        return out

    def _retract(self, event: Event, at: dt.datetime) -> list[Output]:
        """Tell everyone who was told of the original; it stops being an active or history item."""
        original = str(event.data["original_event_id"])
        self.graph.retracted.add(original)
        out: list[Output] = []
        shared = []
        for org, nid, kind in sorted(self.told.get(original, [])):
            if kind not in ("alert", "catch_up", "history"):
                continue
            self._awaiting.pop(nid, None)
            rid = notification_id(event.event_id, org, "retraction")
            view = self._view_of.get(nid) or view_for(self.graph, org)
            note = Notification(
                notification_id=rid,
                kind="retraction",
                event_id=event.event_id,
                event_type=event.event_type,
                recipient=org,
                at=at,
                priority="routine",
                flags=flags_for(self.graph, org, perpetrators=(), day=event.occurred_at.date()),
                view=view,
                reason=f"you were told of {original}, which its publisher ({event.source}) has retracted",
                also_notified=(),
                ack_by=None,
                rule="retraction",
                content=retraction_view(event, original, view),
                follows=nid,
                safeguarding_lead=self.graph.safeguarding_lead(org),
            )
            self.told[event.event_id].append((org, rid, "retraction"))
            out.append(note)
            shared.append((org, rid))
        out.append(decision_record(event, "retraction", "retraction", at, tuple(shared), (), None))
        return out
