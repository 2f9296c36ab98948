"""The example family of ``adapters/examples``: its organisations, keys and export files, for the adapter tests."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import adapters
from adapters import ADAPTERS, Preparation, prepare, read_export
from broker.envelope.testing import SampleKeys, make_keys

EXAMPLES = Path(adapters.__file__).parent / "examples"
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)

FAMILY_ORGS = {
    "POLICE-WYP": "police",
    "GP-B83001": "gp_practice",
    "GP-B83002": "gp_practice",
    "MIDWIFERY-BTHFT": "midwifery",
    "CSC-BRADFORD": "childrens_social_care",
    "PARTNERSHIP-BRADFORD": "partnership",
}


@dataclasses.dataclass(frozen=True)
class Export:
    """One agency's example export: as CSV file(s) and as one JSON file holding the same records."""

    agency: str
    org_id: str
    csv: tuple[str, ...]
    json: str

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(EXAMPLES / name for name in (*self.csv, self.json))


EXPORTS = (
    Export("police", "POLICE-WYP", ("police-wyp.csv",), "police-wyp.json"),
    Export("gp", "GP-B83001", ("gp-b83001.csv",), "gp-b83001.json"),
    Export("gp", "GP-B83002", ("gp-b83002.csv",), "gp-b83002.json"),
    Export("midwifery", "MIDWIFERY-BTHFT", ("midwifery-bthft.csv",), "midwifery-bthft.json"),
    Export(
        "csc",
        "CSC-BRADFORD",
        (
            "csc-bradford-households.csv",
            "csc-bradford-assessments.csv",
            "csc-bradford-strategy-meetings.csv",
            "csc-bradford-plans.csv",
        ),
        "csc-bradford.json",
    ),
)


def family_keys() -> SampleKeys:
    """One deterministic key per organisation of the family's partnership."""
    return make_keys(FAMILY_ORGS)


def prepare_file(agency: str, org_id: str, path: Path, *, now: dt.datetime = NOW) -> Preparation:
    """Map, sign and check an export file as the organisation, at ``now``."""
    return prepare(ADAPTERS[agency], read_export(path), family_keys().signing[org_id], now=now)


def write_csv(path: Path, header: str, *rows: str) -> Path:
    """A CSV export: the header, then one line per row (row numbers start at 2)."""
    path.write_text("\n".join((header, *rows)) + "\n", encoding="utf-8")
    return path


def assert_bad_rows(preparation: Preparation, refused: dict[int, str], good: dict[int, int]) -> None:
    """Exactly the ``refused`` rows were refused with those codes, and every good row kept all its events."""
    got = {r.row: r.error for r in preparation.refused}
    assert got == refused, [r.to_json() for r in preparation.refused]
    assert all(r.message for r in preparation.refused)
    per_row: dict[int, int] = {}
    for event in preparation.events:
        per_row[event.row] = per_row.get(event.row, 0) + 1
    assert per_row == good
    assert preparation.rows == len(refused) + len(good)
