"""Materialising views from the log: read from the view's position, derive rows, apply them with the position.

``catch_up`` is the one loop: it reads what a topic partition holds beyond the
position the store has for the view, asks a pure ``Derive`` function for the
rows, and applies rows and the new position in one transaction
(``Store.apply``). Run it again, in this process or another, after a crash or
on a fresh machine: it resumes where the view is, and a stretch applied twice
is refused by position and idempotent by key. ``reset_view`` then ``catch_up``
rebuilds a view from the start of the log.

The derive functions here turn records into rows; where a row needs domain
knowledge (an envelope's content digest, the children a record concerns) the
caller passes the function that knows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from broker import topics
from broker.delivery.records import decode_delivery
from broker.log.base import Log, Record
from broker.log.scan import read_available
from broker.routing.model import Notification
from broker.routing.records import decode_ack, decode_notification
from broker.store.base import Batch, Store
from broker.store.model import AcceptedId, ChronologyRef, InboxAck, InboxNotification, from_ms

__all__ = ["Derive", "accepted", "acks", "catch_up", "chronology", "deliveries", "notifications"]

# Adds to the batch the rows a run of records (one topic partition, in offset order) gives. Pure.
Derive = Callable[[Sequence[Record], Batch], None]


async def catch_up(
    log: Log, store: Store, view: str, topic: str, derive: Derive, *, partition: int = 0, limit: int = 1000
) -> int:
    """Apply everything ``topic``/``partition`` holds beyond the view's position; how many records were read.

    Each read of up to ``limit`` records is one transaction: rows and position together.
    """
    offset = await store.position(view, topic, partition)
    read = 0
    while records := await read_available(log, topic, offset, partition=partition, limit=limit):
        batch = Batch(view)
        derive(records, batch)
        offset = records[-1].offset + 1
        batch.advance(topic, partition, offset)
        await store.apply(batch)
        read += len(records)
    return read


def notifications(children_of: Callable[[Notification], Sequence[str]]) -> Derive:
    """Inbox rows from the notifications topic; ``children_of`` names the children a notification concerns.

    The row keeps the record's value as it is on the log: the notification as the recipient sees it.
    """

    def derive(records: Sequence[Record], batch: Batch) -> None:
        for record in records:
            if record.value is None:
                continue
            note = decode_notification(record)
            batch.notifications.append(InboxNotification.of(note, children=children_of(note), record=record.value))

    return derive


def acks(records: Sequence[Record], batch: Batch) -> None:
    """Acknowledgements from the input topic (its events are skipped; the first ack per notification counts)."""
    for record in records:
        if record.value is None or not topics.is_ack(record):
            continue
        ack = decode_ack(record)
        batch.acks.append(InboxAck(ack.recipient, ack.notification_id, ack.by, ack.at, ack.note))


def deliveries(records: Sequence[Record], batch: Batch) -> None:
    """Delivery attempts and outcomes from the deliveries topic."""
    for record in records:
        delivery = decode_delivery(record)
        if delivery is not None:
            batch.deliveries.append(delivery)


def accepted(identify: Callable[[Record], tuple[str, str, str] | None]) -> Derive:
    """Accepted-id rows from an events topic; ``identify`` gives a record's (event id, content digest, source).

    ``identify`` answers None for a record that is not an event (an acknowledgement on the input topic).
    The first copy of an id in the log is the one that counts: a later copy is left out.
    """

    def derive(records: Sequence[Record], batch: Batch) -> None:
        seen = {row.event_id for row in batch.accepted}
        for record in records:
            if record.value is None or (found := identify(record)) is None:
                continue
            event_id, digest, source = found
            if event_id in seen:
                continue
            seen.add(event_id)
            batch.accepted.append(AcceptedId(event_id, digest, source, record.topic, record.partition, record.offset))

    return derive


def chronology(entries_of: Callable[[Record], Sequence[tuple[str, str]]]) -> Derive:
    """Chronology index entries; ``entries_of`` gives a record's (NHS number, kind) pairs, at the record's time."""

    def derive(records: Sequence[Record], batch: Batch) -> None:
        for record in records:
            if record.value is None:
                continue
            at = from_ms(record.timestamp_ms)
            for nhs_number, kind in entries_of(record):
                batch.chronology.append(
                    ChronologyRef(nhs_number, record.topic, record.partition, record.offset, kind, at)
                )

    return derive
