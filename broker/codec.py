"""Bounded Avro encoding and decoding, and the JSON-side converter.

fastavro trusts the counts and lengths it reads: a few bytes can declare an
array of fifty million items and it starts allocating. So untrusted bytes are
walked first, against the writer schema, by a checker compiled once per
schema: every string and bytes length must fit in the bytes that remain and
under a limit, every array or map block count must fit in what remains (at
the smallest encoded size of an item) and in a budget of items per message,
every union branch and enum index must exist, and the record must end exactly
where the bytes do. Only then does fastavro decode. Every failure is a
``SchemaInvalid`` with a message naming the field, never another exception.

``from_json`` turns a JSON-like dict (ISO dates, PersonRefs missing optional
keys) into the dict fastavro encodes, naming the field on any error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from collections.abc import Callable, Mapping
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from broker.errors import SchemaInvalid
from broker.nhs import normalise_nhs_number
from broker.schemas import Catalogue, Schema

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "check_bounds",
    "decode",
    "decode_payload",
    "encode",
    "encode_payload",
    "from_json",
    "jsonable",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """What one untrusted message may declare."""

    max_string: int = 64 * 1024  # one string field, in bytes of UTF-8
    max_bytes: int = 1024 * 1024  # one bytes field (the envelope's payload)
    max_items: int = 10_000  # array and map items in the whole message
    max_depth: int = 32  # nested records


DEFAULT_LIMITS = Limits()

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


class _Cursor:
    __slots__ = ("buf", "depth", "end", "items", "limits", "pos")

    def __init__(self, buf: bytes, limits: Limits) -> None:
        self.buf = buf
        self.pos = 0
        self.end = len(buf)
        self.items = limits.max_items
        self.depth = 0
        self.limits = limits

    def long(self, where: str) -> int:
        buf, pos, end = self.buf, self.pos, self.end
        raw = shift = 0
        while True:
            if pos >= end:
                raise SchemaInvalid(f"{where}: the data ends inside a number")
            byte = buf[pos]
            pos += 1
            raw |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift >= 70:
                raise SchemaInvalid(f"{where}: a number is longer than 10 bytes")
        self.pos = pos
        return (raw >> 1) ^ -(raw & 1)

    def skip(self, n: int, where: str) -> None:
        if n > self.end - self.pos:
            raise SchemaInvalid(f"{where}: needs {n} bytes but only {self.end - self.pos} remain")
        self.pos += n


_Check = Callable[[_Cursor], None]


def _label(path: str) -> str:
    return f"field {path!r}" if path else "the record"


_Plans = dict[str, tuple[_Check, int]]


def _compile(node: Any, named: Mapping[str, Any], path: str, plans: _Plans) -> tuple[_Check, int]:
    """A checker for one schema node and the smallest size its encoding can have."""
    compiled = _compile_node(node, named, path, plans)
    if isinstance(node, dict) and isinstance(node.get("name"), str) and node["name"] in named:
        plans.setdefault(node["name"], compiled)  # later references by name reuse it
    return compiled


def _compile_node(node: Any, named: Mapping[str, Any], path: str, plans: _Plans) -> tuple[_Check, int]:
    where = _label(path)
    if isinstance(node, list):
        branches = [_compile(b, named, path, plans) for b in node]

        def union(cur: _Cursor) -> None:
            index = cur.long(where)
            if not 0 <= index < len(branches):
                raise SchemaInvalid(f"{where}: union branch {index} does not exist")
            branches[index][0](cur)

        return union, 1
    if isinstance(node, str):
        if node in plans:
            return plans[node]
        if node in named:
            return _named(node, named, plans), 0
        node = {"type": node}
    kind = node["type"]
    if isinstance(kind, (dict, list)) or kind in named:
        return _compile(kind, named, path, plans)
    if kind == "null":
        return (lambda cur: None), 0
    if kind == "boolean":

        def boolean(cur: _Cursor) -> None:
            if cur.pos >= cur.end or cur.buf[cur.pos] > 1:
                raise SchemaInvalid(f"{where}: not a boolean")
            cur.pos += 1

        return boolean, 1
    if kind in ("int", "long"):
        is_int = kind == "int"

        def number(cur: _Cursor) -> None:
            value = cur.long(where)
            if is_int and not _INT_MIN <= value <= _INT_MAX:
                raise SchemaInvalid(f"{where}: {value} does not fit in an Avro int")

        return number, 1
    if kind in ("float", "double"):
        size = 4 if kind == "float" else 8
        return (lambda cur: cur.skip(size, where)), size
    if kind in ("string", "bytes"):
        is_string = kind == "string"

        def sized(cur: _Cursor) -> None:
            n = cur.long(where)
            limit = cur.limits.max_string if is_string else cur.limits.max_bytes
            if n < 0:
                raise SchemaInvalid(f"{where}: negative length {n}")
            if n > limit:
                raise SchemaInvalid(f"{where}: length {n} is over the limit of {limit} bytes")
            cur.skip(n, where)

        return sized, 1
    if kind == "fixed":
        size = int(node["size"])
        return (lambda cur: cur.skip(size, where)), size
    if kind == "enum":
        symbols = len(node["symbols"])

        def enum(cur: _Cursor) -> None:
            index = cur.long(where)
            if not 0 <= index < symbols:
                raise SchemaInvalid(f"{where}: enum index {index} does not exist")

        return enum, 1
    if kind in ("array", "map"):
        item, item_min = _compile(node["items" if kind == "array" else "values"], named, path + "[]", plans)
        key: _Check | None = _compile("string", named, path + "{}", plans)[0] if kind == "map" else None
        item_min += 1 if key else 0
        return _blocks(item, key, item_min, where), 1
    if kind in ("record", "error"):
        fields: list[_Check] = []
        smallest = 0
        for fld in node["fields"]:
            check, size = _compile(
                fld["type"], named, f"{path}.{fld['name']}" if path else fld["name"], plans
            )
            fields.append(check)
            smallest += size

        def record(cur: _Cursor) -> None:
            cur.depth += 1
            if cur.depth > cur.limits.max_depth:
                raise SchemaInvalid(f"{where}: records nest deeper than {cur.limits.max_depth}")
            for check in fields:
                check(cur)
            cur.depth -= 1

        return record, smallest
    raise SchemaInvalid(f"{where}: unsupported schema type {kind!r}")


def _named(name: str, named: Mapping[str, Any], plans: _Plans) -> _Check:
    # A reference before its definition ends (a type that refers to itself): looked up when called.
    def deferred(cur: _Cursor) -> None:
        if name not in plans:
            _compile(named[name], named, "", plans)
        plans[name][0](cur)

    return deferred


def _blocks(item: _Check, key: _Check | None, item_min: int, where: str) -> _Check:
    def blocks(cur: _Cursor) -> None:
        while True:
            count = cur.long(where)
            if count == 0:
                return
            if count < 0:
                count = -count
                size = cur.long(where)
                if size < 0 or size > cur.end - cur.pos:
                    raise SchemaInvalid(
                        f"{where}: a block declares {size} bytes but {cur.end - cur.pos} remain"
                    )
            if count > cur.items:
                raise SchemaInvalid(
                    f"{where}: declares {count} items, over the limit of {cur.limits.max_items} per message"
                )
            if count * item_min > cur.end - cur.pos:
                raise SchemaInvalid(
                    f"{where}: declares {count} items but only {cur.end - cur.pos} bytes remain"
                )
            cur.items -= count
            for _ in range(count):
                if key is not None:
                    key(cur)
                item(cur)

    return blocks


_PLANS: dict[str, _Check] = {}


def _plan(schema: Schema) -> _Check:
    plan = _PLANS.get(schema.canonical)
    if plan is None:
        named = schema.parsed.get("__named_schemas", {}) if isinstance(schema.parsed, dict) else {}
        plan = _compile(schema.parsed, named, "", {})[0]
        _PLANS[schema.canonical] = plan
    return plan


def check_bounds(schema: Schema, data: bytes, limits: Limits = DEFAULT_LIMITS) -> None:
    """Walk ``data`` against ``schema`` without allocating anything it declares.

    Raises:
        SchemaInvalid: a length, count, index or the total size does not fit.
    """
    cur = _Cursor(data, limits)
    _plan(schema)(cur)
    if cur.pos != cur.end:
        raise SchemaInvalid(f"{cur.end - cur.pos} bytes left over after the {schema.event_type} record")


def decode(schema: Schema, data: bytes, limits: Limits = DEFAULT_LIMITS, reader: Schema | None = None) -> Any:
    """Decode untrusted bytes written with ``schema``, resolved to ``reader`` if given.

    Raises:
        SchemaInvalid: the bytes do not fit the schema or the limits.
    """
    check_bounds(schema, data, limits)
    try:
        return schemaless_reader(
            io.BytesIO(data),
            schema.parsed,
            reader.parsed if reader is not None and reader is not schema else None,
        )
    except SchemaInvalid:
        raise
    except Exception as exc:  # fastavro raises many unrelated types on bad data
        raise SchemaInvalid(f"{schema.event_type} does not decode: {exc}") from exc


def encode(schema: Schema, record: Any) -> bytes:
    """Encode an Avro-ready record (see ``from_json``).

    Raises:
        SchemaInvalid: the record does not fit the schema.
    """
    out = io.BytesIO()
    try:
        schemaless_writer(out, schema.parsed, record, strict=True, strict_allow_default=True)
    except Exception as exc:  # fastavro raises ValueError, TypeError, KeyError, ...
        raise SchemaInvalid(f"{schema.event_type} does not encode: {exc}") from exc
    return out.getvalue()


def encode_payload(catalogue: Catalogue, event_type: str, record: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """``(fingerprint, bytes)`` of an event's payload under its current schema."""
    schema = catalogue.for_type(event_type)
    return schema.fingerprint, encode(schema, record)


def decode_payload(
    catalogue: Catalogue, event_type: str, fingerprint: bytes, data: bytes, limits: Limits = DEFAULT_LIMITS
) -> dict[str, Any]:
    """Decode a payload written with the schema ``fingerprint`` names, read as the current ``event_type``.

    Raises:
        SchemaInvalid: the fingerprint is unknown or belongs to another type, or the bytes do not decode.
    """
    reader = catalogue.for_type(event_type)
    writer = catalogue.for_fingerprint(fingerprint)
    if writer.event_type != event_type:
        raise SchemaInvalid(
            f"schema fingerprint {fingerprint.hex()} is the schema of {writer.event_type}, not {event_type}"
        )
    record = decode(writer, data, limits, reader=reader)
    if not isinstance(record, dict):
        raise SchemaInvalid(f"{event_type} payload is not a record")
    return record


# --- the JSON side -----------------------------------------------------------------------------


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
