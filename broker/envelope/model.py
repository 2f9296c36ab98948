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
from broker.schemas import Catalogue, default_catalogue

__all__ = ["CONSENT_VALUES", "Envelope", "decode_envelope", "encode_envelope", "to_millis"]

CONSENT_VALUES = ("given", "refused", "not_sought", "not_required")


def to_millis(moment: dt.datetime) -> int:
    """Milliseconds since the Unix epoch of an aware time (what timestamp-millis stores)."""
    if moment.tzinfo is None:
        raise ValueError("envelope times must be timezone-aware")
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _from_millis(ms: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)


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


def decode_envelope(
    data: bytes, *, catalogue: Catalogue | None = None, limits: Limits = DEFAULT_LIMITS
) -> Envelope:
    """Decode untrusted envelope bytes (bounded), refusing any non-canonical encoding.

    Raises:
        SchemaInvalid: the bytes are not exactly one canonical envelope.
    """
    catalogue = catalogue or default_catalogue()
    raw = decode(catalogue.envelope, bytes(data), limits)
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
