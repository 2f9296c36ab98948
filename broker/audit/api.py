"""``GET /v1/children/{nhs_number}/chronology``: a child's chronology over HTTP, for auditors and the child's CSC.

``mount_audit(app, log=..., store=..., authenticate=..., clock=...)`` adds the
route to any aiohttp app (the gateway mounts it). Who may read:

- a caller with the ``auditor`` role, for any child;
- the child's responsible children's social care, with a ``recipient`` or
  ``publisher`` credential: the organisation assigned as the child's social
  worker, else the publisher of the child's latest plan, strategy meeting or
  household composition (``FamilyGraph.responsible_csc``). The area-wide
  fallback ("every CSC in the area") is not enough to read a chronology.

Every request, allowed or refused, is recorded on ``jigsaw.access``: who, in
which role, which child, when, and the outcome; never the chronology itself.
The chronology is what the log records; it is not verified per request (that
is ``jigsaw replay``'s job, and the page says so). The records are found
through the store's chronology index (``broker.store.chronology_view``: the
child's keys to log positions, caught up with the log before each request)
and only those are read from the log, never the whole of it. ``?format=json``
(default), ``csv`` or ``html``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from broker import topics
from broker.access import record_access
from broker.audit.chronology import Chronology, build_chronology, to_csv, to_json
from broker.audit.chronology_html import to_html
from broker.callers import Authenticate, Caller
from broker.errors import Forbidden, InvalidNhsNumber, InvalidRequest, JigsawError
from broker.log.base import Log
from broker.logging import get_logger
from broker.model import Event
from broker.nhs import is_valid_nhs_number, normalise_nhs_number
from broker.routing.graph import FamilyGraph
from broker.store import Store
from broker.store.chronology_view import ChronologyFollower, child_records
from broker.validation import event_of

__all__ = ["AUDIT", "AuditService", "mount_audit", "responsible_cscs"]

_log = get_logger("jigsaw.audit.api")
NOT_VERIFIED = (
    "Not verified by this request: this is what the log records. Run jigsaw replay to verify the signatures, "
    "the hash chain and the routing behind it."
)
CSC_ROLES = ("recipient", "publisher")
_TYPES = {"json": "application/json", "csv": "text/csv", "html": "text/html"}
# Ten digits, or 3-3-4 with spaces; the Modulus 11 check digit is beyond a pattern (422 when wrong).
NHS_NUMBER_SCHEMA = {"type": "string", "pattern": "^(?:[0-9]{10}|[0-9]{3} [0-9]{3} [0-9]{4})$"}


def responsible_cscs(events: Sequence[Event], nhs_number: str) -> list[str]:
    """The child's responsible CSC by assignment or latest publication (no area fallback), from the events."""
    graph = FamilyGraph()
    for seq, event in enumerate(events, 1):
        graph.apply(event, seq)
    child = graph.people.resolve({"nhs_number": nhs_number, "local_id": None})
    if child is None:
        return []
    return [org for org, _ in graph.responsible_csc(child, None)]


class AuditService:
    """Finds a chronology's records through the store's index, reads them from the log, and records who asked."""

    def __init__(
        self,
        log: Log,
        store: Store,
        authenticate: Authenticate,
        clock: Callable[[], dt.datetime],
        *,
        decode: Callable[[bytes], Event] = event_of,
    ) -> None:
        self.log = log
        self.store = store
        self.follower = ChronologyFollower(log, store, decode=decode)
        self.authenticate = authenticate
        self.clock = clock

    async def record_access(self, caller: Caller, nhs_number: str, outcome: str, **detail: Any) -> None:
        """One record on the access topic: who asked for which child's chronology, when, and what happened."""
        await record_access(
            self.log, caller, self.clock(), "chronology", nhs_number=nhs_number, outcome=outcome, **detail
        )

    async def chronology(self, nhs_number: str, caller: Caller) -> Chronology | None:
        """The chronology, or None when the caller may not read it."""
        await self.follower.refresh()
        found = await child_records(self.log, self.store, nhs_number)
        events = found.events
        if caller.role != "auditor":
            if caller.role not in CSC_ROLES or caller.org_id not in responsible_cscs(
                [e for _, e in events], nhs_number
            ):
                return None
        return build_chronology(
            nhs_number,
            events,
            found.notifications,
            found.decisions,
            found.acks,
            integrity=NOT_VERIFIED,
            generated_at=self.clock(),
        )


AUDIT = web.AppKey("jigsaw_audit", AuditService)


async def get_chronology(request: web.Request) -> web.StreamResponse:
    """``GET /v1/children/{nhs_number}/chronology``: the child's chronology (auditor, or the child's CSC)."""
    service = request.app[AUDIT]
    try:
        caller = service.authenticate(request.headers.get("Authorization"))
        nhs = normalise_nhs_number(request.match_info["nhs_number"])
        if not is_valid_nhs_number(nhs):
            raise InvalidNhsNumber("the path does not hold a valid NHS number (10 digits, Modulus 11 check digit)")
        fmt = request.query.get("format", "json")
        if fmt not in _TYPES:
            raise InvalidRequest("format must be json, csv or html")
        chronology = await service.chronology(nhs, caller)
        if chronology is None:
            await service.record_access(caller, nhs, "refused", format=fmt)
            raise Forbidden(
                f"{caller.org_id} ({caller.role}) may not read this chronology: it needs an auditor credential, "
                "or to be the child's responsible children's social care"
            )
        await service.record_access(caller, nhs, "allowed", format=fmt, entries=len(chronology.entries))
    except JigsawError as exc:
        return web.json_response(exc.to_dict(), status=exc.http_status, headers={"Cache-Control": "no-store"})
    _log.info("chronology_read", org_id=caller.org_id, role=caller.role, entries=len(chronology.entries))
    body = {"json": to_json, "csv": to_csv}.get(fmt, lambda c: to_html(c, verified=None))(chronology)
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if fmt == "html":
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return web.Response(text=body, content_type=_TYPES[fmt], charset="utf-8", headers=headers)


def mount_audit(
    app: web.Application,
    *,
    log: Log,
    store: Store,
    authenticate: Authenticate,
    clock: Callable[[], dt.datetime],
    decode: Callable[[bytes], Event] = event_of,
) -> None:
    """Add the chronology route to ``app`` (the log and the store are started by the app's own start-up).

    ``decode`` turns an input event's bytes into its ``Event`` for the chronology index (``event_of``, or
    the intake's memory of what it accepted lately: ``RecentEvents.event_of``).
    """
    service = AuditService(log, store, authenticate, clock, decode=decode)
    app[AUDIT] = service
    app.router.add_get("/v1/children/{nhs_number}/chronology", get_chronology)

    async def access_topic_and_index(app: web.Application) -> Any:
        await log.create_topic(topics.ACCESS)
        await service.follower.start(background=False)  # the views role follows in the background
        yield
        await service.follower.close()

    app.cleanup_ctx.append(access_topic_and_index)


def audit_openapi_paths() -> dict[str, Any]:
    """OpenAPI 3.1 path item for ``/v1/children/{nhs_number}/chronology``."""
    return {
        "/v1/children/{nhs_number}/chronology": {
            "get": {
                "summary": "One child's story across every agency (auditors; the child's responsible CSC). "
                "Every request, allowed or refused, is recorded in jigsaw.access",
                "parameters": [
                    {"name": "nhs_number", "in": "path", "required": True, "schema": NHS_NUMBER_SCHEMA},
                    {"name": "format", "in": "query", "schema": {"enum": ["json", "csv", "html"]}},
                ],
                "responses": {
                    "200": {"description": "the chronology in the format asked for"},
                    **{str(code): {"description": "refused"} for code in (400, 401, 403, 404)},
                    "422": {"description": "invalid_nhs_number: the check digit is wrong (Modulus 11)"},
                },
            }
        }
    }
