"""Checks of single records, and the comparison of re-run routing with the record (pure).

``check_event`` runs the very check the intake ran (``validation.verify``) with
the record's log timestamp (its receipt time) as "now", so the key registry is
consulted as it stood then: a key revoked later still verifies what was
signed and received before its ``revoked_at``, and an event received after the
revocation does not, whatever its ``issued_at`` claims. It adds what only
the log can show: the record sits on its publisher's topic, under the subject
key, with headers that match the envelope.

``matches`` says whether a notification or decision record holds exactly what
the policy gives (``replay.Replayer`` compares them by id).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from broker import topics, wire
from broker.audit.findings import Finding
from broker.envelope.keys import KeyRegistry
from broker.errors import Refusal, SchemaInvalid
from broker.log.base import Record
from broker.model import Event
from broker.routing.model import Decision, Notification, iso
from broker.schemas import Catalogue
from broker.validation import event_of, subject_key, verify
from broker.wire import encode_json

__all__ = ["Recorded", "canonical", "check_event", "matches", "output_bytes", "parse_recorded", "record_time"]

Output = Notification | Decision


def record_time(record: Record) -> dt.datetime:
    """A record's log timestamp as an aware time."""
    return dt.datetime.fromtimestamp(record.timestamp_ms / 1000, dt.UTC)


def _finding(code: str, message: str, record: Record, event_id: str | None, order: int) -> Finding:
    return Finding(code, message, record.topic, record.partition, record.offset, event_id, order=order)


def check_event(
    record: Record,
    order: int,
    *,
    keys: KeyRegistry,
    publisher_of: Callable[[str], str | None],
    catalogue: Catalogue,
) -> tuple[Event | None, list[Finding]]:
    """Verify one events record as the intake did when it accepted it; the decoded event (or None) and findings."""
    assert record.value is not None
    header_id = record.header("event_id")
    claimed = header_id.decode(errors="replace") if header_id else None
    try:
        accepted = verify(
            record.value, keys=keys, now=record_time(record), publisher_of=publisher_of, catalogue=catalogue
        )
    except Refusal as exc:
        event_id = exc.evidence.get("event_id") or claimed
        finding = _finding(
            exc.code, f"does not verify as it stood when it was accepted: {exc.message}", record, event_id, order
        )
        try:
            return event_of(record.value, catalogue=catalogue), [finding]
        except SchemaInvalid:
            return None, [finding]
    env, event = accepted.envelope, accepted.event
    found: list[Finding] = []
    expected = {
        "event_id": env.event_id,
        "event_type": env.event_type,
        "source": env.source,
        topics.SOURCE_KIND_HEADER: accepted.kind,
    }
    bad = [name for name, value in expected.items() if record.header(name) != value.encode()]
    if bad:
        found.append(
            _finding(
                "header_mismatch", f"header(s) {', '.join(bad)} disagree with the envelope", record, env.event_id, order
            )
        )
    if record.key != subject_key(event).encode():
        found.append(_finding("key_mismatch", "the record key is not the event's subject", record, env.event_id, order))
    return event, found


class Recorded:
    """One notification or decision record as the log holds it; its JSON body is parsed only when needed.

    The id comes from the record's id header (the body's when there is none), the time from the record's
    timestamp (the router stamps each output with its ``at``). A body that disagrees with either is caught
    when it is compared: its bytes then differ from what the policy gives.
    """

    __slots__ = ("_body", "_id_field", "_parsed", "ident", "record")

    def __init__(self, record: Record, id_field: str) -> None:
        self.record = record
        self._id_field = id_field
        self._parsed = False
        self._body: Mapping[str, Any] | None = None
        header = record.header(id_field)
        self.ident: str | None = header.decode(errors="replace") if header else None
        if self.ident is None:
            body = self.body
            self.ident = str(body[id_field]) if body is not None and id_field in body else None

    @property
    def at(self) -> dt.datetime:
        """The record's timestamp (the output's ``at``)."""
        return record_time(self.record)

    @property
    def body(self) -> Mapping[str, Any] | None:
        """The decoded JSON object, or None when the value does not decode."""
        if not self._parsed:
            self._parsed = True
            try:
                value = wire.decode_json(self.record.value or b"")
                self._body = value if isinstance(value, dict) and self._id_field in value and "at" in value else None
            except ValueError:
                self._body = None
        return self._body


def parse_recorded(records: Iterable[Record], id_field: str) -> list[Recorded]:
    """Notification (``id_field="notification_id"``) or decision records, tolerating damage."""
    return [Recorded(record, id_field) for record in records]


def canonical(item: Output) -> Mapping[str, Any]:
    """What the router writes for an output, as a JSON object."""
    value = json.loads(encode_json(item.to_dict()))
    assert isinstance(value, dict)
    return value


_NOTIFICATION_FIELDS = tuple(f.name for f in dataclasses.fields(Notification))
_iso = functools.lru_cache(maxsize=4096)(iso)  # the outputs of one input share their times


def output_bytes(item: Output) -> bytes:
    """The bytes the router writes for an output (``encode_json(item.to_dict())``), made faster.

    ``orjson`` with sorted keys writes the same bytes as ``encode_json`` for what the router puts in an
    output (checked on every output of the benchmark's city, and by a test). It is a fast path only:
    when these differ from the record, ``canonical`` decides, so an encoding difference can cost time
    but never a wrong verdict.
    """
    try:
        if isinstance(item, Notification):
            d = {name: getattr(item, name) for name in _NOTIFICATION_FIELDS}
            d.update(at=_iso(item.at), ack_by=_iso(item.ack_by))
        else:
            d = item.to_dict()
        return orjson.dumps(d, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError: a value only the json module writes
        return encode_json(item.to_dict())


def matches(item: Output, recorded: Recorded) -> bool:
    """True when a record holds exactly what the policy gives for ``item``."""
    if recorded.record.value == output_bytes(item):
        return True
    return canonical(item) == recorded.body
