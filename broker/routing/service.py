"""The router service: reads the input topic in offset order, writes notifications and decisions.

Everything that changes routing (accepted events, acknowledgements) is on one
single-partition topic (``topics.INPUT``) whose order Kafka defines; the
router applies it record by record in offset order, so nothing waits on a
clock and the auditor's replay applies exactly the same order. The router is
also the sealer (``audit/sealer.py``): it adds each input record to the Merkle tree after the
append and publishes signed tree heads.

It keeps no state that the log cannot rebuild. On start it replays every
input from the beginning (or from a snapshot, ``restore``) through the
(deterministic) routing state; before its first write it reads the ids of what
it may have written already, and what it would write again is recognised by id
and skipped. So a router killed at any point and restarted loses nothing and
duplicates nothing. From a snapshot only the outputs written since it was
taken are read: the state it holds already reflects everything written before,
except escalations another router raised by its own clock before this state's
clock got there, which the snapshot lists (``escalations``). The outputs of a
batch are written through ``log.writer``: on Kafka in one transaction under the
router's transactional id, so a router that lost its place to a standby (a
zombie) is fenced and what it began is never seen by ``read_committed`` readers.

The input offset the outputs reach goes in the same transaction, but at most
every ``COMMIT_EVERY_S`` (and at once by ``flush``: when the router goes idle,
before a snapshot, when it stops). On Kafka committing it costs every
transaction two more round trips and commit markers on another partition, and
nothing depends on it being fresh: a router that starts rebuilds from a
snapshot or the first record and recognises what was written by id. It says
where the router has reached, for the auditor's replay (inputs after it are
"not yet routed") and for operators' consumer-lag tools, and it bounds which
snapshots a router trusts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from collections.abc import Callable
from typing import Any

from broker import topics
from broker.audit.seal import Seal, encode_seal
from broker.audit.sealer import Sealer
from broker.errors import SchemaInvalid
from broker.log.base import Headers, Log, Record
from broker.log.scan import GLANCE_S, read_new
from broker.logging import get_logger
from broker.model import Event
from broker.routing.model import Decision, Notification
from broker.routing.records import decode_ack, encode_output
from broker.routing.state import Output, RoutingState
from broker.validation import event_of

__all__ = ["GROUP", "RouterService"]

GROUP = "jigsaw-router"
_log = get_logger("jigsaw.router")
COMMIT_EVERY_S = 0.5  # the input offset is committed with the outputs at most this often (``flush``: at once)


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
        sealer: Sealer | None = None,
        notification_partitions: int = 1,
        writer: Any = None,
        metrics: Any = None,
        linger: float = 0.0,
        commit_every: float = COMMIT_EVERY_S,
    ) -> None:
        """Args:
        log: the log.
        decode_event: Avro bytes to an event (the catalogue's decoder).
        batch: input records read per step at most.
        group: the consumer group the router commits its input offset under.
        sealer: builds the Merkle tree over the input as it is routed and publishes heads; None seals nothing.
        notification_partitions: partitions the notifications topic is created with (dispatchers share them).
        writer: where outputs and the input offset are written together; default ``log.writer(group)``.
        metrics: the app's ``broker.observability.Metrics`` (events routed, notifications, escalations), or None.
        linger: seconds a step that found input waits for more before routing it: under load, fewer and larger
            writes (on Kafka, fewer transactions, each with its round trips and commit markers).
        commit_every: seconds between commits of the input offset with a batch's outputs (0: every batch).
        """
        self.log = log
        self._linger = linger
        self.state = RoutingState()
        self.sealer = sealer
        self._notification_partitions = notification_partitions
        self._writer = writer  # made on the first write when not given
        self._metrics = metrics
        self._decode = decode_event
        self._batch = batch
        self._group = group
        self.position = 0  # the next input offset to apply
        self._commit_every = commit_every
        self._committed = 0  # the input offset this process last committed (0: none)
        self._commit_due = 0.0  # monotonic time from which a batch commits the input offset again
        self.at_ms = 0  # the log timestamp of the last input record applied
        self._written: set[str] | None = None  # ids already on the output topics; read before the first write
        self._since: dict[str, list[int]] = {}  # where that read starts, per output topic and partition
        self._early: set[str] = set()  # escalations written that this state has not raised (yet)
        self.routed = 0
        self._directory_at = -1  # the last partnership event applied (``topics.DIRECTORY_AT_HEADER``)
        self.caught_up = False  # the last step read the input to its end

    async def start(self) -> None:
        """Create topics, learn what was already written; the next ``step`` replays the log."""
        await self.log.create_topic(topics.NOTIFICATIONS, partitions=self._notification_partitions)
        for topic in (topics.INPUT, topics.DECISIONS):
            await self.log.create_topic(topic)
        if self.sealer is not None:
            await self.sealer.start()
        self.position = self._committed = 0
        self._written, self._since, self._early = None, {}, set()

    async def step(self, *, now: dt.datetime | None = None, wait: float = 0.0) -> list[Output]:
        """Route the next batch of input records in offset order; with ``now``, raise escalations due by then.

        Returns the outputs newly written (already-written ones, recognised by id, are skipped).
        """
        records = await self.log.read(topics.INPUT, self.position, limit=self._batch, timeout=wait)
        if records and self._linger > 0 and len(records) < self._batch:
            await asyncio.sleep(self._linger)
            # A glance at what the reader has fetched meanwhile (a read with no wait asks where the input ends):
            # anything later is the next step's.
            more = self._batch - len(records)
            records += await self.log.read(topics.INPUT, records[-1].offset + 1, limit=more, timeout=GLANCE_S)
        self.caught_up = len(records) < self._batch
        outputs: list[Output] = []
        for record in records:
            if record.header(topics.SOURCE_KIND_HEADER) == b"partnership":  # may change the directory
                self._directory_at = record.offset
            outputs += self._apply(record)
            if self.sealer is not None:
                self.sealer.observe(record)
        if records:
            self.position = records[-1].offset + 1
            self.at_ms = records[-1].timestamp_ms
        if now is not None:
            due = self.state.advance(now)
            if due and self._metrics is not None:
                self._metrics.escalated(sum(isinstance(o, Notification) for o in due))
            outputs += due
        commit = bool(records) and time.monotonic() >= self._commit_due
        fresh = await self._write(outputs, self._commits() if commit else {})
        if self.sealer is not None and self.sealer.due():  # after the outputs: the head says where they ended
            await self.seal(_ts(records[-1]) if records else now or dt.datetime.now(dt.UTC))
        return fresh

    async def seal(self, now: dt.datetime) -> None:
        """Publish a signed tree head of the input records no head covers yet, through the router's writer."""
        if self.sealer is not None and (seal := await self.sealer.prepare(now)) is not None:
            await self._write([], self._commits(), seal)
            self.sealer.published(seal)

    async def flush(self) -> None:
        """Commit the input offset the router has reached, unless this process has committed it already."""
        if commits := self._commits():
            await self._write([], commits)

    def _commits(self) -> dict[tuple[str, int], int]:
        return {(topics.INPUT, 0): self.position} if self.position > self._committed else {}

    async def restore(
        self,
        state: RoutingState,
        position: int,
        at_ms: int,
        *,
        outputs: dict[str, list[int]] | None = None,
        escalations: tuple[str, ...] = (),
    ) -> None:
        """Go on from a snapshot (after ``start``): the state after input records ``0 .. position - 1``.

        ``outputs`` (where the output topics ended when the snapshot was taken; None: unknown, read
        them all) and ``escalations`` (raised elsewhere, not yet by this state) come with it. The
        sealer observes the records between its last head and ``position`` from the log first, so none
        goes unsealed.
        """
        self.state, self.position, self.at_ms = state, position, at_ms
        self._directory_at = position - 1  # not in the snapshot: the dispatcher reads the directory to here
        self._written, self._since, self._early = None, dict(outputs or {}), set(escalations)
        if self.sealer is not None:
            await self.sealer.catch_up(position)

    async def run_until_idle(self, *, now: dt.datetime | None = None) -> list[Output]:
        """Step until the input is read to its end."""
        out: list[Output] = []
        while True:
            before = self.position
            out += await self.step()
            if self.position == before:
                break
        if now is not None:
            out += await self.step(now=now)
        await self.flush()
        return out

    async def output_ends(self) -> dict[str, list[int]]:
        """Where each output topic's partitions end now (a snapshot taken now records them)."""
        ends: dict[str, list[int]] = {}
        for topic in (topics.NOTIFICATIONS, topics.DECISIONS):
            count = await self.log.partitions(topic)
            ends[topic] = [await self.log.end_offset(topic, partition=p) for p in range(count)]
        return ends

    @property
    def early_escalations(self) -> tuple[str, ...]:
        """Escalations already written that this state has not raised yet (a snapshot carries them)."""
        return tuple(sorted(self._early))

    async def _learn_written(self) -> set[str]:
        """The ids written since ``_since`` (everything when unknown), and the escalations among them.

        Called before the first write, so on Kafka after this process's transactional writer has
        fenced any older one: nothing a zombie began can land afterwards.
        """
        written = set(self._early)
        read = 0
        for topic in (topics.NOTIFICATIONS, topics.DECISIONS):
            positions = dict(enumerate(self._since.get(topic, ())))
            async for records in read_new(self.log, topic, positions):
                read += len(records)
                for record in records:
                    ident = record.header("notification_id") or record.header("decision_id")
                    if ident:
                        written.add(ident.decode())
                        if record.header("kind") == b"escalation":
                            self._early.add(ident.decode())
        _log.info("router_outputs_read", records=read, since_snapshot=bool(self._since))
        return written

    def _apply(self, record: Record) -> list[Output]:
        if record.value is None:
            return []
        if topics.is_ack(record):
            return self.state.apply_ack(decode_ack(record))
        if not topics.is_event(record):
            _log.error("unknown_input_record", offset=record.offset, hint="neither an event nor an acknowledgement")
            return []
        try:
            event = self._decode(record.value)
        except SchemaInvalid as exc:  # the gateway accepted it, so this is a bug or a changed schema
            _log.error("undecodable_event", topic=record.topic, offset=record.offset, error=exc.message)
            return []
        self.routed += 1
        outputs = self.state.apply_event(event, _ts(record))
        if self._metrics is not None:
            self._metrics.routed([o.kind for o in outputs if isinstance(o, Notification)])
        return outputs

    async def _write(
        self, outputs: list[Output], commits: dict[tuple[str, int], int], seal: Seal | None = None
    ) -> list[Output]:
        """Write new outputs, the input offset and a tree head together (on Kafka: one transaction under the
        router's transactional id, so a router that lost its place to another is fenced and publishes no head)."""
        if self._writer is None:
            self._writer = self.log.writer(self._group)
        if self._written is None:
            await self._writer.start()  # on Kafka: fences an older writer before its outputs are read
            self._written = await self._learn_written()
        fresh: list[Output] = []
        notes: list[Output] = []
        decisions: list[Output] = []
        for item in outputs:
            ident = item.notification_id if isinstance(item, Notification) else item.decision_id
            self._early.discard(ident)  # this state has raised it now
            if ident in self._written:
                continue
            self._written.add(ident)
            fresh.append(item)
            (notes if isinstance(item, Notification) else decisions).append(item)
        directory_at = (topics.DIRECTORY_AT_HEADER, b"%d" % self._directory_at)
        appends = [
            (topic, [_with_header(encode_output(i), directory_at) for i in group], int(at.timestamp() * 1000))
            for topic, items in ((topics.NOTIFICATIONS, notes), (topics.DECISIONS, decisions))
            for at, group in itertools.groupby(items, key=_at)
        ]
        if seal is not None:
            appends.append((topics.TREE_HEADS, [encode_seal(seal)], seal.head.timestamp_ms))
        if appends or commits:
            await self._writer.write(appends, commits, self._group)
        if commits:
            self._committed = commits[(topics.INPUT, 0)]
            self._commit_due = time.monotonic() + self._commit_every
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


def _with_header(record: tuple[bytes, bytes, Headers], header: tuple[str, bytes]) -> tuple[bytes, bytes, Headers]:
    key, value, headers = record
    return key, value, (*headers, header)


def _at(item: Notification | Decision) -> dt.datetime:
    return item.at
