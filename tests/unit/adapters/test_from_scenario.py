"""Scenario steps back to agency export records: each maps, through the real adapter, to the step's own event."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from adapters import ADAPTERS, rows_from_records
from adapters.base import Row
from adapters.from_scenario import AGENCY_OF_TYPE, ScenarioRecord, step_record, to_record
from broker.codec import encode, from_json
from broker.commands.demo import PACKAGED_CASES, find_cases
from broker.schemas import default_catalogue
from broker.simulate import load_scenario, resolve_data

CASES = [load_scenario(path) for path in find_cases(PACKAGED_CASES)]
CARRIED = [
    (case, step)
    for case in CASES
    for step in case.steps
    if "ack" not in step and step["type"] in AGENCY_OF_TYPE and not step.get("signed_by")
]
STEPS = [pytest.param(case, step, id=f"{case.name}/{step['ref']}") for case, step in CARRIED]
AT = dt.datetime(2022, 1, 5, 10, 30, tzinfo=dt.UTC)
MOTHER = {"nhs_number": "9999385702", "local_id": None, "name": "Mother 1", "date_of_birth": "1996-02-11"}
CHILD = {"nhs_number": "9993571431", "local_id": None, "name": "Child 1", "date_of_birth": "2021-12-01"}


def _pad(value: Any) -> Any:
    """Catalogue data with every PersonRef given all four fields (an absent one is null)."""
    if isinstance(value, dict):
        if "nhs_number" in value or "local_id" in value:
            value = {"local_id": None, "name": None, "date_of_birth": None, "nhs_number": None, **value}
        return {k: _pad(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pad(v) for v in value]
    return value


def _map(record: ScenarioRecord, source: str) -> list[Any]:
    (row,) = rows_from_records([record.record])
    assert isinstance(row, Row)
    return ADAPTERS[record.agency].map_row(row, source)


def _at(step: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(str(step["at"]).replace("Z", "+00:00"))


@pytest.mark.parametrize(("case", "step"), STEPS)
def test_every_adapter_step_of_the_demo_cases_maps_back_to_its_event(case: Any, step: dict[str, Any]) -> None:
    """The record of each adapter-carried demo step maps, through its agency's adapter, to the step's event."""
    data = resolve_data(step["data"], case.people, {})
    record = step_record(step, data, record_id=f"{case.name}:{step['ref']}")
    assert record is not None
    assert ADAPTERS[record.agency].org_kind == next(
        o["kind"] for o in case.organisations if o["org_id"] == step["source"]
    )
    (mapped,) = _map(record, str(step["source"]))
    assert mapped.event_type == step["type"]
    assert mapped.occurred_at == _at(step)
    assert _pad(dict(mapped.data)) == _pad(data)
    # the same Avro payload as the data the simulator sends for the step
    schema = default_catalogue().for_type(str(step["type"]))
    assert encode(schema, from_json(schema, dict(mapped.data))) == encode(schema, from_json(schema, data))


def test_the_demo_cases_carry_every_adapter_type_they_hold_through_an_adapter() -> None:
    """Every adapter-made type in the cases has a record; only the forged step goes with the client."""
    carried = {step["type"] for _case, step in CARRIED}
    assert carried == {
        "gp.registration",
        "gp.safeguarding_information",
        "police.domestic_abuse_incident",
        "midwifery.pregnancy_booked",
        "midwifery.birth_notified",
        "csc.child_in_need_plan",
        "csc.child_protection_plan",
        "csc.strategy_meeting",
        "csc.pre_birth_assessment",
        "csc.household_composition",
    }
    assert len(CARRIED) == 41


def test_record_ids_make_stable_distinct_event_ids() -> None:
    """The record id names the export's own record, so the same step always gets the same adapter event id."""
    case = CASES[0]
    step = next(s for s in case.steps if s.get("ref") == "birth")
    data = resolve_data(step["data"], case.people, {})
    first = step_record(step, data, record_id="child-1:birth")
    again = step_record(step, data, record_id="child-1:birth")
    other = step_record(step, data, record_id="child-2:birth")
    assert first is not None and again is not None and other is not None
    assert first.record["notification_id"] == "child-1:birth"
    assert _map(first, "MIDWIFERY-BTHFT")[0].record == _map(again, "MIDWIFERY-BTHFT")[0].record
    assert _map(first, "MIDWIFERY-BTHFT")[0].record != _map(other, "MIDWIFERY-BTHFT")[0].record


@pytest.mark.parametrize(
    "event_type",
    [
        "directory.organisation",
        "identity.same_person",
        "identity.sensitive_record",
        "link.professional_assigned",
        "challenge.raised",
        "challenge.resolved",
        "record.retracted",
        "marac.case_heard",
        "adult.concern_about_parent",
    ],
)
def test_types_no_adapter_makes_have_no_record(event_type: str) -> None:
    """Types no agency export produces give None: the demo sends them with the client."""
    assert to_record(event_type, "CSC-BRADFORD", {"person": MOTHER}, AT, "x") is None


def test_a_midwifery_concern_and_a_gp_coded_entry_invert() -> None:
    """A concern and each GP category map back exactly (a code chosen from the table for the category)."""
    concern = {"booking_ref": "BK-1", "mother": MOTHER, "category": "alcohol_misuse", "summary": "Drinks daily"}
    record = to_record("midwifery.safeguarding_concern", "MIDWIFERY-BTHFT", concern, AT, "c-1")
    assert record is not None and _pad(dict(_map(record, "MIDWIFERY-BTHFT")[0].data)) == _pad(concern)
    for category in ("mental_health", "substance_misuse", "alcohol_misuse", "domestic_abuse_disclosure", "other"):
        info = {"person": MOTHER, "category": category, "summary": "text"}
        coded = to_record("gp.safeguarding_information", "GP-B83001", info, AT, "e-1")
        assert coded is not None and _map(coded, "GP-B83001")[0].data["category"] == category


def test_children_present_and_in_household_keep_their_lists() -> None:
    """A child only present and one only in the household come back in the right lists."""
    other = {**CHILD, "nhs_number": "9992178531", "name": "Older sibling 1"}
    data = {
        "incident_ref": "I-1",
        "victim": MOTHER,
        "perpetrator": None,
        "children_present": [CHILD],
        "children_in_household": [other],
        "risk_level": "high",
        "marac_referral": True,
        "summary": "text",
    }
    record = to_record("police.domestic_abuse_incident", "POLICE-WYP", data, AT, "x")
    assert record is not None
    assert _pad(dict(_map(record, "POLICE-WYP")[0].data)) == _pad(data)


@pytest.mark.parametrize(
    ("event_type", "data", "why"),
    [
        (
            "gp.registration",
            {"person": MOTHER, "practice": "GP-B83002", "status": "registered", "effective_date": "2020-01-01"},
            "another practice's registration",
        ),
        (
            "gp.registration",
            {
                "person": {**MOTHER, "local_id": "POLICE-WYP:N1"},
                "practice": "GP-B83001",
                "status": "registered",
                "effective_date": "2020-01-01",
            },
            "a local id of another organisation",
        ),
        (
            "csc.strategy_meeting",
            {
                "meeting_ref": "SM",
                "children": [CHILD],
                "held_on": "2022-01-04",
                "decision": "no_further_action",
                "summary": "s",
            },
            "held on another day than the step",
        ),
        (
            "midwifery.birth_notified",
            {
                "booking_ref": None,
                "child": {**CHILD, "date_of_birth": None},
                "mother": MOTHER,
                "father": None,
                "born_on": "2022-01-05",
                "health_visiting": None,
            },
            "a baby without a date of birth (the adapter fills it in)",
        ),
    ],
)
def test_data_the_export_cannot_express_has_no_record(event_type: str, data: dict[str, Any], why: str) -> None:
    """A step whose data no export record maps back to exactly gives None rather than a different event."""
    source = {"gp.registration": "GP-B83001", "csc.strategy_meeting": "CSC-BRADFORD"}.get(event_type, "MIDWIFERY-BTHFT")
    assert to_record(event_type, source, data, AT, "x") is None, why


def test_steps_only_a_client_can_send_have_no_record() -> None:
    """A step signed with another key, corrupted, or with another lawful basis is left to the client."""
    case = CASES[0]
    step = next(s for s in case.steps if s.get("ref") == "m-reg")
    data = resolve_data(step["data"], case.people, {})
    assert step_record(step, data) is not None
    assert step_record({**step, "signed_by": "POLICE-WYP"}, data) is None
    assert step_record({**step, "corrupt": True}, data) is None
    assert step_record({**step, "lawful_basis": "DPA2018-S8P4"}, data) is None
    with_consent = step_record({**step, "consent": "given"}, data)
    assert with_consent is not None and with_consent.record["consent"] == "given"
