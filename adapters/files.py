"""Reading export files into rows: CSV, JSON and JSON Lines.

- **CSV**: a header row, then one record per row. Column names are compared in
  lower case with spaces and hyphens as ``_`` (``Victim NHS Number`` is
  ``victim_nhs_number``). UTF-8 (with or without Excel's byte order mark), else
  Windows-1252. A row's number is the line it starts on (the header is line 1),
  as a spreadsheet shows it. Blank rows are skipped.
- **JSON**: an array of objects, or an object whose ``records`` is one. Nested
  objects and arrays flatten to the CSV column names: keys joined by ``_``,
  array items numbered from 1 (``{"victim": {"nhs_number": ...}}`` is
  ``victim_nhs_number``; ``{"children": [{"name": ...}]}`` is
  ``children_1_name``). A record's number is its position (the first is 1).
- **JSON Lines** (``.jsonl``, ``.ndjson``): one object per line; the number is the line.

A file that cannot be read as a whole raises ``ExportUnreadable``; a single
record that cannot be read becomes an ``Unreadable`` with its number, and the
other records are still read.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from adapters.base import ExportUnreadable, Row, iter_fields, normalise_name

__all__ = ["EXPORT_SUFFIXES", "Unreadable", "read_export", "rows_from_records"]

EXPORT_SUFFIXES = (".csv", ".json", ".jsonl", ".ndjson")


@dataclasses.dataclass(frozen=True, slots=True)
class Unreadable:
    """A record that could not be read as a row (reported with its number like a refused row)."""

    number: int
    message: str


Item = Row | Unreadable


def _row(number: int, record: Mapping[str, Any]) -> Row:
    fields: dict[str, str] = {}
    for name, value in iter_fields(record):
        text = value.strip() if value is not None else ""
        if text:
            fields[name] = text
    return Row(number, fields)


def rows_from_records(records: Iterable[Any], *, start: int = 1) -> list[Item]:
    """Rows from JSON-like records (objects), numbered from ``start``; a non-object is ``Unreadable``."""
    items: list[Item] = []
    for number, record in enumerate(records, start):
        if isinstance(record, Mapping):
            items.append(_row(number, record))
        else:
            items.append(Unreadable(number, f"record {number} is not an object but {type(record).__name__}"))
    return items


def _text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ExportUnreadable(f"{path}: cannot read it: {exc.strerror}") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")  # older Windows exports


def _csv(path: Path, text: str) -> list[Item]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
        if header is None:
            raise ExportUnreadable(f"{path}: the file is empty (a CSV export starts with a header row)")
        names = [normalise_name(cell) for cell in header]
        repeated = sorted({n for n in names if n and names.count(n) > 1})
        if repeated:
            raise ExportUnreadable(f"{path}: the header names {', '.join(repeated)} more than once")
        items: list[Item] = []
        start = reader.line_num + 1
        for cells in reader:
            number, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            extra = [cell for cell in cells[len(names) :] if cell.strip()]
            if extra:
                items.append(
                    Unreadable(number, f"line {number} has {len(cells)} cells but the header names {len(names)}")
                )
                continue
            items.append(_row(number, {n: c for n, c in zip(names, cells, strict=False) if n}))
    except csv.Error as exc:
        raise ExportUnreadable(f"{path}: not a readable CSV file (line {reader.line_num}: {exc})") from exc
    return items


def _json(path: Path, text: str) -> list[Item]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExportUnreadable(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    if isinstance(data, Mapping) and isinstance(data.get("records"), list):
        data = data["records"]
    if not isinstance(data, list):
        raise ExportUnreadable(f"{path}: a JSON export is an array of records (or an object with 'records')")
    return rows_from_records(data)


def _json_lines(path: Path, text: str) -> list[Item]:
    items: list[Item] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            items.append(Unreadable(number, f"line {number} is not valid JSON ({exc.msg})"))
            continue
        items.extend(rows_from_records([record], start=number))
    return items


def read_export(path: Path) -> list[Item]:
    """Every record of an export file, by its suffix (``.csv``, ``.json``, ``.jsonl``/``.ndjson``).

    A file with another suffix is read as JSON when it starts with ``[`` or ``{``, else as CSV.

    Raises:
        ExportUnreadable: the file cannot be read, or is not CSV or JSON as a whole.
    """
    text = _text(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return _json_lines(path, text)
    if suffix == ".json" or (suffix != ".csv" and text.lstrip()[:1] in ("[", "{")):
        return _json(path, text)
    return _csv(path, text)
