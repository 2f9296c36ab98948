"""The router's records on the log: JSON values in the one encoding (``broker.wire``).

Notifications are keyed by recipient organisation, decisions by event id,
acknowledgements by notification id (``architecture.md``, Topics).
"""

from __future__ import annotations

from broker import topics
from broker.envelope.model import to_millis
from broker.log.base import Headers, Record
from broker.routing.model import Ack, Decision, Notification
from broker.wire import (
    ACK_TYPE,
    JSON_CONTENT_TYPE,
    JSON_HEADERS,
    cloudevent_headers,
    decode_json,
    encode_json,
    org_source,
)

__all__ = [
    "decode_ack",
    "decode_decision",
    "decode_notification",
    "encode_ack",
    "encode_output",
]


def encode_output(item: Notification | Decision) -> tuple[bytes, bytes, Headers]:
    """``(key, value, headers)`` for a notification or a decision record."""
    if isinstance(item, Notification):
        return (
            item.recipient.encode(),
            encode_json(item.to_dict()),
            (("kind", item.kind.encode()), ("notification_id", item.notification_id.encode()), *JSON_HEADERS),
        )
    return (
        item.event_id.encode(),
        encode_json(item.to_dict()),
        (("kind", b"decision"), ("decision_id", item.decision_id.encode()), *JSON_HEADERS),
    )


def decode_notification(record: Record) -> Notification:
    assert record.value is not None
    return Notification.from_dict(decode_json(record.value))


def decode_decision(record: Record) -> Decision:
    assert record.value is not None
    return Decision.from_dict(decode_json(record.value))


def encode_ack(ack: Ack) -> tuple[bytes, bytes, Headers]:
    """``(key, value, headers)`` of an acknowledgement on the input topic (``topics.INPUT``)."""
    headers = cloudevent_headers(
        ce_id=f"ack:{ack.notification_id}:{to_millis(ack.at)}",
        source=org_source(ack.recipient),
        ce_type=ACK_TYPE,
        time=ack.at,
        content_type=JSON_CONTENT_TYPE,
    )
    return ack.notification_id.encode(), encode_json(ack.to_dict()), ((topics.RECORD_HEADER, topics.ACK), *headers)


def decode_ack(record: Record) -> Ack:
    assert record.value is not None
    return Ack.from_dict(decode_json(record.value))
