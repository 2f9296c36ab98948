"""The example exports in adapters/examples: synthetic, complete, and the same in CSV and JSON."""

from __future__ import annotations

import re

import pytest

from adapters import read_export
from broker.nhs import is_valid_nhs_number
from tests.unit.adapters.family import EXAMPLES, EXPORTS, Export, prepare_file


@pytest.mark.parametrize("export", EXPORTS, ids=lambda e: e.json)
def test_csv_and_json_forms_of_each_example_give_the_same_events(export: Export) -> None:
    """Every example row maps without refusal, and the CSV files and the JSON file yield identical envelopes."""
    from_csv = [p for name in export.csv for p in prepare_file(export.agency, export.org_id, EXAMPLES / name).events]
    from_json = prepare_file(export.agency, export.org_id, EXAMPLES / export.json)
    assert not from_json.refused
    for name in export.csv:
        assert not prepare_file(export.agency, export.org_id, EXAMPLES / name).refused
    assert {p.envelope.event_id: p.envelope for p in from_csv} == {
        p.envelope.event_id: p.envelope for p in from_json.events
    }
    assert len(from_csv) == len(from_json.events)
    assert len(from_json.events) >= from_json.rows


def test_every_example_file_belongs_to_an_export() -> None:
    """No example file is left out of the tests."""
    listed = {path.name for export in EXPORTS for path in export.files}
    present = {path.name for path in EXAMPLES.iterdir() if path.suffix in (".csv", ".json")}
    assert present == listed


def test_examples_hold_only_synthetic_nhs_numbers() -> None:
    """Every NHS number in the examples is in the 999 range with a valid check digit."""
    found: set[str] = set()
    for export in EXPORTS:
        for path in export.files:
            for item in read_export(path):
                for name, value in getattr(item, "fields", {}).items():
                    if name.endswith("nhs_number"):
                        found.add(value.replace(" ", ""))
    assert found and all(n.startswith("999") and is_valid_nhs_number(n) for n in found)
    text = "".join(path.read_text(encoding="utf-8") for export in EXPORTS for path in export.files)
    assert not [n for n in re.findall(r"\b\d{10}\b", text) if not n.startswith("999")]
