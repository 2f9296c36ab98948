"""The ``views`` role follows the log into the serving views; a gateway without it catches up only on request."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from broker import topics
from broker.delivery.inbox_view import InboxFollower
from broker.gateway.app import create_app
from broker.gateway.keys import ROLE_BOARD, STORE
from broker.log import EmbeddedLog, Log
from broker.log.namespace import NamespacedLog
from broker.settings import Settings
from broker.store import SqliteStore, Store
from broker.store.chronology_view import ChronologyFollower
from broker.store.follow import DeliveriesFollower
from tests.conftest import LogBackend
from tests.integration.delivery_service import eventually
from tests.integration.gateway_support import running_gateway


async def _inbox_read(store: Store) -> int:
    """How many notification records the inbox view has applied, over every partition."""
    positions = await store.positions("inbox")
    return sum(offset for (topic, _), offset in positions.items() if topic == topics.NOTIFICATIONS)


@contextlib.asynccontextmanager
async def _views_process(tmp_path: Path) -> AsyncIterator[web.Application]:
    """A second process's app over the same log and store files, running only the views role."""
    settings = Settings(data_dir=tmp_path, keys_dir=tmp_path / "keys", roles=("views",))
    app = create_app(settings, EmbeddedLog(tmp_path / "log.db"))
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        yield app
    finally:
        await runner.cleanup()


async def test_only_a_views_process_follows_in_the_background_and_a_request_catches_up_without_one(
    tmp_path: Path,
) -> None:
    """Gateway alone: a notification stays out of the view until an inbox request reads it in. With a views
    process (no gateway: it serves no agency traffic) it is in the view within a few seconds, unasked."""
    async with running_gateway("embedded", tmp_path) as gateway:
        store = gateway.app[STORE]
        before = await _inbox_read(store)
        await gateway.notify("HV-BRADFORD-NORTH")
        await asyncio.sleep(2.5)  # more than two of the views role's intervals
        assert await _inbox_read(store) == before, "a gateway followed the log in the background"
        headers = {"Authorization": f"Bearer {gateway.tokens['RECIPIENT']}"}
        async with gateway.session.get(gateway.base_url + "/v1/inbox", headers=headers) as response:
            assert response.status == 200 and len((await response.json())["notifications"]) == 1
        assert await _inbox_read(store) == before + 1

        async with _views_process(tmp_path) as views:
            await eventually(lambda: _running(views), timeout=10, what="the views role to run")
            await gateway.notify("HV-BRADFORD-NORTH")

            async def applied() -> bool:
                return await _inbox_read(store) == before + 2

            await eventually(applied, timeout=10, what="the views process to follow the notifications topic")


async def _running(app: web.Application) -> bool:
    return app[ROLE_BOARD].get("views").get("state") == "running"


async def test_a_view_follower_creates_no_topic_so_the_router_gives_notifications_their_partitions(
    log_backend: LogBackend, tmp_path: Path
) -> None:
    """Views followed before any writer ran leave the topics alone: the notifications topic is created by the
    router (or a dispatcher) with the deployment's partitions, never with one by a reader that came first."""
    log: Log = await log_backend.open()
    if log_backend.name == "kafka":  # topics of this test's own on the shared broker
        log = NamespacedLog(log, f"views{uuid.uuid4().hex[:10]}.")
    store = SqliteStore(tmp_path / "store.db")
    await store.start()
    followers = [InboxFollower(log, store), ChronologyFollower(log, store), DeliveriesFollower(log, store)]
    try:
        for follower in followers:
            assert await follower.start(background=False) == 0
        for topic in (topics.NOTIFICATIONS, topics.DECISIONS, topics.DELIVERIES):
            assert await log.partitions(topic) == 0, f"a follower created {topic}"
        await log.create_topic(topics.NOTIFICATIONS, partitions=6)  # as the router does
        assert await log.partitions(topics.NOTIFICATIONS) == 6
    finally:
        await store.close()
