"""From a scenario's event step back to the export record an agency's adapter would read.

``jigsaw demo`` plays the review's cases as the agencies would send them: each
step an adapter can carry becomes one record of that agency's JSON export
(``adapters/README.md``), which the adapter maps, signs, checks and sends. This
module is the inverse of the adapters' mappings, with pure functions only.

``step_record(step, data)`` gives the ``ScenarioRecord`` (agency and record) for
a step whose resolved ``data`` (PersonRefs, not handles) an adapter reproduces
exactly: the same event type, the same data (nulls and lists included) and
``occurred_at`` equal to the step's ``at``. Every record is mapped back through
the real adapter before it is returned, so a step the export format cannot
express (a local id of another organisation, a blank summary, a birth date that
is not the UK date of the birth time ...) gives None, as do the types no adapter
produces (``directory.organisation``, ``identity.*``, ``link.*``,
``challenge.*``, ``record.retracted``, ``marac.case_heard``,
``adult.concern_about_parent``) and steps only a client can send
(``signed_by``, ``corrupt``, a lawful basis other than the agency kind's).

Where the export has an id of its own for a record (a registration, a coded
entry, a birth notification, a concern, a household recording) the record id is
``record_id`` (the step's ref unless given), so the adapter's event id,
``uuid5(org, record type, record id, version)``, is the same on every run. Other
records are known by the agency's reference in the data (``incident_ref``,
``booking_ref``, ``plan_ref`` with status and date, ``meeting_ref``,
``assessment_ref`` with status and date).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from adapters import csc, gp, midwifery, police
from adapters.base import Adapter, Mapped, Row, RowError
from adapters.files import rows_from_records
from broker.client import default_lawful_basis

__all__ = ["AGENCY_OF_TYPE", "ScenarioRecord", "maps_back", "step_record", "to_record"]

AGENCY_OF_TYPE: Mapping[str, str] = {
    "police.domestic_abuse_incident": "police",
    "gp.registration": "gp",
    "gp.safeguarding_information": "gp",
    "midwifery.pregnancy_booked": "midwifery",
    "midwifery.birth_notified": "midwifery",
    "midwifery.safeguarding_concern": "midwifery",
    "csc.child_in_need_plan": "csc",
    "csc.child_protection_plan": "csc",
    "csc.strategy_meeting": "csc",
    "csc.pre_birth_assessment": "csc",
    "csc.household_composition": "csc",
}
"""Every event type an adapter produces, and the adapter (agency) that produces it."""

_ADAPTERS: Mapping[str, Adapter] = {a.name: a for a in (police.ADAPTER, gp.ADAPTER, midwifery.ADAPTER, csc.ADAPTER)}

# A code for each GP safeguarding category: the first code in the table that maps to it.
_CODE_FOR_CATEGORY: Mapping[str, str] = {
    category: code for code, (category, _term) in reversed(list(gp.CODE_TABLE.items()))
}


class _NotExpressible(Exception):
    """The step's data has no record in the agency's export format."""


@dataclasses.dataclass(frozen=True, slots=True)
class ScenarioRecord:
    """One record of an agency's JSON export (``agency`` names the adapter that reads it)."""

    agency: str
    record: dict[str, Any]


def _time(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _person(ref: Any, org_id: str, *, required: bool = True) -> dict[str, Any] | None:
    """A PersonRef as the export's ``nhs_number``/``id``/``name``/``dob`` fields (None for an absent person)."""
    if ref is None:
        if required:
            raise _NotExpressible("a required person is null")
        return None
    if not isinstance(ref, Mapping):
        raise _NotExpressible("a person is not a PersonRef")
    out: dict[str, Any] = {}
    if ref.get("nhs_number") is not None:
        out["nhs_number"] = ref["nhs_number"]
    local = ref.get("local_id")
    if local is not None:
        prefix = f"{org_id}:"
        if not str(local).startswith(prefix):
            raise _NotExpressible("a local id of another organisation")  # the export writes its own ids only
        out["id"] = str(local)[len(prefix) :]
    if ref.get("name") is not None:
        out["name"] = ref["name"]
    if ref.get("date_of_birth") is not None:
        out["dob"] = ref["date_of_birth"]
    return out


def _people(refs: Any, org_id: str) -> list[dict[str, Any]]:
    if not isinstance(refs, list):
        raise _NotExpressible("a list of people is not a list")
    return [p for p in (_person(r, org_id) for r in refs) if p is not None]


def _set(record: dict[str, Any], field: str, value: Any) -> None:
    if value is not None:
        record[field] = value


def _children(present: Sequence[Any], household: Sequence[Any], org_id: str) -> list[dict[str, Any]]:
    """One ``children`` list with present/household flags whose two filtered lists are exactly the given ones."""
    out: list[dict[str, Any]] = []
    i = j = 0
    while i < len(present) or j < len(household):
        p = present[i] if i < len(present) else None
        h = household[j] if j < len(household) else None
        if p is not None and h is not None and p == h:
            child, flags, i, j = p, (True, True), i + 1, j + 1
        elif p is not None and p not in household[j:]:
            child, flags, i = p, (True, False), i + 1
        elif h is not None and h not in present[i:]:
            child, flags, j = h, (False, True), j + 1
        else:
            raise _NotExpressible("the children present and in the household are listed in different orders")
        entry = _person(child, org_id)
        assert entry is not None
        out.append({**entry, "present": flags[0], "household": flags[1]})
    return out


def _incident(data: Mapping[str, Any], org_id: str, at: dt.datetime, record_id: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "record_type": "incident",
        "incident_ref": data["incident_ref"],
        "occurred_at": _time(at),
        "victim": _person(data["victim"], org_id),
        "children": _children(data["children_present"], data["children_in_household"], org_id),
        "dash_risk": data["risk_level"],
        "marac_referral": data["marac_referral"],
        "summary": data["summary"],
    }
    _set(record, "suspect", _person(data["perpetrator"], org_id, required=False))
    return record


def _registration(data: Mapping[str, Any], org_id: str, at: dt.datetime, record_id: str) -> dict[str, Any]:
    if data["practice"] != org_id:
        raise _NotExpressible("a practice's feed holds only its own registrations")
    return {
        "record_type": "registration",
        "registration_id": record_id,
        "practice": org_id,
        "patient": _person(data["person"], org_id),
        "status": data["status"],
        "effective_date": data["effective_date"],
        "recorded_at": _time(at),
    }


def _coded_entry(data: Mapping[str, Any], org_id: str, at: dt.datetime, record_id: str) -> dict[str, Any]:
    code = _CODE_FOR_CATEGORY.get(str(data["category"]))
    if code is None:
        raise _NotExpressible("no code in the table for the category")
    return {
        "record_type": "coded_entry",
        "entry_id": record_id,
        "patient": _person(data["person"], org_id),
        "code": code,
        "entry_date": _time(at),
        "summary": data["summary"],
    }


def _booking(data: Mapping[str, Any], org_id: str, at: dt.datetime, record_id: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "record_type": "booking",
        "booking_ref": data["booking_ref"],
        "booked_at": _time(at),
        "mother": _person(data["mother"], org_id),
        "edd": data["expected_date"],
        "service": data["midwifery_service"],
    }
    _set(record, "father", _person(data["expected_father"], org_id, required=False))
    return record


def _birth(data: Mapping[str, Any], org_id: str, at: dt.datetime, record_id: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "record_type": "birth",
        "notification_id": record_id,
        "born_at": _time(at),
        "baby": _person(data["child"], org_id),
        "mother": _person(data["mother"], org_id),
    }
    _set(record, "booking_ref", data["booking_ref"])
    _set(record, "father", _person(data["father"], org_id, required=False))
    _set(record, "health_visiting", data["health_visiting"])
    return record


def _concern(data: Mapping[str, Any], org_id: str, at: dt.datetime, record_id: str) -> dict[str, Any]:
    return {
        "record_type": "concern",
        "concern_id": record_id,
        "booking_ref": data["booking_ref"],
        "recorded_at": _time(at),
        "mother": _person(data["mother"], org_id),
        "category": data["category"],
        "summary": data["summary"],
    }


def _plan(data: Mapping[str, Any], org_id: str, at: dt.datetime, record_id: str, plan_type: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "record_type": "plan",
        "plan_type": plan_type,
        "plan_ref": data["plan_ref"],
        "child": _person(data["child"], org_id),
        "status": data["status"],
        "status_date": _time(at),
        "summary": data["summary"],
    }
    _set(record, "next_review", data["next_review"])
    if plan_type == "CP":
        record["category"] = data["category"]
    return record


def _cin_plan(data: Mapping[str, Any], org_id: str, at: dt.datetime, record_id: str) -> dict[str, Any]:
    return _plan(data, org_id, at, record_id, "CIN")


def _cp_plan(data: Mapping[str, Any], org_id: str, at: dt.datetime, record_id: str) -> dict[str, Any]:
    return _plan(data, org_id, at, record_id, "CP")


def _strategy_meeting(data: Mapping[str, Any], org_id: str, at: dt.datetime, record_id: str) -> dict[str, Any]:
    # held_on is read as a time: the meeting's event time; its UK date is the catalogue's held_on.
    return {
        "record_type": "strategy_meeting",
        "meeting_ref": data["meeting_ref"],
        "held_on": _time(at),
        "decision": data["decision"],
        "children": _people(data["children"], org_id),
        "summary": data["summary"],
    }


def _pre_birth_assessment(data: Mapping[str, Any], org_id: str, at: dt.datetime, record_id: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "record_type": "pre_birth_assessment",
        "assessment_ref": data["assessment_ref"],
        "status": data["status"],
        "status_date": _time(at),
        "mother": _person(data["mother"], org_id),
    }
    _set(record, "father", _person(data["expected_father"], org_id, required=False))
    _set(record, "outcome", data["outcome"])
    return record


def _household(data: Mapping[str, Any], org_id: str, at: dt.datetime, record_id: str) -> dict[str, Any]:
    members = []
    for member in data["members"]:
        entry = _person(member["person"], org_id)
        assert entry is not None
        members.append(
            {**entry, "relationship": member["relationship"], "lives_with_child": member["lives_with_child"]}
        )
    record: dict[str, Any] = {
        "record_type": "household",
        "household_ref": record_id,
        "recorded_on": _time(at),
        "child": _person(data["child"], org_id),
        "members": members,
    }
    _set(record, "school", data["school"])
    _set(record, "health_visiting", data["health_visiting"])
    return record


_Inverse = Callable[[Mapping[str, Any], str, dt.datetime, str], dict[str, Any]]

_INVERSES: Mapping[str, _Inverse] = {
    "police.domestic_abuse_incident": _incident,
    "gp.registration": _registration,
    "gp.safeguarding_information": _coded_entry,
    "midwifery.pregnancy_booked": _booking,
    "midwifery.birth_notified": _birth,
    "midwifery.safeguarding_concern": _concern,
    "csc.child_in_need_plan": _cin_plan,
    "csc.child_protection_plan": _cp_plan,
    "csc.strategy_meeting": _strategy_meeting,
    "csc.pre_birth_assessment": _pre_birth_assessment,
    "csc.household_composition": _household,
}


def _same(a: Any, b: Any) -> bool:
    """Equal as catalogue data: an absent key of an object is its null (a PersonRef without ``local_id``)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return all(_same(a.get(k), b.get(k)) for k in {*a, *b})
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def maps_back(
    record: ScenarioRecord, event_type: str, source: str, data: Mapping[str, Any], at: dt.datetime
) -> Mapped | None:
    """The event the agency's adapter maps ``record`` to, if it is exactly the given one; else None."""
    (row,) = rows_from_records([record.record])
    if not isinstance(row, Row):
        return None
    try:
        mapped = _ADAPTERS[record.agency].map_row(row, source)
    except RowError:
        return None
    if len(mapped) != 1:
        return None
    event = mapped[0]
    if event.event_type != event_type or event.occurred_at != at or not _same(dict(event.data), dict(data)):
        return None
    return event


def to_record(
    event_type: str, source: str, data: Mapping[str, Any], at: dt.datetime, record_id: str
) -> ScenarioRecord | None:
    """The export record whose adapter mapping is exactly this event, or None when no adapter makes it so.

    Args:
        event_type: the catalogue type.
        source: the publishing OrgId (the adapter's key's organisation).
        data: the event's data with PersonRefs resolved (``broker.simulate.resolve_data``).
        at: when it happened (aware); the mapped event's ``occurred_at``.
        record_id: the record's own id, where the export has one (a registration, a birth ...).
    """
    inverse = _INVERSES.get(event_type)
    if inverse is None:
        return None
    try:
        record = ScenarioRecord(AGENCY_OF_TYPE[event_type], inverse(data, source, at, record_id))
    except (_NotExpressible, KeyError, TypeError):
        return None
    return record if maps_back(record, event_type, source, data, at) is not None else None


def step_record(
    step: Mapping[str, Any], data: Mapping[str, Any], *, record_id: str | None = None
) -> ScenarioRecord | None:
    """The export record for one scenario event step (``data`` resolved), or None when a client must send it.

    A step signed by another organisation's key (``signed_by``), altered after signing
    (``corrupt``) or with a lawful basis other than the agency kind's has no export record.
    The step's ``consent`` goes in the record's ``consent`` field.
    """
    event_type = str(step["type"])
    agency = AGENCY_OF_TYPE.get(event_type)
    if agency is None or step.get("signed_by") is not None or step.get("corrupt"):
        return None
    basis = step.get("lawful_basis")
    if basis is not None and basis != default_lawful_basis(_ADAPTERS[agency].org_kind):
        return None
    at = dt.datetime.fromisoformat(str(step["at"]).replace("Z", "+00:00"))
    found = to_record(event_type, str(step["source"]), data, at, record_id or str(step["ref"]))
    if found is not None and step.get("consent"):
        found.record["consent"] = step["consent"]
    return found
