"""Signing in and out: OpenID Connect, or the demo's local sign-in, and the idle timeout.

``GET /web/sign-in`` offers what is configured. OpenID Connect goes
``/web/sign-in/oidc`` (to the provider, with state, nonce and PKCE) and back to
``/web/callback``, where the ID token is verified and the person's organisation
and role come from the admin's mapping or the token's claims. The local
sign-in (``JIGSAW_WEB_LOCAL_SIGN_IN=true``, for the embedded demo only) is a
form listing the users file's people, and every page says it is on. Signing
out is a POST with the CSRF token; it ends the server-side session.
"""

from __future__ import annotations

from aiohttp import web

from broker.errors import SignInFailed
from broker.logging import get_logger
from broker.web.app import PREFIX, SESSION, TIMED_OUT, WEB, redirect, render
from broker.web.oidc import SignIn
from broker.web.people import Person

__all__ = ["add_routes", "require_person", "safe_return"]

_log = get_logger("jigsaw.web.signin")


def safe_return(target: str | None) -> str:
    """Where to go after signing in: a path of these pages only (never another site)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/inbox"


def require_person(request: web.Request) -> Person:
    """The signed-in person; otherwise the browser is sent to sign in (and brought back here)."""
    person: Person | None = request[SESSION].person
    if person is None:
        target = request.path_qs if request.method == "GET" else PREFIX + "/inbox"
        query = "?timed_out=1" if request.get(TIMED_OUT) else ""
        sep = "&" if query else "?"
        from urllib.parse import quote

        raise web.HTTPSeeOther(f"{PREFIX}/sign-in{query}{sep}return_to={quote(target, safe='')}")
    return person


async def sign_in_page(request: web.Request) -> web.StreamResponse:
    """``GET /web/sign-in``: the ways to sign in."""
    state = request.app[WEB]
    return render(
        request,
        "sign_in.html",
        title="Sign in",
        oidc=state.oidc is not None,
        local_people=state.users.local_people() if state.local_sign_in else [],
        return_to=safe_return(request.query.get("return_to")),
        timed_out=request.query.get("timed_out") == "1",
        error=None,
    )


async def start_oidc(request: web.Request) -> web.StreamResponse:
    """``GET /web/sign-in/oidc``: off to the identity provider."""
    state = request.app[WEB]
    if state.oidc is None:
        raise web.HTTPNotFound()
    url, pending = await state.oidc.start_sign_in(safe_return(request.query.get("return_to")))
    request[SESSION].pending = pending.to_dict()
    return web.Response(status=302, headers={"Location": url})


async def callback(request: web.Request) -> web.StreamResponse:
    """``GET /web/callback``: the provider sends the person back with a code; verify and sign them in."""
    state = request.app[WEB]
    session = request[SESSION]
    if state.oidc is None:
        raise web.HTTPNotFound()
    pending = session.pending
    session.pending = None  # one use, whatever happens
    try:
        if pending is None:
            raise SignInFailed("no sign-in was under way in this browser (or it timed out): start again")
        claims = await state.oidc.finish_sign_in(SignIn(**pending), request.query)
        person = state.users.person(claims)
        if person is None:
            raise SignInFailed(
                "you signed in, but Jigsaw does not know which organisation you act for: ask your partnership's "
                "Jigsaw administrator to add you"
            )
    except SignInFailed as exc:
        _log.warning("sign_in_failed", error=exc.code, message=exc.message)
        return render(
            request,
            "sign_in.html",
            status=401,
            title="Sign in",
            oidc=True,
            local_people=state.users.local_people() if state.local_sign_in else [],
            return_to=PREFIX + "/inbox",
            timed_out=False,
            error=exc.message,
        )
    return _signed_in(request, person, str(pending["return_to"]))


def _signed_in(request: web.Request, person: Person, return_to: str) -> web.StreamResponse:
    state = request.app[WEB]
    request[SESSION] = state.sessions.sign_in(request[SESSION], person, state.clock())
    _log.info("signed_in", org_id=person.org_id, role=person.role, via=person.via)
    return redirect(safe_return(return_to))


async def local_sign_in(request: web.Request) -> web.StreamResponse:
    """``POST /web/sign-in/local``: the demo's local sign-in as one of the users file's people."""
    state = request.app[WEB]
    if not state.local_sign_in:
        raise web.HTTPNotFound()
    form = await request.post()
    chosen = form.get("user")
    people = {p.subject: p for p in state.users.local_people()}
    person = people.get(chosen) if isinstance(chosen, str) else None
    if person is None:
        return render(
            request,
            "sign_in.html",
            status=400,
            title="Sign in",
            oidc=state.oidc is not None,
            local_people=list(people.values()),
            return_to=safe_return(str(form.get("return_to", ""))),
            timed_out=False,
            error="Choose who to sign in as",
        )
    return _signed_in(request, person, str(form.get("return_to", "")))


async def sign_out(request: web.Request) -> web.StreamResponse:
    """``POST /web/sign-out``: end the session (and, with OpenID Connect, go to the provider's sign-out)."""
    state = request.app[WEB]
    session = request[SESSION]
    was = session.person
    state.sessions.drop(session.sid)
    request[SESSION] = state.sessions.new(state.clock())
    if was is not None:
        _log.info("signed_out", org_id=was.org_id, via=was.via)
    return redirect(PREFIX + "/signed-out" + ("?via=oidc" if was is not None and was.via == "oidc" else ""))


async def signed_out(request: web.Request) -> web.StreamResponse:
    """``GET /web/signed-out``: and, after an OpenID Connect sign-in, a link to sign out at the provider too."""
    state = request.app[WEB]
    provider_sign_out = None
    if state.oidc is not None and request.query.get("via") == "oidc":
        base = state.base_url or f"{request.scheme}://{request.host}"
        try:
            provider_sign_out = await state.oidc.end_session_url(base + PREFIX + "/sign-in")
        except SignInFailed:
            provider_sign_out = None  # the provider is unreachable: Jigsaw's own session has ended anyway
    return render(request, "signed_out.html", title="You have signed out", provider_sign_out=provider_sign_out)


async def start(request: web.Request) -> web.StreamResponse:
    """``GET /web/``: the inbox when signed in, else the sign-in page."""
    return redirect(PREFIX + ("/inbox" if request[SESSION].person else "/sign-in"))


def add_routes(app: web.Application) -> None:
    """Mount the sign-in routes."""
    app.router.add_get("/", start)
    app.router.add_get("/sign-in", sign_in_page)
    app.router.add_get("/sign-in/oidc", start_oidc)
    app.router.add_post("/sign-in/local", local_sign_in)
    app.router.add_get("/callback", callback)
    app.router.add_post("/sign-out", sign_out)
    app.router.add_get("/signed-out", signed_out)
