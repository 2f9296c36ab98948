"""Checks of single records, and the comparison of re-run routing with the record (pure).

``check_event`` runs the very check the intake ran (``validation.verify``) with
the record's log timestamp (its receipt time) as "now", so the key registry is
consulted as it stood then: a key revoked later still verifies what was
signed and received before its ``revoked_at``, and an event received after the
revocation does not, whatever its ``issued_at`` claims. It adds what only
the log can show: the record sits on its publisher's topic, under the subject
key, with headers that match the envelope.

``compare_outputs`` diffs what the policy gives against the notifications or
decision records on the log: missing, unexpected and altered ones (by id), and
records that do not decode or whose id header disagrees with their body.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from typing import Any

from broker import topics
from broker.audit.findings import Finding
from broker.audit.window import Window
from broker.envelope.keys import KeyRegistry
from broker.errors import Refusal, SchemaInvalid
from broker.log.base import Record
from broker.model import Event
from broker.routing.model import Decision, Notification, iso
from broker.schemas import Catalogue
from broker.validation import event_of, subject_key, verify
from broker.wire import encode_json

__all__ = ["Recorded", "check_event", "compare_outputs", "parse_recorded", "record_time"]

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

    __slots__ = ("_body", "_id_field", "_parsed", "at", "ident", "record")

    def __init__(self, record: Record, id_field: str) -> None:
        self.record = record
        self._id_field = id_field
        self._parsed = False
        self._body: Mapping[str, Any] | None = None
        self.at = record_time(record)
        header = record.header(id_field)
        self.ident: str | None = header.decode(errors="replace") if header else None
        if self.ident is None:
            body = self.body
            self.ident = str(body[id_field]) if body is not None and id_field in body else None

    @property
    def body(self) -> Mapping[str, Any] | None:
        """The decoded JSON object, or None when the value does not decode."""
        if not self._parsed:
            self._parsed = True
            try:
                value = json.loads(self.record.value or b"")
                self._body = value if isinstance(value, dict) and self._id_field in value and "at" in value else None
            except ValueError:
                self._body = None
        return self._body


def parse_recorded(records: Iterable[Record], id_field: str) -> list[Recorded]:
    """Notification (``id_field="notification_id"``) or decision records, tolerating damage."""
    return [Recorded(record, id_field) for record in records]


def _canonical(item: Output) -> Mapping[str, Any]:
    value = json.loads(encode_json(item.to_dict()))
    assert isinstance(value, dict)
    return value


_NOTIFICATION_FIELDS = tuple(f.name for f in dataclasses.fields(Notification))


def _fast_bytes(item: Output) -> bytes:
    """The bytes the router writes for an output (``encode_json(item.to_dict())``) without ``asdict``'s deep copy.

    A fast path only: when these differ from the record, ``_canonical`` decides.
    """
    if not isinstance(item, Notification):
        return encode_json(item.to_dict())
    d = {name: getattr(item, name) for name in _NOTIFICATION_FIELDS}
    d.update(at=iso(item.at), ack_by=iso(item.ack_by), flags=list(item.flags), also_notified=list(item.also_notified))
    return encode_json(d)


def matches(item: Output, recorded: Recorded) -> bool:
    """True when a record holds exactly what the policy gives for ``item``."""
    if recorded.record.value == _fast_bytes(item):
        return True
    return _canonical(item) == recorded.body


def _gaps(recorded: Sequence[Recorded]) -> list[Finding]:
    found = []
    expected: dict[int, int] = {}
    for r in recorded:
        rec = r.record
        nxt = expected.get(rec.partition, 0)
        if rec.offset > nxt:
            found.append(
                Finding(
                    "record_missing",
                    f"offsets {nxt} to {rec.offset - 1} are missing: records removed",
                    rec.topic,
                    rec.partition,
                    nxt,
                )
            )
        expected[rec.partition] = rec.offset + 1
    return found


def compare_outputs(
    produced: Mapping[str, tuple[Output, int]],
    recorded: Sequence[Recorded],
    *,
    what: str,
    window: Window,
    events: Mapping[str, tuple[Record, int]],
    place: Callable[[dt.datetime], int],
    optional: Set[str] = frozenset(),
) -> tuple[list[Finding], int]:
    """Compare what the policy gives (id -> (output, sort rank)) with the log; findings and how many compared.

    Args:
        what: ``notification`` or ``decision`` (the id field is ``<what>_id``).
        events: event id -> (its record, its sort rank), to name and place the event an output is about.
        place: where in the merged inputs a time falls (to sort outputs about events the log no longer holds).
        optional: ids the router may not have written yet (it had not committed past their inputs): not missing.
    """
    found = _gaps(recorded)
    on_log: dict[str, Recorded] = {}
    for r in recorded:
        rec = r.record
        if r.ident is None:
            found.append(
                Finding(
                    f"{what}_undecodable", f"the {what} record does not decode", rec.topic, rec.partition, rec.offset
                )
            )
            continue
        first = on_log.get(r.ident)
        if first is not None:
            if first.record.value != rec.value and first.body != r.body:
                event = r.body.get("event_id") if r.body is not None else None
                found.append(
                    Finding(
                        f"{what}_conflict",
                        f"{what} {r.ident} is on the log twice with different content",
                        rec.topic,
                        rec.partition,
                        rec.offset,
                        str(event) if event else None,
                    )
                )
            continue
        on_log[r.ident] = r
    compared = 0
    for ident, (item, index) in produced.items():
        if not window.covers_time(item.at):
            continue
        compared += 1
        about = events.get(item.event_id)
        order = about[1] if about else index
        held = on_log.get(ident)
        who = f" to {item.recipient}" if isinstance(item, Notification) else ""
        if held is None and ident in optional:
            compared -= 1
            continue
        if held is None:
            where = about[0] if about else None
            found.append(
                Finding(
                    f"missing_{what}",
                    f"the policy gives a {item.kind} {what}{who} ({what} {ident}, rule "
                    f"{item.rule}) that is not on the log",
                    where.topic if where else None,
                    where.partition if where else None,
                    where.offset if where else None,
                    item.event_id,
                    order=order,
                )
            )
            continue
        if not matches(item, held):
            expected, body = _canonical(item), held.body
            if body is None:
                how = "does not decode"
            else:
                fields = sorted(k for k in set(expected) | set(body) if expected.get(k) != body.get(k))
                how = f"differs from what the policy gives in: {', '.join(fields)}"
            rec = held.record
            found.append(
                Finding(
                    f"altered_{what}",
                    f"{what} {ident}{who} {how}",
                    rec.topic,
                    rec.partition,
                    rec.offset,
                    item.event_id,
                    order=order,
                )
            )
    for ident, held in on_log.items():
        if ident in produced or not window.covers_time(held.at):
            continue
        compared += 1
        body = held.body or {}
        event_id = str(body.get("event_id"))
        about = events.get(event_id)
        rec = held.record
        who = f" to {body.get('recipient')}" if what == "notification" else ""
        found.append(
            Finding(
                f"unexpected_{what}",
                f"{what} {ident}{who} is on the log but the policy does not give it"
                + ("" if about else " (its event is not on the log)"),
                rec.topic,
                rec.partition,
                rec.offset,
                event_id,
                order=about[1] if about else place(held.at),
            )
        )
    return found, compared
