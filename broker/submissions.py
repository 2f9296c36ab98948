"""What one submission comes to, and the pieces of it every intake path shares.

``Outcome`` (accepted, duplicate, pending or refused, and the JSON a client
receives), the content digest that decides whether a re-sent event id is the
same event, the headers of an event on the input topic, and the refusals a
re-sent id can meet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import Any

from broker import topics, wire
from broker.envelope.model import Envelope, to_millis
from broker.envelope.verifiers import Presigned
from broker.errors import DuplicateEvent, EventPending, Forbidden, Refusal
from broker.log.base import Headers, Position
from broker.model import Event
from broker.routing.model import iso
from broker.store import Claim
from broker.validation import Accepted, verify

__all__ = [
    "Outcome",
    "Pending",
    "check",
    "conflict",
    "content_digest",
    "event_headers",
    "lost_claim",
    "pending",
    "refusal_record",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one submission."""

    status: str  # "accepted", "duplicate" (accepted before: same content), "pending" (503) or "refused"
    event_id: str | None
    position: Position | None = None
    error: Refusal | None = None
    event: Event | None = None

    @property
    def http_status(self) -> int:
        if self.error is not None:
            return self.error.http_status
        return 202 if self.status == "accepted" else 200

    def body(self) -> dict[str, object]:
        """The JSON a client receives for this submission."""
        if self.error is not None:
            return {**self.error.to_dict(), **({"event_id": self.event_id} if self.event_id else {})}
        assert self.position is not None
        return {
            "event_id": self.event_id,
            "status": self.status,
            "topic": self.position.topic,
            "partition": self.position.partition,
            "offset": self.position.offset,
        }


def content_digest(env: Envelope) -> str:
    """What makes two submissions the same event: every field but when and with which key it was signed.

    An agency that re-sends an event it sent before (an adapter re-running an export file) signs it
    again with a new ``issued_at``; that is the same event (200), not a conflicting one (409).
    """
    fields = (env.event_id, env.event_type, env.schema_fingerprint, env.source, to_millis(env.occurred_at))
    parts = [
        part if isinstance(part, bytes) else str(part).encode() for part in (*fields, env.lawful_basis, env.consent)
    ]
    parts.append(env.payload)
    # Each part with its length before it (8 bytes, big-endian), hashed in one call.
    return hashlib.sha256(b"".join(len(raw).to_bytes(8, "big") + raw for raw in parts)).hexdigest()


@dataclasses.dataclass(frozen=True, slots=True)
class Pending:
    """An event that passed every check and waits for its claim and append."""

    raw: bytes
    accepted: Accepted
    digest: str


def event_headers(env: Envelope, kind: str) -> Headers:
    """Jigsaw's own headers of an accepted event on the input topic (the router and auditors filter on them),
    then the CloudEvents Kafka binding's (``wire``)."""
    return (
        (topics.RECORD_HEADER, topics.EVENT),
        ("event_type", env.event_type.encode()),
        ("event_id", env.event_id.encode()),
        ("source", env.source.encode()),
        (topics.SOURCE_KIND_HEADER, kind.encode()),
        *wire.event_headers(env),
    )


def conflict(event_id: str) -> DuplicateEvent:
    """The refusal of an accepted id re-sent with other content (409)."""
    return DuplicateEvent(
        f"event id {event_id} was already accepted with different content; "
        "give a corrected event a new id (and retract the old one if it was wrong)",
        event_id=event_id,
    )


def pending(event_id: str) -> EventPending:
    """The answer while another gateway holds the id and has not said where it landed (503, retriable)."""
    return EventPending(
        f"another gateway is accepting event id {event_id} right now; send the same bytes again in a moment",
        event_id=event_id,
        retry_after=1,
    )


def lost_claim(claim: Claim, digest: str, accepted: Accepted) -> Outcome:
    """A lost claim's outcome: the original's position for the same content (200).

    Raises:
        EventPending: the winner has no position yet (503, retriable).
        DuplicateEvent: the id stands for other content (409).
    """
    env = accepted.envelope
    if claim.row.position is None:
        raise pending(env.event_id)
    if claim.row.digest != digest:
        raise conflict(env.event_id)
    return Outcome("duplicate", env.event_id, claim.row.position, event=accepted.event)


def refusal_record(
    error: Refusal, *, caller: str | None, body: bytes, now: dt.datetime, client: str | None
) -> dict[str, Any]:
    """What ``jigsaw.rejected`` keeps of a refusal: what, from whom (and which address), why; the body only
    as its size and SHA-256, never its content."""
    return {
        "event_id": error.evidence.get("event_id"),
        "source": error.evidence.get("source"),
        "event_type": error.evidence.get("event_type"),
        "caller": caller,
        "error": error.code,
        "message": error.message,
        "received_at": iso(now),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body_bytes": len(body),
        **({"client": client} if client else {}),
    }


def check(
    body: bytes | Envelope, *, caller: str | None, presigned: Presigned | None = None, **verify_args: Any
) -> tuple[Accepted, str]:
    """Every check of one submission but the id index: the verified envelope and its content digest.

    ``verify_args`` go to ``validation.verify``. ``presigned``: the envelope already decoded, with a
    signature worker's answer (``broker.envelope.verifiers``). ``caller``: the authenticated organisation,
    which must be the envelope's source (None: trusted to be, as the simulator is).
    """
    checked = (presigned.public_key, presigned.valid) if presigned and presigned.public_key else None
    accepted = verify(presigned.envelope if presigned is not None else body, checked=checked, **verify_args)
    env = accepted.envelope
    if caller is not None and env.source != caller:
        raise Forbidden(
            f"you are signed in as {caller} but the envelope's source is {env.source}: "
            "an organisation may only submit its own events",
            event_id=env.event_id,
        )
    return accepted, content_digest(env)
