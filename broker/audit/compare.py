"""The re-run policy's outputs against the notification and decision records on the log, by id.

``OutputCheck`` first indexes the records on the log (``recorded``, then
``recorded_done``: gaps, undecodable records, an id recorded twice with
different content), then compares what the policy gives a batch at a time
(``compare``: missing and altered outputs) and at the end names the records
the policy never gave (``unexpected``). Everything it remembers is in the
replay's temporary ``OutputIndex``, not in memory, and of each record only its
SHA-256: an output whose digest differs from the record's, and a record that is
named, become ``Doubt``s, settled (``settle``) once the shell has read those
few records back from the log.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Mapping

from broker import topics
from broker.audit.findings import Finding
from broker.audit.outputs import EventRow, OutputIndex, RecordedRow
from broker.audit.verify import Recorded, canonical, matches, output_bytes
from broker.audit.window import Window
from broker.log.base import Record
from broker.routing.model import Decision, Notification

__all__ = ["Doubt", "OutputCheck"]

Output = Notification | Decision
TopicPartition = tuple[str, int]


def _ident(item: Output) -> str:
    return item.notification_id if isinstance(item, Notification) else item.decision_id


def _what(item: Output) -> str:
    return "notification" if isinstance(item, Notification) else "decision"


def _recorded(what: str, ident: str, row: RecordedRow, value: bytes | None) -> Recorded:
    _, topic, part, off, at_ms, _, _ = row
    return Recorded(Record(topic, part, off, None, value, ((f"{what}_id", ident.encode()),), at_ms), f"{what}_id")


@dataclasses.dataclass(frozen=True, slots=True)
class Doubt:
    """A comparison that needs a record's bytes back from the log."""

    kind: str  # altered (the digest differs), conflict (an id twice), unexpected (the policy did not give it)
    what: str  # notification or decision
    ident: str
    row: RecordedRow
    item: Output | None = None  # altered: what the policy gives
    first: RecordedRow | None = None  # conflict: the id's first record
    rank: int = 0  # altered: where the output sorts


class OutputCheck:
    """Compares outputs by id; findings go to ``findings``; ``notifications`` and ``decisions`` count comparisons.

    Args:
        resume_ms: a resumed replay's snapshot time: records on the log up to it were given before it.
    """

    def __init__(
        self, index: OutputIndex, window: Window, findings: list[Finding], *, resume_ms: int | None = None
    ) -> None:
        self.index = index
        self.window = window
        self.findings = findings
        self.resume_ms = resume_ms
        self.notifications = 0
        self.decisions = 0
        self._next: dict[TopicPartition, int] = {}  # recorded partition -> next offset expected (gaps)
        self.doubts: list[Doubt] = []
        self._missing: set[str] = set()  # ids the policy gave that are not on the log (named once; grows with damage)
        self.values = False  # keep every record's bytes in the index (for a chronology)
        self.gaps = True  # an offset no record holds is a removal (not on Kafka: transaction markers take offsets)

    def recorded(self, what: str, records: Iterable[Record]) -> None:
        """Index a batch of notification (``what="notification"``) or decision records, in log order."""
        items = []
        for record in records:
            expected = self._next.get((record.topic, record.partition), 0)
            if record.offset > expected and self.gaps:
                self.findings.append(
                    Finding(
                        "record_missing",
                        f"offsets {expected} to {record.offset - 1} are missing: records removed",
                        record.topic,
                        record.partition,
                        expected,
                    )
                )
            self._next[(record.topic, record.partition)] = record.offset + 1
            item = Recorded(record, f"{what}_id")
            if item.ident is None:
                self.findings.append(
                    Finding(
                        f"{what}_undecodable",
                        f"the {what} record does not decode",
                        record.topic,
                        record.partition,
                        record.offset,
                    )
                )
            items.append(item)
        self.index.add_recorded(what, items, values=self.values)

    def recorded_done(self) -> None:
        """After every recorded output: ids recorded twice (with different bytes: doubts until settled)."""
        self.index.seal_recorded()
        for what in ("notification", "decision"):
            for ident, (first, *others) in self.index.repeated(what):
                self.doubts += [
                    Doubt("conflict", what, ident, row, first=first) for row in others if row[5] != first[5]
                ]
                self.index.retire(row[0] for row in others)

    def compare(self, produced: list[tuple[Output, int, bool]], about: Callable[[str], EventRow | None]) -> None:
        """Compare what the policy gave for one batch with the records on the log, by id."""
        for what in ("notification", "decision"):
            mine: dict[str, tuple[Output, int, bool]] = {}
            for entry in produced:
                if _what(entry[0]) == what:
                    mine.setdefault(_ident(entry[0]), entry)
            if not mine:
                continue
            looked = self.index.lookup(what, list(mine))
            held = {ident: row for ident, (row, given) in looked.items() if not given}
            self.index.retire(row[0] for row in held.values())
            compared = 0
            for ident, (item, rank, optional) in mine.items():
                if ident in looked and ident not in held:
                    continue  # the policy gave it before (its record is accounted for)
                if ident in self._missing or not self.window.covers_time(item.at):
                    continue
                row = held.get(ident)
                if row is None and optional:
                    continue
                compared += 1
                if row is not None:
                    if row[5] != hashlib.sha256(output_bytes(item)).digest():
                        self.doubts.append(Doubt("altered", what, ident, row, item=item, rank=rank))
                    continue
                self._missing.add(ident)  # given again later: named once
                event = about(item.event_id)  # only for a finding: a lookup per output would be slow
                who = f" to {item.recipient}" if isinstance(item, Notification) else ""
                self.findings.append(
                    Finding(
                        f"missing_{what}",
                        f"the policy gives a {item.kind} {what}{who} ({what} {ident}, rule {item.rule}) "
                        "that is not on the log",
                        topics.INPUT if event else None,
                        0 if event else None,
                        event[1] if event else None,
                        item.event_id,
                        order=event[2] if event else rank,
                    )
                )
            if what == "notification":
                self.notifications += compared
            else:
                self.decisions += compared

    def unexpected(self) -> None:
        """At the end: every record on the log the policy did not give (inside the window, after any snapshot)."""
        for what in ("notification", "decision"):
            for ident, row in self.index.unmatched(what):
                recorded = _recorded(what, ident, row, None)
                if not self.window.covers_time(recorded.at):
                    continue
                if self.resume_ms is not None and row[4] <= self.resume_ms:
                    continue  # given before the snapshot
                self.doubts.append(Doubt("unexpected", what, ident, row))
                if what == "notification":
                    self.notifications += 1
                else:
                    self.decisions += 1

    def rows_needed(self) -> list[RecordedRow]:
        """The records the doubts need read back from the log (those whose bytes the index does not keep)."""
        rows = {d.row[0]: d.row for d in self.doubts}
        rows.update((d.first[0], d.first) for d in self.doubts if d.first is not None)
        return [row for row in rows.values() if row[6] is None]

    def settle(self, values: Mapping[int, bytes | None], about: Callable[[str], EventRow | None]) -> None:
        """Settle every doubt, given the bytes of ``rows_needed`` (rowid -> value as the log holds it now)."""
        doubts, self.doubts = self.doubts, []
        for doubt in doubts:
            what, ident, row = doubt.what, doubt.ident, doubt.row
            recorded = _recorded(what, ident, row, row[6] if row[6] is not None else values.get(row[0]))
            if doubt.kind == "conflict" and doubt.first is not None:
                first = doubt.first
                held = _recorded(what, ident, first, first[6] if first[6] is not None else values.get(first[0]))
                if recorded.body != held.body:
                    event = recorded.body.get("event_id") if recorded.body is not None else None
                    self.findings.append(
                        Finding(
                            f"{what}_conflict",
                            f"{what} {ident} is on the log twice with different content",
                            row[1],
                            row[2],
                            row[3],
                            str(event) if event else None,
                        )
                    )
            elif doubt.kind == "altered" and doubt.item is not None:
                self._altered(doubt, recorded, about)
            elif doubt.kind == "unexpected":
                self._unexpected(doubt, recorded)

    def _altered(self, doubt: Doubt, recorded: Recorded, about: Callable[[str], EventRow | None]) -> None:
        item, what, row = doubt.item, doubt.what, doubt.row
        assert item is not None
        if matches(item, recorded):  # other bytes, the same content
            return
        expected, body = canonical(item), recorded.body
        if body is None:
            how = "does not decode"
        else:
            fields = sorted(k for k in set(expected) | set(body) if expected.get(k) != body.get(k))
            how = f"differs from what the policy gives in: {', '.join(fields)}"
        event = about(item.event_id)
        who = f" to {item.recipient}" if isinstance(item, Notification) else ""
        self.findings.append(
            Finding(
                f"altered_{what}",
                f"{what} {doubt.ident}{who} {how}",
                row[1],
                row[2],
                row[3],
                item.event_id,
                order=event[2] if event else doubt.rank,
            )
        )

    def _unexpected(self, doubt: Doubt, recorded: Recorded) -> None:
        what, row = doubt.what, doubt.row
        body = recorded.body or {}
        event_id = str(body.get("event_id"))
        about = self.index.events([event_id]).get(event_id)
        who = f" to {body.get('recipient')}" if what == "notification" else ""
        self.findings.append(
            Finding(
                f"unexpected_{what}",
                f"{what} {doubt.ident}{who} is on the log but the policy does not give it"
                + ("" if about else " (its event is not on the log)"),
                row[1],
                row[2],
                row[3],
                event_id,
                order=about[2] if about else self.index.place(row[4]),
            )
        )
