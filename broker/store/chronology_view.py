"""The chronology index: which records of the log concern a child, so a chronology reads only those.

The index (``Store.chronology``) maps keys to log positions. What a child's
chronology takes in (``broker.audit.chronology.build_chronology``) is found by
following keys, so the index holds one key per way in:

- an event, under ``id:ID`` (its own id), the NHS number (bare) and
  ``local:ID`` of every person it names, ``booking:REF`` for a top-level
  ``booking_ref``, and a retraction under ``event:ID`` of the event it retracts;
- a notification under ``event:ID`` of its event and ``label:TEXT`` for every
  ``(TEXT)`` in its reason (a notification that names the child by label);
- a decision under ``event:ID``; an acknowledgement under ``notification:ID``.

``child_records`` then reads only the records those keys lead to: the child's
keys to a fixed point (a local id sent with the NHS number, an identity
match), the births' bookings, the notifications naming the child, and for
every event included its retractions, notifications and decisions, and their
acknowledgements. ``ChronologyFollower`` keeps the index up with the log.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from broker import topics, wire
from broker.errors import JigsawError
from broker.log.base import Log, Record
from broker.model import Event
from broker.nhs import normalise_nhs_number
from broker.routing.model import Ack, Decision, Notification
from broker.routing.records import decode_ack
from broker.store.base import Store
from broker.store.follow import ViewFollower
from broker.store.materialise import chronology
from broker.validation import event_of

__all__ = ["ChildRecords", "ChronologyFollower", "child_records", "decision_keys", "input_keys", "notification_keys"]

_LABEL = re.compile(r"\(([^()]*)\)")
_DAMAGED = (JigsawError, ValueError, KeyError, TypeError)  # a damaged record: jigsaw replay names it


def _refs(value: Any) -> Iterator[Mapping[str, Any]]:
    """Every PersonRef (a mapping with ``nhs_number`` and ``local_id``) anywhere in an event's data."""
    if isinstance(value, dict) or isinstance(value, Mapping):  # decoded data: dicts (the ABC check is slower)
        if "nhs_number" in value and "local_id" in value:
            yield value
            return
        for v in value.values():
            yield from _refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from _refs(v)


def _ref_keys(ref: Mapping[str, Any]) -> set[str]:
    keys = set()
    if ref.get("nhs_number"):
        keys.add(normalise_nhs_number(str(ref["nhs_number"])))
    if ref.get("local_id"):
        keys.add("local:" + str(ref["local_id"]))
    return keys


def _event_keys(event: Event) -> list[str]:
    keys = {"id:" + event.event_id}
    for ref in _refs(event.data):
        keys |= _ref_keys(ref)
    if event.data.get("booking_ref"):
        keys.add("booking:" + str(event.data["booking_ref"]))
    if event.event_type == "record.retracted":
        keys.add("event:" + str(event.data.get("original_event_id")))
    return sorted(keys)


def input_keys(record: Record, decode: Callable[[bytes], Event] = event_of) -> list[tuple[str, str]]:
    """(key, kind) of an input record: an event's people, booking and retracted event; an ack's notification.

    ``decode`` turns an event's bytes into the ``Event`` (``validation.event_of``, or a memory of it).
    """
    try:
        if topics.is_ack(record):
            return [("notification:" + decode_ack(record).notification_id, "acknowledgement")]
        if topics.is_event(record) and record.value is not None:
            return [(k, "event") for k in _event_keys(decode(record.value))]
    except _DAMAGED:
        pass
    return []


def notification_keys(record: Record) -> list[tuple[str, str]]:
    """(key, kind) of a notification: its event, and each ``(label)`` its reason names."""
    try:
        note = Notification.from_dict(wire.decode_json(record.value or b""))
    except _DAMAGED:
        return []
    labels = sorted(set(_LABEL.findall(note.reason)))
    return [("event:" + note.event_id, "notification"), *(("label:" + label, "notification") for label in labels)]


def decision_keys(record: Record) -> list[tuple[str, str]]:
    """(key, kind) of a decision: its event."""
    try:
        return [("event:" + str(wire.decode_json(record.value or b"")["event_id"]), "decision")]
    except _DAMAGED:
        return []


class ChronologyFollower(ViewFollower):
    """Keeps the store's chronology index up to date with the input, notifications and decisions topics."""

    def __init__(
        self,
        log: Log,
        store: Store,
        *,
        refresh_timeout: float = 2.0,
        interval: float = 1.0,
        decode: Callable[[bytes], Event] = event_of,
    ) -> None:
        sources = (
            (topics.INPUT, chronology(lambda record: input_keys(record, decode))),
            (topics.NOTIFICATIONS, chronology(notification_keys)),
            (topics.DECISIONS, chronology(decision_keys)),
        )
        super().__init__(log, store, "chronology", sources, refresh_timeout=refresh_timeout, interval=interval)


@dataclasses.dataclass
class ChildRecords:
    """The records a child's chronology is built from, each list in log order."""

    events: list[tuple[dt.datetime, Event]]
    notifications: list[Notification]
    decisions: list[Decision]
    acks: list[Ack]


Where = tuple[str, int, int]


class _Reader:
    """Reads records by position once each, and the index's positions by key once each."""

    def __init__(self, log: Log, store: Store) -> None:
        self.log, self.store = log, store
        self.records: dict[Where, Record] = {}
        self._keys: set[str] = set()

    async def key(self, key: str) -> list[Record]:
        """The records filed under ``key`` (none if it was read before)."""
        if key in self._keys:
            return []
        self._keys.add(key)
        out: list[Record] = []
        after: str | None = None
        while True:
            page = await self.store.chronology(key, limit=10_000, after=after)
            for ref in page.items:
                out.append(await self.at((ref.topic, ref.partition, ref.offset)))
            if page.next is None:
                return out
            after = page.next

    async def at(self, where: Where) -> Record:
        if where not in self.records:
            topic, partition, offset = where
            [self.records[where]] = await self.log.read(topic, offset, partition=partition, limit=1)
        return self.records[where]


def _grow(keys: set[str], events: Sequence[Event]) -> set[str]:
    """The keys, with those of every ref that shares one and both sides of an identity match that does."""
    grown = set(keys)
    for event in events:
        for ref in _refs(event.data):
            if _ref_keys(ref) & grown:
                grown |= _ref_keys(ref)
        if event.event_type == "identity.same_person":
            a, b = _ref_keys(event.data.get("a") or {}), _ref_keys(event.data.get("b") or {})
            if (a | b) & grown:
                grown |= a | b
    return grown


def _decoded_event(record: Record) -> Event | None:
    if record.topic != topics.INPUT or record.value is None or not topics.is_event(record):
        return None
    try:
        return event_of(record.value)
    except _DAMAGED:
        return None


async def child_records(log: Log, store: Store, nhs_number: str) -> ChildRecords:
    """Read from the log only what the index files under a child's keys (see the module's docstring)."""
    reader = _Reader(log, store)
    events: dict[str, tuple[Record, Event]] = {}

    async def take(records: Sequence[Record]) -> list[Event]:
        found = []
        for record in records:
            event = _decoded_event(record)
            if event is not None and event.event_id not in events:
                events[event.event_id] = (record, event)
                found.append(event)
        return found

    # The child's keys to a fixed point: every event naming a key brings the keys of the refs that name it.
    child = {normalise_nhs_number(nhs_number)}
    frontier = set(child)
    while frontier:
        for key in sorted(frontier):
            await take(await reader.key(key))
        grown = _grow(child, [e for _, e in events.values()])
        frontier, child = grown - child, grown
    for _, event in list(events.values()):  # births bring the other events of their booking
        if event.event_type == "midwifery.birth_notified" and event.data.get("booking_ref"):
            await take(await reader.key("booking:" + str(event.data["booking_ref"])))
    labels = {k.split(":", 1)[1] if k.startswith("local:") else k for k in child}
    mentioned = [r for label in sorted(labels) for r in await reader.key("label:" + label)]
    for event_id in sorted({n.event_id for n in _notes(mentioned)} - set(events)):
        await take(await reader.key("id:" + event_id))
    # Each event's retractions, notifications and decisions (a retraction's own, too), then the acks.
    pending = sorted(events)
    while pending:
        found = await take(await reader.key("event:" + pending.pop()))
        pending += [e.event_id for e in found]
    for event_id in sorted(events):
        await reader.key("event:" + event_id)
    notes = _notes(r for w, r in reader.records.items() if w[0] == topics.NOTIFICATIONS)
    for note in notes:
        await reader.key("notification:" + note.notification_id)
    return _assemble(reader.records, events)


def _notes(records: Iterator[Record] | Sequence[Record]) -> list[Notification]:
    out = []
    for record in records:
        try:
            out.append(Notification.from_dict(wire.decode_json(record.value or b"")))
        except _DAMAGED:
            continue
    return out


def _assemble(records: Mapping[Where, Record], events: Mapping[str, tuple[Record, Event]]) -> ChildRecords:
    """The lists ``build_chronology`` takes, each in the order a full read of the log gives."""
    ordered = sorted(records.items())
    by_event = sorted(events.values(), key=lambda re_: (re_[0].partition, re_[0].offset))
    acks: list[Ack] = []
    decisions: list[Decision] = []
    for (topic, _, _), record in ordered:
        try:
            if topic == topics.INPUT and topics.is_ack(record):
                acks.append(decode_ack(record))
            elif topic == topics.DECISIONS and record.value is not None:
                decisions.append(Decision.from_dict(wire.decode_json(record.value)))
        except _DAMAGED:
            continue
    return ChildRecords(
        events=[(dt.datetime.fromtimestamp(r.timestamp_ms / 1000, dt.UTC), e) for r, e in by_event],
        notifications=_notes([r for (t, _, _), r in ordered if t == topics.NOTIFICATIONS]),
        decisions=decisions,
        acks=acks,
    )
