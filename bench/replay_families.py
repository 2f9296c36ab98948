"""Synthetic families for the replay benchmark: about nine events each over a year (all invented).

Every NHS number is from the 999 range with a valid Modulus 11 check digit;
every name is made up. A family: the parents register with GPs, the father has
a safeguarding note, a pregnancy is booked, the child is born and registered,
social care records the household, police attend a domestic abuse incident and
a child in need plan starts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from broker.nhs import synthetic_nhs_numbers

__all__ = ["AREA", "EVENTS_PER_FAMILY", "FAMILY_EVERY", "START", "family", "organisations", "publisher", "story"]

START = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
EVENTS_PER_FAMILY = 9
FAMILY_EVERY = 7.0  # minutes between one family's first event and the next's
AREA = "benchton"


def organisations(families: int) -> dict[str, str]:
    """Organisation id -> kind, for a city of ``families`` families."""
    practices = max(4, families // 200)
    orgs = {f"GP-Z{i:05d}": "gp_practice" for i in range(practices)}
    orgs |= {f"HV-{i:03d}": "health_visiting" for i in range(max(2, practices // 8))}
    orgs |= {
        "CSC-BENCH": "childrens_social_care",
        "POLICE-BENCH": "police",
        "MIDWIFERY-BENCH": "midwifery",
        "MARAC-BENCH": "marac",
        "PARTNERSHIP-BENCH": "partnership",
    }
    return orgs


def family(
    i: int, numbers: Iterator[str], gps: list[str], hvs: list[str], *, every: float = FAMILY_EVERY
) -> list[tuple[dt.datetime, str, dict[str, Any]]]:
    """One family's story: (time, event type, data), about nine events over a year, starting ``every`` minutes
    after the one before."""
    base = START + dt.timedelta(minutes=every * i)
    mother = {"nhs_number": next(numbers), "name": f"Mother {i}", "date_of_birth": "1993-04-02"}
    father = {"nhs_number": next(numbers), "name": f"Father {i}", "date_of_birth": "1990-09-17"}
    born = (base + dt.timedelta(days=200)).date()
    child = {"nhs_number": next(numbers), "name": f"Child {i}", "date_of_birth": born.isoformat()}
    gp, hv, ref = gps[i % len(gps)], hvs[i % len(hvs)], f"B{i:07d}"

    def at(days: float) -> dt.datetime:
        return base + dt.timedelta(days=days)

    return [
        (
            at(0),
            "gp.registration",
            {"person": mother, "practice": gp, "status": "registered", "effective_date": "2015-01-01"},
        ),
        (
            at(0.01),
            "gp.registration",
            {
                "person": father,
                "practice": gps[(i + 1) % len(gps)],
                "status": "registered",
                "effective_date": "2016-01-01",
            },
        ),
        (
            at(20),
            "gp.safeguarding_information",
            {"person": father, "category": "substance_misuse", "summary": "Synthetic."},
        ),
        (
            at(30),
            "midwifery.pregnancy_booked",
            {
                "booking_ref": ref,
                "mother": mother,
                "expected_father": father,
                "expected_date": born.isoformat(),
                "midwifery_service": "MIDWIFERY-BENCH",
            },
        ),
        (
            at(200),
            "midwifery.birth_notified",
            {
                "booking_ref": ref,
                "child": child,
                "mother": mother,
                "father": father,
                "born_on": born.isoformat(),
                "health_visiting": hv,
            },
        ),
        (
            at(207),
            "gp.registration",
            {"person": child, "practice": gp, "status": "registered", "effective_date": born.isoformat()},
        ),
        (
            at(230),
            "csc.household_composition",
            {
                "child": child,
                "members": [
                    {"person": mother, "relationship": "mother", "lives_with_child": True},
                    {"person": father, "relationship": "father", "lives_with_child": True},
                ],
                "school": None,
                "health_visiting": hv,
            },
        ),
        (
            at(260),
            "police.domestic_abuse_incident",
            {
                "incident_ref": f"I{i:07d}",
                "victim": mother,
                "perpetrator": father,
                "children_present": [child],
                "children_in_household": [child],
                "risk_level": "medium",
                "marac_referral": False,
                "summary": "Synthetic incident.",
            },
        ),
        (
            at(280),
            "csc.child_in_need_plan",
            {
                "plan_ref": f"P{i:07d}",
                "child": child,
                "status": "started",
                "summary": "Synthetic plan.",
                "next_review": None,
            },
        ),
    ]


def publisher(event_type: str, orgs: dict[str, str], data: dict[str, Any]) -> str:
    """The organisation that publishes an event of this type."""
    prefix = event_type.split(".", 1)[0]
    if prefix == "gp":
        return str(data.get("practice") or next(o for o, k in orgs.items() if k == "gp_practice"))
    return {
        "midwifery": "MIDWIFERY-BENCH",
        "csc": "CSC-BENCH",
        "police": "POLICE-BENCH",
        "directory": "PARTNERSHIP-BENCH",
    }[prefix]


def story(
    families: int, orgs: dict[str, str], *, every: float = FAMILY_EVERY
) -> list[tuple[dt.datetime, str, dict[str, Any]]]:
    """Every organisation's directory entry (a day before the first family), then each family's events.

    Each family's events are in time order; families overlap in time (sort to interleave them). A new family
    starts every ``every`` minutes: with the default, a year's families (about 75,000) are in their story at
    once; slower, the same log holds fewer families at once over a longer time.
    """
    gps = [o for o, k in orgs.items() if k == "gp_practice"]
    hvs = [o for o, k in orgs.items() if k == "health_visiting"]
    out: list[tuple[dt.datetime, str, dict[str, Any]]] = [
        (
            START - dt.timedelta(days=1),
            "directory.organisation",
            {"org_id": o, "kind": k, "name": o, "area": AREA, "endpoint": None, "safeguarding_lead": "Lead"},
        )
        for o, k in orgs.items()
    ]
    numbers = synthetic_nhs_numbers()
    for i in range(families):
        out += family(i, numbers, gps, hvs, every=every)
    return out
