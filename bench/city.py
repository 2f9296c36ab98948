"""A synthetic city: many families' stories as catalogue events, in time order.

Shared by the routing benchmark (and usable by others). Everything is invented:
NHS numbers are in the 999 range with a valid Modulus 11 check digit.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator
from typing import Any

from broker.model import Event
from broker.nhs import synthetic_nhs_numbers

__all__ = ["city_events", "directory_events"]

START = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)


def _orgs(families: int) -> dict[str, list[str]]:
    practices = max(10, families // 300)
    return {
        "gp_practice": [f"GP-Z{i:05d}" for i in range(practices)],
        "health_visiting": [f"HV-{i:03d}" for i in range(max(2, practices // 10))],
        "school": [f"SCHOOL-{i:05d}" for i in range(max(3, practices // 2))],
        "childrens_social_care": ["CSC-CITY"],
        "police": ["POLICE-CITY"],
        "midwifery": ["MIDWIFERY-CITY"],
        "marac": ["MARAC-CITY"],
        "partnership": ["PARTNERSHIP-CITY"],
        "adult_services": ["ADULTS-CITY"],
    }


def _event(etype: str, source: str, at: dt.datetime, rng: random.Random, **data: Any) -> Event:
    return Event(str(uuid.UUID(int=rng.getrandbits(128), version=4)), etype, source, at, at, "DPA2018-S1P18",
                 "not_sought", data)


def directory_events(families: int) -> list[Event]:
    rng = random.Random(1)
    return [
        _event("directory.organisation", "PARTNERSHIP-CITY", START, rng, org_id=org, kind=kind, name=org, area="city",
               endpoint=None, safeguarding_lead="Lead")
        for kind, orgs in _orgs(families).items() for org in orgs
    ]


def city_events(families: int, *, seed: int = 7) -> Iterator[Event]:
    """Each family's story (registrations, births, households, incidents, plans, ...), interleaved in time."""
    rng = random.Random(seed)
    orgs = _orgs(families)
    numbers = synthetic_nhs_numbers()
    stories: list[tuple[dt.datetime, int, Event]] = []
    n = 0

    def ref(born: dt.date | None) -> dict[str, Any]:
        return {"nhs_number": next(numbers), "local_id": None, "name": None, "date_of_birth": born}

    for f in range(families):
        gp_m, gp_f = rng.choice(orgs["gp_practice"]), rng.choice(orgs["gp_practice"])
        hv, school = rng.choice(orgs["health_visiting"]), rng.choice(orgs["school"])
        mother, father = ref(dt.date(1990, 1, 1)), ref(dt.date(1988, 1, 1))
        older = ref(dt.date(2014 + rng.randrange(5), 6, 1))
        t = START + dt.timedelta(minutes=rng.randrange(60 * 24 * 365))
        events: list[Event] = []

        def add(etype: str, source: str, step: dt.timedelta = dt.timedelta(days=7), **data: Any) -> None:
            nonlocal t
            t += step
            events.append(_event(etype, source, t, rng, **data))  # noqa: B023 (called only in this iteration)

        add("gp.registration", gp_m, person=mother, practice=gp_m, status="registered", effective_date=t.date())
        add("gp.registration", gp_f, person=father, practice=gp_f, status="registered", effective_date=t.date())
        add("gp.registration", gp_m, person=older, practice=gp_m, status="registered", effective_date=t.date())
        add("csc.household_composition", "CSC-CITY", child=older,
            members=[{"person": mother, "relationship": "mother", "lives_with_child": True},
                     {"person": father, "relationship": "father", "lives_with_child": rng.random() < 0.5}],
            school=school, health_visiting=None)
        if rng.random() < 0.3:
            add("gp.safeguarding_information", gp_m, person=mother, category="mental_health", summary="synthetic")
        if rng.random() < 0.4:
            add("police.domestic_abuse_incident", "POLICE-CITY", incident_ref=f"I{f}", victim=mother,
                perpetrator=father, children_present=[older] if rng.random() < 0.5 else [],
                children_in_household=[older], risk_level=rng.choice(["standard", "medium", "high"]),
                marac_referral=rng.random() < 0.1, summary="synthetic")
        if rng.random() < 0.5:
            booking = f"B{f}"
            add("midwifery.pregnancy_booked", "MIDWIFERY-CITY", booking_ref=booking, mother=mother,
                expected_father=father, expected_date=(t + dt.timedelta(days=200)).date(),
                midwifery_service="MIDWIFERY-CITY")
            baby = ref(None)
            add("midwifery.birth_notified", "MIDWIFERY-CITY", dt.timedelta(days=200), booking_ref=booking,
                child={**baby, "date_of_birth": t.date()}, mother=mother, father=father, born_on=t.date(),
                health_visiting=hv)
            add("gp.registration", gp_m, person=baby, practice=gp_m, status="registered", effective_date=t.date())
            if rng.random() < 0.2:
                add("csc.child_in_need_plan", "CSC-CITY", plan_ref=f"CIN{f}", child=baby, status="started",
                    summary="synthetic", next_review=None)
                add("csc.strategy_meeting", "CSC-CITY", meeting_ref=f"SM{f}", children=[baby], held_on=t.date(),
                    decision=rng.choice(["section_47", "child_in_need"]), summary="synthetic")
        for e in events:
            n += 1
            stories.append((e.occurred_at, n, e))
    stories.sort(key=lambda s: (s[0], s[1]))
    for _, _, e in stories:
        yield e
