"""The children's social care adapter: plans, strategy meetings, pre-birth assessments and households."""

from __future__ import annotations

from pathlib import Path

from adapters.base import Row
from adapters.csc import ADAPTER
from tests.unit.adapters.family import assert_bad_rows, prepare_file, write_csv

HEADER = (
    "record_type,plan_type,plan_ref,meeting_ref,assessment_ref,status,status_date,held_on,recorded_on,"
    "child_nhs_number,mother_nhs_number,children_1_nhs_number,members_1_nhs_number,members_1_relationship,"
    "category,decision,summary,school"
)


def test_each_status_change_of_a_plan_is_its_own_event() -> None:
    """A plan's started and reviewed rows have different record keys (and so different event ids)."""
    base = {
        "record_type": "plan",
        "plan_type": "CP",
        "plan_ref": "CP-1",
        "child_nhs_number": "9994121332",
        "category": "N",
        "summary": "s",
    }
    started = ADAPTER.map_row(Row(2, {**base, "status": "Open", "status_date": "2026-03-09"}), "CSC-BRADFORD")
    reviewed = ADAPTER.map_row(Row(3, {**base, "status": "Review", "status_date": "2026-06-09"}), "CSC-BRADFORD")
    assert started[0].record.ref == "cp_plan:CP-1@started:2026-03-09"
    assert reviewed[0].record.ref == "cp_plan:CP-1@reviewed:2026-06-09"
    assert started[0].data["category"] == "neglect"


def test_the_plan_type_may_come_from_the_record_type() -> None:
    """record_type cin_plan needs no plan_type column."""
    row = Row(
        2,
        {
            "record_type": "cin_plan",
            "plan_ref": "CIN-1",
            "status": "started",
            "status_date": "2026-06-22",
            "child_nhs_number": "9994122711",
            "summary": "s",
        },
    )
    (event,) = ADAPTER.map_row(row, "CSC-BRADFORD")
    assert event.event_type == "csc.child_in_need_plan" and "category" not in event.data


def test_every_bad_csc_row_is_refused_with_its_number_and_no_good_row_is_lost(tmp_path: Path) -> None:
    """A CP plan without a category, unknown decisions and relationships, and empty lists are refused."""
    path = write_csv(
        tmp_path / "csc.csv",
        HEADER,
        "plan,CP,CP-1,,,started,2026-03-09,,,9994121332,,,,,Emotional abuse,,Plan,",  # 2 good
        "plan,CP,CP-2,,,started,2026-03-09,,,9994121332,,,,,,,No category,",  # 3 missing category
        "strategy_meeting,,,SM-1,,,,2026-02-16,,,,9994121332,,,,S47,Meeting,",  # 4 good
        "strategy_meeting,,,SM-2,,,,2026-02-16,,,,,,,,S47,No children,",  # 5 no children
        "strategy_meeting,,,SM-3,,,,2026-02-16,,,,9994121332,,,,adjourned,Unknown decision,",  # 6
        "household,,,,,,,,2025-04-02,9994121332,,,9994120018,Aunt,,,,107300",  # 7 unknown relationship
        "household,,,,,,,,2025-04-02,9994121332,,,9994120018,Mother,,,,107300",  # 8 good
        "pre_birth_assessment,,,,PBA-1,requested,2025-11-03,,,,9994120018,,,,,,,",  # 9 good
        "pre_birth_assessment,,,,PBA-1,paused,2025-11-04,,,,9994120018,,,,,,,",  # 10 unknown status
        "plan,CIN,CIN-1,,,started,2026-06-22,,,999 412 2712,,,,,,,Plan,",  # 11 invalid NHS number
    )
    assert_bad_rows(
        prepare_file("csc", "CSC-BRADFORD", path),
        refused={
            3: "missing_field",
            5: "missing_field",
            6: "unknown_code",
            7: "unknown_code",
            10: "unknown_code",
            11: "invalid_nhs_number",
        },
        good={2: 1, 4: 1, 8: 1, 9: 1},
    )
