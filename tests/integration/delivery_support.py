"""Real HTTP receivers on 127.0.0.1 and a small world for the delivery tests.

``Receiver`` is an aiohttp server on an ephemeral loopback port that records
every request (headers and raw body) and answers from a script: a list of
statuses, or ``"hang"`` to sleep past the dispatcher's timeout. ``World``
holds a log with directory entries published as the partnership would (signed
envelopes through the real intake) and appends notifications as the router would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from broker import topics
from broker.client import build_envelope
from broker.delivery.records import DeliveryRecord, decode_delivery
from broker.envelope.keys import KeyRegistry, new_key
from broker.intake import Intake
from broker.log.base import Log
from broker.routing.model import Notification, notification_id
from broker.routing.records import encode_output

PARTNERSHIP = "PARTNERSHIP-TEST"
VALID_FROM = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def synthetic_notification(recipient: str, *, kind: str = "alert", priority: str = "urgent") -> Notification:
    """A notification as the router would write it, sent now (to the millisecond, as its JSON keeps)."""
    now = dt.datetime.now(dt.UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    event_id = str(uuid.uuid4())
    return Notification(
        notification_id=notification_id(event_id, recipient),
        kind=kind,
        event_id=event_id,
        event_type="police.domestic_abuse_incident",
        recipient=recipient,
        at=now,
        priority=priority,
        flags=(),
        view="full",
        reason=f"synthetic notification for {recipient}",
        also_notified=(),
        ack_by=now + dt.timedelta(hours=24),
        rule="R1",
        content={"summary": "synthetic"},
    )


@dataclasses.dataclass
class Received:
    """One request a receiver got."""

    headers: dict[str, str]
    body: bytes


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers from a script and records what it got."""

    def __init__(self, script: list[int | str] | None = None, *, default: int | str = 200) -> None:
        self.script = list(script or [])
        self.default = default
        self.received: list[Received] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received({k.lower(): v for k, v in request.headers.items()}, body))
        action = self.script.pop(0) if self.script else self.default
        if action == "hang":
            await asyncio.sleep(1.0)  # well past the tests' 0.3 s timeout
            action = 200
        return web.Response(status=int(action))

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def ids(self) -> Counter[str]:
        """How many times each webhook-id arrived."""
        return Counter(r.headers["webhook-id"] for r in self.received)


@asynccontextmanager
async def receiving(*scripts: list[int | str] | None, default: int | str = 200) -> AsyncIterator[list[Receiver]]:
    """Start one receiver per script; stop them all afterwards."""
    receivers = [await Receiver(s, default=default).start() for s in scripts]
    try:
        yield receivers
    finally:
        for receiver in receivers:
            await receiver.stop()


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (a receiver that is down)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


class World:
    """A log with a partnership that publishes directory entries, and a router stand-in."""

    def __init__(self, log: Log) -> None:
        self.log = log
        record, self.partnership_key = new_key(PARTNERSHIP, "partnership", valid_from=VALID_FROM)
        self.intake = Intake(log, lambda: KeyRegistry([record]))
        self.offsets: dict[str, int] = {}

    async def start(self) -> World:
        await self.intake.start()
        for topic in (topics.NOTIFICATIONS, topics.DELIVERIES, topics.INPUT):
            await self.log.create_topic(topic)
        return self

    async def organisation(self, org_id: str, endpoint: str | None = None, *, internal: bool = True) -> int:
        """Publish a directory entry for an organisation, as the partnership would; its input offset."""
        now = dt.datetime.now(dt.UTC)
        data = {
            "org_id": org_id,
            "kind": "gp_practice",
            "name": f"Practice {org_id}",
            "area": "testshire",
            "endpoint": endpoint,
            "endpoint_internal": internal,
            "safeguarding_lead": "Dr Lead",
        }
        env = build_envelope(
            "directory.organisation", data, source=PARTNERSHIP, key=self.partnership_key, occurred_at=now
        )
        outcome = await self.intake.submit(env, caller=None, now=now)
        assert outcome.error is None and outcome.position is not None, outcome.error
        return outcome.position.offset

    async def notify(
        self, recipient: str, *, kind: str = "alert", priority: str = "urgent", directory_at: int | None = None
    ) -> Notification:
        """Append a notification to the notifications topic, as the router would (with ``directory_at``: the
        offset of the last directory entry the router had applied, ``topics.DIRECTORY_AT_HEADER``)."""
        note = synthetic_notification(recipient, kind=kind, priority=priority)
        key, value, headers = encode_output(note)
        if directory_at is not None:
            headers = (*headers, (topics.DIRECTORY_AT_HEADER, b"%d" % directory_at))
        await self.log.append(topics.NOTIFICATIONS, value, key=key, headers=headers)
        return note

    async def deliveries(self, nid: str | None = None) -> list[DeliveryRecord]:
        """Every delivery record (for one notification id if given), in log order."""
        out: list[DeliveryRecord] = []
        offset = 0
        while records := await self.log.read(topics.DELIVERIES, offset, limit=1000):
            for record in records:
                delivery = decode_delivery(record)
                if delivery is not None and (nid is None or delivery.notification_id == nid):
                    out.append(delivery)
            offset = records[-1].offset + 1
        return out


def outcomes(records: list[DeliveryRecord]) -> list[tuple[str, str]]:
    """``(kind, outcome)`` of each record, for short assertions."""
    return [(r.kind, r.outcome) for r in records]


def body_json(received: Received) -> Any:
    import json

    return json.loads(received.body)
