"""The JSON side of the codec: JSON-like dicts to Avro-ready records, and back for output.

Used by the scenario simulator, adapters and the client (through
``broker.codec``): ISO date and time strings become ``date`` and aware
``datetime`` objects, PersonRefs missing optional keys get nulls, NHS numbers
lose their spaces, and any missing required field, unknown field or wrong type
is a ``SchemaInvalid`` naming the field (``children_present[1].nhs_number``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from broker.errors import SchemaInvalid
from broker.nhs import normalise_nhs_number
from broker.schemas import Schema

__all__ = ["from_json", "jsonable"]

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def _label(path: str) -> str:
    return f"field {path!r}" if path else "the record"


def _fail(event_type: str, path: str, problem: str) -> SchemaInvalid:
    return SchemaInvalid(f"{event_type}: {_label(path)} {problem}", field=path)


def _parse_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _parse_timestamp(value: Any) -> dt.datetime | None:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError:
            return None
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    return None


def _convert(node: Any, value: Any, named: Mapping[str, Any], etype: str, path: str) -> Any:
    if isinstance(node, list):
        if value is None and "null" in node:
            return None
        problems = []
        for branch in node:
            if branch == "null":
                continue
            try:
                return _convert(branch, value, named, etype, path)
            except SchemaInvalid as exc:
                problems.append(exc)
        if len(problems) == 1:
            raise problems[0]
        raise _fail(etype, path, "matches none of its types")
    if isinstance(node, str):
        node = named[node] if node in named else {"type": node}
    kind = node["type"]
    if isinstance(kind, (dict, list)) or kind in named:
        return _convert(kind, value, named, etype, path)
    logical = node.get("logicalType")
    if kind == "null":
        if value is not None:
            raise _fail(etype, path, "must be null")
        return None
    if logical == "date":
        date = _parse_date(value)
        if date is None:
            raise _fail(etype, path, f"must be a date (YYYY-MM-DD), not {_describe(value)}")
        return date
    if logical in ("timestamp-millis", "timestamp-micros"):
        moment = _parse_timestamp(value)
        if moment is None:
            raise _fail(etype, path, f"must be an ISO 8601 time with a zone, not {_describe(value)}")
        return moment
    if kind == "string":
        if not isinstance(value, str):
            raise _fail(etype, path, f"must be a string, not {_describe(value)}")
        return normalise_nhs_number(value) if path.endswith("nhs_number") else value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _fail(etype, path, f"must be true or false, not {_describe(value)}")
        return value
    if kind in ("int", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise _fail(etype, path, f"must be a whole number, not {_describe(value)}")
        if kind == "int" and not _INT_MIN <= value <= _INT_MAX:
            raise _fail(etype, path, "is out of range")
        return value
    if kind in ("float", "double"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _fail(etype, path, f"must be a number, not {_describe(value)}")
        return float(value)
    if kind in ("bytes", "fixed"):
        if not isinstance(value, bytes) or (kind == "fixed" and len(value) != node["size"]):
            raise _fail(etype, path, "must be bytes of the right size")
        return value
    if kind == "enum":
        if value not in node["symbols"]:
            raise _fail(etype, path, f"must be one of {', '.join(node['symbols'])}, not {_describe(value)}")
        return value
    if kind == "array":
        if not isinstance(value, (list, tuple)):
            raise _fail(etype, path, f"must be a list, not {_describe(value)}")
        return [_convert(node["items"], item, named, etype, f"{path}[{i}]") for i, item in enumerate(value)]
    if kind == "map":
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise _fail(etype, path, f"must be an object, not {_describe(value)}")
        return {k: _convert(node["values"], v, named, etype, f"{path}.{k}") for k, v in value.items()}
    if kind in ("record", "error"):
        return _record(node, value, named, etype, path)
    raise _fail(etype, path, f"has an unsupported schema type {kind!r}")


def _record(node: Mapping[str, Any], value: Any, named: Mapping[str, Any], etype: str, path: str) -> Any:
    if not isinstance(value, Mapping):
        raise _fail(etype, path, f"must be an object, not {_describe(value)}")
    names = {fld["name"] for fld in node["fields"]}
    unknown = sorted(str(k) for k in value if k not in names)
    if unknown:
        raise _fail(etype, f"{path}.{unknown[0]}" if path else unknown[0], "is not in the schema")
    out: dict[str, Any] = {}
    for fld in node["fields"]:
        name = fld["name"]
        where = f"{path}.{name}" if path else name
        if name not in value:
            if "default" not in fld:
                raise SchemaInvalid(f"{etype}: missing required field {where!r}", field=where)
            out[name] = fld["default"]
            continue
        out[name] = _convert(fld["type"], value[name], named, etype, where)
    return out


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"a string of {len(value)} characters" if len(value) > 40 else repr(value)
    return type(value).__name__


def from_json(schema: Schema, data: Any) -> dict[str, Any]:
    """The Avro-ready record for JSON-like ``data`` (ISO dates and times, PersonRefs missing optional keys).

    NHS numbers have their spaces stripped; checking them is validation's job.

    Raises:
        SchemaInvalid: a required field is missing, a field is unknown or has the wrong type (named).
    """
    named = schema.parsed.get("__named_schemas", {}) if isinstance(schema.parsed, dict) else {}
    result = _convert(schema.parsed, data, named, schema.event_type, "")
    if not isinstance(result, dict):
        raise SchemaInvalid(f"{schema.event_type}: data must be an object")
    return result


def jsonable(value: Any) -> Any:
    """A decoded Avro value with dates and times as ISO strings and bytes as hex (for JSON output)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
