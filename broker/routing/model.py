"""What the router writes: notifications, decision records, and the acks it reads.

Plain frozen data with a JSON form (``to_dict``/``from_dict``) used on the
notifications, decisions and acks topics.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from broker.model import Event

__all__ = [
    "ACK_KINDS",
    "NOTIFICATION_KINDS",
    "Ack",
    "Decision",
    "Notification",
    "Withheld",
    "decision_record",
    "iso",
    "notification_id",
    "parse_iso",
]

NOTIFICATION_KINDS = ("alert", "catch_up", "history", "pre_birth_alert", "escalation", "retraction")
ACK_KINDS = frozenset({"alert", "catch_up", "history", "pre_birth_alert"})  # the kinds that need acknowledging

_NS = uuid.UUID("6f1d7c1e-3c55-4a4e-9d7b-0d6c8e3a9b21")
_NS_BYTES = _NS.bytes


def notification_id(*parts: str) -> str:
    """A stable id: the same parts always give the same id (once-only, idempotent restarts).

    ``str(uuid.uuid5(_NS, "\\x1f".join(parts)))``, without building a ``UUID`` (the router makes several per event).
    """
    digest = bytearray(hashlib.sha1(_NS_BYTES + "\x1f".join(parts).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def iso(t: dt.datetime | None) -> str | None:
    """UTC ISO 8601 with a Z, to the second (milliseconds when present)."""
    if t is None:
        return None
    t = t.astimezone(dt.UTC)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += f".{t.microsecond // 1000:03d}"
    return text + "Z"


def parse_iso(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclasses.dataclass(frozen=True, slots=True)
class Notification:
    """One professional organisation being told one thing, with why and what it may see."""

    notification_id: str
    kind: str
    event_id: str  # what it is about (for a retraction: the record.retracted event)
    event_type: str
    recipient: str
    at: dt.datetime
    priority: str
    flags: tuple[str, ...]
    view: str
    reason: str
    also_notified: tuple[str, ...]
    ack_by: dt.datetime | None
    rule: str
    content: Mapping[str, Any]
    cause: str | None = None
    follows: str | None = None  # the notification an escalation or retraction follows up
    trigger_event_id: str | None = None  # the link event behind a catch_up, the plan behind a history
    safeguarding_lead: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, fields in declaration order (no ``dataclasses.asdict``: it deep-copies the content)."""
        return {
            "notification_id": self.notification_id,
            "kind": self.kind,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "recipient": self.recipient,
            "at": iso(self.at),
            "priority": self.priority,
            "flags": list(self.flags),
            "view": self.view,
            "reason": self.reason,
            "also_notified": list(self.also_notified),
            "ack_by": iso(self.ack_by),
            "rule": self.rule,
            "content": dict(self.content),
            "cause": self.cause,
            "follows": self.follows,
            "trigger_event_id": self.trigger_event_id,
            "safeguarding_lead": self.safeguarding_lead,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Notification:
        fields = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in fields}
        kw["at"] = parse_iso(d["at"])
        kw["ack_by"] = parse_iso(d.get("ack_by"))
        kw["flags"] = tuple(d.get("flags", ()))
        kw["also_notified"] = tuple(d.get("also_notified", ()))
        return cls(**kw)


@dataclasses.dataclass(frozen=True, slots=True)
class Withheld:
    """A decision not to share: with one organisation, or (``org`` None) with anyone."""

    org: str | None
    rule: str
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """The record of one routing decision, including decisions not to share."""

    decision_id: str
    event_id: str
    event_type: str
    at: dt.datetime
    rule: str
    kind: str
    shared: tuple[tuple[str, str], ...]  # (recipient, notification id)
    withheld: tuple[Withheld, ...]
    lawful_basis: str
    consent: str
    trigger_event_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "at": iso(self.at),
            "rule": self.rule,
            "kind": self.kind,
            "shared": [{"recipient": r, "notification_id": n} for r, n in self.shared],
            "withheld": [dataclasses.asdict(w) for w in self.withheld],
            "lawful_basis": self.lawful_basis,
            "consent": self.consent,
            "trigger_event_id": self.trigger_event_id,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Decision:
        at = parse_iso(d["at"])
        assert at is not None
        return cls(
            decision_id=d["decision_id"],
            event_id=d["event_id"],
            event_type=d["event_type"],
            at=at,
            rule=d["rule"],
            kind=d["kind"],
            shared=tuple((s["recipient"], s["notification_id"]) for s in d["shared"]),
            withheld=tuple(Withheld(**w) for w in d["withheld"]),
            lawful_basis=d["lawful_basis"],
            consent=d["consent"],
            trigger_event_id=d.get("trigger_event_id"),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Ack:
    """A person at the recipient acknowledged a notification."""

    notification_id: str
    recipient: str
    by: str
    at: dt.datetime
    note: str | None = None  # the action taken, when the person wrote one (the web inbox asks for it)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "notification_id": self.notification_id,
            "recipient": self.recipient,
            "by": self.by,
            "at": iso(self.at),
        }
        if self.note is not None:  # absent otherwise: acks without a note keep their bytes
            d["note"] = self.note
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Ack:
        at = parse_iso(d["at"])
        assert at is not None
        return cls(d["notification_id"], d["recipient"], d["by"], at, d.get("note"))


def decision_record(
    event: Event,
    rule: str,
    kind: str,
    at: dt.datetime,
    shared: tuple[tuple[str, str], ...],
    withheld: tuple[Withheld, ...],
    trigger: Event | None,
) -> Decision:
    """The decision record of routing ``event`` (its id from the event, the kind and the trigger)."""
    trigger_id = trigger.event_id if trigger else ""
    return Decision(
        decision_id=notification_id(event.event_id, "decision", kind, trigger_id),
        event_id=event.event_id,
        event_type=event.event_type,
        at=at,
        rule=rule,
        kind=kind,
        shared=shared,
        withheld=withheld,
        lawful_basis=event.lawful_basis,
        consent=event.consent,
        trigger_event_id=trigger.event_id if trigger else None,
    )
