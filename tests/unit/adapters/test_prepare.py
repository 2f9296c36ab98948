"""Preparing rows: signed and checked with the gateway's own validation, a row all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters import ADAPTERS, prepare, rows_from_records
from adapters.prepare import own_registry
from broker.errors import ConfigError
from broker.validation import verify
from tests.unit.adapters.family import NOW, family_keys, prepare_file, write_csv

BOOKING = "record_type,booking_ref,booked_at,edd,mother_nhs_number,social_factor,social_factor_notes,version"


def test_prepared_envelopes_pass_the_gateway_checks() -> None:
    """Each prepared envelope verifies against the agency's own registered key, as the gateway will."""
    key = family_keys().signing["POLICE-WYP"]
    records = [
        {
            "incident_ref": "I-1",
            "occurred_at": "2025-03-08T22:40:00Z",
            "victim": {"nhs_number": "9994120018"},
            "dash_risk": "high",
            "summary": "s",
        }
    ]
    (prepared,) = prepare(ADAPTERS["police"], rows_from_records(records), key, now=NOW).events
    accepted = verify(prepared.envelope, keys=own_registry(key), now=NOW, publisher_of=lambda _: None)
    assert accepted.envelope.source == "POLICE-WYP" and accepted.envelope.issued_at == NOW
    assert accepted.envelope.lawful_basis == "DPA2018-S8P4" and accepted.envelope.consent == "not_sought"


def test_a_row_is_all_or_nothing(tmp_path: Path) -> None:
    """When one of a row's two events fails the checks, neither goes."""
    path = write_csv(tmp_path / "b.csv", BOOKING, "booking,BK-1,2025-10-20,2026-06-20,9994120018,DA,,")
    preparation = prepare_file("midwifery", "MIDWIFERY-BTHFT", path)
    assert preparation.events == ()
    assert [(r.row, r.error) for r in preparation.refused] == [(2, "missing_field")]


def test_a_record_repeated_in_a_file_goes_once_and_a_changed_repeat_is_refused(tmp_path: Path) -> None:
    """The same record twice is sent once; the same record id with other content needs a new version."""
    path = write_csv(
        tmp_path / "b.csv",
        BOOKING,
        "booking,BK-1,2025-10-20,2026-06-20,9994120018,,,",
        "booking,BK-1,2025-10-20,2026-06-20,9994120018,,,",
        "booking,BK-1,2025-10-20,2026-06-27,9994120018,,,",
        "booking,BK-1,2025-10-20,2026-06-27,9994120018,,,2",
    )
    preparation = prepare_file("midwifery", "MIDWIFERY-BTHFT", path)
    assert [p.row for p in preparation.events] == [2, 5]
    assert preparation.repeats == 1
    (conflict,) = preparation.refused
    assert (conflict.row, conflict.error) == (4, "conflicting_record") and "row 2" in conflict.message


def test_a_consent_column_sets_the_envelope_consent_and_is_checked(tmp_path: Path) -> None:
    """consent given is carried; an unknown consent value refuses the row."""
    path = write_csv(
        tmp_path / "b.csv",
        BOOKING + ",consent",
        "booking,BK-1,2025-10-20,2026-06-20,9994120018,,,,given",
        "booking,BK-2,2025-10-20,2026-06-20,9994120018,,,,perhaps",
    )
    preparation = prepare_file("midwifery", "MIDWIFERY-BTHFT", path)
    assert [p.envelope.consent for p in preparation.events] == ["given"]
    assert [(r.row, r.error) for r in preparation.refused] == [(3, "schema_invalid")]


def test_a_key_of_another_kind_of_organisation_is_a_usage_error() -> None:
    """A police key cannot run the GP adapter."""
    with pytest.raises(ConfigError, match="gp adapter needs a key of a gp_practice organisation"):
        prepare(ADAPTERS["gp"], [], family_keys().signing["POLICE-WYP"], now=NOW)
