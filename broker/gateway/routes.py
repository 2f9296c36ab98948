"""The gateway's HTTP handlers: the imperative shell around intake and validation.

Every refusal (including unauthenticated callers, wrong content types and
oversized bodies) is answered with ``{"error": code, "message": ...}`` and
recorded in the rejection topic; nothing an agency sends is silently lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from broker.envelope.batch import BATCH_CONTENT_TYPE, ENVELOPE_CONTENT_TYPE, decode_batch
from broker.errors import Forbidden, InvalidRequest, Refusal
from broker.gateway.app import CLOCK, CREDENTIALS, INTAKE, LOG, METRICS, ROLE_BOARD, SETTINGS
from broker.gateway.auth import Caller
from broker.gateway.bodies import read_limited
from broker.gateway.metrics import metrics_response
from broker.gateway.openapi import openapi_document

__all__ = ["add_routes"]

CALLER = web.RequestKey("caller", Caller)

SINGLE_TYPES = (ENVELOPE_CONTENT_TYPE, "application/avro")
BATCH_TYPES = (BATCH_CONTENT_TYPE,)
PUBLISHING_ROLES = ("publisher",)


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
    """Record a refusal made before the intake saw the body, and answer it."""
    caller = request.get(CALLER)
    now = request.app[CLOCK]()
    await request.app[INTAKE].refuse(error, caller=caller.org_id if caller else None, body=b"", now=now)
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
    outcome = await intake.submit(body, caller=caller.org_id, now=request.app[CLOCK]())
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
        outcomes = await submit_many(envelopes, caller=caller.org_id, now=now)
    else:
        outcomes = [await intake.submit(item, caller=caller.org_id, now=now) for item in envelopes]
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


async def get_healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: 200 when the log answers and every role runs, 503 otherwise, with each role's state."""
    status = await request.app[LOG].status()
    board = request.app[ROLE_BOARD]
    ok = bool(status.get("ok")) and board.healthy
    return web.json_response(
        {"status": "ok" if ok else "unavailable", "log": status, "roles": board.snapshot()},
        status=200 if ok else 503,
    )


async def get_metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text format."""
    return metrics_response(request.app[METRICS], await request.app[LOG].status())
