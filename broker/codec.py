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

``from_json`` (in ``_codec_json.py``, re-exported here) turns a JSON-like dict
(ISO dates, PersonRefs missing optional keys) into the dict fastavro encodes,
naming the field on any error.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Mapping
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from broker._codec_json import from_json, jsonable
from broker.errors import SchemaInvalid
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
        if pos < end and buf[pos] < 0x80:  # one byte: most lengths, indexes and small numbers
            raw = buf[pos]
            self.pos = pos + 1
            return (raw >> 1) ^ -(raw & 1)
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
            check, size = _compile(fld["type"], named, f"{path}.{fld['name']}" if path else fld["name"], plans)
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
                    raise SchemaInvalid(f"{where}: a block declares {size} bytes but {cur.end - cur.pos} remain")
            if count > cur.items:
                raise SchemaInvalid(
                    f"{where}: declares {count} items, over the limit of {cur.limits.max_items} per message"
                )
            if count * item_min > cur.end - cur.pos:
                raise SchemaInvalid(f"{where}: declares {count} items but only {cur.end - cur.pos} bytes remain")
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
