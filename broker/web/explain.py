"""Words for people: event types, kinds, views, flags, reasons and deadlines (pure).

A notification on the log is written for machines (``csc.child_protection_plan``,
``restricted``, ``R3``); a GP practice's safeguarding lead needs "Child
protection plan", "Restricted: keep this out of any record the patient or a
parent with proxy access can read", and "You are the registered GP of the
mother of the child". Everything here is a pure function of its arguments.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "EVENT_TITLES",
    "FLAG_TEXT",
    "KIND_TEXT",
    "VIEW_TEXT",
    "content_rows",
    "event_title",
    "field_label",
    "reason_in_words",
    "time_left",
    "when",
]

EVENT_TITLES = {
    "police.domestic_abuse_incident": "Domestic abuse incident",
    "csc.child_in_need_plan": "Child in need plan",
    "csc.child_protection_plan": "Child protection plan",
    "csc.strategy_meeting": "Strategy meeting",
    "csc.pre_birth_assessment": "Pre-birth assessment",
    "csc.household_composition": "Household composition",
    "midwifery.pregnancy_booked": "Pregnancy booked",
    "midwifery.birth_notified": "Birth notified",
    "midwifery.safeguarding_concern": "Midwifery safeguarding concern",
    "marac.case_heard": "MARAC case heard",
    "gp.safeguarding_information": "GP safeguarding information",
    "gp.registration": "GP registration",
    "adult.concern_about_parent": "Concern about a parent (adult services)",
    "challenge.raised": "Professional challenge raised",
    "challenge.resolved": "Professional challenge resolved",
    "record.retracted": "Record retracted",
    "link.professional_assigned": "Professional assigned",
    "identity.same_person": "Records matched as the same person",
    "identity.sensitive_record": "Sensitive record",
    "directory.organisation": "Directory entry",
}

KIND_TEXT = {
    "alert": "Alert",
    "catch_up": "Catch-up: something you had not been told",
    "history": "History: what happened before you were involved",
    "pre_birth_alert": "Pre-birth alert",
    "escalation": "Escalation: not acknowledged in time",
    "retraction": "Retraction: an earlier record was withdrawn",
}

VIEW_TEXT = {
    "full": "Full record: everything the publishing agency sent.",
    "education": (
        "Education view: only the kind of event, its date, which child, and whether the child was present. "
        "Schools are not sent the details."
    ),
    "perpetrator": "Perpetrator view: what you need about the person you hold the record of, and no more.",
}

FLAG_TEXT = {
    "restricted": (
        "Restricted: keep this out of any record the patient, or a parent with proxy access, can read "
        "(for example mark it as not visible in online access)."
    ),
    "perpetrator_record": (
        "Perpetrator record: you hold the record of the alleged perpetrator. Do not tell the patient what was "
        "shared or who shared it; it could put the victim and children at risk."
    ),
}

_ROLE = re.compile(r"(?P<role>[a-z][a-z _-]*) \((?P<who>[^()]*)\)")
_FIELD_LABELS = {
    "nhs_number": "NHS number",
    "local_id": "Local id",
    "date_of_birth": "Date of birth",
    "occurred_at": "Happened",
    "source": "Sent by",
    "lawful_basis": "Lawful basis",
    "event_id": "Event id",
    "event_type": "Event type",
    "marac_referral": "MARAC referral",
    "child_present": "Child present",
}


def event_title(event_type: str) -> str:
    """A heading for an event type (``csc.child_protection_plan`` reads "Child protection plan")."""
    if event_type in EVENT_TITLES:
        return EVENT_TITLES[event_type]
    return event_type.rpartition(".")[2].replace("_", " ").capitalize() or event_type


def field_label(name: str) -> str:
    """A label for a field name (``date_of_birth`` reads "Date of birth")."""
    return _FIELD_LABELS.get(name, name.replace("_", " ").capitalize())


def reason_in_words(reason: str) -> str:
    """The router's reason path as a sentence addressed to the recipient.

    ``registered GP (GP-B83001) of mother (9999385702) of child (9992178531)``
    reads "You are the registered GP (GP-B83001) of the mother (NHS number
    9999385702) of the child (NHS number 9992178531)."
    """
    text = reason.strip()
    if not text:
        return "The router did not record a reason."
    parts = [p.strip() for p in text.split(";")]
    sentences = []
    for i, part in enumerate(parts):
        words = _ROLE.sub(_person, part)
        if " of " in part and not part.startswith(("not ", "first ")):
            words = ("You are the " if i == 0 else "You are also the ") + words
        sentences.append(words[:1].upper() + words[1:])
    return ". ".join(s.rstrip(".") for s in sentences) + "."


def _person(match: re.Match[str]) -> str:
    role, who = match.group("role").strip(), match.group("who").strip()
    if who.isdigit() and len(who) == 10:
        return f"{role} (NHS number {who[:3]} {who[3:6]} {who[6:]})"
    return f"{role} ({who})"


def _local_zone() -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo("Europe/London")
    except zoneinfo.ZoneInfoNotFoundError:  # no time zone database on this machine: say UTC rather than guess
        return dt.UTC


LOCAL = _local_zone()


def when(t: dt.datetime | None) -> str:
    """A time as people in England read it, in UK time: ``10 January 2020, 11:00 GMT``, ``16 May 2020, 20:00 BST``."""
    if t is None:
        return ""
    t = t.astimezone(LOCAL)
    return f"{t.day} {t:%B %Y}, {t:%H:%M} {t.tzname()}"


def time_left(deadline: dt.datetime | None, now: dt.datetime) -> str:
    """How long until the acknowledgement is due, or how late it is (``3 hours left``, ``2 days overdue``)."""
    if deadline is None:
        return ""
    seconds = (deadline - now).total_seconds()
    span = _span(abs(seconds))
    return f"{span} left" if seconds >= 0 else f"{span} overdue"


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{max(minutes, 1)} minute{'s' if minutes != 1 else ''}"
    hours = minutes // 60
    if hours < 48:
        rest = minutes % 60
        return f"{hours} hour{'s' if hours != 1 else ''}" + (f" {rest} min" if rest and hours < 10 else "")
    days = hours // 24
    return f"{days} days"


def content_rows(content: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The content a recipient may see as (label, value) rows: the event's data first, then its envelope.

    Nested people become one row each ("Child: Older sibling 1, NHS number 999 217 8531, born 2013-05-01").
    """
    data = content.get("data")
    rows = list(_rows(data)) if isinstance(data, Mapping) else []
    for key, value in content.items():
        if key == "data" or value in (None, "", [], {}):
            continue
        rows.append((field_label(key), _text(value)))
    return rows


def _rows(data: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for key, value in data.items():
        if value in (None, "", [], {}):
            continue
        yield field_label(key), _text(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        if "nhs_number" in value or "local_id" in value:
            return _person_text(value)
        return "; ".join(f"{field_label(str(k))}: {_text(v)}" for k, v in value.items() if v not in (None, ""))
    if isinstance(value, list | tuple):
        return "; ".join(_text(v) for v in value) or "none"
    return str(value)


def _person_text(ref: Mapping[str, Any]) -> str:
    bits = [str(ref["name"])] if ref.get("name") else []
    nhs = str(ref.get("nhs_number") or "")
    if nhs:
        bits.append(f"NHS number {nhs[:3]} {nhs[3:6]} {nhs[6:]}" if len(nhs) == 10 else f"NHS number {nhs}")
    if ref.get("local_id"):
        bits.append(f"local id {ref['local_id']}")
    if ref.get("date_of_birth"):
        bits.append(f"born {ref['date_of_birth']}")
    return ", ".join(bits) or "unnamed"
