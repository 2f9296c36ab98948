"""GP practice: the registration feed and safeguarding-coded entries.

Two record types in one export (``record_type``), as a practice's clinical
system reports them (columns in ``adapters/README.md``):

- ``registration``: a patient (``patient_*``) ``registered`` or
  ``deregistered`` at the practice on ``effective_date``. One registration
  produces one event per status and date.
- ``coded_entry``: a clinical code in a patient's record that is safeguarding
  information (``gp.safeguarding_information``). ``code`` is looked up in
  ``CODE_TABLE``; a code that is not in it refuses the row: the adapter never
  guesses what a code means. ``summary`` is the clinician's free text (the
  code's term when blank).

The publishing practice is the key's organisation; a ``practice`` column
(an ODS code such as ``B83001``, or ``GP-B83001``) must name the same one.
"""

from __future__ import annotations

from adapters.base import Adapter, Mapped, RecordKey, Row, RowError, UnknownCode, normalise_word
from adapters.fields import date_value, moment, org_ref, required_person

__all__ = ["ADAPTER", "CODE_TABLE", "REGISTRATION_STATUSES", "map_coded_entry", "map_registration"]

# A starter code table: code -> (catalogue category, term). SNOMED CT concept ids (the
# coding GP systems in England use) and Read v2 codes (older extracts, trailing dots
# optional). Check it against the partnership's agreed safeguarding code list before
# live use, and add to it: a code that is not here refuses its row.
CODE_TABLE: dict[str, tuple[str, str]] = {
    # SNOMED CT
    "35489007": ("mental_health", "Depressive disorder"),
    "58703003": ("mental_health", "Postpartum depression"),
    "197480006": ("mental_health", "Anxiety disorder"),
    "15167005": ("alcohol_misuse", "Alcohol abuse"),
    "66590003": ("alcohol_misuse", "Alcohol dependence"),
    "26416006": ("substance_misuse", "Drug abuse"),
    "191816009": ("substance_misuse", "Drug dependence"),
    "836881000000105": ("other", "Child is cause for safeguarding concern"),
    "878111000000109": ("other", "Unborn child is cause for safeguarding concern"),
    # Read v2
    "14X3": ("domestic_abuse_disclosure", "History of domestic violence"),
    "14X8": ("domestic_abuse_disclosure", "Victim of domestic violence"),
    "13WX": ("other", "Child is cause for safeguarding concern"),
}

REGISTRATION_STATUSES = {
    "registered": "registered",
    "r": "registered",
    "reg": "registered",
    "new registration": "registered",
    "deregistered": "deregistered",
    "d": "deregistered",
    "dereg": "deregistered",
    "removed": "deregistered",
    "left": "deregistered",
}


def _patient_key(row: Row) -> str:
    # A registration is the patient's at this practice: the practice's patient number, else the NHS number.
    return row.get("patient_id") or row.text("patient_nhs_number").replace(" ", "")


def _check_practice(row: Row, org_id: str) -> None:
    named = org_ref(row, "practice")
    if named is not None and org_id not in (named, f"GP-{named}"):
        raise RowError(f"practice: the row is for {named}, but this key signs for {org_id}", field="practice")


def map_registration(row: Row, org_id: str) -> list[Mapped]:
    """A ``gp.registration`` from one row of the registration feed."""
    _check_practice(row, org_id)
    patient = required_person(row, "patient", org_id)
    status = row.choice("status", REGISTRATION_STATUSES, "registration status")
    effective = date_value(row, "effective_date")
    assert effective is not None
    data = {
        "person": patient,
        "practice": org_id,
        "status": status,
        "effective_date": effective.isoformat(),
    }
    when = moment(row, "recorded_at") if row.get("recorded_at") else moment(row, "effective_date")
    key = RecordKey("registration", row.get("registration_id") or _patient_key(row), f"{status}:{effective}")
    return [Mapped("gp.registration", data, when, key)]


def code_entry(code: str) -> tuple[str, str] | None:
    """The category and term of a code (spaces and Read's trailing dots ignored), or None."""
    return CODE_TABLE.get(normalise_word(code).replace(" ", "").upper().rstrip("."))


def map_coded_entry(row: Row, org_id: str) -> list[Mapped]:
    """A ``gp.safeguarding_information`` from one coded entry."""
    _check_practice(row, org_id)
    code = row.text("code")
    found = code_entry(code)
    if found is None:
        raise UnknownCode(
            f"code: unknown code {code!r}: it is not in the safeguarding code table (adapters/README.md)",
            field="code",
        )
    category, term = found
    data = {
        "person": required_person(row, "patient", org_id),
        "category": category,
        "summary": row.get("summary") or term,
    }
    return [
        Mapped(
            "gp.safeguarding_information",
            data,
            moment(row, "entry_date"),
            RecordKey("coded_entry", row.text("entry_id")),
        )
    ]


ADAPTER = Adapter(
    name="gp",
    org_kind="gp_practice",
    mappers={"registration": map_registration, "coded_entry": map_coded_entry},
    aliases={"reg": "registration", "entry": "coded_entry", "safeguarding_entry": "coded_entry", "code": "coded_entry"},
)
