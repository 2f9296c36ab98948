"""The web pages' aiohttp sub-application, mounted by the gateway at ``/web/``.

``mount_web(parent, settings=..., data=..., clock=...)`` builds it and adds it
to the gateway's app (with ``/`` redirecting to it). Everything the pages
share lives in one ``WebState`` under the ``WEB`` app key: the templates
(Jinja2, autoescaped), the session store, the sign-in methods, the data
interface and the clock. One middleware loads the session, refuses a POST
without the session's CSRF token, sends the security headers on every
response (a strict Content-Security-Policy: no inline script, no other
origins), and turns errors into pages rather than JSON.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from broker.errors import JigsawError
from broker.logging import get_logger
from broker.settings import Settings
from broker.web import explain
from broker.web.data import WebData
from broker.web.oidc import OidcClient
from broker.web.people import Person, UserMap
from broker.web.sessions import COOKIE, SECURE_COOKIE, Session, SessionStore, csrf_ok

__all__ = ["PREFIX", "SESSION", "WEB", "WebState", "create_web_app", "default_assets_dir", "mount_web", "render"]

_log = get_logger("jigsaw.web")
PREFIX = "/web"
HERE = Path(__file__).resolve().parent
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def default_assets_dir() -> Path:
    """Where ``deploy/web/fetch.sh`` installs the front-end packages (``node_modules``)."""
    cache = os.environ.get("JIGSAW_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jigsaw"
    )
    return Path(cache) / "web-assets" / "node_modules"


@dataclasses.dataclass
class WebState:
    """Everything the pages share."""

    templates: jinja2.Environment
    sessions: SessionStore
    data: WebData
    users: UserMap
    clock: Callable[[], dt.datetime]
    oidc: OidcClient | None
    local_sign_in: bool
    base_url: str | None
    govuk: bool  # the govuk-frontend package was found and is served

    @property
    def secure(self) -> bool:
        return bool(self.base_url and self.base_url.startswith("https://"))

    @property
    def cookie(self) -> str:
        return SECURE_COOKIE if self.secure else COOKIE


WEB = web.AppKey("jigsaw_web", WebState)
SESSION = web.RequestKey("jigsaw_web_session", Session)  # the request's session (set by the middleware)
TIMED_OUT = web.RequestKey("jigsaw_web_timed_out", bool)  # an earlier session of this browser timed out


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = explain.when
    env.filters["event_title"] = explain.event_title
    env.globals.update(prefix=PREFIX, KIND_TEXT=explain.KIND_TEXT, FLAG_TEXT=explain.FLAG_TEXT)
    return env


def render(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """A page: the template with the signed-in person, the CSRF token and a one-time message."""
    state = request.app[WEB]
    session: Session | None = request.get(SESSION)
    flash = None
    if session is not None and session.flash:
        flash, session.flash = session.flash, None
    body = state.templates.get_template(template).render(
        person=session.person if session else None,
        csrf=session.csrf if session else "",
        flash=flash,
        local_sign_in=state.local_sign_in,
        govuk=state.govuk,
        path=request.path,
        **context,
    )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def redirect(location: str) -> web.Response:
    """A 303 See Other (after a form: the browser fetches the next page with GET)."""
    return web.Response(status=303, headers={"Location": location})


def _security_headers(response: web.StreamResponse, secure: bool) -> None:
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if not response.headers.get("Cache-Control"):
        response.headers["Cache-Control"] = "no-store"
    if secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")


@web.middleware
async def _sessions_and_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Load the session, check CSRF on POST, render errors as pages, set the cookie and security headers."""
    state = request.app[WEB]
    now = state.clock()
    session, timed_out = state.sessions.get(request.cookies.get(state.cookie), now)
    request[TIMED_OUT] = timed_out
    if session is None:
        session = state.sessions.new(now)
    request[SESSION] = session
    try:
        if request.method == "POST":
            form = await request.post()
            token = form.get("csrf_token")
            if not csrf_ok(request[SESSION], token if isinstance(token, str) else None):
                _log.warning("csrf_refused", path=request.path)
                response: web.StreamResponse = render(
                    request,
                    "error.html",
                    status=403,
                    title="This form has expired",
                    message="The form was sent without this session's security token. Go back, reload the page "
                    "and try again.",
                )
                raise _Done(response)
        response = await handler(request)
    except _Done as done:
        response = done.response
    except web.HTTPException as exc:
        if isinstance(exc, web.HTTPRedirection):
            response = redirect(exc.headers.get("Location") or PREFIX + "/")
        else:
            response = render(
                request,
                "error.html",
                status=exc.status,
                title=_TITLES.get(exc.status, "Something went wrong"),
                message=_MESSAGES.get(exc.status, exc.reason),
            )
    except JigsawError as exc:
        _log.warning("page_failed", path=request.path, error=exc.code)
        response = render(
            request, "error.html", status=exc.http_status, title="Something went wrong", message=exc.message
        )
    except Exception:  # a page never answers with the gateway's JSON
        _log.exception("page_crashed", path=request.path)
        response = render(
            request,
            "error.html",
            status=500,
            title="Sorry, there is a problem with the service",
            message="Try again later. Nothing you sent has been lost.",
        )
    current: Session = request[SESSION]
    if not response.prepared:
        response.set_cookie(
            state.cookie,
            current.sid,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=state.secure,
        )
        if request.path.startswith((PREFIX + "/static/", PREFIX + "/govuk/")):
            response.headers.setdefault("Cache-Control", "public, max-age=3600")
        _security_headers(response, state.secure)
    return response


class _Done(Exception):
    def __init__(self, response: web.StreamResponse) -> None:
        self.response = response


_TITLES = {404: "Page not found", 403: "You cannot see this page", 405: "Page not found"}
_MESSAGES = {
    404: "If you typed the web address, check it is correct. If you followed a link from a notification, it may "
    "be for another organisation: you can only see your own organisation's notifications.",
    405: "If you typed the web address, check it is correct.",
}


def create_web_app(
    settings: Settings, data: WebData, clock: Callable[[], dt.datetime], *, users: UserMap | None = None
) -> web.Application:
    """The web pages over ``data``; sign-in as ``settings`` says (OIDC, and/or the demo's local sign-in)."""
    from broker.web import admin, challenge, pages, signin, stream  # the handlers import this module's keys

    assets = settings.web_assets_dir or default_assets_dir()
    govuk = (assets / "govuk-frontend" / "dist" / "govuk" / "govuk-frontend.min.css").is_file()
    oidc = None
    if settings.web_oidc_issuer:
        secret = None
        if settings.web_oidc_client_secret_file is not None:
            secret = settings.web_oidc_client_secret_file.read_text(encoding="utf-8").strip()
        base = settings.web_base_url or f"http://{settings.http_host}:{settings.http_port}"
        oidc = OidcClient(settings.web_oidc_issuer, settings.web_oidc_client_id, secret, base + PREFIX + "/callback")
    app = web.Application(middlewares=[_sessions_and_errors])
    app[WEB] = WebState(
        templates=_environment(),
        sessions=SessionStore(idle=dt.timedelta(minutes=settings.web_idle_minutes), lifetime=dt.timedelta(hours=12)),
        data=data,
        users=users if users is not None else UserMap.load(settings.web_users_file),
        clock=clock,
        oidc=oidc,
        local_sign_in=settings.web_local_sign_in,
        base_url=settings.web_base_url,
        govuk=govuk,
    )
    signin.add_routes(app)
    pages.add_routes(app)
    stream.add_routes(app)
    challenge.add_routes(app)
    admin.add_routes(app)
    app.router.add_static("/static/", HERE / "static", follow_symlinks=False)
    if govuk:
        app.router.add_static("/govuk/", assets / "govuk-frontend" / "dist" / "govuk", follow_symlinks=False)

    async def close_oidc(app: web.Application) -> AsyncIterator[None]:
        yield
        if oidc is not None:
            await oidc.close()

    app.cleanup_ctx.append(close_oidc)
    return app


async def _to_web(request: web.Request) -> web.StreamResponse:
    """``/``: the web pages are at ``/web/``."""
    return redirect(PREFIX + "/")


def mount_web(
    parent: web.Application, *, settings: Settings, data: WebData, clock: Callable[[], dt.datetime]
) -> web.Application:
    """Add the web pages to the gateway's app at ``/web/`` (and ``/`` redirecting there)."""
    app = create_web_app(settings, data, clock)
    parent.add_subapp(PREFIX + "/", app)
    parent.router.add_get("/", _to_web)
    return app


def signed_in(request: web.Request) -> Person | None:
    """The person signed in on this request, if any."""
    session: Session | None = request.get(SESSION)
    return session.person if session is not None else None
