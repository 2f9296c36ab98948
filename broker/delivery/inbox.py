"""The inbox API: ``GET /v1/inbox``, ``GET /v1/inbox/{id}``, ``POST /v1/inbox/{id}/ack``.

The HTTP shell around ``inboxes.Inboxes``. A caller is an organisation with a
``recipient`` credential and sees its own organisation's notifications only:
another organisation's notification id answers 404, exactly like an id that
does not exist, so nobody learns what others were told. Every read, and every
refused one, is recorded on the access topic (who read what, when). An
acknowledgement names the person (``{"by": "..."}``) and is appended to the
input topic, where the router reads it in order and cancels the escalation.

The inbox is read from the store (``broker.store``): listings are pages of an
index, oldest first, with a ``next`` cursor (``after``), never a scan. The
view is materialised from the log by ``inbox_view.InboxFollower`` (caught up
before each request, bounded, and in the background by the ``views`` role), so a notification is
readable as soon as it is routed and the store can be rebuilt from the log.
An acknowledgement is decided by the store (``Store.acknowledge``: the first
one counts, whichever gateway took it) and only then appended to the input
topic; if that append fails, the store's acknowledgement is withdrawn and the
caller gets ``log_unavailable`` (503, retriable). A process that dies between
the two leaves an acknowledgement the log lacks: the router never saw it, and
the view rebuilt from the log does not show it (the log is the truth).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from broker import topics
from broker.access import record_access
from broker.callers import Authenticate, Caller
from broker.delivery.inbox_view import InboxFollower
from broker.delivery.inboxes import PRIORITIES, Query, ack_of, item_json, notification_of, store_query
from broker.errors import Forbidden, InvalidRequest, JigsawError, LogUnavailable, NotFound
from broker.log.base import Log
from broker.logging import get_logger
from broker.routing.model import Ack, iso, parse_iso
from broker.routing.records import encode_ack
from broker.store import AckOutcome, InboxAck, InboxItem, Store

__all__ = ["INBOX", "InboxFollower", "InboxService", "add_inbox_routes"]

_log = get_logger("jigsaw.inbox")
MAX_LIMIT = 1000
MAX_ACK_BODY = 4096
READER_ROLE = "recipient"




class InboxService:
    """The inbox API's state: the store and its follower, who is calling, the clock, and the access record."""

    def __init__(
        self,
        log: Log,
        store: Store,
        authenticate: Authenticate,
        clock: Callable[[], dt.datetime],
        *,
        append_timeout: float = 10.0,
    ) -> None:
        self.log = log
        self.store = store
        self.follower = InboxFollower(log, store)
        self.authenticate = authenticate
        self.clock = clock
        self._append_timeout = append_timeout

    async def acknowledge(self, item: InboxItem, by: str, at: dt.datetime, note: str | None = None) -> AckOutcome:
        """Acknowledge a notification: the store decides if this is the first, then the ack goes on the log.

        Raises:
            LogUnavailable: the append failed or was not confirmed in time (the store's ack is withdrawn).
        """
        row = item.notification
        ack = InboxAck(row.recipient, row.notification_id, by, at, note)
        outcome = await self.store.acknowledge(ack)
        if outcome.status != "acknowledged":
            return outcome
        key, value, headers = encode_ack(Ack(row.notification_id, row.recipient, by, at, note))
        try:
            async with asyncio.timeout(self._append_timeout):
                await self.log.append(
                    topics.INPUT, value, key=key, headers=headers, timestamp_ms=int(at.timestamp() * 1000)
                )
        except BaseException as exc:
            await asyncio.shield(self.store.release_ack(ack))  # not on the log: it must not count
            if isinstance(exc, TimeoutError):
                raise LogUnavailable(
                    f"the log did not take the acknowledgement within {self._append_timeout:g} s; "
                    "acknowledge again in a moment",
                    retry_after=5,
                ) from None
            raise
        return outcome

    async def reader(self, request: web.Request) -> Caller:
        """The calling organisation, if it holds a recipient credential; the inbox is then brought up to date."""
        caller = self.authenticate(request.headers.get("Authorization"))
        if caller.role != READER_ROLE:
            raise Forbidden(f"{caller.org_id} is signed in as {caller.role}; the inbox needs a recipient credential")
        await self.follower.refresh()
        return caller

    async def record_access(self, caller: Caller, action: str, ids: list[str], **detail: Any) -> None:
        """Who read what, when: one record on the access topic (ids only, never content)."""
        await record_access(self.log, caller, self.clock(), action, notification_ids=ids, **detail)


INBOX = web.AppKey("jigsaw_inbox", InboxService)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _answers_errors(handler: Handler) -> Handler:
    """Jigsaw errors become ``{"error", "message"}`` JSON with their status, whatever app mounts the routes."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except JigsawError as exc:
            return web.json_response(exc.to_dict(), status=exc.http_status)

    wrapped.__doc__ = handler.__doc__
    return wrapped


def _flag(value: str | None, name: str) -> bool:
    if value is None or value.lower() in ("false", "0", "no"):
        return False
    if value.lower() in ("true", "1", "yes"):
        return True
    raise InvalidRequest(f"{name} takes true or false, not {value!r}")


def _query(request: web.Request) -> Query:
    params = request.query
    priority = params.get("priority")
    if priority is not None and priority not in PRIORITIES:
        raise InvalidRequest(f"priority takes {' or '.join(PRIORITIES)}, not {priority!r}")
    since = None
    if "since" in params:  # an empty value is no time either
        try:
            since = parse_iso(params["since"])
        except ValueError:
            since = None
        if since is None or since.tzinfo is None:
            raise InvalidRequest(
                f"since takes an ISO 8601 time with a zone (2024-01-31T09:00:00Z), not {params['since']!r}"
            )
    try:
        limit = int(params.get("limit", "100"))
    except ValueError:
        raise InvalidRequest(f"limit takes a whole number, not {params.get('limit')!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}")
    after = params.get("after") or None
    return Query(_flag(params.get("unacknowledged"), "unacknowledged"), priority, since, limit, after)


@_answers_errors
async def list_inbox(request: web.Request) -> web.StreamResponse:
    """``GET /v1/inbox``: the caller's notifications, oldest first, one page at a time.

    Query parameters: ``unacknowledged`` (true: only those still waiting for an
    acknowledgement), ``priority`` (urgent or routine), ``since`` (sent at or
    after an ISO time), ``limit`` (default 100) and ``after`` (the ``next`` of
    the previous page, with the same filters).
    """
    service = request.app[INBOX]
    caller = await service.reader(request)
    query = _query(request)
    page = await service.store.list_inbox(store_query(caller.org_id, query))
    notes = [(notification_of(i), ack_of(i)) for i in page.items]
    await service.record_access(
        caller,
        "list",
        [n.notification_id for n, _ in notes],
        query={k: v for k, v in request.query.items() if k in ("unacknowledged", "priority", "since", "limit")},
    )
    items = [item_json(n, a) for n, a in notes]
    return web.json_response(
        {
            "organisation": caller.org_id,
            "count": len(items),
            "more": page.next is not None,
            "next": page.next,
            "notifications": items,
        }
    )


@_answers_errors
async def get_notification(request: web.Request) -> web.StreamResponse:
    """``GET /v1/inbox/{notification_id}``: one of the caller's notifications; 404 for anything else."""
    service = request.app[INBOX]
    caller = await service.reader(request)
    nid = request.match_info["notification_id"]
    item = await service.store.notification(caller.org_id, nid)
    await service.record_access(caller, "read", [nid], outcome="found" if item else "not_found")
    if item is None:
        raise NotFound(f"no notification {nid} in {caller.org_id}'s inbox")
    return web.json_response(item_json(notification_of(item), ack_of(item)))


async def _ack_body(request: web.Request) -> str:
    if request.content_length is not None and request.content_length > MAX_ACK_BODY:
        raise InvalidRequest(f"an acknowledgement body is at most {MAX_ACK_BODY} bytes")
    raw = await request.content.read(MAX_ACK_BODY + 1)
    if len(raw) > MAX_ACK_BODY:
        raise InvalidRequest(f"an acknowledgement body is at most {MAX_ACK_BODY} bytes")
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise InvalidRequest('send JSON: {"by": "the name of the person acknowledging"}') from None
    if isinstance(body, dict) and set(body) - {"by"}:
        raise InvalidRequest('send only {"by": "the name of the person acknowledging"}')
    by = body.get("by") if isinstance(body, dict) else None
    if not isinstance(by, str) or not by.strip() or len(by) > 200:
        raise InvalidRequest('say who acknowledges: {"by": "the name of the person"} (at most 200 characters)')
    return by.strip()


@_answers_errors
async def acknowledge(request: web.Request) -> web.StreamResponse:
    """``POST /v1/inbox/{notification_id}/ack`` with ``{"by": name}``: a person has read and acted on it."""
    service = request.app[INBOX]
    caller = await service.reader(request)
    nid = request.match_info["notification_id"]
    item = await service.store.notification(caller.org_id, nid)
    if item is None:
        await service.record_access(caller, "ack", [nid], outcome="not_found")
        raise NotFound(f"no notification {nid} in {caller.org_id}'s inbox")
    by = await _ack_body(request)
    outcome = await service.acknowledge(item, by, service.clock())
    if outcome.ack is None:  # gone between the read and the ack: only a rebuild can do that
        raise NotFound(f"no notification {nid} in {caller.org_id}'s inbox")
    new = outcome.status == "acknowledged"
    note = notification_of(item)
    current = Ack(nid, caller.org_id, outcome.ack.by, outcome.ack.at)
    late = note.ack_by is not None and current.at > note.ack_by
    _log.info("acknowledged", notification_id=nid, recipient=caller.org_id, status=outcome.status, late=late)
    return web.json_response(
        {
            "notification_id": nid,
            "status": outcome.status,
            "acknowledged": {"by": current.by, "at": iso(current.at)},
            "requires_ack": item_json(note, current)["requires_ack"],
            "late": late,
        },
        status=201 if new else 200,
    )


def add_inbox_routes(app: web.Application, service: InboxService) -> None:
    """Mount the inbox routes; the follower starts with the app (after the log and the store) and stops with it."""
    app[INBOX] = service
    app.router.add_get("/v1/inbox", list_inbox)
    app.router.add_get("/v1/inbox/{notification_id}", get_notification)
    app.router.add_post("/v1/inbox/{notification_id}/ack", acknowledge)

    async def follow(app: web.Application) -> Any:
        await service.log.create_topic(topics.ACCESS)  # every read is recorded there
        read = await service.follower.start(background=False)  # the views role follows in the background
        _log.info("inbox_started", store=service.store.name, records_read=read)
        yield
        await service.follower.close()

    app.cleanup_ctx.append(follow)
