"""Reading export files: CSV, JSON and JSON Lines into numbered rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.base import ExportUnreadable, Row
from adapters.files import Unreadable, read_export, rows_from_records


def _write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_rows_are_numbered_by_the_line_they_start_on(tmp_path: Path) -> None:
    """A CSV row's number is its first line (header is line 1), even after a quoted multi-line cell."""
    path = _write(tmp_path, "x.csv", 'a,b\n1,"two\nlines"\n\n3,4\n')
    rows = read_export(path)
    assert [r.number for r in rows if isinstance(r, Row)] == [2, 5]
    assert isinstance(rows[0], Row) and rows[0].fields == {"a": "1", "b": "two\nlines"}


def test_csv_headers_are_normalised_and_blank_cells_dropped(tmp_path: Path) -> None:
    """Spreadsheet headers ("Victim NHS Number") become snake case; blank cells are absent."""
    path = _write(tmp_path, "x.csv", "\ufeffVictim NHS Number, Dash-Risk ,Summary\n999 412 0018,,text\n")
    (row,) = read_export(path)
    assert isinstance(row, Row)
    assert row.fields == {"victim_nhs_number": "999 412 0018", "summary": "text"}


def test_csv_in_windows_1252_is_read(tmp_path: Path) -> None:
    """An older Windows export (not UTF-8) is still read."""
    path = _write(tmp_path, "x.csv", "name\nSiân O’Neill\n", encoding="cp1252")
    (row,) = read_export(path)
    assert isinstance(row, Row) and row.fields["name"] == "Siân O’Neill"


def test_a_csv_row_with_too_many_cells_is_unreadable_and_the_rest_are_read(tmp_path: Path) -> None:
    """A row with more cells than the header names is reported by number; the next row still reads."""
    path = _write(tmp_path, "x.csv", "a,b\n1,2,3\n4,5\n")
    bad, good = read_export(path)
    assert isinstance(bad, Unreadable) and bad.number == 2 and "3 cells" in bad.message
    assert isinstance(good, Row) and good.number == 3


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("empty.csv", "\n\n", "empty"),
        ("twice.csv", "a,A\n1,2\n", "more than once"),
        ("bad.json", "[{", "not valid JSON"),
        ("scalar.json", '"text"', "array of records"),
    ],
)
def test_unreadable_files_raise_with_the_reason(tmp_path: Path, name: str, text: str, message: str) -> None:
    """A file that cannot be read as a whole raises ExportUnreadable naming the problem."""
    with pytest.raises(ExportUnreadable, match=message):
        read_export(_write(tmp_path, name, text))


def test_json_nests_flatten_to_the_csv_column_names(tmp_path: Path) -> None:
    """Nested objects join with _ and list items are numbered from 1, under a records key or a bare array."""
    text = '{"records": [{"victim": {"nhs_number": "1"}, "children": [{"name": "A"}, {"name": "B"}], "n": 9,'
    text += ' "flag": true, "gone": null}, 5]}'
    row, bad = read_export(_write(tmp_path, "x.json", text))
    assert isinstance(row, Row) and row.number == 1
    assert row.fields == {
        "victim_nhs_number": "1",
        "children_1_name": "A",
        "children_2_name": "B",
        "n": "9",
        "flag": "true",
    }
    assert isinstance(bad, Unreadable) and bad.number == 2


def test_json_lines_number_records_by_line(tmp_path: Path) -> None:
    """JSON Lines: each line one record, numbered by line; a broken line is unreadable, not fatal."""
    items = read_export(_write(tmp_path, "x.jsonl", '{"a": 1}\n\n{oops\n{"a": 3}\n'))
    assert [(type(i).__name__, i.number) for i in items] == [("Row", 1), ("Unreadable", 3), ("Row", 4)]


def test_records_given_as_data_become_rows() -> None:
    """rows_from_records numbers records from 1 and groups nested lists like a file."""
    (row,) = rows_from_records([{"children": [{"nhs_number": "1"}]}])
    assert isinstance(row, Row)
    assert [child.get("nhs_number") for child in row.group("children")] == ["1"]
