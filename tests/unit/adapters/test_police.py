"""The police adapter: domestic abuse incidents with their DASH risk grade."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.base import Row, RowError
from adapters.police import ADAPTER, risk_level
from tests.unit.adapters.family import assert_bad_rows, prepare_file, write_csv

HEADER = (
    "incident_ref,occurred_at,victim_nhs_number,victim_id,suspect_nhs_number,suspect_id,suspect_name,"
    "children_1_nhs_number,children_1_present,children_1_household,children_2_id,children_2_household,"
    "dash_risk,dash_score,marac_referral,summary"
)
GOOD = "WYP-1,08/03/2025 22:40,9994120018,P-1,9994120468,P-2,,9994121332,Y,Y,P-9,Y,Standard,,N,text"


@pytest.mark.parametrize(
    ("grade", "score", "level"),
    [
        ("Standard", None, "standard"),
        ("low", "3", "standard"),
        ("M", "9", "medium"),
        ("HIGH", None, "high"),
        ("Medium", "14", "high"),
        (None, "20", "high"),
    ],
)
def test_dash_grades_map_to_the_catalogue_levels(grade: str | None, score: str | None, level: str) -> None:
    """DASH grades and their local names map to standard/medium/high; 14 or more yes answers is high."""
    fields = {k: v for k, v in (("dash_risk", grade), ("dash_score", score)) if v is not None}
    assert risk_level(Row(2, fields)) == level


def test_a_score_alone_under_the_threshold_does_not_grade_the_risk() -> None:
    """Without a grade, a DASH score under 14 is not enough to choose standard or medium."""
    with pytest.raises(RowError, match="dash_risk is missing"):
        risk_level(Row(2, {"dash_score": "9"}))


def test_an_incident_maps_victim_suspect_and_children() -> None:
    """Children split into present and household by their flags; the suspect is the perpetrator."""
    fields = dict(zip(HEADER.split(","), GOOD.split(","), strict=True))
    (event,) = ADAPTER.map_row(Row(2, {k: v for k, v in fields.items() if v}), "POLICE-WYP")
    data = event.data
    assert event.event_type == "police.domestic_abuse_incident"
    assert event.record.ref == "incident:WYP-1@1"
    assert data["victim"]["local_id"] == "POLICE-WYP:P-1"
    assert data["perpetrator"]["nhs_number"] == "9994120468"
    assert [c["nhs_number"] for c in data["children_present"]] == ["9994121332"]
    assert [c["nhs_number"] or c["local_id"] for c in data["children_in_household"]] == ["9994121332", "POLICE-WYP:P-9"]
    assert (data["risk_level"], data["marac_referral"]) == ("standard", False)


def test_every_bad_incident_row_is_refused_with_its_number_and_no_good_row_is_lost(tmp_path: Path) -> None:
    """Missing fields, invalid NHS numbers, unknown grades, unidentified people and future times are refused."""
    path = write_csv(
        tmp_path / "incidents.csv",
        HEADER,
        GOOD,  # 2
        ",08/03/2025 22:40,9994120018,P-1,,,,,,,,,Standard,,N,no ref",  # 3: missing incident_ref
        "WYP-3,08/03/2025 22:40,9994120019,P-1,,,,,,,,,Standard,,N,bad check digit",  # 4
        "WYP-4,08/03/2025 22:40,9994120018,P-1,,,,,,,,,Severe,,N,unknown grade",  # 5
        GOOD.replace("WYP-1", "WYP-5"),  # 6
        "WYP-6,08/03/2025 22:40,9994120018,P-1,,,Unknown male,,,,,,High,,Y,suspect with no id",  # 7
        "WYP-7,08/03/2030 22:40,9994120018,P-1,,,,,,,,,High,,Y,in the future",  # 8
        "WYP-8,08/03/2025 22:40,9994120018,P-1,,,,,,,P-9,N,High,,Y,child nowhere",  # 9
        "WYP-9,08/03/2025 22:40,9994120018,P-1,,,,,,,,,High,31,Y,score out of range",  # 10
    )
    preparation = prepare_file("police", "POLICE-WYP", path)
    assert_bad_rows(
        preparation,
        refused={
            3: "missing_field",
            4: "invalid_nhs_number",
            5: "unknown_code",
            7: "schema_invalid",
            8: "schema_invalid",
            9: "row_invalid",
            10: "row_invalid",
        },
        good={2: 1, 6: 1},
    )
    messages = {r.row: r.message for r in preparation.refused}
    assert "incident_ref" in messages[3] and "victim.nhs_number" in messages[4] and "Severe" in messages[5]
