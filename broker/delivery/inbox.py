"""The inbox API: ``GET /v1/inbox``, ``GET /v1/inbox/{id}``, ``POST /v1/inbox/{id}/ack``.

The HTTP shell around ``inboxes.Inboxes``. A caller is an organisation with a
``recipient`` credential and sees its own organisation's notifications only:
another organisation's notification id answers 404, exactly like an id that
does not exist, so nobody learns what others were told. Every read, and every
refused one, is recorded on the access topic (who read what, when). An
acknowledgement names the person (``{"by": "..."}``) and is appended to the
input topic, where the router reads it in order and cancels the escalation.

The inbox state comes from the log: ``InboxFollower`` reads the notifications
and the acknowledgements on the input topic from the start when the app starts, and catches up before
answering each request, so a notification is readable as soon as it is routed.
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
from broker.delivery.inboxes import PRIORITIES, Inboxes, Query, item_json
from broker.errors import Forbidden, InvalidRequest, JigsawError, NotFound
from broker.log.base import Log
from broker.log.scan import read_available
from broker.logging import get_logger
from broker.routing.model import Ack, iso, parse_iso
from broker.routing.records import decode_ack, decode_notification, encode_ack

__all__ = ["INBOX", "InboxFollower", "InboxService", "add_inbox_routes"]

_log = get_logger("jigsaw.inbox")
MAX_LIMIT = 1000
MAX_ACK_BODY = 4096
READER_ROLE = "recipient"


class InboxFollower:
    """Keeps ``Inboxes`` up to date with the notifications topic and the acknowledgements on the input topic."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.inboxes = Inboxes()
        self._positions: dict[tuple[str, int], int] = {}
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Create the topics and read both from the beginning."""
        for topic in (topics.NOTIFICATIONS, topics.INPUT, topics.ACCESS):
            await self.log.create_topic(topic)
        await self.refresh()

    async def refresh(self) -> None:
        """Apply whatever the topics gained since the last refresh (no waiting)."""
        async with self._lock:
            for topic in (topics.NOTIFICATIONS, topics.INPUT):
                for partition in range(max(1, await self.log.partitions(topic))):
                    offset = self._positions.get((topic, partition), 0)
                    while records := await read_available(self.log, topic, offset, partition=partition):
                        for record in records:
                            if record.value is None:
                                continue
                            if topic == topics.INPUT:
                                if topics.is_ack(record):
                                    self.inboxes.acknowledge(decode_ack(record))
                            else:
                                self.inboxes.add(decode_notification(record))
                        offset = records[-1].offset + 1
                        self._positions[(topic, partition)] = offset


class InboxService:
    """The inbox API's state: the follower, who is calling, the clock, and the access record."""

    def __init__(self, log: Log, authenticate: Authenticate, clock: Callable[[], dt.datetime]) -> None:
        self.log = log
        self.follower = InboxFollower(log)
        self.authenticate = authenticate
        self.clock = clock
        self.ack_lock = asyncio.Lock()  # one check-and-append at a time: the first acknowledgement counts

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
    return Query(_flag(params.get("unacknowledged"), "unacknowledged"), priority, since, limit)


@_answers_errors
async def list_inbox(request: web.Request) -> web.StreamResponse:
    """``GET /v1/inbox``: the caller's notifications, oldest first.

    Query parameters: ``unacknowledged`` (true: only those still waiting for an
    acknowledgement), ``priority`` (urgent or routine), ``since`` (sent at or
    after an ISO time) and ``limit`` (default 100).
    """
    service = request.app[INBOX]
    caller = await service.reader(request)
    query = _query(request)
    inboxes = service.follower.inboxes
    notes, more = inboxes.query(caller.org_id, query)
    await service.record_access(
        caller,
        "list",
        [n.notification_id for n in notes],
        query={k: v for k, v in request.query.items() if k in ("unacknowledged", "priority", "since", "limit")},
    )
    items = [item_json(n, inboxes.ack_of(n)) for n in notes]
    return web.json_response({"organisation": caller.org_id, "count": len(items), "more": more, "notifications": items})


@_answers_errors
async def get_notification(request: web.Request) -> web.StreamResponse:
    """``GET /v1/inbox/{notification_id}``: one of the caller's notifications; 404 for anything else."""
    service = request.app[INBOX]
    caller = await service.reader(request)
    nid = request.match_info["notification_id"]
    note = service.follower.inboxes.get(caller.org_id, nid)
    await service.record_access(caller, "read", [nid], outcome="found" if note else "not_found")
    if note is None:
        raise NotFound(f"no notification {nid} in {caller.org_id}'s inbox")
    return web.json_response(item_json(note, service.follower.inboxes.ack_of(note)))


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
    inboxes = service.follower.inboxes
    note = inboxes.get(caller.org_id, nid)
    if note is None:
        await service.record_access(caller, "ack", [nid], outcome="not_found")
        raise NotFound(f"no notification {nid} in {caller.org_id}'s inbox")
    by = await _ack_body(request)
    async with service.ack_lock:
        existing = inboxes.ack_of(note)
        if existing is None:
            ack = Ack(nid, caller.org_id, by, service.clock())
            key, value, headers = encode_ack(ack)
            await service.log.append(
                topics.INPUT, value, key=key, headers=headers, timestamp_ms=int(ack.at.timestamp() * 1000)
            )
            inboxes.acknowledge(ack)
    current = inboxes.ack_of(note)
    assert current is not None
    status = "acknowledged" if existing is None else "already_acknowledged"
    late = note.ack_by is not None and current.at > note.ack_by
    _log.info("acknowledged", notification_id=nid, recipient=caller.org_id, status=status, late=late)
    return web.json_response(
        {
            "notification_id": nid,
            "status": status,
            "acknowledged": {"by": current.by, "at": iso(current.at)},
            "requires_ack": item_json(note, current)["requires_ack"],
            "late": late,
        },
        status=201 if existing is None else 200,
    )


def add_inbox_routes(app: web.Application, service: InboxService) -> None:
    """Mount the inbox routes and start the follower with the app (after the log has started)."""
    app[INBOX] = service
    app.router.add_get("/v1/inbox", list_inbox)
    app.router.add_get("/v1/inbox/{notification_id}", get_notification)
    app.router.add_post("/v1/inbox/{notification_id}/ack", acknowledge)

    async def follow(app: web.Application) -> Any:
        await service.follower.start()
        _log.info("inbox_started", organisations=len(service.follower.inboxes.organisations()))
        yield

    app.cleanup_ctx.append(follow)
