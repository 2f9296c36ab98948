"""The pages a professional works in: the inbox, a notification (and acknowledging it), a child's chronology.

A person sees their own organisation's notifications only: another
organisation's notification id answers 404, exactly like an id that does not
exist. Every list, read and acknowledgement is recorded on ``jigsaw.access``
with the person (``WebData.record_access``); a chronology is recorded by the
chronology service, allowed or refused.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from aiohttp import web

from broker.logging import get_logger
from broker.nhs import is_valid_nhs_number, normalise_nhs_number
from broker.routing.model import Ack, Notification
from broker.web import explain
from broker.web.app import PREFIX, SESSION, WEB, redirect, render
from broker.web.challenge import children_named
from broker.web.data import names_of
from broker.web.listing import STATUSES, Filters, status_of
from broker.web.signin import require_person

__all__ = ["MAX_NOTE", "add_routes"]

_log = get_logger("jigsaw.web.pages")
MAX_NOTE = 2000


async def inbox(request: web.Request) -> web.StreamResponse:
    """``GET /web/inbox``: the organisation's notifications, newest first, filtered and paged."""
    person = require_person(request)
    state = request.app[WEB]
    started = time.perf_counter()
    filters = Filters.from_query(request.query)
    now = state.clock()
    page = await state.data.inbox_page(person.org_id, filters, now)
    await state.data.record_access(person, "list", [i.note.notification_id for i in page.items], query=filters.query())
    response = render(
        request,
        "inbox.html",
        title="Inbox",
        page=page,
        filters=filters,
        statuses=STATUSES,
        now=now,
        time_left=explain.time_left,
        link=lambda **changes: f"{PREFIX}/inbox?{urlencode(filters.query(**changes))}",
        size=page.size,
    )
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response


async def notification(request: web.Request) -> web.StreamResponse:
    """``GET /web/notifications/{id}``: one notification, explained; 404 unless it is the organisation's."""
    person = require_person(request)
    state = request.app[WEB]
    nid = request.match_info["notification_id"]
    found = await state.data.notification(person.org_id, nid)
    await state.data.record_access(person, "read", [nid], outcome="found" if found else "not_found")
    if found is None:
        raise web.HTTPNotFound()
    note, ack = found
    return await _notification_page(request, note, ack)


async def _notification_page(
    request: web.Request,
    note: Notification,
    ack: Ack | None,
    *,
    code: int = 200,
    error: str | None = None,
    text: str = "",
) -> web.StreamResponse:
    state = request.app[WEB]
    now = state.clock()
    directory = names_of(await state.data.directory())
    title = explain.event_title(note.event_type)
    return render(
        request,
        "notification.html",
        status=code,
        title=f"Error: {title}" if error else title,
        note=note,
        ack=ack,
        ack_status=status_of(note, ack, now),
        time_left=explain.time_left(note.ack_by, now),
        reason=explain.reason_in_words(note.reason),
        rows=explain.content_rows(note.content),
        view_text=explain.VIEW_TEXT.get(note.view, note.view),
        others=[(org, directory.get(org)) for org in note.also_notified],
        sender=directory.get(str(note.content.get("source", ""))),
        can_challenge=bool(children_named(note.content)) and _professional(request),
        errors={"note": error} if error else {},
        note_text=text,
    )


async def acknowledge(request: web.Request) -> web.StreamResponse:
    """``POST /web/notifications/{id}/acknowledge``: acknowledge with a note of the action taken (required)."""
    person = require_person(request)
    state = request.app[WEB]
    nid = request.match_info["notification_id"]
    found = await state.data.notification(person.org_id, nid)
    if found is None:
        await state.data.record_access(person, "ack", [nid], outcome="not_found")
        raise web.HTTPNotFound()
    form = await request.post()
    text = str(form.get("note", "")).strip()
    error = None
    if not text:
        error = "Enter the action you have taken"
    elif len(text) > MAX_NOTE:
        error = f"The action taken must be {MAX_NOTE} characters or fewer"
    if error is not None:
        return await _notification_page(request, *found, code=400, error=error, text=text)
    done = await state.data.acknowledge(person, nid, text, state.clock())
    await state.data.record_access(person, "ack", [nid], outcome="acknowledged" if done.new else "already")
    _log.info("acknowledged", notification_id=nid, recipient=person.org_id, new=done.new)
    request[SESSION].flash = (
        "Notification acknowledged" if done.new else f"This notification was already acknowledged by {done.ack.by}"
    )
    return redirect(f"{PREFIX}/notifications/{nid}")


async def children(request: web.Request) -> web.StreamResponse:
    """``GET /web/children``: find a child's chronology by NHS number (``?nhs_number=``)."""
    person = require_person(request)
    raw = request.query.get("nhs_number")
    if raw is not None:
        nhs = normalise_nhs_number(raw)
        if is_valid_nhs_number(nhs):
            return redirect(f"{PREFIX}/children/{nhs}")
        return render(
            request,
            "children.html",
            status=400,
            title="Error: Find a child",
            value=raw,
            error="Enter a valid NHS number, like 999 123 4567",
            person_role=person.role,
        )
    return render(request, "children.html", title="Find a child", value="", error=None, person_role=person.role)


async def chronology(request: web.Request) -> web.StreamResponse:
    """``GET /web/children/{nhs_number}``: the child's chronology (auditors; the child's responsible CSC)."""
    person = require_person(request)
    state = request.app[WEB]
    nhs = normalise_nhs_number(request.match_info["nhs_number"])
    if not is_valid_nhs_number(nhs):
        raise web.HTTPNotFound()
    found = await state.data.chronology(person, nhs)
    await state.data.record_access(
        person,
        "chronology",
        [],
        nhs_number=nhs,
        outcome="allowed" if found else "refused",
        entries=len(found[0].entries) if found else 0,
    )
    if found is None:
        return render(
            request,
            "error.html",
            status=403,
            title="You cannot see this chronology",
            message="A child's chronology is for auditors and the child's responsible children's social care. "
            "Your request has been recorded.",
        )
    story, retracted = found
    directory = names_of(await state.data.directory())
    return render(
        request,
        "chronology.html",
        title=f"Chronology for NHS number {nhs}",
        story=story,
        retracted=retracted,
        directory=directory,
        nhs=nhs,
    )


def _professional(request: web.Request) -> bool:
    person = request[SESSION].person
    return person is not None and person.role == "professional"


def add_routes(app: web.Application) -> None:
    """Mount the pages."""
    app.router.add_get("/inbox", inbox)
    app.router.add_get("/notifications/{notification_id}", notification)
    app.router.add_post("/notifications/{notification_id}/acknowledge", acknowledge)
    app.router.add_get("/children", children)
    app.router.add_get("/children/{nhs_number}", chronology)
