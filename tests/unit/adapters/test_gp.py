"""The GP adapter: the registration feed and safeguarding-coded entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.gp import CODE_TABLE, code_entry
from broker.schemas import default_catalogue
from tests.unit.adapters.family import assert_bad_rows, prepare_file, write_csv

HEADER = "record_type,practice,patient_nhs_number,patient_id,status,effective_date,entry_id,code,entry_date,summary"


def test_every_code_in_the_table_maps_to_a_catalogue_category() -> None:
    """Each code's category is one the gp.safeguarding_information schema accepts."""
    schema = default_catalogue().for_type("gp.safeguarding_information").parsed
    (category,) = [f for f in schema["fields"] if f["name"] == "category"]
    symbols = set(category["type"]["symbols"])
    assert {cat for cat, _ in CODE_TABLE.values()} <= symbols


@pytest.mark.parametrize("code", ["14X8", "14X8.", " 14x8. ", "58703003"])
def test_codes_are_found_whatever_their_spacing_or_read_dots(code: str) -> None:
    """Read v2 codes match with or without their trailing dot, in any case."""
    assert code_entry(code) is not None


def test_registrations_and_entries_map_to_their_events(tmp_path: Path) -> None:
    """A registration is gp.registration for the key's practice; a coded entry takes the code's category."""
    path = write_csv(
        tmp_path / "feed.csv",
        HEADER,
        "registration,B83001,9994120018,ML-1,R,2018-05-01,,,,",
        "coded_entry,GP-B83001,9994120018,ML-1,,,E-1,14X8.,2025-01-02 10:00,",
    )
    preparation = prepare_file("gp", "GP-B83001", path)
    assert not preparation.refused
    registration, entry = (p.envelope for p in preparation.events)
    assert registration.event_type == "gp.registration" and entry.event_type == "gp.safeguarding_information"
    assert [p.record.ref for p in preparation.events] == ["registration:ML-1@registered:2018-05-01", "coded_entry:E-1"]


def test_every_bad_gp_row_is_refused_with_its_number_and_no_good_row_is_lost(tmp_path: Path) -> None:
    """Unknown codes, statuses and record types, missing dates, another practice and bad NHS numbers are refused."""
    path = write_csv(
        tmp_path / "feed.csv",
        HEADER,
        "registration,B83001,9994120018,ML-1,registered,2018-05-01,,,,",  # 2 good
        "coded_entry,B83001,9994120018,ML-1,,,E-1,99999999,2025-01-02,",  # 3 unknown code
        "registration,B83001,9994121332,ML-2,registered,,,,,",  # 4 no effective date
        "registration,B83002,9994121332,ML-2,registered,2019-05-02,,,,",  # 5 another practice
        "registration,B83001,9994121333,ML-2,registered,2019-05-02,,,,",  # 6 invalid NHS number
        "registration,B83001,9994121332,ML-2,moved away,2019-05-02,,,,",  # 7 unknown status
        "coded_entry,B83001,9994120018,ML-1,,,E-2,15167005,2025-02-11 09:20,Drinking",  # 8 good
        "immunisation,B83001,9994120018,ML-1,,,,,,",  # 9 unknown record type
        "coded_entry,B83001,9994120018,ML-1,,,,15167005,2025-02-11,",  # 10 no entry id
    )
    assert_bad_rows(
        prepare_file("gp", "GP-B83001", path),
        refused={
            3: "unknown_code",
            4: "missing_field",
            5: "row_invalid",
            6: "invalid_nhs_number",
            7: "unknown_code",
            9: "unknown_code",
            10: "missing_field",
        },
        good={2: 1, 8: 1},
    )
