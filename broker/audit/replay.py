"""The replay: verify the log as it streams past and re-run the routing policy over it.

A ``Replayer`` is fed, a batch at a time and in the log's order:

1. the signed tree heads (``feed_seals``, ahead of the inputs they cover) and
   every input record, checked against them (``integrity.TreeCheck``);
2. every event in the window as the intake checked it when it was accepted
   (``verify.check_event``, done ahead by ``workers.Verifier``), and that no
   event id was accepted twice;
3. the routing policy: a ``RoutingState`` (fresh, or loaded from a router
   snapshot) is fed every event and acknowledgement exactly as the router
   service feeds them, then advanced to the latest time the log shows the
   router reached (the latest ``at`` of any notification or decision on
   record), and what it gives is compared, by id and content, with the
   notification and decision records on the log (``recorded``, indexed
   beforehand in ``outputs.OutputIndex``). Inputs past the router's committed
   position are fed too, but what they give is only compared where the log
   already holds it.

Nothing grows with the log but the routing state itself: the records a batch
holds, the signed leaves just ahead, and lookups in the temporary index.
``collect.replay_log`` is the shell that reads the log and feeds it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker import topics
from broker.audit.compare import OutputCheck
from broker.audit.findings import NOTE, Finding
from broker.audit.integrity import TreeCheck
from broker.audit.outputs import EventRow, OutputIndex
from broker.audit.report import Report
from broker.audit.sealer import DEFAULT_EVERY
from broker.audit.spill import Spill
from broker.audit.state_snapshot import RouterSnapshot, encode_snapshot
from broker.audit.verify import check_event, record_time
from broker.audit.window import Window
from broker.audit.workers import CHECK_IN_ORDER, Checked
from broker.envelope.keys import KeyRegistry
from broker.log.base import Record
from broker.routing.model import Decision, Notification
from broker.routing.records import decode_ack
from broker.routing.state import RoutingState
from broker.schemas import Catalogue, default_catalogue

__all__ = ["Replayer"]

Output = Notification | Decision
TopicPartition = tuple[str, int]
_LAST = 1 << 62


class Replayer:
    """One replay, fed in log order.

    Args:
        keys: the key registry (every key ever registered, with ``valid_from`` and ``revoked_at``).
        checkpoint_key: Jigsaw's public key for the tree heads (None: they cannot be checked: a finding).
        index: the temporary index (the recorded outputs go in first, through ``recorded``).
        window: the stretch to verify and compare (default: everything).
        every: the sealer's head interval in records.
        routed: the router's committed input offset (None: unknown, everything counts as routed).
        resume: a router snapshot to start from: the state it holds, at the input offset it reflects
            (recorded outputs up to its time were given before it and are not compared).
        save: keep a snapshot of the state after the last input in ``snapshot`` (``finish``).
        keep: keep what a chronology needs (grows with the log).
        spill: keeps the routing state within a memory ceiling, checked after each batch.
    """

    def __init__(
        self,
        *,
        keys: KeyRegistry,
        checkpoint_key: Ed25519PublicKey | None,
        index: OutputIndex,
        window: Window | None = None,
        every: int = DEFAULT_EVERY,
        routed: int | None = None,
        resume: RouterSnapshot | None = None,
        save: bool = False,
        catalogue: Catalogue | None = None,
        keep: bool = False,
        spill: Spill | None = None,
    ) -> None:
        self.keys = keys
        self.window = window or Window.everything()
        self.index = index
        self.routed = routed
        self.state = resume.state if resume is not None else RoutingState()
        start = resume.input_offset if resume is not None else 0
        self._resume_ms = resume.at_ms if resume is not None else None
        self._save = save
        self.snapshot: bytes | None = None  # encoded: the state goes on changing after it is taken
        self._last: Record | None = None
        self.catalogue = catalogue or default_catalogue()
        self.keep = keep
        self.check = TreeCheck(checkpoint_key, every=every, start=start)
        if resume is not None and resume.tree_size is not None and resume.root_hash is not None:
            self.check.expect(resume.tree_size, resume.root_hash)
        self.report = Report([], window=self.window, resumed_from=start)
        self.outputs = OutputCheck(index, self.window, self.report.findings, resume_ms=self._resume_ms)
        self.outputs.values = keep  # a chronology reads every notification and decision back
        self._batch_events: dict[str, EventRow] = {}
        self.spill = spill

    # -- the inputs -------------------------------------------------------------

    def feed_seals(self, records: Iterable[Record]) -> None:
        """Check records of the tree heads topic (ahead of the inputs they cover)."""
        for record in records:
            self.check.feed_seal(record)

    def to_check(self, records: Iterable[Record]) -> list[tuple[Record, bool]]:
        """The events records of a batch to verify ahead (``True``: in the window, check fully)."""
        out = []
        for record in records:
            if record.value is not None and topics.is_event(record) and not self.window.past(record):
                out.append((record, self.window.covers(record)))
        return out

    def feed(
        self, records: list[Record], checked: Iterator[Checked], progress: Callable[[int], None] | None = None
    ) -> None:
        """Apply a batch of input records in order; ``checked`` gives ``to_check``'s results in order."""
        report = self.report
        self._batch_events = {}
        results = list(checked)
        ids = [r[1][0].event_id for r in results if not isinstance(r[1], str) and r[1][0] is not None]
        known = self.index.events(ids)
        produced: list[tuple[Output, int, bool]] = []
        position = iter(results)
        for record in records:
            rank = 2 * record.offset + 1
            self._last = record
            checked_here = None
            if record.value is not None and topics.is_event(record) and not self.window.past(record):
                leaf, checked_here = next(position)
                self.check.feed(record, rank, leaf)
            else:
                self.check.feed(record, rank)
            if progress is not None:
                progress(1)
            if record.value is None or self.window.past(record):
                continue  # past the window: checked against the tree heads only
            routed = self.routed is None or record.offset < self.routed
            if not routed:
                report.pending += 1
            if topics.is_ack(record):
                try:
                    ack = decode_ack(record)
                except (ValueError, KeyError, TypeError) as exc:
                    report.findings.append(
                        Finding(
                            "ack_undecodable",
                            f"the acknowledgement does not decode: {exc}",
                            record.topic,
                            record.partition,
                            record.offset,
                            order=rank,
                        )
                    )
                    continue
                report.acks += 1
                if self.keep:
                    report.acks_seen.append(ack)
                outputs = self.state.apply_ack(ack)
            elif checked_here is not None:
                result = checked_here
                if self.window.covers(record):
                    report.verified += 1
                if result == CHECK_IN_ORDER:
                    result = check_event(
                        record, rank, keys=self.keys, publisher_of=self._publisher, catalogue=self.catalogue
                    )
                assert not isinstance(result, str)
                event, found = result
                report.findings += found
                if event is None:
                    continue
                first = known.get(event.event_id) or self._batch_events.get(event.event_id)
                if first is not None:
                    report.findings.append(
                        Finding(
                            "duplicate_event",
                            f"the same event id was already accepted at {topics.INPUT}:0:{first[1]}",
                            record.topic,
                            record.partition,
                            record.offset,
                            event.event_id,
                            order=rank,
                        )
                    )
                else:
                    self._batch_events[event.event_id] = (
                        event.event_id,
                        record.offset,
                        rank,
                        record.timestamp_ms,
                        event.source,
                    )
                report.events += 1
                if self.keep:
                    report.decoded.append((record, event))
                outputs = self.state.apply_event(event, record_time(record))
            else:
                report.findings.append(
                    Finding(
                        "unknown_input_record",
                        "neither an event nor an acknowledgement (no record header the router knows)",
                        record.topic,
                        record.partition,
                        record.offset,
                        order=rank,
                    )
                )
                continue
            produced += [(item, rank, not routed) for item in outputs]
        self.index.add_events(self._batch_events.values())
        self.outputs.compare(produced, self.about)
        self._batch_events = {}
        if self.spill is not None:
            self.spill.check(self.state)

    def _publisher(self, event_id: str) -> str | None:
        row = self._batch_events.get(event_id) or self.index.events([event_id]).get(event_id)
        return row[4] if row else None

    def about(self, event_id: str) -> EventRow | None:
        """Where an accepted event is (for naming findings), or None."""
        return self._batch_events.get(event_id) or self.index.events([event_id]).get(event_id)

    # -- the end ----------------------------------------------------------------

    def finish_routing(self) -> None:
        """After the last input: escalations due by the time the router reached, and what it did not give.

        Then settle ``outputs.doubts`` and call ``finish``.
        """
        report = self.report
        if report.pending:
            report.findings.append(
                Finding(
                    "not_yet_routed",
                    f"{report.pending} events and acknowledgements lie after the router's committed position: "
                    "verified, and what the policy gives for them is compared only where the log already holds it",
                    severity=NOTE,
                )
            )
        if self._save:
            if self.spill is not None:
                self.spill.restore(self.state)  # a snapshot encodes every entry
            head = self.check.last_head
            self.snapshot = encode_snapshot(
                RouterSnapshot(
                    self.state,
                    self._last.offset + 1 if self._last is not None else self.check.expected,
                    self._last.timestamp_ms if self._last is not None else self._resume_ms or 0,
                    head.tree_size if head is not None else None,
                    head.root_hash if head is not None else None,
                )
            )
        latest = self.index.latest()
        reached = dt.datetime.fromtimestamp(latest / 1000, dt.UTC) if latest is not None else None
        if reached is not None and self.window.end is not None:
            reached = min(reached, self.window.end)
        report.reached = reached
        if reached is not None:
            self.outputs.compare([(item, _LAST, False) for item in self.state.advance(reached)], self.about)
        self.outputs.unexpected()

    def finish(self, ends: Mapping[TopicPartition, int]) -> Report:
        """The report, once every doubt is settled: ``ends`` maps each topic partition to where it ended."""
        report = self.report
        report.notifications, report.decisions = self.outputs.notifications, self.outputs.decisions
        self.check.finish(ends, any_input=self.check.records > 0, routed=self.routed)
        report.findings += self.check.findings
        report.records, report.heads = self.check.records, self.check.heads
        report.tree_size = self.check.last_head.tree_size if self.check.last_head else 0
        if self.keep:
            report.notification_records = list(self.index.recorded("notification"))
            report.decision_records = list(self.index.recorded("decision"))
        report.findings.sort(key=lambda f: f.order if f.order >= 0 else _LAST)
        return report
