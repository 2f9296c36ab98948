"""Bounded Avro encoding and decoding, and the JSON-side converter.

fastavro trusts the counts and lengths it reads: a few bytes can declare an
array of fifty million items and it starts allocating. So untrusted bytes are
read against the writer schema by a reader compiled once per schema
(``_codec_read.py``), which checks before it takes anything: every string and
bytes length must fit in the bytes that remain and under a limit, every array
or map block count must fit in what remains (at the smallest encoded size of
an item) and in a budget of items per message, every union branch and enum
index must exist, and the record must end exactly where the bytes do. It
builds the value as fastavro would; fastavro decodes, once the bytes are
checked, only a read that resolves one schema to another. Every failure is a
``SchemaInvalid`` with a message naming the field, never another exception.

``from_json`` (in ``_codec_json.py``, re-exported here) turns a JSON-like dict
(ISO dates, PersonRefs missing optional keys) into the dict fastavro encodes,
naming the field on any error.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from broker._codec_json import from_json, jsonable
from broker._codec_read import Cursor, Plan, plan_for
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


def check_bounds(schema: Schema, data: bytes, limits: Limits = DEFAULT_LIMITS) -> None:
    """Walk ``data`` against ``schema``, checking every length, count and index before it is taken.

    Raises:
        SchemaInvalid: a length, count, index or the total size does not fit.
    """
    _read(schema, data, limits)


def _read(schema: Schema, data: bytes, limits: Limits) -> tuple[Any, Plan]:
    plan = plan_for(schema.parsed)
    cur = Cursor(data, limits)
    value = plan.read(cur)
    if cur.pos != cur.end:
        raise SchemaInvalid(f"{cur.end - cur.pos} bytes left over after the {schema.event_type} record")
    if cur.undecodable is not None:  # invalid UTF-8, a date out of range
        raise SchemaInvalid(f"{schema.event_type} does not decode: {cur.undecodable}") from cur.undecodable
    return value, plan


def decode(schema: Schema, data: bytes, limits: Limits = DEFAULT_LIMITS, reader: Schema | None = None) -> Any:
    """Decode untrusted bytes written with ``schema``, resolved to ``reader`` if given.

    Read in one bounded pass (``_codec_read``); fastavro decodes, after that pass has checked the bytes,
    only what resolves one schema to another or holds a logical type the pass does not read.

    Raises:
        SchemaInvalid: the bytes do not fit the schema or the limits.
    """
    value, plan = _read(schema, data, limits)
    resolve = reader is not None and reader is not schema
    if plan.faithful and not resolve:
        return value
    try:
        return schemaless_reader(io.BytesIO(data), schema.parsed, reader.parsed if resolve else None)  # type: ignore[union-attr]
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
