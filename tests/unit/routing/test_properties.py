"""Invariants of routing over random families and random event sequences (Hypothesis)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.model import Event
from broker.nhs import synthetic_nhs_number
from broker.routing.model import Notification
from broker.routing.people import ref_keys
from broker.routing.policy import NOT_FOR_SCHOOLS
from broker.routing.state import Output, RoutingState
from broker.routing.views import hidden_orgs

ORGS = {
    "GP-A": "gp_practice",
    "GP-B": "gp_practice",
    "GP-C": "gp_practice",
    "HV-1": "health_visiting",
    "HV-2": "health_visiting",
    "SCHOOL-1": "school",
    "SCHOOL-2": "school",
    "CSC-1": "childrens_social_care",
    "CSC-K": "childrens_social_care",
    "POLICE": "police",
    "MW": "midwifery",
    "MARAC": "marac",
    "PSHIP": "partnership",
    "ADULTS": "adult_services",
}
AREA = {"CSC-K": "kirklees"}
BY_KIND: dict[str, list[str]] = {}
for _org, _kind in ORGS.items():
    BY_KIND.setdefault(_kind, []).append(_org)
START = dt.datetime(2020, 1, 1, 9, tzinfo=dt.UTC)
DOBS = [
    None,
    dt.date(1980, 5, 1),
    dt.date(1992, 3, 3),
    dt.date(2003, 1, 1),
    dt.date(2012, 6, 1),
    dt.date(2016, 9, 9),
    dt.date(2019, 11, 11),
    dt.date(2020, 2, 2),
]
NUMBERS = [synthetic_nhs_number(5000 + i) for i in range(7)]  # computed once: the generator walks from the start
RELATIONSHIPS = [
    "mother",
    "father",
    "step_parent",
    "partner_of_parent",
    "sibling",
    "grandparent",
    "other_adult",
    "other_child",
]


@st.composite
def stories(draw: Any) -> list[Event]:
    """A directory, a handful of people, and a random sequence of catalogue events about them."""
    n_people = draw(st.integers(3, 7))
    people = [
        {
            "nhs_number": NUMBERS[i],
            "local_id": None,
            "name": f"Person {i}",
            "date_of_birth": draw(st.sampled_from(DOBS)),
        }
        for i in range(n_people)
    ]
    events: list[Event] = []
    t = START

    def emit(etype: str, source: str, **data: Any) -> None:
        events.append(
            Event(str(uuid.UUID(int=len(events) + 1)), etype, source, t, t, "DPA2018-S1P18", "not_required", data)
        )

    for org, kind in ORGS.items():
        emit(
            "directory.organisation",
            "PSHIP",
            org_id=org,
            kind=kind,
            name=org,
            area=AREA.get(org, "bradford"),
            endpoint=None,
            safeguarding_lead="Lead",
        )
    who = st.sampled_from(people)
    maybe = st.one_of(st.none(), who)
    org_of = lambda kind: st.sampled_from(BY_KIND[kind])  # noqa: E731
    for _ in range(draw(st.integers(3, 25))):
        t += dt.timedelta(days=draw(st.integers(0, 120)), hours=1)
        choice = draw(st.integers(0, 15))
        if choice == 0:
            gp = draw(org_of("gp_practice"))
            emit(
                "gp.registration",
                gp,
                person=draw(who),
                practice=gp,
                status=draw(st.sampled_from(["registered", "registered", "deregistered"])),
                effective_date=t.date(),
            )
        elif choice == 1:
            members = [
                {
                    "person": p,
                    "relationship": draw(st.sampled_from(RELATIONSHIPS)),
                    "lives_with_child": draw(st.booleans()),
                }
                for p in draw(st.lists(who, max_size=3))
            ]
            emit(
                "csc.household_composition",
                draw(org_of("childrens_social_care")),
                child=draw(who),
                members=members,
                school=draw(st.one_of(st.none(), org_of("school"))),
                health_visiting=draw(st.one_of(st.none(), org_of("health_visiting"))),
            )
        elif choice == 2:
            emit(
                "midwifery.birth_notified",
                "MW",
                booking_ref=draw(st.sampled_from([None, "B1", "B2"])),
                child=draw(who),
                mother=draw(who),
                father=draw(maybe),
                born_on=t.date(),
                health_visiting=draw(st.one_of(st.none(), org_of("health_visiting"))),
            )
        elif choice == 3:
            emit(
                "midwifery.pregnancy_booked",
                "MW",
                booking_ref=draw(st.sampled_from(["B1", "B2"])),
                mother=draw(who),
                expected_father=draw(maybe),
                expected_date=(t + dt.timedelta(days=150)).date(),
                midwifery_service="MW",
            )
        elif choice == 4:
            emit(
                "police.domestic_abuse_incident",
                "POLICE",
                incident_ref="I",
                victim=draw(who),
                perpetrator=draw(maybe),
                children_present=draw(st.lists(who, max_size=2)),
                children_in_household=draw(st.lists(who, max_size=2)),
                risk_level=draw(st.sampled_from(["standard", "medium", "high"])),
                marac_referral=draw(st.booleans()),
                summary="s",
            )
        elif choice == 5:
            emit(
                draw(st.sampled_from(["csc.child_in_need_plan", "csc.child_protection_plan"])),
                draw(org_of("childrens_social_care")),
                plan_ref=draw(st.sampled_from(["P1", "P2"])),
                child=draw(who),
                status=draw(st.sampled_from(["started", "reviewed", "ended"])),
                category="neglect",
                summary="s",
                next_review=None,
            )
        elif choice == 6:
            emit(
                "csc.strategy_meeting",
                "CSC-1",
                meeting_ref="M",
                children=draw(st.lists(who, min_size=1, max_size=2)),
                held_on=t.date(),
                decision=draw(st.sampled_from(["section_47", "child_in_need"])),
                summary="s",
            )
        elif choice == 7:
            emit(
                "marac.case_heard",
                "MARAC",
                marac_ref="M",
                victim=draw(who),
                perpetrator=draw(maybe),
                children=draw(st.lists(who, max_size=2)),
                heard_on=t.date(),
                actions="a",
            )
        elif choice == 8:
            gp = draw(org_of("gp_practice"))
            emit("gp.safeguarding_information", gp, person=draw(who), category="mental_health", summary="s")
        elif choice == 9:
            emit("adult.concern_about_parent", "ADULTS", person=draw(who), category="other", summary="s")
        elif choice == 10:
            emit(
                "csc.pre_birth_assessment",
                "CSC-1",
                assessment_ref="A",
                mother=draw(who),
                expected_father=draw(maybe),
                status=draw(st.sampled_from(["requested", "started", "completed"])),
                outcome=None,
            )
        elif choice == 11:
            org = draw(st.sampled_from(["HV-1", "HV-2", "SCHOOL-1", "CSC-1"]))
            role = {"HV-1": "health_visitor", "HV-2": "health_visitor", "SCHOOL-1": "school"}.get(org, "social_worker")
            emit(
                "link.professional_assigned",
                org,
                person=draw(who),
                org=org,
                role=role,
                status=draw(st.sampled_from(["assigned", "ended"])),
            )
        elif choice == 12:
            emit(
                "identity.sensitive_record",
                draw(org_of("gp_practice")),
                person=draw(who),
                sensitive=draw(st.booleans()),
            )
        elif choice == 13:
            emit(
                "challenge.raised",
                draw(st.sampled_from(["HV-1", "SCHOOL-1", "GP-A"])),
                challenge_ref="C",
                child=draw(who),
                directed_to="CSC-1",
                level=1,
                summary="s",
                respond_by=(t + dt.timedelta(days=draw(st.integers(1, 30)))).date(),
            )
        elif choice == 14:
            emit("challenge.resolved", "CSC-1", challenge_ref="C", outcome="o")
        elif events[len(ORGS) :]:
            original = draw(st.sampled_from(events[len(ORGS) :]))
            emit("record.retracted", original.source, original_event_id=original.event_id, reason="wrong child")
    return events


def run(events: list[Event]) -> tuple[list[Output], list[tuple[Event, list[Output], RoutingState]]]:
    state = RoutingState()
    out: list[Output] = []
    steps = []
    for e in events:
        produced = state.apply_event(e, e.occurred_at)
        out += produced
        steps.append((e, produced, state))
    out += state.advance(events[-1].occurred_at + dt.timedelta(days=60))
    return out, steps


def _notes(outputs: list[Output]) -> list[Notification]:
    return [o for o in outputs if isinstance(o, Notification)]


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(stories())
def test_no_organisation_gets_an_event_twice(events: list[Event]) -> None:
    """Once only: apart from escalations and retractions, one notification per (event, organisation)."""
    seen: set[tuple[str, str]] = set()
    for n in _notes(run(events)[0]):
        if n.kind in ("escalation", "retraction"):
            continue
        assert (n.event_id, n.recipient) not in seen
        seen.add((n.event_id, n.recipient))


@PROPERTY
@given(stories())
def test_the_publisher_never_gets_its_own_event(events: list[Event]) -> None:
    """Not to itself (R5's booking service, which hears history it did not have, excepted)."""
    source = {e.event_id: e.source for e in events}
    for n in _notes(run(events)[0]):
        if n.kind in ("pre_birth_alert", "escalation"):  # an escalation follows up what the recipient had
            continue
        assert n.recipient != source[n.event_id]


@PROPERTY
@given(stories())
def test_every_gp_notification_is_restricted_and_schools_see_only_the_education_view(events: list[Event]) -> None:
    """GP practices always get restricted; schools never get a full view or a forbidden type."""
    for n in _notes(run(events)[0]):
        kind = ORGS.get(n.recipient)
        if kind == "gp_practice":
            assert "restricted" in n.flags
        if kind == "school":
            assert n.view == "education"
            assert n.event_type not in NOT_FOR_SCHOOLS
            allowed = {"event_id", "event_type", "date", "child", "child_present"}
            assert set(n.content) <= allowed | ({"original_event_id"} if n.kind == "retraction" else set())


@PROPERTY
@given(stories())
def test_no_notification_names_a_sensitive_persons_organisations_to_others(events: list[Event]) -> None:
    """For an event naming a sensitive person, a non-hidden recipient's notification names none of their orgs."""
    state = RoutingState()
    for e in events:
        produced = state.apply_event(e, e.occurred_at)
        for n in _notes(produced):
            if n.kind not in ("alert", "catch_up", "history", "pre_birth_alert"):
                continue
            about = state.items.events.get(n.event_id, e)
            named = set()
            for ref in _refs(about.data):
                keys = ref_keys(ref)
                if keys:
                    named.add(state.graph.people.find(keys[0]))
            hidden = hidden_orgs(
                state.graph, named, about.occurred_at.date() if n.kind != "catch_up" else e.occurred_at.date()
            )
            if n.recipient in hidden:
                continue
            text = json.dumps(n.to_dict())
            for org in hidden:
                assert org not in text, (org, n.recipient, n.kind)


def _refs(data: Any) -> list[dict[str, Any]]:
    out = []
    for v in data.values():
        if isinstance(v, dict) and ("nhs_number" in v or "local_id" in v):
            out.append(v)
        elif isinstance(v, list):
            out += [x for x in v if isinstance(x, dict) and ("nhs_number" in x or "local_id" in x)]
    return out


@PROPERTY
@given(stories())
def test_the_same_log_always_yields_the_same_notifications(events: list[Event]) -> None:
    """Routing is deterministic: replaying the same events gives byte-identical outputs."""
    first = [o.to_dict() for o in run(events)[0]]
    second = [o.to_dict() for o in run(events)[0]]
    assert first == second
