"""The whole service on 127.0.0.1 for end-to-end delivery tests: gateway, router and dispatcher on one log.

``running_service`` starts the real gateway app (``create_app``) with keys on
disk and a publisher and a recipient credential per organisation. With
``roles`` it runs the serve roles as ``jigsaw serve`` does (wall clock);
without, it runs the router on a clock the test moves (``Service.advance``) and
a dispatcher with the testing backoff, each in a consumer group of its own that
starts at the current end of the notifications topic, so a shared Kafka broker
holding other tests' records does not disturb it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from broker import topics
from broker.client import JigsawClient, SendResult
from broker.delivery.backoff import TESTING
from broker.delivery.dispatcher import Dispatcher
from broker.delivery.signing import webhook_key_for
from broker.envelope.keys import KeyStore, SigningKey, new_key
from broker.gateway.app import create_app
from broker.gateway.auth import Credentials
from broker.log.base import Log
from broker.nhs import synthetic_nhs_number
from broker.routing.live import LiveRouter
from broker.settings import Settings
from broker.store import Store

VALID_FROM = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def fresh_person(name: str, born: str = "1990-01-01") -> dict[str, Any]:
    """A synthetic PersonRef with an NHS number unlikely to be in a shared log already."""
    return {"nhs_number": synthetic_nhs_number(random.randrange(100_000, 799_999)), "name": name, "date_of_birth": born}


@dataclasses.dataclass
class Service:
    """A running service and what a test needs to act as the agencies and professionals."""

    base_url: str
    log: Log
    signing: Mapping[str, SigningKey]
    session: aiohttp.ClientSession
    offset: dt.timedelta = dt.timedelta()
    router: LiveRouter | None = None

    def clock(self) -> dt.datetime:
        """The router's clock: the wall clock moved on by ``advance``."""
        return dt.datetime.now(dt.UTC) + self.offset

    def advance(self, by: dt.timedelta) -> None:
        """Move the router's clock on (escalations due by then are raised)."""
        self.offset += by

    def token(self, org_id: str, role: str) -> str:
        return f"{role}-{org_id}"

    async def publish(self, org_id: str, event_type: str, data: Mapping[str, Any]) -> SendResult:
        """Publish a signed event as ``org_id`` through the gateway, as its adapter would."""
        client = JigsawClient(
            self.base_url, self.token(org_id, "publisher"), key=self.signing[org_id], session=self.session
        )
        now = dt.datetime.now(dt.UTC)
        result = await client.publish(event_type, data, occurred_at=now - dt.timedelta(minutes=1), issued_at=now)
        assert result.accepted, result.body
        return result

    async def call(self, org_id: str, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        """Call the API as ``org_id``'s recipient credential."""
        headers = {"Authorization": f"Bearer {self.token(org_id, 'recipient')}"}
        async with self.session.request(method, self.base_url + path, headers=headers, **kw) as response:
            return response.status, await response.json()

    async def inbox(self, org_id: str, query: str = "") -> list[dict[str, Any]]:
        status, body = await self.call(org_id, "GET", "/v1/inbox" + query)
        assert status == 200, body
        return list(body["notifications"])


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float = 30.0, what: str = "") -> None:
    """Wait until ``check()`` is true, looking every 50 ms."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_service(
    log: Log,
    tmp_path: Path,
    orgs: Mapping[str, str],
    *,
    roles: Sequence[str] | None = None,
    store: Store | None = None,
) -> AsyncIterator[Service]:
    """Gateway, router and dispatcher over ``log`` (not yet started) for organisations ``{org_id: kind}``.

    ``store``: the serving views (not yet started); default a SQLite file in ``tmp_path``.
    """
    keys = KeyStore(tmp_path / "keys", recheck_seconds=0)
    signing: dict[str, SigningKey] = {}
    for org_id, kind in orgs.items():
        record, signing[org_id] = new_key(org_id, kind, valid_from=VALID_FROM)
        keys.save(record)
    credentials = Credentials.from_tokens(
        [(f"{role}-{org}", org, role) for org in orgs for role in ("publisher", "recipient")]
    )
    settings = Settings(data_dir=tmp_path, keys_dir=tmp_path / "keys", webhook_retry_schedule="testing")
    app = create_app(settings, log, keys=keys, credentials=credentials, roles=roles or (), store=store)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()  # starts the log
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    tasks: list[asyncio.Task[None]] = []
    session = aiohttp.ClientSession()
    service = Service(f"http://{host}:{port}", log, signing, session)
    try:
        if roles is None:
            run = uuid.uuid4().hex[:8]
            service.router = LiveRouter(log, group=f"test-router-{run}", clock=service.clock, wait=0.05)
            await service.router.start()
            await service.router.turn()
            dispatch_group = f"test-dispatcher-{run}"
            await log.create_topic(topics.NOTIFICATIONS)
            end = await log.end_offset(topics.NOTIFICATIONS)
            await log.commit(dispatch_group, topics.NOTIFICATIONS, end)  # only what this test causes
            key = webhook_key_for(None, tmp_path)
            dispatcher = Dispatcher(log, key, schedule=TESTING, timeout=2.0, group=dispatch_group)
            tasks.append(asyncio.create_task(service.router.run()))
            tasks.append(asyncio.create_task(dispatcher.run(idle_wait=0.1)))
        yield service
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()
        await runner.cleanup()


@dataclasses.dataclass(frozen=True)
class Cast:
    """The organisations of one end-to-end run (fresh ids, so a shared broker's older records never match)."""

    hook: str  # a GP practice with a webhook endpoint: the victim's
    boxed: str  # a GP practice with an inbox only: the perpetrator's
    police: str
    partnership: str
    area: str

    @classmethod
    def fresh(cls) -> Cast:
        run = uuid.uuid4().hex[:6].upper()
        return cls(f"GP-W{run}", f"GP-I{run}", f"POLICE-{run}", f"PARTNERSHIP-{run}", f"e2e-{run.lower()}")

    def orgs(self) -> dict[str, str]:
        return {
            self.hook: "gp_practice",
            self.boxed: "gp_practice",
            self.police: "police",
            self.partnership: "partnership",
        }


async def publish_directory(service: Service, cast: Cast, endpoints: Mapping[str, str]) -> None:
    """The partnership publishes every organisation of the cast, with the endpoints given (marked internal)."""
    for org_id, kind in cast.orgs().items():
        endpoint = endpoints.get(org_id)
        entry = {
            "org_id": org_id,
            "kind": kind,
            "name": f"Synthetic {org_id}",
            "area": cast.area,
            "endpoint": endpoint,
            "endpoint_internal": endpoint is not None,
            "safeguarding_lead": f"Lead of {org_id}",
        }
        await service.publish(cast.partnership, "directory.organisation", entry)


async def post_incident(service: Service, cast: Cast) -> str:
    """The victim registers at ``hook``, the perpetrator at ``boxed``; the police post an incident. Its event id."""
    victim, perpetrator = fresh_person("Victim E2E"), fresh_person("Perpetrator E2E", "1988-03-03")
    for org_id, person in ((cast.hook, victim), (cast.boxed, perpetrator)):
        data = {"person": person, "practice": org_id, "status": "registered", "effective_date": "2015-01-01"}
        await service.publish(org_id, "gp.registration", data)
    incident = {
        "incident_ref": f"E2E-{cast.area}",
        "victim": victim,
        "perpetrator": perpetrator,
        "children_present": [],
        "children_in_household": [],
        "risk_level": "medium",
        "marac_referral": False,
        "summary": "Synthetic incident.",
    }
    return str((await service.publish(cast.police, "police.domestic_abuse_incident", incident)).body["event_id"])


async def post_ack_escalate(service: Service, cast: Cast, receiver_url: str, received: Callable[[], list[Any]]) -> None:
    """An agency posts an event; the right organisations get it by webhook or inbox; one acknowledges,
    the other does not and is escalated when the router's clock passes ``ack_by``."""
    await publish_directory(service, cast, {cast.hook: receiver_url})
    event_id = await post_incident(service, cast)
    hook, boxed = cast.hook, cast.boxed

    async def webhook_arrived() -> bool:
        return any(body.get("event_id") == event_id for body in received())

    async def in_inbox() -> bool:
        return any(n["event_id"] == event_id for n in await service.inbox(boxed))

    await eventually(webhook_arrived, what="the webhook to the victim's GP")
    await eventually(in_inbox, what="the notification in the perpetrator's GP's inbox")
    pushed = next(body for body in received() if body.get("event_id") == event_id)
    assert (pushed["recipient"], pushed["kind"], pushed["priority"]) == (hook, "alert", "routine")
    assert "victim" in pushed["reason"]
    pulled = next(n for n in await service.inbox(boxed) if n["event_id"] == event_id)
    assert "perpetrator" in pulled["reason"] and pulled["acknowledged"] is None
    assert await service.inbox(cast.police) == []  # not to itself
    status, _ = await service.call(hook, "POST", f"/v1/inbox/{pushed['notification_id']}/ack", json={"by": "Dr W"})
    assert status == 201
    acked_through = await service.log.end_offset(topics.INPUT)  # the ack is on the input topic before the answer
    router = service.router
    assert router is not None

    async def ack_routed() -> bool:  # the router applies input records in offset order
        return router.router.position >= acked_through

    await eventually(ack_routed, what="the router to read the acknowledgement")

    service.advance(dt.timedelta(days=6))  # routine: 5 days to acknowledge

    async def escalated() -> bool:
        return any(n["kind"] == "escalation" for n in await service.inbox(boxed))

    await eventually(escalated, what="the escalation of the unacknowledged notification")
    escalation = next(n for n in await service.inbox(boxed) if n["kind"] == "escalation")
    assert escalation["cause"] == "unacknowledged" and escalation["follows"] == pulled["notification_id"]
    assert escalation["safeguarding_lead"] == f"Lead of {boxed}"
    await asyncio.sleep(1.0)  # the acknowledged one would have been escalated in the same turn
    assert [n["kind"] for n in await service.inbox(hook)] == ["alert"]
    assert [b["kind"] for b in received() if b.get("recipient") == hook] == ["alert"]
