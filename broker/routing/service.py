"""The router service: reads accepted events and acks from the log, writes notifications and decisions.

It keeps no state that the log cannot rebuild. On start it reads the ids of
everything it has already written, then replays every input from the
beginning through the (deterministic) routing state; what it would write
again is recognised by id and skipped. So a router killed at any point and
restarted loses nothing and duplicates nothing. Offsets are committed after
the outputs of a batch are durable.

Inputs from several topics are merged in one order (``order.py``: record
timestamp, the writer's sequence number, topic, offset); a batch is cut at the
earliest last-timestamp of any input that may have more, so the merge never
runs ahead of a lagging topic.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable

from broker import topics
from broker.errors import SchemaInvalid
from broker.log.base import Log, Record
from broker.log.scan import scan
from broker.logging import get_logger
from broker.model import Event
from broker.routing.model import Decision, Notification
from broker.routing.order import INPUT_TOPICS, merge_key
from broker.routing.records import decode_ack, encode_output
from broker.routing.state import Output, RoutingState
from broker.validation import event_of

__all__ = ["GROUP", "RouterService"]

GROUP = "jigsaw-router"
_log = get_logger("jigsaw.router")


def _ts(record: Record) -> dt.datetime:
    return dt.datetime.fromtimestamp(record.timestamp_ms / 1000, dt.UTC)


class RouterService:
    """Routes what the log holds; call ``start`` once, then ``step`` as often as you like."""

    def __init__(
        self,
        log: Log,
        *,
        decode_event: Callable[[bytes], Event] = event_of,
        batch: int = 1000,
        group: str = GROUP,
    ) -> None:
        self.log = log
        self.state = RoutingState()
        self._decode = decode_event
        self._batch = batch
        self._group = group
        self._inputs: list[tuple[str, int]] = []
        self._positions: dict[tuple[str, int], int] = {}
        self._written: set[str] = set()
        self.routed = 0

    async def start(self) -> None:
        """Create topics, learn what was already written; the next ``step`` replays the log."""
        for topic in (*topics.all_event_topics(), topics.ACKS, topics.NOTIFICATIONS, topics.DECISIONS):
            await self.log.create_topic(topic)
        self._inputs = []
        for topic in INPUT_TOPICS:
            for partition in range(max(1, await self.log.partitions(topic))):
                self._inputs.append((topic, partition))
                self._positions[(topic, partition)] = 0
        self._written = set()
        for topic in (topics.NOTIFICATIONS, topics.DECISIONS):
            async for records in scan(self.log, topic):
                for record in records:
                    ident = record.header("notification_id") or record.header("decision_id")
                    if ident:
                        self._written.add(ident.decode())

    async def step(self, *, now: dt.datetime | None = None, wait: float = 0.0) -> list[Output]:
        """Route one merged batch of whatever is waiting; with ``now``, raise escalations due by then.

        Returns the outputs newly written (already-written ones, recognised by id, are skipped).
        """
        fetched: dict[tuple[str, int], list[Record]] = {}
        for i, tp in enumerate(self._inputs):
            fetched[tp] = await self.log.read(
                tp[0], self._positions[tp], partition=tp[1], limit=self._batch, timeout=wait if i == 0 else 0.0
            )
        full = [recs[-1].timestamp_ms for recs in fetched.values() if len(recs) >= self._batch]
        horizon = min(full) if full else None
        merged = sorted(
            ((r, tp) for tp, recs in fetched.items() for r in recs if horizon is None or r.timestamp_ms <= horizon),
            key=lambda rt: merge_key(rt[0]),
        )
        outputs: list[Output] = []
        for record, tp in merged:
            outputs += self._apply(record, tp)
            self._positions[tp] = record.offset + 1
        if now is not None:
            outputs += self.state.advance(now)
        fresh = await self._write(outputs)
        for tp in {tp for _, tp in merged}:
            await self.log.commit(self._group, tp[0], self._positions[tp], partition=tp[1])
        return fresh

    async def run_until_idle(self, *, now: dt.datetime | None = None) -> list[Output]:
        """Step until every input is read to its end."""
        out: list[Output] = []
        while True:
            before = dict(self._positions)
            out += await self.step()
            if self._positions == before:
                break
        if now is not None:
            out += await self.step(now=now)
        return out

    def _apply(self, record: Record, tp: tuple[str, int]) -> list[Output]:
        if record.value is None:
            return []
        if tp[0] == topics.ACKS:
            return self.state.apply_ack(decode_ack(record))
        try:
            event = self._decode(record.value)
        except SchemaInvalid as exc:  # the gateway accepted it, so this is a bug or a changed schema
            _log.error("undecodable_event", topic=tp[0], offset=record.offset, error=exc.message)
            return []
        self.routed += 1
        return self.state.apply_event(event, _ts(record))

    async def _write(self, outputs: list[Output]) -> list[Output]:
        fresh: list[Output] = []
        notes: list[Output] = []
        decisions: list[Output] = []
        for item in outputs:
            ident = item.notification_id if isinstance(item, Notification) else item.decision_id
            if ident in self._written:
                continue
            self._written.add(ident)
            fresh.append(item)
            (notes if isinstance(item, Notification) else decisions).append(item)
        for topic, items in ((topics.NOTIFICATIONS, notes), (topics.DECISIONS, decisions)):
            if not items:
                continue
            for at, group in itertools.groupby(items, key=_at):
                await self.log.append_many(
                    topic, [encode_output(i) for i in group], timestamp_ms=int(at.timestamp() * 1000)
                )
        for item in notes:  # at debug: one line per recipient is too many for a busy partnership
            assert isinstance(item, Notification)
            _log.debug(
                "notified",
                notification_id=item.notification_id,
                event_id=item.event_id,
                recipient=item.recipient,
                kind=item.kind,
                priority=item.priority,
            )
        if fresh:
            _log.info("routed", events=self.routed, notifications=len(notes), decisions=len(decisions))
        return fresh


def _at(item: Notification | Decision) -> dt.datetime:
    return item.at
