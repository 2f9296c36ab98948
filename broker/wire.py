"""How records look on the log: one JSON encoding, and the CloudEvents 1.0 Kafka binding's headers.

JSON records (notifications, decisions, acknowledgements, deliveries,
refusals, access records, checkpoints) are written by ``encode_json`` alone:
UTF-8, keys sorted, no spaces, so the same value is always the same bytes (the
sealer hashes them and the auditor re-derives them). They are read back by
``decode_json``. Every such record declares ``content-type: application/json``.

Every record on the input topic is a CloudEvent in the Kafka protocol
binding's binary content mode (CloudEvents 1.0, ``kafka-protocol-binding.md``):
``ce_specversion``, ``ce_id``, ``ce_source``, ``ce_type`` and ``ce_time`` as
headers, the data as the record's value, its media type in ``content-type``.

- An accepted event: ``ce_id`` is the event id; ``ce_source`` is
  ``urn:jigsaw:org:<source org id>``; ``ce_type`` is ``uk.jigsaw.event.<event_type>``;
  ``ce_time`` is when it occurred; the value is the signed envelope exactly as
  the agency posted it, so ``content-type`` is the gateway's own
  ``application/vnd.jigsaw.envelope+avro``, with a ``payload-fingerprint``
  parameter: the payload's writer-schema fingerprint (CRC-64-AVRO, 16 hex
  digits), which finds the schema in ``broker.schemas`` without opening the envelope.
- An acknowledgement: ``ce_type`` is ``uk.jigsaw.ack``, ``ce_source`` the
  acknowledging organisation, ``ce_id`` ``ack:<notification id>:<time in ms>``,
  the value JSON.

Headers never carry payload contents: ids, types and times only.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import quote

from broker.envelope.batch import ENVELOPE_CONTENT_TYPE
from broker.envelope.model import Envelope
from broker.log.base import Headers

__all__ = [
    "ACK_TYPE",
    "EVENT_TYPE_PREFIX",
    "JSON_CONTENT_TYPE",
    "JSON_HEADERS",
    "SPECVERSION",
    "cloudevent_headers",
    "decode_json",
    "encode_json",
    "envelope_content_type",
    "event_headers",
    "org_source",
]

SPECVERSION = "1.0"
JSON_CONTENT_TYPE = "application/json"
JSON_HEADERS: Headers = (("content-type", JSON_CONTENT_TYPE.encode()),)
EVENT_TYPE_PREFIX = "uk.jigsaw.event."
ACK_TYPE = "uk.jigsaw.ack"


def encode_json(value: Any) -> bytes:
    """The one JSON encoding of a record's value: UTF-8, sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_json(raw: bytes | str | None) -> Any:
    """A record's JSON value (``None`` for a tombstone)."""
    return None if raw is None else json.loads(raw)


def org_source(org_id: str) -> str:
    """The CloudEvents ``source`` (an absolute URI) for an organisation id."""
    return "urn:jigsaw:org:" + quote(org_id, safe="-._~")


def envelope_content_type(schema_fingerprint: bytes) -> str:
    """The ``content-type`` of an accepted event: the envelope media type and the payload's schema fingerprint."""
    return f"{ENVELOPE_CONTENT_TYPE}; payload-fingerprint={schema_fingerprint.hex()}"


def event_headers(env: Envelope) -> Headers:
    """The CloudEvents headers of an accepted event (see the module docstring)."""
    return cloudevent_headers(
        ce_id=env.event_id,
        source=org_source(env.source),
        ce_type=EVENT_TYPE_PREFIX + env.event_type,
        time=env.occurred_at,
        content_type=envelope_content_type(env.schema_fingerprint),
    )


def _rfc3339(moment: dt.datetime) -> str:
    text = moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def cloudevent_headers(*, ce_id: str, source: str, ce_type: str, time: dt.datetime, content_type: str) -> Headers:
    """The binary-mode CloudEvents headers of one record (required attributes, ``time`` and the content type)."""
    return (
        ("ce_specversion", SPECVERSION.encode()),
        ("ce_id", ce_id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", ce_type.encode()),
        ("ce_time", _rfc3339(time).encode()),
        ("content-type", content_type.encode()),
    )
