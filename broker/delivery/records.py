"""What the dispatcher writes to the deliveries topic: every attempt, every dead letter, every inbox drop.

One JSON record per fact, keyed by notification id (``architecture.md``,
Topics), with a ``kind`` header:

- ``attempt``: one webhook attempt and its outcome (``delivered``, ``failed``,
  ``circuit_open``, ``gone``, ``refused``), with the next attempt's time when
  there will be one;
- ``dead_letter``: retries ran out or cannot help; the reason says why. The
  notification stays in the organisation's inbox;
- ``inbox``: the organisation has no endpoint; the notification waits in its inbox.

Records say where the notification is in the log (partition and offset), so a
restarted dispatcher can find a notification it still owes a retry. They never
carry the notification's content.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from broker.log.base import Headers, Record
from broker.routing.model import iso, parse_iso
from broker.wire import JSON_HEADERS, decode_json, encode_json

__all__ = [
    "ATTEMPT",
    "DEAD_LETTER",
    "FINAL_OUTCOMES",
    "INBOX",
    "DeliveryRecord",
    "decode_delivery",
    "encode_delivery",
]

ATTEMPT = "attempt"
DEAD_LETTER = "dead_letter"
INBOX = "inbox"
# After one of these the dispatcher owes the notification nothing more.
FINAL_OUTCOMES = frozenset({"delivered", DEAD_LETTER, INBOX})


@dataclasses.dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One fact about delivering one notification."""

    kind: str  # attempt, dead_letter or inbox
    notification_id: str
    recipient: str
    at: dt.datetime
    outcome: str  # delivered, failed, circuit_open, gone, refused (attempts); dead_letter; inbox
    partition: int  # where the notification is in the notifications topic
    offset: int
    attempt: int = 0  # 1 for the first webhook attempt; 0 for inbox records
    endpoint: str | None = None
    status: int | None = None  # the HTTP status the endpoint answered
    error: str | None = None  # why an attempt failed, or the dead letter's reason
    duration_ms: int | None = None
    next_attempt_at: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form. Every field is a scalar, so no ``dataclasses.asdict``: its deep copy of each value
        took 15 µs a record, against 2.4 µs for the whole of this (a record per webhook attempt)."""
        d = {name: getattr(self, name) for name in _FIELDS}
        d["at"] = iso(self.at)
        d["next_attempt_at"] = iso(self.next_attempt_at)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeliveryRecord:
        """Parse the JSON form (unknown fields are ignored)."""
        kw = {k: v for k, v in d.items() if k in _FIELDS}
        kw["at"] = parse_iso(d["at"])
        kw["next_attempt_at"] = parse_iso(d.get("next_attempt_at"))
        return cls(**kw)


_FIELDS = tuple(f.name for f in dataclasses.fields(DeliveryRecord))


def encode_delivery(record: DeliveryRecord) -> tuple[bytes, bytes, Headers]:
    """``(key, value, headers)`` for the deliveries topic."""
    headers = (("kind", record.kind.encode()), ("notification_id", record.notification_id.encode()), *JSON_HEADERS)
    return record.notification_id.encode(), encode_json(record.to_dict()), headers


def decode_delivery(record: Record) -> DeliveryRecord | None:
    """A delivery record from the log, or None for a tombstone."""
    if record.value is None:
        return None
    return DeliveryRecord.from_dict(decode_json(record.value))
