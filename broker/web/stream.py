"""``GET /web/inbox/events``: server-sent events telling an open inbox page that new notifications arrived.

Progressive enhancement: the inbox works with a reload; with JavaScript, the
page listens here and, when a ``notification`` event comes, says so in a live
region with a link to show them. Events carry only the inbox size and how many
are new, never content. The stream ends after ``MAX_STREAM_S`` (the browser
reconnects) and when the session ends, so a signed-out or timed-out page stops
hearing anything.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from broker.web.app import SESSION, WEB
from broker.web.signin import require_person

__all__ = ["MAX_STREAM_S", "POLL_S", "add_routes"]

POLL_S = 2.0
MAX_STREAM_S = 300.0


async def events(request: web.Request) -> web.StreamResponse:
    """Send ``event: notification`` whenever the organisation's inbox grows."""
    person = require_person(request)
    state = request.app[WEB]
    session = request[SESSION]
    try:
        seen = int(request.query.get("since", ""))
    except ValueError:
        seen = await state.data.inbox_size(person.org_id)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    await response.write(b"retry: 5000\n\n")
    loop = asyncio.get_running_loop()
    ends = loop.time() + MAX_STREAM_S
    try:
        while loop.time() < ends:
            if not state.sessions.alive(session.sid, state.clock()):
                break  # signed out or timed out
            size = await state.data.inbox_size(person.org_id)
            if size > seen:
                body = json.dumps({"size": size, "new": size - seen})
                await response.write(f"event: notification\ndata: {body}\n\n".encode())
                seen = size
            else:
                await response.write(b": still here\n\n")
            await asyncio.sleep(POLL_S)
    except ConnectionResetError:  # the page was closed or left: nothing to tell
        pass
    return response


def add_routes(app: web.Application) -> None:
    """Mount the event stream."""
    app.router.add_get("/inbox/events", events)
