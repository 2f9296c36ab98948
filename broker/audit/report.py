"""What a replay found and how much it covered (pure)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from broker.audit.findings import ERROR, Finding
from broker.audit.window import Window
from broker.log.base import Record
from broker.model import Event
from broker.routing.model import Ack, iso

__all__ = ["Report"]


@dataclasses.dataclass(slots=True)
class Report:
    """What a replay found and how much it covered."""

    findings: list[Finding]
    events: int = 0
    acks: int = 0
    verified: int = 0  # events whose signatures and fields were checked (those in the window)
    records: int = 0  # input records checked against the signed tree heads
    heads: int = 0  # signed tree heads that verified (each consistent with the one before)
    tree_size: int = 0  # the size of the newest of them
    pending: int = 0  # inputs the router had not reached (fed to the policy, outputs optional)
    notifications: int = 0  # compared
    decisions: int = 0  # compared
    resumed_from: int = 0  # the input offset the replay started at (a router snapshot's)
    reached: dt.datetime | None = None
    window: Window | None = None
    # Kept only for a chronology (they grow with the log):
    decoded: list[tuple[Record, Event]] = dataclasses.field(default_factory=list)
    notification_records: list[Record] = dataclasses.field(default_factory=list)
    decision_records: list[Record] = dataclasses.field(default_factory=list)
    acks_seen: list[Ack] = dataclasses.field(default_factory=list)
    snapshot: bytes | None = None  # the routing state after the last input (state_snapshot JSON), when asked for

    @property
    def errors(self) -> list[Finding]:
        """The findings that fail the replay."""
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
        if self.resumed_from:
            span += f", resumed at input offset {self.resumed_from} from a router snapshot"
        codes: dict[str, int] = {}
        for f in self.errors:
            codes[f.code] = codes.get(f.code, 0) + 1
        lines = [
            f"replayed {self.events} events and {self.acks} acknowledgements ({span})",
            f"signatures: {self.verified} events checked against the key registry as it stood when each was accepted",
            f"tree heads: {self.records} records checked against the leaves of {self.heads} signed tree heads "
            f"(newest: size {self.tree_size}), each consistent with the one before",
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
