"""The adapters' shared base: rows, record keys, event ids and value parsing."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from adapters.base import MissingField, RecordKey, Row, RowError, UnknownCode, event_id, normalise_word
from adapters.fields import date_value, flag, moment, org_ref, person, required_person
from adapters.police import ADAPTER as POLICE


def _row(**fields: str) -> Row:
    return Row(7, fields)


def test_event_ids_are_stable_and_tell_records_apart() -> None:
    """The same org and record key always give the same uuid5; any part changed gives another."""
    key = RecordKey("cp_plan", "CP-1", "started:2026-03-09")
    first = event_id("CSC-BRADFORD", key)
    assert first == event_id("CSC-BRADFORD", RecordKey("cp_plan", "CP-1", "started:2026-03-09"))
    assert uuid.UUID(first).version == 5
    others = {
        event_id("CSC-LEEDS", key),
        event_id("CSC-BRADFORD", RecordKey("cin_plan", "CP-1", "started:2026-03-09")),
        event_id("CSC-BRADFORD", RecordKey("cp_plan", "CP-1", "reviewed:2026-03-09")),
        event_id("CSC-BRADFORD", RecordKey("cp_plan", "CP-1/started:2026-03-09")),
    }
    assert first not in others and len(others) == 4


def test_missing_and_unknown_values_name_the_field() -> None:
    """text() raises MissingField and choice() UnknownCode, each naming the column."""
    row = _row(dash_risk="Severe")
    with pytest.raises(MissingField, match="summary is missing"):
        row.text("summary")
    with pytest.raises(UnknownCode, match="dash_risk: unknown DASH grade 'Severe'"):
        row.choice("dash_risk", {"high": "high"}, "DASH grade")


def test_choice_ignores_case_punctuation_and_apostrophes() -> None:
    """Labels match their table whatever the case, spacing, hyphens or apostrophes."""
    table = {"mother's partner": "partner_of_parent", "step parent": "step_parent"}
    assert _row(r="MOTHERS-PARTNER").choice("r", table, "relationship") == "partner_of_parent"
    assert _row(r="Step_Parent").choice("r", table, "relationship") == "step_parent"
    assert normalise_word(" 14X3. ") == "14x3"


def test_groups_are_numbered_sub_rows_in_order() -> None:
    """group() returns children_1_*, children_2_* ... in number order, reading names under the prefix."""
    row = _row(children_10_name="J", children_2_name="B", children_1_name="A", children_x="?")
    names = [child.get("name") for child in row.group("children")]
    assert names == ["A", "B", "J"]
    assert row.group("children")[1].name("dob") == "children_2_dob"


def test_dates_read_iso_and_uk_forms() -> None:
    """Dates come as YYYY-MM-DD or DD/MM/YYYY; anything else is a RowError naming the field."""
    assert date_value(_row(d="2025-03-08"), "d") == dt.date(2025, 3, 8)
    assert date_value(_row(d="8/3/2025"), "d") == dt.date(2025, 3, 8)
    assert date_value(_row(), "d", required=False) is None
    with pytest.raises(RowError, match="d: '2025-02-30' is not a date"):
        date_value(_row(d="2025-02-30"), "d")


def test_times_without_a_zone_are_uk_local_time() -> None:
    """A zone-less time is Europe/London (GMT in winter, BST in summer); a date alone is 00:00 UTC."""
    assert moment(_row(t="08/03/2025 22:40"), "t") == dt.datetime(2025, 3, 8, 22, 40, tzinfo=dt.UTC)
    assert moment(_row(t="2026-06-18 04:52"), "t") == dt.datetime(2026, 6, 18, 3, 52, tzinfo=dt.UTC)
    assert moment(_row(t="2026-06-18T04:52:00+01:00"), "t") == dt.datetime(2026, 6, 18, 3, 52, tzinfo=dt.UTC)
    assert moment(_row(t="2026-06-18"), "t") == dt.datetime(2026, 6, 18, tzinfo=dt.UTC)
    with pytest.raises(RowError, match="not a date or time"):
        moment(_row(t="yesterday"), "t")


def test_flags_and_org_refs() -> None:
    """Y/N-style flags take a default when blank; a school's URN becomes SCHOOL-<urn>."""
    assert flag(_row(f="Yes"), "f", False) is True
    assert flag(_row(), "f", True) is True
    with pytest.raises(RowError, match="not yes or no"):
        flag(_row(f="maybe"), "f", False)
    assert org_ref(_row(s="107300"), "s", digits_prefix="SCHOOL-") == "SCHOOL-107300"
    assert org_ref(_row(s="hv bradford north"), "s") == "HV-BRADFORD-NORTH"
    with pytest.raises(RowError, match="not an organisation id"):
        org_ref(_row(s="Thornbury Primary (old site)"), "s")


def test_people_carry_the_agency_s_own_id_as_local_id() -> None:
    """A person's id becomes <org_id>:<id>; a blank person is None; a required one needs a number or id."""
    row = _row(victim_nhs_number="999 412 0018", victim_id="P-1", victim_dob="14/03/1997")
    assert person(row, "victim", "POLICE-WYP") == {
        "nhs_number": "999 412 0018",
        "local_id": "POLICE-WYP:P-1",
        "name": None,
        "date_of_birth": "1997-03-14",
    }
    assert person(row, "suspect", "POLICE-WYP") is None
    with pytest.raises(MissingField, match="suspect: no suspect_nhs_number or suspect_id"):
        required_person(_row(suspect_name="Unknown male"), "suspect", "POLICE-WYP")


def test_record_type_defaults_and_aliases() -> None:
    """A single-type adapter needs no record_type; an unknown one is refused as unknown_code."""
    assert POLICE.record_type(_row()) == "incident"
    assert POLICE.record_type(_row(record_type="DA Incident")) == "incident"
    with pytest.raises(UnknownCode, match="unknown record type 'burglary'"):
        POLICE.record_type(_row(record_type="burglary"))
