"""The framing of ``POST /v1/events:batch``: an Avro array of envelope byte strings.

Each item is one envelope's canonical bytes, exactly as ``POST /v1/events``
would take it, so a batch item is signed, checked and deduplicated like a
single submission. The array itself is decoded with the same bounds as any
untrusted Avro (declared counts and lengths checked before allocation).
"""

from __future__ import annotations

from collections.abc import Sequence

from broker.codec import Limits, decode, encode
from broker.errors import SchemaInvalid
from broker.schemas import compile_schema

__all__ = ["BATCH_CONTENT_TYPE", "BATCH_SCHEMA", "ENVELOPE_CONTENT_TYPE", "decode_batch", "encode_batch"]

ENVELOPE_CONTENT_TYPE = "application/vnd.jigsaw.envelope+avro"
BATCH_CONTENT_TYPE = "application/vnd.jigsaw.envelope-batch+avro"
BATCH_SCHEMA = compile_schema("envelope-batch", {"type": "array", "items": "bytes"})


def encode_batch(envelopes: Sequence[bytes]) -> bytes:
    """Frame encoded envelopes for ``POST /v1/events:batch``."""
    return encode(BATCH_SCHEMA, list(envelopes))


def decode_batch(body: bytes, *, max_items: int, max_item_bytes: int) -> list[bytes]:
    """The envelope byte strings of a batch body.

    Raises:
        SchemaInvalid: the framing is not an Avro array of at most ``max_items`` byte strings.
    """
    items = decode(BATCH_SCHEMA, body, Limits(max_items=max_items, max_bytes=max_item_bytes))
    if not isinstance(items, list):
        raise SchemaInvalid("a batch must be an Avro array of envelope bytes")
    return [bytes(item) for item in items]
