"""A child's chronology: what happened, who was told, who acknowledged, what was not shared; safe to render."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import pytest

from broker.audit.chronology import FORMULA_PREFIXES, build_chronology, csv_cell, to_csv, to_json
from broker.audit.chronology_html import to_html
from broker.model import Event
from broker.routing.model import Ack, Decision, Notification, Withheld

T = dt.datetime(2022, 1, 1, 9, 0, tzinfo=dt.UTC)
CHILD = "9990000018"
MOTHER = "9990000026"
OTHER = "9990000034"


def _ref(nhs: str | None, local: str | None = None) -> dict[str, Any]:
    return {"nhs_number": nhs, "local_id": local, "name": "Synthetic", "date_of_birth": None}


def _event(eid: str, etype: str, hours: int, **data: Any) -> tuple[dt.datetime, Event]:
    at = T + dt.timedelta(hours=hours)
    return at, Event(eid, etype, "ORG-A", at, at, "basis", "not_sought", data)


def _note(eid: str, org: str, hours: int, reason: str, kind: str = "alert") -> Notification:
    at = T + dt.timedelta(hours=hours)
    return Notification(
        f"n-{eid}-{org}",
        kind,
        eid,
        "police.domestic_abuse_incident",
        org,
        at,
        "urgent",
        (),
        "full",
        reason,
        (),
        at + dt.timedelta(days=1),
        "R1",
        {},
    )


EVENTS = [
    _event(
        "e1",
        "police.domestic_abuse_incident",
        0,
        victim=_ref(MOTHER),
        children_present=[_ref(CHILD)],
        summary='=HYPERLINK("x") <script>alert(1)</script>',
        risk_level="high",
    ),
    _event("e2", "gp.safeguarding_information", 1, person=_ref(MOTHER), summary="free text"),
    _event("e3", "identity.same_person", 2, a=_ref(None, "POLICE:C7"), b=_ref(CHILD), basis="MASH"),
    _event("e4", "csc.child_in_need_plan", 3, child=_ref(None, "POLICE:C7"), status="started"),
    _event("e5", "gp.safeguarding_information", 4, person=_ref(OTHER), summary="about someone else"),
    _event("e6", "record.retracted", 5, original_event_id="e1", reason="wrong child"),
]
NOTES = [
    _note("e1", "HV-1", 0, f"health visiting (HV-1) of child ({CHILD}) present"),
    _note("e1", "GP-1", 0, f"registered GP (GP-1) of victim ({MOTHER})"),
    _note(
        "e2", "CSC-1", 1, f"children's social care (CSC-1) responsible for child ({CHILD}) of whom ({MOTHER}) is mother"
    ),
    _note("e5", "CSC-1", 4, f"history item of mother ({OTHER})"),
]
ACKS = [Ack("n-e1-HV-1", "HV-1", "Duty HV <b>", T + dt.timedelta(hours=30))]
DECISIONS = [
    Decision(
        "d1",
        "e1",
        "police.domestic_abuse_incident",
        T,
        "R1",
        "alert",
        (),
        (Withheld("SCHOOL-1", "R1", "a school may not receive <this>"),),
        "basis",
        "not_sought",
    ),
]


def _chronology() -> Any:
    return build_chronology(CHILD, EVENTS, NOTES, DECISIONS, ACKS, integrity="checked <ok>", generated_at=T)


def test_events_naming_the_child_by_nhs_number_or_a_joined_local_id_are_included() -> None:
    """The incident, the identity match and the plan on the joined local id are in; another person's event is not."""
    ids = {e.event_id for e in _chronology().entries if e.what == "event"}
    assert {"e1", "e3", "e4"} <= ids and "e5" not in ids


def test_events_routed_because_of_the_child_and_retractions_of_included_events_are_included() -> None:
    """The mother's GP information, told to CSC because of the child, is in; so is the retraction of the incident."""
    ids = {e.event_id for e in _chronology().entries if e.what == "event"}
    assert {"e2", "e6"} <= ids


def test_who_was_told_who_acknowledged_and_what_was_not_shared() -> None:
    """Every notification about an included event, the (late) acknowledgement and the withheld school."""
    entries = _chronology().entries
    told = {(e.event_id, e.organisation) for e in entries if e.what == "notification"}
    assert told == {("e1", "HV-1"), ("e1", "GP-1"), ("e2", "CSC-1")}
    [ack] = [e for e in entries if e.what == "acknowledgement"]
    assert ack.organisation == "HV-1" and "(late)" in ack.detail
    [withheld] = [e for e in entries if e.what == "not shared"]
    assert withheld.organisation == "SCHOOL-1" and withheld.rule == "R1"


def test_entries_are_in_time_order_with_each_event_before_its_notifications() -> None:
    """The timeline reads top to bottom."""
    entries = _chronology().entries
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    assert entries[0].what == "event" and entries[0].event_id == "e1"


def test_free_text_is_never_copied_into_the_chronology() -> None:
    """Summaries stay out; coded facts such as the risk level and the child's part come in."""
    text = to_json(_chronology())
    assert "HYPERLINK" not in text and "free text" not in text
    incident = next(e for e in json.loads(text)["entries"] if e["event_id"] == "e1" and e["what"] == "event")
    assert "risk_level: high" in incident["detail"] and "children_present" in incident["detail"]


def test_the_html_page_escapes_everything_and_runs_nothing() -> None:
    """Angle brackets from any field arrive escaped; the page has no script."""
    page = to_html(_chronology(), verified=True)
    assert "<b>" not in page and "&lt;b&gt;" in page and "&lt;this&gt;" in page and "checked &lt;ok&gt;" in page
    assert "<script" not in page and "@media print" in page


def test_csv_cells_that_a_spreadsheet_would_run_are_kept_as_text() -> None:
    """A reason starting with = is written with a leading quote."""
    notes = [_note("e1", "HV-1", 0, f"=cmd() child ({CHILD})")]
    csv_text = to_csv(build_chronology(CHILD, EVENTS, notes, [], [], integrity="", generated_at=T))
    assert "'=cmd()" in csv_text and ",=cmd()" not in csv_text


@pytest.mark.parametrize(
    "start",
    ["=", "+", "-", "@", "\t", "\r", "\n", "\x00", "\uff1d", "\uff0b", "\uff0d", "\uff20", "  =", " \t"],
)
def test_every_formula_prefix_owasp_lists_is_kept_as_text(start: str) -> None:
    """=, +, -, @, tab and CR (OWASP CSV Injection), LF, NUL and full-width forms, after spaces too: quoted."""
    value = f'{start}HYPERLINK("http://example.invalid")'
    assert csv_cell(value) == "'" + value
    assert start.strip(" ")[:1] in FORMULA_PREFIXES


@pytest.mark.parametrize("value", ["", "Plan started", "'already quoted", "12 Secret Lane", "a=b", "x-y@z"])
def test_cells_that_are_not_formulas_are_left_alone(value: str) -> None:
    """Only the first character that is not a space decides; text with = or @ inside is unchanged."""
    assert csv_cell(value) == value


def test_a_tab_or_carriage_return_reason_reaches_the_csv_quoted() -> None:
    """A reason starting with a tab or CR is written with a leading apostrophe, inside a quoted cell."""
    for start in ("\t", "\r"):
        notes = [_note("e1", "HV-1", 0, f"{start}=cmd() child ({CHILD})")]
        rows = list(
            csv.reader(
                io.StringIO(to_csv(build_chronology(CHILD, EVENTS, notes, [], [], integrity="", generated_at=T)))
            )
        )
        assert any(cell.startswith(f"'{start}=cmd()") for row in rows for cell in row)


def test_a_child_the_log_does_not_know_has_an_empty_chronology() -> None:
    """No entries, and the page says so."""
    empty = build_chronology("9990000042", EVENTS, NOTES, DECISIONS, ACKS, integrity="", generated_at=T)
    assert empty.entries == () and "holds nothing about this child" in to_html(empty)
