"""The inbox API and the published webhook key, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from broker import topics
from broker.delivery.api import mount_delivery
from broker.delivery.backoff import TESTING
from broker.delivery.dispatcher import Dispatcher
from broker.delivery.signing import WebhookKey, verify_webhook
from broker.gateway.auth import Credentials
from broker.log import EmbeddedLog, Log
from broker.routing.records import decode_ack
from broker.store import SqliteStore
from tests.integration.delivery_support import World, receiving

TOKENS = {"gp-a": ("GP-A", "recipient"), "hv-b": ("HV-B", "recipient"), "pub-a": ("GP-A", "publisher")}


@dataclasses.dataclass
class Api:
    """A running app with the delivery routes, and a way to call it as each credential."""

    base: str
    log: Log
    world: World
    key: WebhookKey
    session: aiohttp.ClientSession

    async def call(self, method: str, path: str, token: str | None = "gp-a", **kw: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.request(method, self.base + path, headers=headers, **kw) as response:
            return response.status, await response.json()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The delivery routes mounted on an aiohttp app on an ephemeral loopback port, over an embedded log."""
    log = EmbeddedLog(tmp_path / "log.db")
    await log.start()
    store = SqliteStore(tmp_path / "store.db")
    await store.start()
    world = await World(log).start()
    key = WebhookKey.generate()
    app = web.Application()
    credentials = Credentials.from_tokens((t, org, role) for t, (org, role) in TOKENS.items())
    mount_delivery(
        app,
        log=log,
        store=store,
        authenticate=credentials.authenticate,
        clock=lambda: dt.datetime.now(dt.UTC),
        webhook_key=key,
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        yield Api(f"http://127.0.0.1:{port}", log, world, key, session)
    await runner.cleanup()
    await store.close()
    await log.close()


async def _topic(log: Log, topic: str) -> list[dict[str, Any]]:
    records = await log.read(topic, 0, limit=1000)
    return [json.loads(r.value) for r in records if r.value is not None]


async def test_signatures_verify_with_the_published_key(api: Api) -> None:
    """A receiver verifies every webhook with the key from GET /v1/webhook-key."""
    status, published = await api.call("GET", "/v1/webhook-key", token=None)
    assert status == 200 and published["scheme"] == "v1a" and published["public_key"].startswith("whpk_")
    async with receiving(None) as (receiver,):
        await api.world.organisation("GP-A", receiver.url)
        notes = [await api.world.notify("GP-A") for _ in range(3)]
        dispatcher = Dispatcher(api.log, api.key, schedule=TESTING)
        await dispatcher.start()
        await dispatcher.settle()
        await dispatcher.close()
    assert len(receiver.received) == 3
    for got in receiver.received:
        assert verify_webhook(published["public_key"], got.headers, got.body, now=int(time.time()))
    assert {r.headers["webhook-id"] for r in receiver.received} == {n.notification_id for n in notes}
    forged = dict(receiver.received[0].headers, **{"webhook-id": notes[1].notification_id})
    assert not verify_webhook(published["public_key"], forged, receiver.received[0].body, now=int(time.time()))


async def test_an_organisation_reads_only_its_own_inbox(api: Api) -> None:
    """GET /v1/inbox lists the caller's notifications; another organisation's id is 404 like a missing one."""
    mine = await api.world.notify("GP-A")
    theirs = await api.world.notify("HV-B")
    status, body = await api.call("GET", "/v1/inbox")
    assert status == 200 and body["organisation"] == "GP-A"
    assert [n["notification_id"] for n in body["notifications"]] == [mine.notification_id]
    assert body["notifications"][0]["reason"] == mine.reason and body["notifications"][0]["acknowledged"] is None
    status, one = await api.call("GET", f"/v1/inbox/{mine.notification_id}")
    assert status == 200 and one["notification_id"] == mine.notification_id
    other = await api.call("GET", f"/v1/inbox/{theirs.notification_id}")
    missing = await api.call("GET", "/v1/inbox/00000000-0000-0000-0000-000000000000")
    assert other[0] == missing[0] == 404
    assert other[1]["error"] == missing[1]["error"] == "not_found"
    assert (await api.call("POST", f"/v1/inbox/{theirs.notification_id}/ack", json={"by": "Nosy"}))[0] == 404
    assert [r for r in await api.log.read(topics.INPUT, 0) if topics.is_ack(r)] == []


async def test_acknowledgement_is_recorded_once(api: Api) -> None:
    """POST .../ack appends an Ack with who and when; a second one changes nothing."""
    note = await api.world.notify("GP-A")
    status, body = await api.call("POST", f"/v1/inbox/{note.notification_id}/ack", json={"by": "Dr Example"})
    assert status == 201 and body["status"] == "acknowledged" and body["acknowledged"]["by"] == "Dr Example"
    status, again = await api.call("POST", f"/v1/inbox/{note.notification_id}/ack", json={"by": "Someone Else"})
    assert status == 200 and again["status"] == "already_acknowledged" and again["acknowledged"]["by"] == "Dr Example"
    records = [r for r in await api.log.read(topics.INPUT, 0) if topics.is_ack(r)]
    assert len(records) == 1
    ack = decode_ack(records[0])
    assert (ack.notification_id, ack.recipient, ack.by) == (note.notification_id, "GP-A", "Dr Example")
    status, one = await api.call("GET", f"/v1/inbox/{note.notification_id}")
    assert one["acknowledged"]["by"] == "Dr Example"


async def test_filters(api: Api) -> None:
    """unacknowledged, priority and since narrow the list."""
    urgent = await api.world.notify("GP-A", priority="urgent")
    routine = await api.world.notify("GP-A", priority="routine")
    await api.call("POST", f"/v1/inbox/{urgent.notification_id}/ack", json={"by": "Dr Example"})

    async def ids(query: str) -> list[str]:
        status, body = await api.call("GET", "/v1/inbox" + query)
        assert status == 200, body
        return [n["notification_id"] for n in body["notifications"]]

    assert await ids("?unacknowledged=true") == [routine.notification_id]
    assert await ids("?priority=urgent") == [urgent.notification_id]
    since = (routine.at + dt.timedelta(seconds=1)).isoformat()
    assert await ids("?since=" + since.replace("+00:00", "Z")) == []
    assert (await api.call("GET", "/v1/inbox?priority=whenever"))[0] == 400
    assert (await api.call("GET", "/v1/inbox?since=yesterday"))[0] == 400


async def test_every_read_is_recorded(api: Api) -> None:
    """Lists, reads (found or not) and refused acks each leave an access record of who, what and when."""
    note = await api.world.notify("GP-A")
    await api.call("GET", "/v1/inbox")
    await api.call("GET", f"/v1/inbox/{note.notification_id}")
    await api.call("GET", "/v1/inbox/not-an-id", token="hv-b")
    access = await _topic(api.log, topics.ACCESS)
    assert [(a["org_id"], a["action"], a["notification_ids"]) for a in access] == [
        ("GP-A", "list", [note.notification_id]),
        ("GP-A", "read", [note.notification_id]),
        ("HV-B", "read", ["not-an-id"]),
    ]
    assert access[2]["outcome"] == "not_found" and all(a["at"] for a in access)
    assert "content" not in json.dumps(access)


async def test_callers_need_a_recipient_credential(api: Api) -> None:
    """No token is 401, an unknown token is 401, a publisher credential is 403."""
    assert (await api.call("GET", "/v1/inbox", token=None))[0] == 401
    assert (await api.call("GET", "/v1/inbox", token="nonsense"))[0] == 401
    status, body = await api.call("GET", "/v1/inbox", token="pub-a")
    assert status == 403 and body["error"] == "forbidden"


async def test_an_acknowledgement_must_say_who(api: Api) -> None:
    """An ack without a person's name, or not JSON, is refused and not recorded."""
    note = await api.world.notify("GP-A")
    path = f"/v1/inbox/{note.notification_id}/ack"
    assert (await api.call("POST", path, json={}))[0] == 400
    assert (await api.call("POST", path, json={"by": "  "}))[0] == 400
    assert (await api.call("POST", path, data=b"not json"))[0] == 400
    assert [r for r in await api.log.read(topics.INPUT, 0) if topics.is_ack(r)] == []
