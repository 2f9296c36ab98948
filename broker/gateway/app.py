"""The gateway's aiohttp application: ``create_app(settings, log, ...)``.

State lives in typed ``web.AppKey``s; start-up and tear-down are paired in
``cleanup_ctx``: the log is started, then (with the gateway role) the store
of serving views (``broker.store.open_store``: the accepted-id index, the
inboxes, the chronology index) and the intake catches the store's index of
accepted event ids up with the log, then the background roles
(``broker/roles.py``) start; on shutdown the roles are cancelled and the
store and the log closed. The app owns the log's and the store's lifetimes
from start-up on.

``JIGSAW_ROLES`` says exactly what runs: without ``gateway`` the app serves
only ``/healthz`` and ``/metrics`` (no intake, no inbox, no chronology), so a
router or dispatcher process takes no agency traffic.

Accept-or-refuse is ``broker.intake.Intake`` (shared with ``jigsaw simulate``):
verification, deduplication by event id, appends and rejection records. The
gateway adds HTTP: who is calling, body limits, content types, batching,
status codes and metrics.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from aiohttp import web

from broker.envelope.keys import KeyRegistry, KeyStore
from broker.errors import JigsawError
from broker.gateway import problems, routes
from broker.gateway.auth import Authenticator, CredentialsFile
from broker.gateway.keys import (
    CLOCK,
    CREDENTIALS,
    INTAKE,
    KEYS,
    LOG,
    METRICS,
    ROLE_BOARD,
    ROLE_TASKS,
    SETTINGS,
    STORE,
    Submitter,
)
from broker.gateway.openapi import check_against, openapi_document
from broker.log.base import Log
from broker.logging import get_logger
from broker.observability import Metrics
from broker.recent import RecentEvents
from broker.roles import RoleBoard, RoleContext, run_roles
from broker.settings import Settings, verify_worker_count
from broker.store import Store, open_store
from broker.validation import event_of

__all__ = ["create_app"]

_log = get_logger("jigsaw.gateway")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@web.middleware
async def _errors_and_metrics(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Time every request; answer refusals as JSON (``problems``) and anything unexpected as a JSON 500."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = problems.from_http_exception(exc)
    except JigsawError as exc:  # e.g. LogUnavailable during an append: retriable
        _log.warning("request_failed", path=request.path, error=exc.code, message=exc.message)
        response = web.json_response(exc.to_dict(), status=exc.http_status)
        retry_after = exc.evidence.get("retry_after")
        if retry_after is not None:
            response.headers["Retry-After"] = str(int(retry_after))
    except Exception:
        _log.exception("request_crashed", path=request.path)
        response = web.json_response(
            {"error": problems.INTERNAL_ERROR, "message": "the gateway failed; the request may be retried"}, status=500
        )
    problems.challenge(request, response)
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    request.app[METRICS].http_request(name, request.method, response.status, time.perf_counter() - started)
    return response


def create_app(
    settings: Settings,
    log: Log,
    *,
    keys: KeyStore | None = None,
    credentials: Authenticator | None = None,
    intake: Submitter | None = None,
    clock: Callable[[], dt.datetime] = _utc_now,
    roles: Sequence[str] | None = None,
    store: Store | None = None,
) -> web.Application:
    """The gateway application over ``log`` (started in the app's cleanup context, closed at shutdown).

    Args:
        settings: limits, the keys directory, the credentials file and the roles to run.
        log: the log backend (not yet started).
        keys: the key store; default ``KeyStore(settings.keys_dir)``, re-read when the directory changes.
        credentials: default ``CredentialsFile(settings.credentials_file)``, re-read when the file changes.
        intake: accept-or-refuse; default ``broker.intake.Intake`` over ``log``.
        clock: the receiving time of a submission.
        roles: background roles to start; default ``settings.roles``. The gateway's routes are mounted
            when ``settings.roles`` names ``gateway``.
        store: the serving views (not yet started); default ``open_store(settings)`` when the gateway runs.
    """
    keys = keys or KeyStore(settings.keys_dir)
    gateway = "gateway" in settings.roles
    if gateway and store is None:
        store = open_store(settings)
    recent = RecentEvents()  # what the intake accepted lately, read back by the chronology index undecoded
    if intake is None:
        from broker.intake import Intake

        key_store = keys

        def registry() -> KeyRegistry:
            return key_store.current()

        intake = Intake(
            log,
            registry,
            store=store,
            append_timeout=settings.append_timeout,
            recent=recent,
            signature_workers=verify_worker_count(settings),
        )
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[_errors_and_metrics])
    app[SETTINGS] = settings
    app[LOG] = log
    app[KEYS] = keys
    app[CREDENTIALS] = credentials if credentials is not None else CredentialsFile(settings.credentials_file)
    app[INTAKE] = intake
    app[METRICS] = Metrics()
    app[CLOCK] = clock
    app[ROLE_BOARD] = RoleBoard()
    if store is not None:
        app[STORE] = store
    background = tuple(r for r in (settings.roles if roles is None else roles) if r != "gateway")

    async def log_and_index(app: web.Application) -> AsyncIterator[None]:
        await log.start()
        if store is not None:
            await store.start()
        if gateway:
            await app[INTAKE].start()
            app[ROLE_BOARD].set("gateway", state="running")
            _log.info(
                "gateway_started",
                log=log.name,
                store=store.name if store is not None else None,
                keys=len(app[KEYS].current()),
                credentials=len(app[CREDENTIALS]),
            )
        yield
        close = getattr(app[INTAKE], "close", None)
        if close is not None:
            await close()
        if store is not None:
            await store.close()
        await log.close()

    async def background_roles(app: web.Application) -> AsyncIterator[None]:
        ctx = RoleContext(
            settings=settings,
            log=log,
            keys=keys,
            board=app[ROLE_BOARD],
            metrics=app[METRICS],
            store=store,
            recent=recent,
        )
        async for tasks in run_roles(ctx, background):
            app[ROLE_TASKS] = tasks
            yield

    app.cleanup_ctx.append(log_and_index)
    app.cleanup_ctx.append(background_roles)
    from broker.gateway.guard import Guard, install_guard  # rate limits, body deadlines, refusal records

    guard = Guard(settings, log, authenticate=app[CREDENTIALS].authenticate, refuse=app[INTAKE].refuse, clock=clock)
    install_guard(app, guard)
    routes.add_routes(app, gateway=gateway)
    if not gateway:
        return app
    from broker.delivery.api import mount_delivery  # the inbox and the webhook key
    from broker.delivery.signing import webhook_key_for

    assert store is not None  # the gateway role always has one
    mount_delivery(
        app,
        log=log,
        store=store,
        append_timeout=settings.append_timeout,
        authenticate=app[CREDENTIALS].authenticate,
        clock=clock,
        webhook_key=lambda: webhook_key_for(settings.signing_key_file, settings.data_dir),
    )
    from broker.audit.api import mount_audit  # GET /v1/children/{nhs_number}/chronology

    mount_audit(
        app,
        log=log,
        store=store,
        authenticate=app[CREDENTIALS].authenticate,
        clock=clock,
        decode=recent.event_of(event_of),
    )
    from broker.web import StoreWebData, mount_web  # the pages for people, at /web/

    mount_web(app, settings=settings, data=StoreWebData.for_gateway(app), clock=clock)
    check_against(app, openapi_document(settings.max_body_bytes, settings.max_batch))  # no drift, or no gateway
    return app
