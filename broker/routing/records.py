"""The router's records on the log: JSON values, one canonical encoding.

Notifications are keyed by recipient organisation, decisions by event id,
acknowledgements by notification id (``architecture.md``, Topics).
"""

from __future__ import annotations

import json
from typing import Any

from broker import topics
from broker.log.base import Headers, Record
from broker.routing.model import Ack, Decision, Notification

__all__ = [
    "decode_ack",
    "decode_decision",
    "decode_notification",
    "encode_ack",
    "encode_json",
    "encode_output",
]


def encode_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode_output(item: Notification | Decision) -> tuple[bytes, bytes, Headers]:
    """``(key, value, headers)`` for a notification or a decision record."""
    if isinstance(item, Notification):
        return (
            item.recipient.encode(),
            encode_json(item.to_dict()),
            (("kind", item.kind.encode()), ("notification_id", item.notification_id.encode())),
        )
    return (
        item.event_id.encode(),
        encode_json(item.to_dict()),
        (("kind", b"decision"), ("decision_id", item.decision_id.encode())),
    )


def decode_notification(record: Record) -> Notification:
    assert record.value is not None
    return Notification.from_dict(json.loads(record.value))


def decode_decision(record: Record) -> Decision:
    assert record.value is not None
    return Decision.from_dict(json.loads(record.value))


def encode_ack(ack: Ack) -> tuple[bytes, bytes, Headers]:
    """``(key, value, headers)`` of an acknowledgement on the input topic (``topics.INPUT``)."""
    return ack.notification_id.encode(), encode_json(ack.to_dict()), ((topics.RECORD_HEADER, topics.ACK),)


def decode_ack(record: Record) -> Ack:
    assert record.value is not None
    return Ack.from_dict(json.loads(record.value))
