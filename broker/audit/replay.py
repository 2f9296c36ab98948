"""The replay: verify a snapshot of the log and re-run the routing policy over it (pure).

``replay(snapshot, ...)`` checks, in one pass over the router's inputs in its
merge order:

1. the hash chain and Jigsaw's signed checkpoints (``integrity.py``);
2. every event in the window as the intake checked it when it was accepted
   (``verify.check_event``), and that no event id was accepted twice;
3. the routing policy: a fresh ``RoutingState`` is fed every event and
   acknowledgement exactly as the router service feeds them, then advanced to
   the latest time the log shows the router reached (the latest ``at`` of any
   notification or decision on record: escalations due by then were raised, and
   none due later could have been), and what it gives is compared, by id and
   content, with the notifications and decision records on the log. Inputs
   past the router's committed position (a live router a moment behind, or one
   that stopped between writing and committing) are fed too, but what they give
   is only compared where the log already holds it.

Everything is plain data in and a ``Report`` out; ``collect.read_snapshot`` is
the shell that reads the log.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker import topics
from broker.audit.collect import Snapshot
from broker.audit.findings import ERROR, NOTE, Finding
from broker.audit.integrity import check_integrity
from broker.audit.sealer import DEFAULT_EVERY
from broker.audit.verify import Recorded, check_event, compare_outputs, parse_recorded, record_time
from broker.audit.window import Window
from broker.envelope.keys import KeyRegistry
from broker.errors import SchemaInvalid
from broker.log.base import Record
from broker.model import Event
from broker.routing.model import Ack, Decision, Notification, iso
from broker.routing.records import decode_ack
from broker.routing.state import RoutingState
from broker.schemas import Catalogue, default_catalogue
from broker.validation import event_of

__all__ = ["Report", "replay"]

Output = Notification | Decision
_LAST = 1 << 62


@dataclasses.dataclass(slots=True)
class Report:
    """What a replay found and how much it covered."""

    findings: list[Finding]
    events: int = 0
    acks: int = 0
    verified: int = 0  # events whose signatures and fields were checked (those in the window)
    partitions: int = 0
    chained: int = 0
    checkpoints: int = 0
    pending: int = 0  # inputs the router had not reached (not fed to the policy)
    notifications: int = 0  # compared
    decisions: int = 0  # compared
    reached: dt.datetime | None = None
    window: Window | None = None
    decoded: list[tuple[Record, Event]] = dataclasses.field(default_factory=list)  # for the chronology
    recorded_notifications: list[Recorded] = dataclasses.field(default_factory=list)
    recorded_decisions: list[Recorded] = dataclasses.field(default_factory=list)
    acks_seen: list[Ack] = dataclasses.field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def ok(self) -> bool:
        """True when everything verified and matched."""
        return not self.errors

    @property
    def first_bad(self) -> Finding | None:
        """The error that concerns the earliest event in the log (or the first error when none names an event)."""
        errors = self.errors
        named = [f for f in errors if f.event_id]
        return (named or errors)[0] if errors else None

    def summary(self) -> list[str]:
        """Human-readable summary lines (no payload contents)."""
        w = self.window
        span = (
            "the whole log"
            if w is None or w.whole
            else f"from {iso(w.start) or 'the start'} to {iso(w.end) or 'the end'}"
        )
        codes: dict[str, int] = {}
        for f in self.errors:
            codes[f.code] = codes.get(f.code, 0) + 1
        lines = [
            f"replayed {self.events} events and {self.acks} acknowledgements ({span})",
            f"signatures: {self.verified} events checked against the key registry as it stood when each was accepted",
            f"hash chain: {self.chained} records in {self.partitions} partitions, "
            f"{self.checkpoints} signed checkpoints",
            f"routing: re-run to {iso(self.reached) or 'the last input'}; {self.notifications} notifications and "
            f"{self.decisions} decision records compared",
        ]
        if self.ok:
            lines.append("OK: everything verifies and matches")
        else:
            tally = ", ".join(f"{n} {c}" for c, n in sorted(codes.items()))
            lines.append(f"FAILED: {len(self.errors)} findings ({tally})")
            first = self.first_bad
            if first is not None:
                lines.append(f"first bad: {first.event_id or '(no event id)'} at {first.position} ({first.code})")
        return lines


def _max_at(recorded: list[Recorded]) -> dt.datetime | None:
    times = [r.at for r in recorded if r.at is not None]
    return max(times) if times else None


def replay(
    snapshot: Snapshot,
    *,
    keys: KeyRegistry,
    checkpoint_key: Ed25519PublicKey | None,
    window: Window | None = None,
    every: int = DEFAULT_EVERY,
    catalogue: Catalogue | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Verify a snapshot and compare the policy's re-run with what the log records.

    Args:
        keys: the key registry (every key ever registered, with ``valid_from`` and ``revoked_at``).
        checkpoint_key: Jigsaw's public key for the checkpoints (None: they cannot be checked: a finding).
        window: the stretch to verify and compare (default: everything).
        every: the checkpoint interval the intake used.
        progress: called with 1 for every input processed (a progress bar).
    """
    catalogue = catalogue or default_catalogue()
    inputs = snapshot.inputs
    window = window or Window.everything(len(inputs))
    # Findings sort by where they are in the router's order: input i ranks 2i+1, so a record that is gone
    # (ranked by time with ``place``) sorts just before what now stands in its place.
    order = {(r.topic, r.partition, r.offset): 2 * i + 1 for i, r in enumerate(inputs)}
    integrity = check_integrity(snapshot, checkpoint_key, every=every, order=order)
    report = Report(
        list(integrity.findings),
        partitions=integrity.partitions,
        chained=integrity.records,
        checkpoints=integrity.checkpoints,
        window=window,
    )
    report.recorded_notifications = parse_recorded(snapshot.notifications, "notification_id")
    report.recorded_decisions = parse_recorded(snapshot.decisions, "decision_id")
    state = RoutingState()
    produced: dict[str, tuple[Output, int]] = {}
    optional: set[str] = set()
    events: dict[str, tuple[Record, int]] = {}
    publishers: dict[str, str] = {}
    end_ms = int(window.end.timestamp() * 1000) if window.end is not None else None
    for index, record in enumerate(inputs):
        rank = 2 * index + 1
        if end_ms is not None and record.timestamp_ms > end_ms:
            break  # nothing later can change an output due by the end of the window
        if progress is not None:
            progress(1)
        if record.value is None:
            continue
        routed = snapshot.is_routed(record)
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
            report.acks_seen.append(ack)
            outputs = state.apply_ack(ack)
        else:
            event = _event(record, index, rank, window, keys, publishers, catalogue, report)
            if event is None:
                continue
            if event.event_id in events:
                first = events[event.event_id][0]
                report.findings.append(
                    Finding(
                        "duplicate_event",
                        f"the same event id was already accepted at {first.topic}:{first.partition}:{first.offset}",
                        record.topic,
                        record.partition,
                        record.offset,
                        event.event_id,
                        order=rank,
                    )
                )
            else:
                events[event.event_id] = (record, rank)
                publishers[event.event_id] = event.source
            report.events += 1
            report.decoded.append((record, event))
            outputs = state.apply_event(event, record_time(record))
        for item in outputs:
            produced.setdefault(_ident(item), (item, rank))
            if not routed:  # the router may or may not have written it yet
                optional.add(_ident(item))
    if report.pending:
        report.findings.append(
            Finding(
                "not_yet_routed",
                f"{report.pending} events and acknowledgements lie after the router's committed position: verified, "
                "and what the policy gives for them is compared only where the log already holds it",
                severity=NOTE,
            )
        )
    reached = _max_at([*report.recorded_notifications, *report.recorded_decisions])
    if reached is not None and window.end is not None:
        reached = min(reached, window.end)
    report.reached = reached
    if reached is not None:
        for item in state.advance(reached):
            produced.setdefault(_ident(item), (item, _LAST))
    stamps = [r.timestamp_ms for r in inputs]

    def place(moment: dt.datetime) -> int:
        return 2 * bisect.bisect_left(stamps, int(moment.timestamp() * 1000))

    for what, recorded in (("notification", report.recorded_notifications), ("decision", report.recorded_decisions)):
        kind = Notification if what == "notification" else Decision
        mine = {k: v for k, v in produced.items() if isinstance(v[0], kind)}
        found, compared = compare_outputs(
            mine, recorded, what=what, window=window, events=events, place=place, optional=optional
        )
        report.findings += found
        if what == "notification":
            report.notifications = compared
        else:
            report.decisions = compared
    report.findings.sort(key=lambda f: f.order if f.order >= 0 else _LAST)
    return report


def _ident(item: Output) -> str:
    return item.notification_id if isinstance(item, Notification) else item.decision_id


def _event(
    record: Record,
    index: int,
    rank: int,
    window: Window,
    keys: KeyRegistry,
    publishers: dict[str, str],
    catalogue: Catalogue,
    report: Report,
) -> Event | None:
    """The event a record holds, verified when it is inside the window; None when it does not decode."""
    assert record.value is not None
    if window.covers(index):
        report.verified += 1
        event, found = check_event(record, rank, keys=keys, publisher_of=publishers.get, catalogue=catalogue)
        report.findings += found
        if event is None:
            return None
        return event
    try:
        return event_of(record.value, catalogue=catalogue)
    except SchemaInvalid as exc:
        report.findings.append(
            Finding(
                "schema_invalid",
                f"the event does not decode: {exc.message}",
                record.topic,
                record.partition,
                record.offset,
                order=rank,
            )
        )
        return None
