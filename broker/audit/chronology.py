"""One child's story across every agency, from the log (pure).

``build_chronology`` takes the decoded events, the notifications, decision
records and acknowledgements the log holds, and an NHS number, and returns the
child's chronology: what happened (events naming the child, events about others
that were routed because of the child, and the pregnancy the child was born
from), who was told and why, who acknowledged, and what was decided not to
share and why. ``to_json``/``to_csv`` write it out; ``chronology_html.py``
renders the printable page.

Event entries carry the event's type, publisher, times, the child's part in it
(the fields that name the child) and a few coded facts (status, risk level,
decision, category, organisations): never free-text summaries or other
people's details.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from broker.model import Event
from broker.nhs import normalise_nhs_number
from broker.routing.model import Ack, Decision, Notification, iso

__all__ = ["COLUMNS", "FORMULA_PREFIXES", "Chronology", "Entry", "build_chronology", "csv_cell", "to_csv", "to_json"]

# Coded facts an event entry may show: enumerations, flags, dates and organisation ids, never free text.
_FACTS = (
    "status",
    "risk_level",
    "marac_referral",
    "decision",
    "category",
    "level",
    "role",
    "relationship",
    "sensitive",
    "practice",
    "org",
    "school",
    "health_visiting",
    "midwifery_service",
    "directed_to",
    "effective_date",
    "held_on",
    "heard_on",
    "born_on",
    "expected_date",
    "respond_by",
)
_RANK = {"event": 0, "not shared": 1, "notification": 2, "acknowledgement": 3}
COLUMNS = (
    "at",
    "what",
    "event_type",
    "organisation",
    "kind",
    "priority",
    "rule",
    "reason",
    "detail",
    "event_id",
    "notification_id",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One line of the chronology."""

    at: dt.datetime
    what: str  # event, notification, acknowledgement, not shared
    event_id: str
    event_type: str
    organisation: str  # the publisher of an event; the recipient of a notification, ack or decision not to share
    kind: str = ""  # the notification kind (alert, catch_up, history, ...)
    priority: str = ""
    rule: str = ""
    reason: str = ""
    detail: str = ""
    notification_id: str = ""

    def to_dict(self) -> dict[str, str]:
        return {c: (iso(self.at) or "") if c == "at" else str(getattr(self, c)) for c in COLUMNS}


@dataclasses.dataclass(frozen=True, slots=True)
class Chronology:
    """A child's chronology."""

    nhs_number: str
    generated_at: dt.datetime
    integrity: str  # what is known of the log's integrity (a replay's verdict, or that it was not checked)
    entries: tuple[Entry, ...]

    @property
    def agencies(self) -> list[str]:
        """Every organisation that appears: publishers, recipients, acknowledgers."""
        return sorted({e.organisation for e in self.entries if e.organisation})

    def counts(self) -> dict[str, int]:
        out = {what: 0 for what in _RANK}
        for e in self.entries:
            out[e.what] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "nhs_number": self.nhs_number,
            "generated_at": iso(self.generated_at),
            "integrity": self.integrity,
            "agencies": self.agencies,
            "counts": self.counts(),
            "entries": [e.to_dict() for e in self.entries],
        }


def _refs(value: Any, path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(top-level field, PersonRef) for every PersonRef anywhere in an event's data."""
    if isinstance(value, Mapping):
        if "nhs_number" in value and "local_id" in value:
            yield path, value
            return
        for k, v in value.items():
            yield from _refs(v, path or str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _refs(v, path)


def _keys(ref: Mapping[str, Any]) -> set[str]:
    keys = set()
    if ref.get("nhs_number"):
        keys.add("nhs:" + normalise_nhs_number(str(ref["nhs_number"])))
    if ref.get("local_id"):
        keys.add("local:" + str(ref["local_id"]))
    return keys


def _child_keys(nhs: str, events: Sequence[Event]) -> set[str]:
    """The child's keys: the NHS number, local ids sent with it, and refs an identity match joined to it."""
    keys = {"nhs:" + nhs}
    for _ in range(3):  # joins can chain (a local id joined to another local id); a few passes settle it
        before = len(keys)
        for event in events:
            for _, ref in _refs(event.data):
                found = _keys(ref)
                if found & keys:
                    keys |= found
            if event.event_type == "identity.same_person":
                a, b = _keys(event.data.get("a") or {}), _keys(event.data.get("b") or {})
                if a & keys or b & keys:
                    keys |= a | b
        if len(keys) == before:
            break
    return keys


def _detail(event: Event, roles: Sequence[str]) -> str:
    parts = [f"child named as: {', '.join(sorted(set(roles)))}"] if roles else []
    for name in _FACTS:
        value = event.data.get(name)
        if value is None or isinstance(value, (Mapping, list)):
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        parts.append(f"{name}: {text}")
    return "; ".join(parts)


def build_chronology(
    nhs_number: str,
    events: Sequence[tuple[dt.datetime, Event]],
    notifications: Sequence[Notification],
    decisions: Sequence[Decision],
    acks: Sequence[Ack],
    *,
    integrity: str,
    generated_at: dt.datetime,
) -> Chronology:
    """The chronology of the child with this NHS number.

    Args:
        events: (accepted at, event) for every event on the log, in log order.
        integrity: a sentence on whether the log was verified (shown at the top).
    """
    nhs = normalise_nhs_number(nhs_number)
    keys = _child_keys(nhs, [e for _, e in events])
    labels = {k.split(":", 1)[1] for k in keys}
    roles: dict[str, list[str]] = {}
    bookings: set[str] = set()
    for _, event in events:
        for field, ref in _refs(event.data):
            if _keys(ref) & keys:
                roles.setdefault(event.event_id, []).append(field)
                if event.event_type == "midwifery.birth_notified" and event.data.get("booking_ref"):
                    bookings.add(str(event.data["booking_ref"]))
    included = set(roles)
    included |= {e.event_id for _, e in events if bookings and str(e.data.get("booking_ref")) in bookings}
    mentions = [n for n in notifications if any(f"({label})" in n.reason for label in labels)]
    included |= {n.event_id for n in mentions}
    included |= {
        e.event_id
        for _, e in events
        if e.event_type == "record.retracted" and str(e.data.get("original_event_id")) in included
    }
    entries: list[Entry] = []
    types: dict[str, str] = {}
    for at, event in events:
        types[event.event_id] = event.event_type
        if event.event_id in included:
            entries.append(
                Entry(
                    at,
                    "event",
                    event.event_id,
                    event.event_type,
                    event.source,
                    detail=_detail(event, roles.get(event.event_id, [])),
                )
            )
    told: dict[str, Notification] = {}
    for n in notifications:
        if n.event_id in included and n.notification_id not in told:
            told[n.notification_id] = n
            entries.append(
                Entry(
                    n.at,
                    "notification",
                    n.event_id,
                    n.event_type,
                    n.recipient,
                    n.kind,
                    n.priority,
                    n.rule,
                    n.reason,
                    f"acknowledge by {iso(n.ack_by)}" if n.ack_by else "",
                    n.notification_id,
                )
            )
    for ack in acks:
        acked = told.get(ack.notification_id)
        if acked is not None:
            n = acked
            late = n.ack_by is not None and ack.at > n.ack_by
            entries.append(
                Entry(
                    ack.at,
                    "acknowledgement",
                    n.event_id,
                    n.event_type,
                    ack.recipient,
                    n.kind,
                    detail=f"by {ack.by}" + (" (late)" if late else ""),
                    notification_id=n.notification_id,
                )
            )
    for d in decisions:
        if d.event_id not in included:
            continue
        for w in d.withheld:
            entries.append(
                Entry(
                    d.at,
                    "not shared",
                    d.event_id,
                    d.event_type,
                    w.org or "",
                    rule=w.rule,
                    reason=w.reason,
                    detail=f"lawful basis {d.lawful_basis}; consent {d.consent}",
                )
            )
    entries.sort(key=lambda e: (e.at, _RANK[e.what], e.event_id, e.organisation))
    return Chronology(nhs, generated_at, integrity, tuple(entries))


def to_json(chronology: Chronology) -> str:
    """The chronology as a JSON document."""
    return json.dumps(chronology.to_dict(), indent=2, ensure_ascii=False) + "\n"


def to_csv(chronology: Chronology) -> str:
    """The chronology as CSV: one row per entry, the columns of ``COLUMNS``."""
    out = io.StringIO()
    # Rows end in CRLF (RFC 4180), so a cell holding a carriage return or a newline is quoted and
    # can never end a row.
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for entry in chronology.entries:
        writer.writerow({k: csv_cell(v) for k, v in entry.to_dict().items()})
    return out.getvalue()


# What makes a spreadsheet read a cell as a formula (OWASP, CSV Injection): =, +, -, @, tab and
# carriage return, as the first character; also line feed and NUL (OWASP ASVS 1.2.10 lists NUL),
# and the full-width forms of = + - @ that some spreadsheets fold to the ASCII ones.
FORMULA_PREFIXES = frozenset("=+-@\t\r\n\x00\uff1d\uff0b\uff0d\uff20")


def csv_cell(value: str) -> str:
    """A cell a spreadsheet would run as a formula, kept as text with a leading apostrophe.

    Leading spaces do not hide a formula (``" =1+1"``): the first character that is not a space
    decides. Quotes and separators inside the cell are the ``csv`` module's to escape (RFC 4180).
    """
    first = value.lstrip(" ")[:1]
    return "'" + value if first and first in FORMULA_PREFIXES else value
