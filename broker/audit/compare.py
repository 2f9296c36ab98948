"""The re-run policy's outputs against the notification and decision records on the log, by id.

``OutputCheck`` first indexes the records on the log (``recorded``, then
``recorded_done``: gaps, undecodable records, an id recorded twice with
different content), then compares what the policy gives a batch at a time
(``compare``: missing and altered outputs) and at the end names the records
the policy never gave (``unexpected``). Everything it remembers is in the
replay's temporary ``OutputIndex``, not in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from broker import topics
from broker.audit.findings import Finding
from broker.audit.outputs import EventRow, OutputIndex, RecordedRow
from broker.audit.verify import Recorded, canonical, matches
from broker.audit.window import Window
from broker.log.base import Record
from broker.routing.model import Decision, Notification

__all__ = ["OutputCheck"]

Output = Notification | Decision
TopicPartition = tuple[str, int]


def _ident(item: Output) -> str:
    return item.notification_id if isinstance(item, Notification) else item.decision_id


def _what(item: Output) -> str:
    return "notification" if isinstance(item, Notification) else "decision"


def _recorded(what: str, ident: str, row: RecordedRow) -> Recorded:
    _, topic, part, off, at_ms, value = row
    return Recorded(Record(topic, part, off, None, value, ((f"{what}_id", ident.encode()),), at_ms), f"{what}_id")


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

    def recorded(self, what: str, records: Iterable[Record]) -> None:
        """Index a batch of notification (``what="notification"``) or decision records, in log order."""
        items = []
        for record in records:
            expected = self._next.get((record.topic, record.partition), 0)
            if record.offset > expected:
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
        self.index.add_recorded(what, items)

    def recorded_done(self) -> None:
        """After every recorded output: name ids recorded twice with different content."""
        self.index.seal_recorded()
        for what in ("notification", "decision"):
            for ident, (first, *others) in self.index.repeated(what):
                held = _recorded(what, ident, first)
                for row in others:
                    again = _recorded(what, ident, row)
                    if row[5] != first[5] and again.body != held.body:
                        event = again.body.get("event_id") if again.body is not None else None
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
            fresh = self.index.fresh(list(mine))
            held = self.index.lookup(what, [i for i in mine if i in fresh])
            self.index.retire(row[0] for row in held.values())
            compared = 0
            for ident, (item, rank, optional) in mine.items():
                if ident not in fresh or not self.window.covers_time(item.at):
                    continue
                row = held.get(ident)
                if row is None and optional:
                    continue
                compared += 1
                recorded = _recorded(what, ident, row) if row is not None else None
                if recorded is not None and matches(item, recorded):
                    continue
                event = about(item.event_id)  # only for a finding: a lookup per output would be slow
                order = event[2] if event else rank
                who = f" to {item.recipient}" if isinstance(item, Notification) else ""
                if row is None or recorded is None:
                    self.findings.append(
                        Finding(
                            f"missing_{what}",
                            f"the policy gives a {item.kind} {what}{who} ({what} {ident}, rule {item.rule}) "
                            "that is not on the log",
                            topics.INPUT if event else None,
                            0 if event else None,
                            event[1] if event else None,
                            item.event_id,
                            order=order,
                        )
                    )
                    continue
                expected, body = canonical(item), recorded.body
                if body is None:
                    how = "does not decode"
                else:
                    fields = sorted(k for k in set(expected) | set(body) if expected.get(k) != body.get(k))
                    how = f"differs from what the policy gives in: {', '.join(fields)}"
                self.findings.append(
                    Finding(
                        f"altered_{what}",
                        f"{what} {ident}{who} {how}",
                        row[1],
                        row[2],
                        row[3],
                        item.event_id,
                        order=order,
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
                recorded = _recorded(what, ident, row)
                if not self.window.covers_time(recorded.at):
                    continue
                if self.resume_ms is not None and row[4] <= self.resume_ms:
                    continue  # given before the snapshot
                body = recorded.body or {}
                event_id = str(body.get("event_id"))
                about = self.index.events([event_id]).get(event_id)
                who = f" to {body.get('recipient')}" if what == "notification" else ""
                self.findings.append(
                    Finding(
                        f"unexpected_{what}",
                        f"{what} {ident}{who} is on the log but the policy does not give it"
                        + ("" if about else " (its event is not on the log)"),
                        row[1],
                        row[2],
                        row[3],
                        event_id,
                        order=about[2] if about else self.index.place(row[4]),
                    )
                )
                if what == "notification":
                    self.notifications += 1
                else:
                    self.decisions += 1
