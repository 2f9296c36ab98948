"""What each organisation received and why, as a table a person can read on a terminal.

Pure: notifications, acknowledgements and delivery channels in, text out.
``jigsaw demo`` prints it; it suits any read-out of inboxes by an operator.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence

from broker.delivery.directory import Entry
from broker.routing.model import ACK_KINDS, Ack, Notification

__all__ = ["Labels", "render_inboxes"]

KIND_ORDER = (
    "police",
    "gp_practice",
    "midwifery",
    "health_visiting",
    "school",
    "childrens_social_care",
    "marac",
    "adult_services",
    "partnership",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Labels:
    """How to name things for a reader: events by case and step, people by handle."""

    events: Mapping[str, tuple[str, str]]  # event id -> (case, step ref)
    rename: Callable[[str], str] = lambda text: text  # e.g. NHS numbers to handles in reasons


def _when(t: dt.datetime | None) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%MZ") if t else "-"


def _ack_text(note: Notification, ack: Ack | None, now: dt.datetime) -> str:
    if note.kind not in ACK_KINDS:
        return "no acknowledgement needed"
    if ack is not None:
        return f"acknowledged by {ack.by}"
    if note.ack_by is not None and note.ack_by <= now:
        return f"NOT acknowledged (was due {_when(note.ack_by)})"
    return f"awaiting, due {_when(note.ack_by)}"


def _row(note: Notification, labels: Labels) -> tuple[str, str, str, str]:
    case, ref = labels.events.get(note.event_id, ("-", note.event_id[:8]))
    kind = note.kind + (f" [{', '.join(note.flags)}]" if note.flags else "")
    if note.view != "full":
        kind += f" ({note.view} view)"
    return case, kind, note.priority, f"{ref} · {note.event_type}"


def render_inboxes(
    notes: Iterable[Notification],
    *,
    acks: Mapping[str, Ack],
    channels: Mapping[str, str],
    directory: Sequence[Entry],
    labels: Labels,
    now: dt.datetime,
    width: int = 120,
) -> str:
    """One block per organisation (police first, the partnership last), one row per notification.

    Args:
        notes: every notification, in the order sent.
        acks: acknowledgement by notification id.
        channels: how each notification went (``webhook``, ``inbox``, ``dead letter → inbox``) by id.
        directory: the organisations, for names, kinds and safeguarding leads.
        labels: event and person names for the reader.
        now: for telling overdue acknowledgements from awaited ones.
        width: the terminal's width.
    """
    by_org: dict[str, list[Notification]] = {}
    for note in notes:
        by_org.setdefault(note.recipient, []).append(note)
    entries = {e.org_id: e for e in directory}
    order = sorted(
        set(entries) | set(by_org),
        key=lambda o: (KIND_ORDER.index(entries[o].kind) if o in entries and entries[o].kind in KIND_ORDER else 99, o),
    )
    lines: list[str] = []
    silent: list[str] = []
    wrap = textwrap.TextWrapper(width=max(60, width), initial_indent="      why: ", subsequent_indent=" " * 11)
    for org in order:
        received = by_org.get(org, [])
        entry = entries.get(org)
        if not received:
            silent.append(org)
            continue
        heading = f"{org}  {entry.name} ({entry.kind.replace('_', ' ')})" if entry else org
        lead = f" · safeguarding lead: {entry.safeguarding_lead}" if entry and entry.safeguarding_lead else ""
        lines += ["", f"{heading}{lead} · {len(received)} received", "=" * min(width, 100)]
        rows = [_row(n, labels) for n in received]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for number, (note, row) in enumerate(zip(received, rows, strict=True), 1):
            cells = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row))
            lines.append(f"  {number:>2}  {cells}  {_when(note.at)}")
            how = channels.get(note.notification_id, "pending")
            lines.append(f"      {how}; {_ack_text(note, acks.get(note.notification_id), now)}")
            lines += wrap.wrap(labels.rename(note.reason))
    if silent:
        lines += ["", "Received nothing: " + ", ".join(silent)]
    return "\n".join(lines)
