"""The gateway's HTTP handlers: the imperative shell around intake and validation.

Every refusal (wrong content types, oversized bodies, bad envelopes) is
answered with ``{"error": code, "message": ...}``. An authenticated caller's
refusal is recorded on its own in the rejection topic, with the client's
address; a caller with no valid credential is counted by the guard
(``guard.py``) in one summary record per address per interval, so a flood of
anonymous requests cannot fill the log.

``/healthz`` tells anyone only ``ok`` or ``unavailable``; an admin or auditor
credential also sees the log backend's and the store's reports (never a file
path) and the roles. ``/metrics`` asks for an admin or auditor credential when
``JIGSAW_METRICS_REQUIRE_CREDENTIAL`` is true.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from broker.callers import Caller
from broker.envelope.batch import BATCH_CONTENT_TYPE, ENVELOPE_CONTENT_TYPE, decode_batch
from broker.errors import Forbidden, InvalidRequest, JigsawError, Refusal, Unauthenticated
from broker.gateway.bodies import read_limited
from broker.gateway.keys import CLOCK, CREDENTIALS, INTAKE, LOG, METRICS, ROLE_BOARD, SETTINGS, STORE
from broker.gateway.metrics import metrics_response
from broker.gateway.openapi import openapi_document

__all__ = ["add_routes"]

CALLER = web.RequestKey("caller", Caller)

SINGLE_TYPES = (ENVELOPE_CONTENT_TYPE, "application/avro")
BATCH_TYPES = (BATCH_CONTENT_TYPE,)
PUBLISHING_ROLES = ("publisher",)
OPERATOR_ROLES = ("admin", "auditor")  # may see the health details and (when required) the metrics
_PATH_WORDS = ("path", "file", "dir")


def add_routes(app: web.Application, *, gateway: bool = True) -> None:
    """Register the routes: ``/healthz`` and ``/metrics`` always, the gateway's when it runs here."""
    app.router.add_get("/healthz", get_healthz)
    app.router.add_get("/metrics", get_metrics)
    if gateway:
        app.router.add_post("/v1/events", post_event)
        app.router.add_post("/v1/events:batch", post_batch)
        app.router.add_get("/v1/openapi.json", get_openapi)


async def _admit(request: web.Request, content_types: Sequence[str]) -> tuple[Caller, bytes]:
    """Authenticate, authorise and read the body; raises a Refusal (with what was read as evidence)."""
    caller = request.app[CREDENTIALS].authenticate(request.headers.get("Authorization"))
    request[CALLER] = caller
    if caller.role not in PUBLISHING_ROLES:
        raise Forbidden(f"{caller.org_id} is signed in as {caller.role}; only a publisher credential may submit")
    if request.content_type not in content_types:
        raise InvalidRequest(f"send Content-Type {' or '.join(content_types)}, not {request.content_type!r}")
    return caller, await read_limited(request, request.app[SETTINGS].max_body_bytes)


async def _refused(request: web.Request, error: Refusal) -> web.Response:
    """Record a refusal made before the intake saw the body (the guard counts anonymous ones), and answer it."""
    caller = request.get(CALLER)
    if caller is not None:
        now = request.app[CLOCK]()
        await request.app[INTAKE].refuse(error, caller=caller.org_id, body=b"", now=now, client=request.remote)
    request.app[METRICS].event_refused(error.code)
    return web.json_response(error.to_dict(), status=error.http_status)


def _count(request: web.Request, outcome: Any) -> None:
    metrics = request.app[METRICS]
    if outcome.error is not None:
        metrics.event_refused(outcome.error.code)
    elif outcome.status == "accepted":
        metrics.event_accepted(outcome.event.event_type)
    else:
        metrics.event_duplicate()


async def post_event(request: web.Request) -> web.Response:
    """``POST /v1/events``: one Avro envelope; 202 accepted, 200 accepted before, 4xx refused."""
    try:
        caller, body = await _admit(request, SINGLE_TYPES)
    except Refusal as exc:
        return await _refused(request, exc)
    intake = request.app[INTAKE]
    outcome = await intake.submit(body, caller=caller.org_id, now=request.app[CLOCK](), client=request.remote)
    _count(request, outcome)
    return web.json_response(outcome.body(), status=outcome.http_status)


async def post_batch(request: web.Request) -> web.Response:
    """``POST /v1/events:batch``: an Avro array of envelopes; 207 with one result per envelope."""
    settings = request.app[SETTINGS]
    try:
        caller, body = await _admit(request, BATCH_TYPES)
        envelopes = decode_batch(body, max_items=settings.max_batch, max_item_bytes=settings.max_body_bytes)
    except Refusal as exc:
        return await _refused(request, exc)
    intake = request.app[INTAKE]
    results: list[dict[str, object]] = []
    tally = {"accepted": 0, "duplicate": 0, "refused": 0}
    now = request.app[CLOCK]()
    submit_many = getattr(intake, "submit_many", None)
    if submit_many is not None:
        outcomes = await submit_many(envelopes, caller=caller.org_id, now=now, client=request.remote)
    else:
        outcomes = [
            await intake.submit(item, caller=caller.org_id, now=now, client=request.remote) for item in envelopes
        ]
    for index, outcome in enumerate(outcomes):
        _count(request, outcome)
        tally[outcome.status] = tally.get(outcome.status, 0) + 1
        results.append({**outcome.body(), "index": index, "status": outcome.http_status, "outcome": outcome.status})
    return web.json_response(
        {
            "accepted": tally["accepted"],
            "duplicates": tally["duplicate"],
            "refused": tally["refused"],
            "results": results,
        },
        status=207,
    )


async def get_openapi(request: web.Request) -> web.Response:
    """``GET /v1/openapi.json``."""
    settings = request.app[SETTINGS]
    return web.json_response(openapi_document(settings.max_body_bytes, settings.max_batch))


def _operator(request: web.Request) -> Caller | None:
    """The caller if it holds an admin or auditor credential, else None (never raises)."""
    try:
        caller = request.app[CREDENTIALS].authenticate(request.headers.get("Authorization"))
    except Unauthenticated:
        return None
    return caller if caller.role in OPERATOR_ROLES else None


def _without_paths(report: dict[str, Any]) -> dict[str, Any]:
    """A backend's status report with anything that could name a file or directory left out."""
    return {k: v for k, v in report.items() if not any(word in k.lower() for word in _PATH_WORDS)}


async def get_healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: 200 ``ok`` when the log and the store answer and every role runs, else 503 ``unavailable``.

    Anonymous callers get only that word; an admin or auditor also gets the log's report (no file paths),
    the store's (backend, ok, schema version) and each role's state, restarts and lag.
    """
    status = await request.app[LOG].status()
    board = request.app[ROLE_BOARD]
    store = request.app.get(STORE)
    store_status = await store.status() if store is not None else None
    ok = bool(status.get("ok")) and board.healthy and (store_status is None or bool(store_status.get("ok")))
    body: dict[str, Any] = {"status": "ok" if ok else "unavailable"}
    if _operator(request) is not None:
        body.update(log=_without_paths(status), roles=board.snapshot())
        if store_status is not None:
            # The backend, whether it answers and its schema; never where a SQLite file is or an error naming it.
            body.update(store={k: v for k, v in store_status.items() if k in ("backend", "ok", "schema")})
    return web.json_response(body, status=200 if ok else 503, headers={"Cache-Control": "no-store"})


async def get_metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text format (admin or auditor only, when the settings say so)."""
    if request.app[SETTINGS].metrics_require_credential:
        try:
            caller = request.app[CREDENTIALS].authenticate(request.headers.get("Authorization"))
            if caller.role not in OPERATOR_ROLES:
                raise Forbidden(f"{caller.org_id} is signed in as {caller.role}; the metrics need admin or auditor")
        except JigsawError as exc:
            return web.json_response(exc.to_dict(), status=exc.http_status)
    return metrics_response(request.app[METRICS], await request.app[LOG].status())
