"""The partnership admin's page: the directory, delivery status per organisation, signing keys and credentials.

What today needs ``jigsaw keys`` and JSON files, on one page for a person
with the ``admin`` role: every organisation in the directory with its
endpoint (webhook or inbox) and safeguarding lead; how delivery to it is going
(last delivery, failed attempts, dead letters, notifications waiting in the
inbox); its signing keys, each revocable from here (a revocation reaches the
gateway within a second, and what the key signed before stays valid); and the
API credentials issued to it (labels and roles only: the file holds hashes).
``delivery_status`` is pure.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping

from aiohttp import web

from broker.delivery.records import DEAD_LETTER, INBOX, DeliveryRecord
from broker.errors import ConfigError
from broker.gateway.auth import ROLES
from broker.logging import get_logger
from broker.topics import ORG_KINDS
from broker.web.app import PREFIX, SESSION, WEB, redirect, render
from broker.web.signin import require_person

__all__ = ["OrgDelivery", "add_routes", "delivery_status"]

_log = get_logger("jigsaw.web.admin")


@dataclasses.dataclass(frozen=True, slots=True)
class OrgDelivery:
    """How delivery to one organisation is going."""

    delivered: int = 0
    last_delivered: dt.datetime | None = None
    failed_attempts: int = 0
    last_error: str | None = None
    dead_letters: int = 0
    inbox: int = 0


def delivery_status(records: Iterable[DeliveryRecord]) -> dict[str, OrgDelivery]:
    """Per recipient organisation, from the deliveries topic in log order."""
    out: dict[str, OrgDelivery] = {}
    for r in records:
        s = out.get(r.recipient, OrgDelivery())
        if r.kind == INBOX:
            s = dataclasses.replace(s, inbox=s.inbox + 1)
        elif r.kind == DEAD_LETTER:
            s = dataclasses.replace(s, dead_letters=s.dead_letters + 1, last_error=r.error or s.last_error)
        elif r.outcome == "delivered":
            s = dataclasses.replace(s, delivered=s.delivered + 1, last_delivered=r.at)
        else:
            s = dataclasses.replace(
                s, failed_attempts=s.failed_attempts + 1, last_error=r.error or f"{r.outcome} ({r.status})"
            )
        out[r.recipient] = s
    return out


def _require_admin(request: web.Request) -> None:
    if require_person(request).role != "admin":
        raise web.HTTPNotFound()  # the admin pages do not exist for anyone else


async def admin_page(request: web.Request) -> web.StreamResponse:
    """``GET /web/admin``: the partnership at a glance."""
    _require_admin(request)
    state = request.app[WEB]
    person = require_person(request)
    directory = await state.data.directory()
    status = delivery_status(await state.data.deliveries())
    keys = state.data.keys()
    credentials = state.data.credentials()
    orgs = sorted({*(e.org_id for e in directory), *status, *(k.org_id for k in keys)})
    await state.data.record_access(person, "admin", [])
    return render(
        request,
        "admin.html",
        title="Partnership administration",
        orgs=orgs,
        directory={e.org_id: e for e in directory},
        delivery=status,
        keys=keys,
        credentials=credentials,
        kinds=ORG_KINDS,
        roles=ROLES,
        now=state.clock(),
    )


async def revoke_key(request: web.Request) -> web.StreamResponse:
    """``POST /web/admin/keys/{key_id}/revoke``: revoke a signing key from now on."""
    _require_admin(request)
    state = request.app[WEB]
    person = require_person(request)
    key_id = request.match_info["key_id"]
    try:
        state.data.revoke_key(key_id, state.clock())
    except ConfigError as exc:
        request[SESSION].flash = f"Not revoked: {exc.message}"
    else:
        await state.data.record_access(person, "revoke_key", [], key_id=key_id)
        request[SESSION].flash = f"Key {key_id} revoked: events it signs from now on are refused"
    return redirect(f"{PREFIX}/admin")


def _field(form: Mapping[str, object], name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


async def issue_key(request: web.Request) -> web.StreamResponse:
    """``POST /web/admin/keys``: a new signing key for an organisation; its private file is shown once, here."""
    _require_admin(request)
    state = request.app[WEB]
    person = require_person(request)
    form = await request.post()
    org_id, kind = _field(form, "org_id"), _field(form, "kind")
    try:
        record, private = state.data.issue_key(org_id, kind, state.clock())
    except ConfigError as exc:
        request[SESSION].flash = f"No key issued: {exc.message}"
        return redirect(f"{PREFIX}/admin")
    await state.data.record_access(person, "issue_key", [], key_id=record.key_id, org_id=record.org_id)
    _log.info("key_issued", key_id=record.key_id, org_id=record.org_id, by=person.subject)  # never the key
    return render(
        request,
        "issued.html",
        title="Signing key issued",
        what="key",
        record=record,
        private=private.decode("utf-8"),
        download="data:application/json;base64," + base64.b64encode(private).decode("ascii"),
        filename=f"{record.key_id}.json",
    )


async def issue_credential(request: web.Request) -> web.StreamResponse:
    """``POST /web/admin/credentials``: a new API credential; its token is shown once, here."""
    _require_admin(request)
    state = request.app[WEB]
    person = require_person(request)
    form = await request.post()
    org_id, role, label = _field(form, "org_id"), _field(form, "role"), _field(form, "label")[:100]
    try:
        credential_id, token = state.data.issue_credential(org_id, role, label)
    except ConfigError as exc:
        request[SESSION].flash = f"No credential issued: {exc.message}"
        return redirect(f"{PREFIX}/admin")
    await state.data.record_access(
        person, "issue_credential", [], credential_id=credential_id, org_id=org_id, role=role
    )
    _log.info("credential_issued", credential_id=credential_id, org_id=org_id, role=role, by=person.subject)
    return render(
        request,
        "issued.html",
        title="API credential issued",
        what="credential",
        credential={"id": credential_id, "org_id": org_id, "role": role, "label": label},
        token=token,
    )


async def revoke_credential(request: web.Request) -> web.StreamResponse:
    """``POST /web/admin/credentials/{credential_id}/revoke``: remove an API credential; refused from now on."""
    _require_admin(request)
    state = request.app[WEB]
    person = require_person(request)
    credential_id = request.match_info["credential_id"]
    try:
        removed = state.data.revoke_credential(credential_id)
    except ConfigError as exc:
        request[SESSION].flash = f"Not revoked: {exc.message}"
    else:
        await state.data.record_access(
            person, "revoke_credential", [], credential_id=removed["id"], org_id=removed["org_id"]
        )
        _log.info("credential_revoked", credential_id=removed["id"], org_id=removed["org_id"], by=person.subject)
        request[
            SESSION
        ].flash = f"Credential {removed['id']} of {removed['org_id']} revoked: requests with its token are refused"
    return redirect(f"{PREFIX}/admin")


def add_routes(app: web.Application) -> None:
    """Mount the admin page and its forms."""
    app.router.add_get("/admin", admin_page)
    app.router.add_post("/admin/keys", issue_key)
    app.router.add_post("/admin/keys/{key_id}/revoke", revoke_key)
    app.router.add_post("/admin/credentials", issue_credential)
    app.router.add_post("/admin/credentials/{credential_id}/revoke", revoke_credential)
