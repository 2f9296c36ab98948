"""Replay judges a key as the gateway did: against the registry as it stood when the record was received."""

from __future__ import annotations

import dataclasses
import datetime as dt

from broker import topics
from broker.audit.verify import check_event
from broker.client import build_envelope
from broker.envelope.model import encode_envelope
from broker.envelope.testing import make_keys, sample_data
from broker.log.base import Record
from broker.schemas import default_catalogue
from broker.validation import event_of, subject_key

KEYS = make_keys()
REVOKED_AT = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def _record(issued_at: dt.datetime, received_at: dt.datetime) -> Record:
    env = build_envelope(
        "police.domestic_abuse_incident",
        sample_data("police.domestic_abuse_incident"),
        source="POLICE-WYP",
        key=KEYS.signing["POLICE-WYP"],
        occurred_at=issued_at - dt.timedelta(hours=1),
        issued_at=issued_at,
    )
    raw = encode_envelope(env)
    headers = (
        (topics.RECORD_HEADER, topics.EVENT),
        ("event_type", env.event_type.encode()),
        ("event_id", env.event_id.encode()),
        ("source", b"POLICE-WYP"),
        (topics.SOURCE_KIND_HEADER, b"police"),
    )
    return Record(
        topics.INPUT,
        0,
        0,
        subject_key(event_of(raw)).encode(),
        raw,
        headers,
        int(received_at.timestamp() * 1000),
    )


def test_backdated_signature_after_revocation_is_flagged_by_replay() -> None:
    """An event received after its key's revocation is key_revoked on replay, whatever its issued_at says."""
    record = KEYS.records["POLICE-WYP"]
    registry = KEYS.registry.with_records(dataclasses.replace(record, revoked_at=REVOKED_AT))
    catalogue = default_catalogue()

    def check(rec: Record) -> list[str]:
        _, found = check_event(rec, 0, keys=registry, publisher_of=lambda _id: None, catalogue=catalogue)
        return [f.code for f in found]

    before = REVOKED_AT - dt.timedelta(minutes=5)
    assert check(_record(before, before + dt.timedelta(minutes=1))) == []
    assert check(_record(before, REVOKED_AT + dt.timedelta(minutes=1))) == ["key_revoked"]
