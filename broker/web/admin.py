"""The partnership admin's page: the directory, delivery status per organisation, signing keys and credentials.

What otherwise needs ``jigsaw keys`` and JSON files, on one page for a person
with the ``admin`` role (anyone else gets 404): every organisation in the
directory with its endpoint (webhook or inbox) and safeguarding lead; how
delivery to it is going, from the store's delivery ledger (last delivery,
failed attempts, dead letters, notifications left in the inbox); its signing
keys, issued here (the private file shown once, to download; Jigsaw keeps the
copy ``jigsaw keys new`` keeps) and revoked here; and its API credentials,
issued here (the token shown once; the file holds its hash) and revoked here.
Every form carries the session's CSRF token, every change is recorded on
``jigsaw.access`` with the person, and the running gateway uses it at once.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from aiohttp import web

from broker.errors import ConfigError
from broker.gateway.auth import ROLES
from broker.logging import get_logger
from broker.topics import ORG_KINDS
from broker.web.app import PREFIX, SESSION, WEB, redirect, render
from broker.web.signin import require_person

__all__ = ["add_routes"]

_log = get_logger("jigsaw.web.admin")


def _require_admin(request: web.Request) -> None:
    if require_person(request).role != "admin":
        raise web.HTTPNotFound()  # the admin pages do not exist for anyone else


async def admin_page(request: web.Request) -> web.StreamResponse:
    """``GET /web/admin``: the partnership at a glance."""
    _require_admin(request)
    state = request.app[WEB]
    person = require_person(request)
    directory = await state.data.directory()
    keys = state.data.keys()
    credentials = state.data.credentials()
    orgs = sorted({*(e.org_id for e in directory), *(k.org_id for k in keys), *(c["org_id"] for c in credentials)})
    status = await state.data.delivery_status(orgs)
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
