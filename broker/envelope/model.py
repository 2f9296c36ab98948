"""The envelope every event travels in, and its Avro encoding.

The bytes on the wire are the canonical Avro binary encoding of
``schemas/envelope.avsc``: decoding refuses anything else (extra bytes,
over-long numbers), so two different byte strings never carry the same
envelope and deduplication by bytes is sound.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from broker.codec import DEFAULT_LIMITS, Limits, decode, encode
from broker.errors import SchemaInvalid
from broker.schemas import Catalogue, Schema, default_catalogue

__all__ = ["CONSENT_VALUES", "Envelope", "decode_envelope", "encode_envelope", "read_canonical", "to_millis"]

CONSENT_VALUES = ("given", "refused", "not_sought", "not_required")


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_millis(moment: dt.datetime) -> int:
    """Milliseconds since the Unix epoch of an aware time (what timestamp-millis stores)."""
    if moment.tzinfo is None:
        raise ValueError("envelope times must be timezone-aware")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _from_millis(ms: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(milliseconds=ms)


def _is_normal(moment: dt.datetime) -> bool:
    """True when ``_from_millis(to_millis(moment))`` would give back an identical time (UTC, whole ms)."""
    exact = type(moment) is dt.datetime and moment.tzinfo is dt.UTC
    return exact and moment.microsecond % 1000 == 0 and not moment.fold


@dataclasses.dataclass(frozen=True, slots=True)
class Envelope:
    """A signed event. Times are kept at millisecond precision, as Avro stores them."""

    event_id: str
    event_type: str
    schema_fingerprint: bytes
    source: str
    key_id: str
    occurred_at: dt.datetime
    issued_at: dt.datetime
    lawful_basis: str
    consent: str
    payload: bytes
    signature: bytes = b""

    def __post_init__(self) -> None:
        # Normalise the times once, so what is signed is exactly what Avro carries.
        for name in ("occurred_at", "issued_at"):
            value = getattr(self, name)
            if not _is_normal(value):
                object.__setattr__(self, name, _from_millis(to_millis(value)))

    def with_signature(self, signature: bytes) -> Envelope:
        """A copy carrying ``signature``."""
        return dataclasses.replace(self, signature=signature)

    def describe(self) -> dict[str, str]:
        """Fields safe to log or record (never the payload)."""
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "source": self.source,
            "key_id": self.key_id,
        }


def _record(env: Envelope) -> dict[str, Any]:
    return {
        "event_id": env.event_id,
        "event_type": env.event_type,
        "schema_fingerprint": env.schema_fingerprint,
        "source": env.source,
        "key_id": env.key_id,
        "occurred_at": to_millis(env.occurred_at),
        "issued_at": to_millis(env.issued_at),
        "lawful_basis": env.lawful_basis,
        "consent": env.consent,
        "payload": env.payload,
        "signature": env.signature,
    }


def encode_envelope(env: Envelope, catalogue: Catalogue | None = None) -> bytes:
    """The envelope's canonical Avro bytes.

    Raises:
        SchemaInvalid: a field does not fit (e.g. a fingerprint that is not 8 bytes).
    """
    return encode((catalogue or default_catalogue()).envelope, _record(env))


class _NotCanonical(Exception):
    """The fast reader does not take these bytes: the full decoder judges them (and words any refusal)."""


class _Reader:
    """Reads the envelope's fields in schema order, taking only the canonical encoding within the limits."""

    __slots__ = ("data", "limits", "pos")

    def __init__(self, data: bytes, limits: Limits) -> None:
        self.data = data
        self.limits = limits
        self.pos = 0

    def long(self) -> int:
        data, start = self.data, self.pos
        if start < len(data) and data[start] < 0x80:  # one byte: most lengths
            self.pos = start + 1
            return (data[start] >> 1) ^ -(data[start] & 1)
        raw = shift = 0
        for pos in range(start, min(start + 9, len(data))):  # at most 63 bits: always an Avro long
            byte = data[pos]
            raw |= (byte & 0x7F) << shift
            if byte < 0x80:
                if byte == 0 and pos > start:
                    raise _NotCanonical  # an over-long number
                self.pos = pos + 1
                return (raw >> 1) ^ -(raw & 1)
            shift += 7
        raise _NotCanonical

    def fixed(self, size: int) -> bytes:
        start, end = self.pos, self.pos + size
        if end > len(self.data):
            raise _NotCanonical
        self.pos = end
        return self.data[start:end]

    def blob(self, limit: int) -> bytes:
        size = self.long()
        start, end = self.pos, self.pos + size
        if size < 0 or size > limit or end > len(self.data):
            raise _NotCanonical
        self.pos = end
        return self.data[start:end]

    def string(self) -> str:
        try:
            return self.blob(self.limits.max_string).decode("utf-8")
        except UnicodeDecodeError:
            raise _NotCanonical from None

    def millis(self) -> dt.datetime:
        try:
            return _from_millis(self.long())
        except OverflowError:
            raise _NotCanonical from None

    def symbol(self, symbols: tuple[str, ...]) -> str:
        index = self.long()
        if not 0 <= index < len(symbols):
            raise _NotCanonical
        return symbols[index]


def _kind(node: Any) -> str:
    if not isinstance(node, dict):
        return str(node)
    extra = node.get("logicalType") or node.get("size") or ",".join(node.get("symbols", ()))
    return f"{node['type']} {extra}"


# The envelope schema the fast reader is written for, as (field, kind) in order; any other falls back.
_READER_LAYOUT = (
    ("event_id", "string"),
    ("event_type", "string"),
    ("schema_fingerprint", "fixed 8"),
    ("source", "string"),
    ("key_id", "string"),
    ("occurred_at", "long timestamp-millis"),
    ("issued_at", "long timestamp-millis"),
    ("lawful_basis", "string"),
    ("consent", f"enum {','.join(CONSENT_VALUES)}"),
    ("payload", "bytes"),
    ("signature", "bytes"),
)
_READER_FITS: dict[str, bool] = {}  # by the envelope schema's canonical form


def _reader_fits(schema: Schema) -> bool:
    fits = _READER_FITS.get(schema.canonical)
    if fits is None:
        fields = schema.source.get("fields", ())
        fits = _READER_FITS[schema.canonical] = tuple((f["name"], _kind(f["type"])) for f in fields) == _READER_LAYOUT
    return fits


def read_canonical(data: bytes, schema: Schema, limits: Limits = DEFAULT_LIMITS) -> Envelope | None:
    """The envelope when ``data`` is one canonical envelope within ``limits``; None when unsure.

    The common case in one pass over the bytes, with no re-encoding: every number in its
    shortest form, every string valid UTF-8, every length within the limits, nothing left over.
    When this gives an envelope, ``decode_envelope``'s full path gives an equal one
    (tests/unit/test_verify_fast_paths.py); None sends the bytes there, to be decoded or refused.
    """
    if limits.max_depth < 1 or not _reader_fits(schema):
        return None
    read = _Reader(data, limits)
    try:
        env = Envelope(
            event_id=read.string(),
            event_type=read.string(),
            schema_fingerprint=read.fixed(8),
            source=read.string(),
            key_id=read.string(),
            occurred_at=read.millis(),
            issued_at=read.millis(),
            lawful_basis=read.string(),
            consent=read.symbol(CONSENT_VALUES),
            payload=read.blob(limits.max_bytes),
            signature=read.blob(limits.max_bytes),
        )
    except _NotCanonical:
        return None
    return env if read.pos == len(data) else None


def decode_envelope(data: bytes, *, catalogue: Catalogue | None = None, limits: Limits = DEFAULT_LIMITS) -> Envelope:
    """Decode untrusted envelope bytes (bounded), refusing any non-canonical encoding.

    Raises:
        SchemaInvalid: the bytes are not exactly one canonical envelope.
    """
    catalogue = catalogue or default_catalogue()
    data = bytes(data)
    fast = read_canonical(data, catalogue.envelope, limits)
    if fast is not None:
        return fast
    raw = decode(catalogue.envelope, data, limits)
    try:
        env = Envelope(
            event_id=raw["event_id"],
            event_type=raw["event_type"],
            schema_fingerprint=raw["schema_fingerprint"],
            source=raw["source"],
            key_id=raw["key_id"],
            occurred_at=raw["occurred_at"],
            issued_at=raw["issued_at"],
            lawful_basis=raw["lawful_basis"],
            consent=raw["consent"],
            payload=raw["payload"],
            signature=raw["signature"],
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise SchemaInvalid(f"the envelope does not decode: {exc}") from exc
    if encode_envelope(env, catalogue) != data:
        raise SchemaInvalid("the envelope bytes are not in canonical Avro form")
    return env
