"""Test helpers that ship with the library: synthetic keys and a valid sample of every event type.

All data is synthetic: NHS numbers from the 999 range (valid Modulus 11),
invented names. Tests, the benchmark and property tests build on these.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from broker.client import build_envelope
from broker.envelope.keys import KeyRecord, KeyRegistry, SigningKey, new_key
from broker.envelope.model import Envelope
from broker.nhs import synthetic_nhs_number

__all__ = [
    "SAMPLE_ORGS",
    "SampleKeys",
    "make_keys",
    "publisher_for",
    "retraction_of",
    "sample_data",
    "sample_directory",
    "signed_sample",
]

# One organisation of each publishing kind.
SAMPLE_ORGS: Mapping[str, str] = {
    "POLICE-WYP": "police",
    "GP-B83001": "gp_practice",
    "MIDWIFERY-BTHFT": "midwifery",
    "CSC-BRADFORD": "childrens_social_care",
    "MARAC-BRADFORD": "marac",
    "PARTNERSHIP-BRADFORD": "partnership",
    "HV-BRADFORD-NORTH": "health_visiting",
    "SCHOOL-107300": "school",
    "ADULTS-BRADFORD": "adult_services",
}

_PUBLISHER_BY_PREFIX = {
    "police.": "POLICE-WYP",
    "gp.": "GP-B83001",
    "identity.sensitive_record": "GP-B83001",
    "midwifery.": "MIDWIFERY-BTHFT",
    "csc.": "CSC-BRADFORD",
    "identity.same_person": "CSC-BRADFORD",
    "marac.": "MARAC-BRADFORD",
    "directory.": "PARTNERSHIP-BRADFORD",
}


def publisher_for(event_type: str) -> str:
    """A sample organisation allowed to publish ``event_type``."""
    for prefix, org in _PUBLISHER_BY_PREFIX.items():
        if event_type.startswith(prefix):
            return org
    return "HV-BRADFORD-NORTH"  # link.*, challenge.*, adult.*, record.retracted: any kind


@dataclasses.dataclass(frozen=True, slots=True)
class SampleKeys:
    """A registry and the matching private keys, by org id."""

    registry: KeyRegistry
    signing: Mapping[str, SigningKey]
    records: Mapping[str, KeyRecord]


def make_keys(
    orgs: Mapping[str, str] = SAMPLE_ORGS, *, valid_from: dt.datetime = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
) -> SampleKeys:
    """One deterministic key per organisation (seeded from the org id)."""
    signing: dict[str, SigningKey] = {}
    records: dict[str, KeyRecord] = {}
    for org_id, kind in orgs.items():
        seed = hashlib.sha256(f"jigsaw-test-key:{org_id}".encode()).digest()
        record, key = new_key(org_id, kind, valid_from=valid_from, seed=seed)
        signing[org_id], records[org_id] = key, record
    return SampleKeys(KeyRegistry(records.values()), signing, records)


def sample_directory(
    keys: SampleKeys,
    *,
    at: dt.datetime,
    orgs: Mapping[str, str] = SAMPLE_ORGS,
    occurred_at: dt.datetime | None = None,
    area: str = "bradford",
) -> list[Envelope]:
    """A ``directory.organisation`` envelope for each of ``orgs`` (id -> kind), signed by its partnership.

    The intake refuses an event that names an organisation the directory does not list
    (``unknown_organisation``): submit these first. ``at`` is the signing time; with fixed ids and
    ``occurred_at`` (by default 2020-01-01, or ``at`` if earlier), sending them again is a re-send
    (200), not a conflict.
    """
    occurred_at = occurred_at or min(at, dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    from broker.client import build_envelope  # the client builds on this package

    partnership = next(o for o, kind in orgs.items() if kind == "partnership")
    return [
        build_envelope(
            "directory.organisation",
            {
                "org_id": org_id,
                "kind": kind,
                "name": f"Sample {kind.replace('_', ' ')}",
                "area": area,
                "endpoint": None,
                "safeguarding_lead": "Safeguarding lead",
            },
            source=partnership,
            key=keys.signing[partnership],
            occurred_at=occurred_at,
            issued_at=at,
            event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"jigsaw-sample-directory:{org_id}")),
        )
        for org_id, kind in sorted(orgs.items())
    ]


def _person(index: int, name: str, born: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"nhs_number": synthetic_nhs_number(index), "name": name}
    if born:
        ref["date_of_birth"] = born
    return ref


def sample_data(event_type: str, index: int = 0) -> dict[str, Any]:
    """Valid JSON-like data for ``event_type``; ``index`` varies the people and refs."""
    n = index * 10
    mother = _person(n, f"Mother {index}", "1994-05-01")
    father = _person(n + 1, f"Father {index}", "1990-02-11")
    child = _person(n + 2, f"Child {index}", "2021-12-01")
    sibling = {"local_id": f"POLICE-WYP:C{index}", "name": f"Sibling {index}", "date_of_birth": "2016-07-19"}
    ref = f"R{index:06d}"
    samples: dict[str, dict[str, Any]] = {
        "directory.organisation": {
            "org_id": f"GP-X{index:05d}",
            "kind": "gp_practice",
            "name": f"Surgery {index}",
            "area": "bradford",
            "endpoint": None,
            "safeguarding_lead": "Dr Example",
        },
        "gp.registration": {
            "person": mother,
            "practice": "GP-B83001",
            "status": "registered",
            "effective_date": "2015-01-01",
        },
        "midwifery.pregnancy_booked": {
            "booking_ref": ref,
            "mother": mother,
            "expected_father": father,
            "expected_date": "2022-06-01",
            "midwifery_service": "MIDWIFERY-BTHFT",
        },
        "midwifery.birth_notified": {
            "booking_ref": ref,
            "child": child,
            "mother": mother,
            "father": None,
            "born_on": "2021-12-01",
            "health_visiting": "HV-BRADFORD-NORTH",
        },
        "csc.household_composition": {
            "child": child,
            "members": [
                {"person": mother, "relationship": "mother", "lives_with_child": True},
                {"person": father, "relationship": "father", "lives_with_child": False},
            ],
            "school": None,
            "health_visiting": "HV-BRADFORD-NORTH",
        },
        "link.professional_assigned": {
            "person": child,
            "org": "HV-BRADFORD-NORTH",
            "role": "health_visitor",
            "status": "assigned",
        },
        "identity.same_person": {"a": sibling, "b": child, "basis": "MASH check of address and birth date"},
        "identity.sensitive_record": {"person": mother, "sensitive": True},
        "police.domestic_abuse_incident": {
            "incident_ref": ref,
            "victim": mother,
            "perpetrator": father,
            "children_present": [child],
            "children_in_household": [child, sibling],
            "risk_level": "medium",
            "marac_referral": False,
            "summary": "Synthetic incident for testing.",
        },
        "csc.child_in_need_plan": {
            "plan_ref": ref,
            "child": child,
            "status": "started",
            "summary": "Synthetic plan.",
            "next_review": "2022-04-01",
        },
        "csc.child_protection_plan": {
            "plan_ref": ref,
            "child": child,
            "status": "started",
            "category": "neglect",
            "summary": "Synthetic plan.",
            "next_review": None,
        },
        "csc.strategy_meeting": {
            "meeting_ref": ref,
            "children": [child],
            "held_on": "2022-01-05",
            "decision": "section_47",
            "summary": "Synthetic meeting.",
        },
        "csc.pre_birth_assessment": {
            "assessment_ref": ref,
            "mother": mother,
            "expected_father": None,
            "status": "requested",
            "outcome": None,
        },
        "marac.case_heard": {
            "marac_ref": ref,
            "victim": mother,
            "perpetrator": father,
            "children": [child],
            "heard_on": "2022-01-10",
            "actions": "Synthetic actions.",
        },
        "gp.safeguarding_information": {
            "person": father,
            "category": "mental_health",
            "summary": "Synthetic",
        },
        "midwifery.safeguarding_concern": {
            "booking_ref": ref,
            "mother": mother,
            "category": "domestic_abuse_disclosure",
            "summary": "Synthetic.",
        },
        "adult.concern_about_parent": {"person": father, "category": "substance_misuse", "summary": "Synth"},
        "challenge.raised": {
            "challenge_ref": ref,
            "child": child,
            "directed_to": "CSC-BRADFORD",
            "level": 1,
            "summary": "Synthetic challenge.",
            "respond_by": "2022-02-01",
        },
        "challenge.resolved": {"challenge_ref": ref, "outcome": "Agreed a plan."},
        "record.retracted": {
            "original_event_id": "00000000-0000-4000-8000-000000000000",
            "reason": "entered on the wrong child",
        },
    }
    if event_type not in samples:
        raise KeyError(f"no sample for {event_type!r}")
    return samples[event_type]


def signed_sample(event_type: str, index: int, keys: SampleKeys, *, now: dt.datetime) -> Envelope:
    """A valid envelope of ``event_type`` (``sample_data(event_type, index)``) signed by its sample publisher,
    issued at ``now`` an hour after it happened, with an event id made from ``index``."""
    source = publisher_for(event_type)
    return build_envelope(
        event_type,
        sample_data(event_type, index),
        source=source,
        key=keys.signing[source],
        occurred_at=now - dt.timedelta(hours=1),
        issued_at=now,
        event_id=f"00000000-0000-4000-8000-{index:012d}",
    )


def retraction_of(original: Envelope, keys: SampleKeys, *, at: dt.datetime, reason: str = "wrong child") -> Envelope:
    """A retraction of ``original`` by its own publisher, signed with the sample key, happening and issued at ``at``."""
    return build_envelope(
        "record.retracted",
        {"original_event_id": original.event_id, "reason": reason},
        source=original.source,
        key=keys.signing[original.source],
        occurred_at=at,
        issued_at=at,
    )
