"""The gateway's guard: rate limits, body deadlines and the record of every refused request.

A middleware (``install_guard`` puts it inside the app's error-and-metrics
middleware) that, for every route:

1. limits each client address, then each valid credential, with a token
   bucket (``limits.RateLimiter``), answering ``429 rate_limited`` with
   ``Retry-After``;
2. gives a request with a body ``http_body_timeout`` seconds to send all of it,
   then closes the connection (``request_timeout``); a client that goes away
   mid-body is an ``incomplete_request`` logged in one line, not a 500 with a
   traceback;
3. records every 4xx answer: a caller with no valid credential is counted in
   the ``RefusalTally`` (one summary record per client address per
   ``refusal_summary_seconds`` on ``jigsaw.rejected``, so a flood cannot fill
   the disk); an authenticated caller's refusal is recorded on its own, with
   the client address: on ``jigsaw.rejected`` by the intake for the publishing
   routes, on ``jigsaw.access`` here for every other route (inbox, chronology,
   health, metrics), with who, which route, the status, the code and the
   message. A few refusals are recorded by their own handlers with more
   detail (``HANDLER_RECORDED``) and are not recorded twice.

Who is calling is looked up here only to pick a bucket and a record; the
handlers still authenticate and authorise for themselves.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from broker import topics
from broker.access import record_access
from broker.callers import Authenticate, Caller
from broker.errors import (
    IncompleteRequest,
    InvalidRequest,
    JigsawError,
    RateLimited,
    Refusal,
    RequestTimeout,
    Unauthenticated,
)
from broker.gateway.limits import Rate, RateLimiter, RefusalTally, client_key, retry_after
from broker.gateway.problems import HTTP_CODES
from broker.log.base import Log
from broker.logging import get_logger
from broker.settings import Settings
from broker.wire import encode_json

__all__ = ["CLIENT", "GUARD", "HANDLER_RECORDED", "PUBLISH_ROUTES", "Guard", "install_guard"]

_log = get_logger("jigsaw.gateway.guard")

# Routes whose refusals of authenticated callers the intake records on jigsaw.rejected.
PUBLISH_ROUTES = frozenset({"/v1/events", "/v1/events:batch"})
# (route, status) refusals that their handlers already record on jigsaw.access, naming the child or notification.
HANDLER_RECORDED = frozenset(
    {
        ("/v1/children/{nhs_number}/chronology", 403),
        ("/v1/inbox/{notification_id}", 404),
        ("/v1/inbox/{notification_id}/ack", 404),
    }
)
CLIENT = web.RequestKey("jigsaw_client", str)
_TIMED_OUT = web.RequestKey("jigsaw_body_timed_out", bool)
_GONE = (ConnectionResetError, RequestPayloadError, asyncio.IncompleteReadError, HttpProcessingError)

RefuseInIntake = Callable[..., Awaitable[Any]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _reason(response: web.StreamResponse) -> tuple[str, str]:
    """The ``error`` code and ``message`` of one of our JSON answers (the status phrase otherwise)."""
    body = getattr(response, "body", None)
    if isinstance(body, bytes) and response.content_type == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return str(data.get("error") or f"http_{response.status}")[:60], str(data.get("message") or "")[:300]
    return f"http_{response.status}", response.reason or ""


class Guard:
    """The guard's state: buckets, the tally of anonymous refusals, and where records go."""

    def __init__(
        self,
        settings: Settings,
        log: Log,
        *,
        authenticate: Authenticate,
        refuse: RefuseInIntake,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.addresses = RateLimiter(Rate(settings.rate_per_address, settings.rate_burst_per_address))
        self.credentials = RateLimiter(Rate(settings.rate_per_credential, settings.rate_burst_per_credential))
        self.tally = RefusalTally()
        self.log = log
        self.authenticate = authenticate
        self.refuse = refuse
        self.clock = clock
        self.body_timeout = settings.http_body_timeout
        self.summary_seconds = settings.refusal_summary_seconds

    def caller_of(self, request: web.Request) -> Caller | None:
        """The caller a request's credential names, or None (no header, or not a valid token)."""
        header = request.headers.get("Authorization")
        if not header:
            return None
        try:
            return self.authenticate(header)
        except Unauthenticated:
            return None

    def note_anonymous(self, client: str | None, code: str, route: str) -> None:
        """Count a refusal of a caller with no valid credential (HTTP parse errors arrive here too)."""
        self.tally.note(client or "unknown", code, route, self.clock())

    async def flush(self) -> int:
        """Append one summary record per tallied client address to ``jigsaw.rejected``; how many."""
        summaries = self.tally.drain()
        now = self.clock()
        for summary in summaries:
            await self.log.append(
                topics.REJECTED,
                encode_json(summary),
                key=str(summary["client"]).encode(),
                timestamp_ms=int(now.timestamp() * 1000),
            )
        if summaries:
            _log.info(
                "refusals_summarised", clients=len(summaries), requests=sum(int(str(s["count"])) for s in summaries)
            )
        return len(summaries)

    async def record_access(self, request: web.Request, caller: Caller, status: int, code: str, message: str) -> None:
        """One record on ``jigsaw.access`` of an authenticated caller's refused request."""
        await record_access(
            self.log,
            caller,
            self.clock(),
            "refused",
            method=request.method,
            route=_route(request),
            path=request.path[:300],
            status=status,
            error=code,
            message=message,
            client=request.get(CLIENT),
        )

    async def record(
        self, request: web.Request, caller: Caller | None, status: int, code: str, message: str, *, own: bool
    ) -> None:
        """Record one refused request where it belongs (see the module docstring).

        Args:
            own: the guard refused it (not a handler), so no handler or intake has recorded it.
        """
        route = _route(request)
        if caller is None:
            self.note_anonymous(request.get(CLIENT), code, route)
        elif code == RateLimited.code:
            self.tally.note(request.get(CLIENT) or "unknown", code, route, self.clock(), caller=caller.org_id)
        elif route in PUBLISH_ROUTES:
            if own:
                kind = {RequestTimeout.code: RequestTimeout, IncompleteRequest.code: IncompleteRequest}
                error = kind.get(code, InvalidRequest)(message)
                await self.refuse(error, caller=caller.org_id, body=b"", now=self.clock(), client=request.get(CLIENT))
        elif (route, status) not in HANDLER_RECORDED:
            await self.record_access(request, caller, status, code, message)

    def _expire(self, request: web.Request) -> None:
        if not request.content.is_eof() and request.transport is not None:
            request[_TIMED_OUT] = True
            request.transport.close()  # the handler's read then fails; a stalled client cannot hold a slot

    async def _limited(self, request: web.Request, caller: Caller | None) -> web.StreamResponse | None:
        client = request[CLIENT]
        wait = self.addresses.check(client_key(client))  # an IPv6 client is limited by its /64
        if not wait and caller is not None:
            wait = self.credentials.check(f"{caller.org_id}/{caller.role}")
        if not wait:
            return None
        who = f"{caller.org_id} ({caller.role})" if caller else client
        error = RateLimited(f"too many requests from {who}; wait {retry_after(wait)} s and send fewer, larger batches")
        await self.record(request, caller, error.http_status, error.code, error.message, own=True)
        return web.json_response(error.to_dict(), status=429, headers={"Retry-After": retry_after(wait)})

    async def handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Run one request through the limits, the body deadline and the refusal record."""
        request[CLIENT] = request.remote or "unknown"
        caller = self.caller_of(request)
        limited = await self._limited(request, caller)
        if limited is not None:
            return limited
        timer = None
        if request.body_exists and not request.content.is_eof():
            timer = asyncio.get_running_loop().call_later(self.body_timeout, self._expire, request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if 400 <= exc.status < 500:
                code = HTTP_CODES.get(exc.status, "invalid_request")
                await self.record(request, caller, exc.status, code, exc.reason, own=True)
            raise
        except _GONE as exc:
            error: Refusal = (
                RequestTimeout(f"the body did not arrive within {self.body_timeout:g} s; the connection was closed")
                if request.get(_TIMED_OUT)
                else IncompleteRequest("the client went away before sending the whole body")
            )
            _log.warning(
                "request_incomplete",
                route=_route(request),
                client=request[CLIENT],
                error=error.code,
                cause=type(exc).__name__,
            )
            await self.record(request, caller, error.http_status, error.code, error.message, own=True)
            response = web.json_response(error.to_dict(), status=error.http_status)
            response.force_close()
            return response
        finally:
            if timer is not None:
                timer.cancel()
        if 400 <= response.status < 500:
            code, message = _reason(response)
            await self.record(request, caller, response.status, code, message, own=False)
        return response


GUARD = web.AppKey("jigsaw_guard", Guard)


def install_guard(app: web.Application, guard: Guard) -> None:
    """Add the guard's middleware (innermost so far) and its summary flusher to an app not yet started."""
    app[GUARD] = guard

    @web.middleware
    async def guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await request.app[GUARD].handle(request, handler)

    app.middlewares.append(guard_middleware)

    async def summaries(app: web.Application) -> Any:
        async def every_interval() -> None:
            while True:
                await asyncio.sleep(guard.summary_seconds)
                try:
                    await guard.flush()
                except JigsawError as exc:  # the log is down: this interval's counts are lost, as is said
                    _log.warning("refusal_summary_failed", error=exc.code, message=exc.message)

        task = asyncio.create_task(every_interval(), name="jigsaw-refusal-summaries")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        try:
            await guard.flush()
        except JigsawError as exc:
            _log.warning("refusal_summary_failed", error=exc.code, message=exc.message)

    app.cleanup_ctx.append(summaries)
