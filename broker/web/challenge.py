"""Raising a professional challenge about a child from a notification (``challenge.raised``).

A professional who disagrees with another agency's handling of a child (the
review's health visitor, whose challenge "went outside any recorded process")
raises it here. Jigsaw publishes a ``challenge.raised`` event as the person's
organisation, signed with that organisation's key when Jigsaw holds one
(``WebData.can_publish``), through the same intake as ``POST /v1/events``; the
router then tells whom rule R9 says. Without a key the page says to raise it
from the organisation's own system. ``children_named`` and ``validate`` are pure.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from broker.errors import JigsawError
from broker.web import explain
from broker.web.app import PREFIX, SESSION, WEB, redirect, render
from broker.web.data import names_of
from broker.web.signin import require_person

__all__ = ["LEVELS", "MAX_SUMMARY", "add_routes", "children_named", "validate"]

MAX_SUMMARY = 1000
LEVELS = {
    "1": "Stage 1: between the practitioners involved",
    "2": "Stage 2: between their managers",
    "3": "Stage 3: between senior managers",
    "4": "Stage 4: to the safeguarding partnership",
}
_CHILD_FIELDS = ("child", "children", "children_present", "children_in_household")


def children_named(content: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The children a notification's content names (PersonRefs), each once."""
    found: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    data = content.get("data")
    for source in (data if isinstance(data, Mapping) else {}, content):
        for field in _CHILD_FIELDS:
            value = source.get(field)
            for ref in value if isinstance(value, list) else [value]:
                if not isinstance(ref, Mapping) or not (ref.get("nhs_number") or ref.get("local_id")):
                    continue
                key = (str(ref.get("nhs_number") or ""), str(ref.get("local_id") or ""))
                if key not in seen:
                    seen.add(key)
                    found.append({k: ref.get(k) for k in ("nhs_number", "local_id", "name", "date_of_birth")})
    return found


def validate(
    form: Mapping[str, str], children: list[dict[str, Any]], orgs: set[str], today: dt.date
) -> tuple[dict[str, Any], dict[str, str]]:
    """The challenge's event data and the errors, field by field (GOV.UK error messages)."""
    errors: dict[str, str] = {}
    child: dict[str, Any] | None = None
    try:
        child = children[int(form.get("child", "0"))]
    except (ValueError, IndexError):
        errors["child"] = "Select the child the challenge is about"
    directed = form.get("directed_to", "").strip()
    if directed not in orgs:
        errors["directed_to"] = "Select the organisation the challenge is to"
    level = form.get("level", "")
    if level not in LEVELS:
        errors["level"] = "Select the stage of the challenge"
    summary = form.get("summary", "").strip()
    if not summary:
        errors["summary"] = "Enter what you are challenging and what you are asking for"
    elif len(summary) > MAX_SUMMARY:
        errors["summary"] = f"The challenge must be {MAX_SUMMARY} characters or fewer"
    respond_by: dt.date | None = None
    try:
        respond_by = dt.date(int(form.get("year", "")), int(form.get("month", "")), int(form.get("day", "")))
    except ValueError:
        errors["respond_by"] = "Enter a real date to respond by, for example 27 3 2026"
    if respond_by is not None and respond_by <= today:
        errors["respond_by"] = "The date to respond by must be in the future"
    if errors:
        return {}, errors
    assert child is not None and respond_by is not None
    data = {
        "challenge_ref": f"CH-{today:%Y%m%d}-{secrets.token_hex(3).upper()}",
        "child": child,
        "directed_to": directed,
        "level": int(level),
        "summary": summary,
        "respond_by": respond_by.isoformat(),
    }
    return data, {}


async def _context(request: web.Request) -> dict[str, Any]:
    """The notification, the children it names and the organisations a challenge may go to (404 otherwise)."""
    person = require_person(request)
    state = request.app[WEB]
    nid = request.match_info["notification_id"]
    found = await state.data.notification(person.org_id, nid)
    if found is None or person.role != "professional":
        raise web.HTTPNotFound()
    note, _ = found
    children = children_named(note.content)
    if not children:
        raise web.HTTPNotFound()
    directory = names_of(await state.data.directory())
    orgs = {o for o in (*note.also_notified, str(note.content.get("source", "")), *directory) if o}
    orgs.discard(person.org_id)
    orgs = {o for o in orgs if not o.startswith("(")}  # a withheld organisation cannot be challenged by name
    return {
        "note": note,
        "children": children,
        "orgs": sorted(orgs),
        "directory": directory,
        "default_org": str(note.content.get("source", "")),
        "can_publish": state.data.can_publish(person.org_id, state.clock()),
        "levels": LEVELS,
        "describe": explain.content_rows,
    }


async def challenge_form(request: web.Request) -> web.StreamResponse:
    """``GET /web/notifications/{id}/challenge``: the form."""
    context = await _context(request)
    return render(request, "challenge.html", title="Raise a professional challenge", errors={}, form={}, **context)


async def raise_challenge(request: web.Request) -> web.StreamResponse:
    """``POST /web/notifications/{id}/challenge``: publish ``challenge.raised`` as the person's organisation."""
    context = await _context(request)
    state = request.app[WEB]
    person = require_person(request)
    form = {k: str(v) for k, v in (await request.post()).items()}
    data, errors = validate(form, context["children"], set(context["orgs"]), state.clock().date())
    if not errors and not context["can_publish"]:
        errors["summary"] = "Jigsaw cannot sign for your organisation: raise the challenge from its own system"
    if not errors:
        try:
            event_id = await state.data.raise_challenge(person, data, state.clock())
        except JigsawError as exc:
            errors["summary"] = f"The challenge was refused: {exc.message}"
        else:
            await state.data.record_access(person, "challenge", [context["note"].notification_id], event_id=event_id)
            request[SESSION].flash = f"Challenge {data['challenge_ref']} raised with {data['directed_to']}"
            return redirect(f"{PREFIX}/notifications/{context['note'].notification_id}")
    return render(
        request,
        "challenge.html",
        status=400,
        title="Error: Raise a professional challenge",
        errors=errors,
        form=form,
        **context,
    )


def add_routes(app: web.Application) -> None:
    """Mount the challenge form."""
    app.router.add_get("/notifications/{notification_id}/challenge", challenge_form)
    app.router.add_post("/notifications/{notification_id}/challenge", raise_challenge)
