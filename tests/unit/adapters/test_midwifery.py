"""The midwifery adapter: bookings (with social factors), births and concerns."""

from __future__ import annotations

from pathlib import Path

from broker.validation import event_of
from tests.unit.adapters.family import assert_bad_rows, prepare_file, write_csv

HEADER = (
    "record_type,booking_ref,booked_at,edd,born_at,mother_nhs_number,father_nhs_number,baby_nhs_number,"
    "social_factor,social_factor_notes,health_visiting,concern_id,recorded_at,category,summary"
)


def test_a_booking_with_social_factors_is_two_events_and_a_birth_dates_the_baby(tmp_path: Path) -> None:
    """Booking + social factor = pregnancy_booked and safeguarding_concern; a baby with no dob is born that day."""
    path = write_csv(
        tmp_path / "maternity.csv",
        HEADER,
        "booking,BK-1,20/10/2025 10:15,20/06/2026,,9994120018,9994120468,,DA,Disclosed,,,,,",
        "birth,BK-1,,,18/06/2026 00:30,9994120018,9994120468,9994122711,,,HV-BRADFORD-NORTH,,,,",
    )
    preparation = prepare_file("midwifery", "MIDWIFERY-BTHFT", path)
    assert not preparation.refused
    kinds = [(p.row, p.envelope.event_type) for p in preparation.events]
    assert kinds == [
        (2, "midwifery.pregnancy_booked"),
        (2, "midwifery.safeguarding_concern"),
        (3, "midwifery.birth_notified"),
    ]
    birth = preparation.events[2]
    # 00:30 BST on 18 June is 23:30 UTC on the 17th; the baby's date of birth is the UK date.
    assert birth.envelope.occurred_at.isoformat() == "2026-06-17T23:30:00+00:00"
    data = event_of(birth.envelope).data
    assert str(data["born_on"]) == "2026-06-18" and str(data["child"]["date_of_birth"]) == "2026-06-18"


def test_every_bad_maternity_row_is_refused_with_its_number_and_no_good_row_is_lost(tmp_path: Path) -> None:
    """A bad social factor refuses the whole booking row; missing babies and bad NHS numbers are refused."""
    path = write_csv(
        tmp_path / "maternity.csv",
        HEADER,
        "booking,BK-1,20/10/2025 10:15,20/06/2026,,9994120018,,,MH,Low mood,,,,,",  # 2 good (2 events)
        "booking,BK-2,20/10/2025 10:15,20/06/2026,,9994120018,,,gambling,notes,,,,,",  # 3 unknown social factor
        "birth,BK-1,,,18/06/2026 04:52,9994120018,,,,,HV-BRADFORD-NORTH,,,,",  # 4 no baby
        "booking,BK-3,20/10/2025 10:15,,,9994120018,,,,,,,,,",  # 5 no EDD
        "concern,BK-1,,,,9994120010,,,,,,C-1,2025-11-01,ALC,Smelt of alcohol",  # 6 invalid NHS number
        "concern,BK-1,,,,9994120018,,,,,,C-2,2025-11-01,SUB,Disclosed cannabis use",  # 7 good
        "booking,BK-4,20/10/2025 10:15,20/06/2031,,9994120018,,,,,,,,,",  # 8 EDD implausibly far ahead
    )
    assert_bad_rows(
        prepare_file("midwifery", "MIDWIFERY-BTHFT", path),
        refused={
            3: "unknown_code",
            4: "missing_field",
            5: "missing_field",
            6: "invalid_nhs_number",
            8: "schema_invalid",
        },
        good={2: 2, 7: 1},
    )
