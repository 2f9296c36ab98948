"""Schema evolution: the current schemas read data written with every released version, and back."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer

from broker.codec import from_json
from broker.envelope.testing import sample_data
from broker.schemas import Schema, default_catalogue

CATALOGUE = default_catalogue()
RELEASED = [(version, event_type) for version, tree in CATALOGUE.released.items() for event_type in tree]


def _full(node: Any, named: dict[str, Any]) -> Any:
    """A value that fills every optional field (the other case from the samples, which leave some null)."""
    if isinstance(node, list):
        return _full(next(b for b in node if b != "null"), named)
    if isinstance(node, str):
        node = named[node] if node in named else {"type": node}
    kind = node["type"]
    if isinstance(kind, (dict, list)) or kind in named:
        return _full(kind, named)
    if node.get("logicalType") == "date":
        return dt.date(2020, 2, 29)
    if node.get("logicalType") == "timestamp-millis":
        return dt.datetime(2020, 2, 29, 12, tzinfo=dt.UTC)
    simple = {"string": "9990000018", "boolean": True, "int": 2, "long": 2, "bytes": b"x", "null": None}
    if kind in simple:
        return simple[kind]
    if kind == "enum":
        return node["symbols"][-1]
    if kind == "fixed":
        return b"\x01" * node["size"]
    if kind == "array":
        return [_full(node["items"], named)]
    if kind == "record":
        return {f["name"]: _full(f["type"], named) for f in node["fields"]}
    raise AssertionError(kind)


def _records(schema: Schema) -> list[Any]:
    named = dict(schema.parsed.get("__named_schemas", {}))
    records = [_full(schema.parsed, named)]
    if schema.event_type != "envelope":
        records.append(from_json(schema, sample_data(schema.event_type)))
    return records


def _round_trip(writer: Schema, reader: Schema, record: Any) -> Any:
    out = io.BytesIO()
    schemaless_writer(out, writer.parsed, record)
    return schemaless_reader(io.BytesIO(out.getvalue()), writer.parsed, reader.parsed)


@pytest.mark.parametrize(("version", "event_type"), RELEASED)
def test_current_reads_what_the_released_version_wrote(version: str, event_type: str) -> None:
    """Data written with a released schema decodes with the current one (backward compatible)."""
    released = CATALOGUE.released[version][event_type]
    current = CATALOGUE.envelope if event_type == "envelope" else CATALOGUE.for_type(event_type)
    for record in _records(released):
        decoded = _round_trip(released, current, record)
        for name in record:  # every field the old writer had keeps its value
            if name in decoded:
                assert decoded[name] == record[name], name


@pytest.mark.parametrize(("version", "event_type"), RELEASED)
def test_released_version_reads_what_current_writes(version: str, event_type: str) -> None:
    """Data written with the current schema decodes with a released one (readers not yet upgraded)."""
    released = CATALOGUE.released[version][event_type]
    current = CATALOGUE.envelope if event_type == "envelope" else CATALOGUE.for_type(event_type)
    for record in _records(current):
        _round_trip(current, released, record)


def test_every_current_type_has_a_released_version() -> None:
    """A new event type must be added to schemas/released/ when it is released (or this reminds you)."""
    released = set().union(*(tree.keys() for tree in CATALOGUE.released.values()))
    assert set(CATALOGUE.event_types) <= released
