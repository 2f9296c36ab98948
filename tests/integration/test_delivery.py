"""The dispatcher against real HTTP receivers on 127.0.0.1 (marked internal in the directory)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from broker import topics
from broker.delivery import dispatcher as dispatcher_module
from broker.delivery.backoff import TESTING, Schedule
from broker.delivery.breaker import Breaker
from broker.delivery.dispatcher import GROUP, Dispatcher
from broker.delivery.inbox import InboxFollower
from broker.delivery.inboxes import notification_of
from broker.delivery.signing import WebhookKey
from broker.log import EmbeddedLog, Log
from broker.log.base import Record
from broker.store import SqliteStore
from tests.integration.delivery_support import World, body_json, closed_port_url, outcomes, receiving

KEY = WebhookKey.generate()


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[Log]:
    """A started embedded log in a temporary directory."""
    log = EmbeddedLog(tmp_path / "log.db")
    await log.start()
    yield log
    await log.close()


@pytest.fixture
async def world(log: Log) -> World:
    """A partnership that publishes directory entries and a router stand-in, on the log."""
    return await World(log).start()


async def _dispatcher(log: Log, **options: object) -> Dispatcher:
    options.setdefault("schedule", TESTING)
    options.setdefault("timeout", 0.3)
    dispatcher = Dispatcher(log, KEY, **options)  # type: ignore[arg-type]
    await dispatcher.start()
    return dispatcher


async def test_delivers_by_webhook_or_inbox(world: World, log: Log) -> None:
    """An organisation with an endpoint gets the notification's JSON by webhook; one without gets an inbox record."""
    async with receiving(None) as (receiver,):
        await world.organisation("GP-HOOK", receiver.url)
        await world.organisation("GP-INBOX")
        hooked = await world.notify("GP-HOOK")
        boxed = await world.notify("GP-INBOX")
        dispatcher = await _dispatcher(log)
        await dispatcher.settle()
        await dispatcher.close()
    assert receiver.ids() == {hooked.notification_id: 1}
    got = receiver.received[0]
    assert body_json(got) == hooked.to_dict()
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-signature"].startswith("v1a,")
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
    assert outcomes(await world.deliveries(hooked.notification_id)) == [("attempt", "delivered")]
    assert outcomes(await world.deliveries(boxed.notification_id)) == [("inbox", "inbox")]
    assert await log.committed(GROUP, topics.NOTIFICATIONS) == 2


async def test_retries_after_500s_and_timeouts(world: World, log: Log) -> None:
    """A 500 and a timeout are failures retried on the schedule; the third attempt delivers."""
    async with receiving([500, "hang", 200]) as (receiver,):
        await world.organisation("GP-FLAKY", receiver.url)
        note = await world.notify("GP-FLAKY")
        dispatcher = await _dispatcher(log)
        await dispatcher.settle()
        await dispatcher.close()
    assert receiver.ids() == {note.notification_id: 3}
    records = await world.deliveries(note.notification_id)
    assert outcomes(records) == [("attempt", "failed"), ("attempt", "failed"), ("attempt", "delivered")]
    assert [r.attempt for r in records] == [1, 2, 3]
    assert records[0].status == 500 and records[0].next_attempt_at is not None
    assert records[1].status is None and "timed out" in (records[1].error or "")
    assert dispatcher.delivered == 1


async def test_gone_stops_retries(world: World, log: Log) -> None:
    """410 Gone ends delivery at once (dead letter) and later notifications are not sent to that endpoint."""
    async with receiving([410]) as (receiver,):
        await world.organisation("GP-GONE", receiver.url)
        first = await world.notify("GP-GONE")
        dispatcher = await _dispatcher(log)
        await dispatcher.settle()
        second = await world.notify("GP-GONE")
        await dispatcher.settle()
        await dispatcher.close()
    assert receiver.ids() == {first.notification_id: 1}
    assert outcomes(await world.deliveries(first.notification_id)) == [
        ("attempt", "gone"),
        ("dead_letter", "dead_letter"),
    ]
    later = await world.deliveries(second.notification_id)
    assert outcomes(later) == [("dead_letter", "dead_letter")] and "410" in (later[0].error or "")


async def test_receiver_down_for_the_whole_schedule(world: World, log: Log, tmp_path: Path) -> None:
    """A receiver that never answers gets every scheduled attempt, then a dead letter; the inbox keeps it."""
    await world.organisation("GP-DOWN", closed_port_url())
    note = await world.notify("GP-DOWN")
    dispatcher = await _dispatcher(log)
    await dispatcher.settle()
    await dispatcher.close()
    records = await world.deliveries(note.notification_id)
    assert outcomes(records) == [("attempt", "failed")] * TESTING.attempts + [("dead_letter", "dead_letter")]
    assert "no answer after 4 attempts" in (records[-1].error or "")
    assert "inbox" in (records[-1].error or "")
    store = SqliteStore(tmp_path / "store.db")
    await store.start()
    follower = InboxFollower(log, store)
    await follower.start(background=False)
    item = await store.notification("GP-DOWN", note.notification_id)
    await store.close()
    assert item is not None and notification_of(item) == note


async def test_each_id_at_most_once_across_a_restart(world: World, log: Log) -> None:
    """After a crash before the commit, a restarted dispatcher skips what the deliveries topic says was delivered."""
    async with receiving(None) as (receiver,):
        await world.organisation("GP-ONCE", receiver.url)
        notes = [await world.notify("GP-ONCE") for _ in range(5)]
        first = await _dispatcher(log)
        await first.settle()
        await first.close()
        await log.commit(GROUP, topics.NOTIFICATIONS, 0)  # as if it died before committing anything
        more = [await world.notify("GP-ONCE") for _ in range(2)]
        second = await _dispatcher(log)
        await second.settle()
        await second.close()
    assert receiver.ids() == {n.notification_id: 1 for n in notes + more}
    assert second.delivered == 2


async def test_a_retry_owed_before_a_restart_is_made_after_it(world: World, log: Log) -> None:
    """A retry scheduled before a restart is made by the next dispatcher, from the deliveries topic."""
    async with receiving([503]) as (receiver,):
        await world.organisation("GP-LATER", receiver.url)
        note = await world.notify("GP-LATER")
        first = await _dispatcher(log, schedule=Schedule((0.3,), jitter=0.0))
        await first.step()
        while first.busy and not first.ledger.retries:
            await first.step(wait=0.02)
        await first.close(grace=0.0)  # stops with the retry still owed
        assert receiver.ids() == {note.notification_id: 1}
        second = await _dispatcher(log, schedule=Schedule((0.3,), jitter=0.0))
        assert note.notification_id in second.ledger.retries
        await second.settle()
        await second.close()
    assert receiver.ids() == {note.notification_id: 2}
    assert outcomes(await world.deliveries(note.notification_id)) == [("attempt", "failed"), ("attempt", "delivered")]


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://127.0.0.1:9/hook",
        "https://10.20.30.40/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://localhost/hook",
    ],
)
async def test_private_targets_are_refused_unless_internal(world: World, log: Log, endpoint: str) -> None:
    """Loopback, private and link-local targets not marked internal are dead-lettered, never contacted."""
    await world.organisation("GP-SSRF", endpoint, internal=False)
    note = await world.notify("GP-SSRF")
    dispatcher = await _dispatcher(log)
    await dispatcher.settle()
    await dispatcher.close()
    records = await world.deliveries(note.notification_id)
    assert outcomes(records) == [("attempt", "refused"), ("dead_letter", "dead_letter")]
    assert "not marked internal" in (records[-1].error or "")


async def test_a_loopback_receiver_not_marked_internal_gets_nothing(world: World, log: Log) -> None:
    """A live receiver on 127.0.0.1 is not contacted unless the directory marks it internal."""
    async with receiving(None) as (receiver,):
        await world.organisation("GP-NOTINTERNAL", receiver.url, internal=False)
        await world.notify("GP-NOTINTERNAL")
        dispatcher = await _dispatcher(log)
        await dispatcher.settle()
        await dispatcher.close()
    assert receiver.received == []


async def test_breaker_opens_after_repeated_failures(world: World, log: Log) -> None:
    """Once an endpoint's breaker opens, further attempts are recorded as circuit_open and not sent."""
    async with receiving(None, default=500) as (receiver,):
        await world.organisation("GP-BROKEN", receiver.url)
        notes = [await world.notify("GP-BROKEN") for _ in range(3)]
        dispatcher = await _dispatcher(log, breaker=Breaker(threshold=2, cooldown=60.0), per_endpoint=1)
        await dispatcher.settle()
        await dispatcher.close()
    assert len(receiver.received) == 2
    records = [r for n in notes for r in await world.deliveries(n.notification_id)]
    assert sum(r.outcome == "circuit_open" for r in records) == 3 * TESTING.attempts - 2
    assert sum(r.kind == "dead_letter" for r in records) == 3


async def test_the_directory_is_read_again_when_a_notification_was_routed_with_a_newer_entry(
    world: World, log: Log
) -> None:
    """A notification says the last directory entry its router had applied (``directory_at``). A dispatcher that
    has read the input past it delivers with the entries it holds, without reading the input again; one routed
    after an endpoint changed goes to the new endpoint at once. A notification without the header (from an
    older router) has the directory read first."""
    async with receiving(None, None, None) as (first_hook, second_hook, third_hook):
        at = await world.organisation("GP-A", first_hook.url)
        dispatcher = await _dispatcher(log)
        first = await world.notify("GP-A", directory_at=at)
        await dispatcher.settle()
        changed = await world.organisation("GP-A", second_hook.url)
        second = await world.notify("GP-A", directory_at=changed)
        await dispatcher.settle()
        await dispatcher.close()
        assert first_hook.ids() == {first.notification_id: 1}
        assert second_hook.ids() == {second.notification_id: 1}

        follower = dispatcher.directory
        later = await world.organisation("GP-A", third_hook.url)

        def routed(*headers: tuple[str, bytes]) -> Record:
            return Record(topics.NOTIFICATIONS, 0, 0, b"GP-A", b"{}", headers, 0)

        await follower.refresh_for([routed((topics.DIRECTORY_AT_HEADER, b"%d" % changed))], every=3600)
        entry = follower.directory.get("GP-A")
        assert entry is not None and entry.endpoint == second_hook.url  # held what that notification needed
        await follower.refresh_for([routed((topics.DIRECTORY_AT_HEADER, b"%d" % later))], every=3600)
        entry = follower.directory.get("GP-A")
        assert entry is not None and entry.endpoint == third_hook.url
        await world.organisation("GP-A", first_hook.url)
        await follower.refresh_for([routed()], every=3600)
        entry = follower.directory.get("GP-A")
        assert entry is not None and entry.endpoint == first_hook.url


async def test_a_notification_another_dispatcher_delivered_meanwhile_is_not_sent_again(world: World, log: Log) -> None:
    """Before it starts anything, a dispatcher reads what every dispatcher has recorded since it last looked: a
    delivery recorded by another (the partition's holder before a rebalance) is never sent again."""
    async with receiving(None) as (receiver,):
        await world.organisation("GP-A", receiver.url)
        late = await _dispatcher(log)
        await late.step()  # holds the partitions now, and read the ledger when it took them up
        note = await world.notify("GP-A")
        first = await _dispatcher(log)
        await first.settle()
        assert receiver.ids() == {note.notification_id: 1}
        await late.settle()  # reads the same notification (the embedded log's member holds every partition)
        await first.close()
        await late.close()
    assert receiver.ids() == {note.notification_id: 1}
    assert outcomes(await world.deliveries(note.notification_id)) == [("attempt", "delivered")]


async def test_a_partition_taken_away_during_a_read_starts_nothing_more_here(
    world: World, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Kafka the group can take a partition away while a step is reading it (the revoke hook runs inside the
    group's rebalance, beside the step). What that read returns is left to the partition's next holder: never
    attempted here as well, where it would reach the receiver twice."""
    async with receiving(None) as (receiver,):
        await world.organisation("GP-A", receiver.url)
        dispatcher = await _dispatcher(log)
        member, taken = dispatcher._member, set[int]()
        held_before = member.poll

        async def poll() -> frozenset[int]:  # the group's answer once the partition is gone
            return frozenset(await held_before() - taken)

        def then_revoke(read: Callable[..., Awaitable[list[Record]]]) -> Callable[..., Awaitable[list[Record]]]:
            async def read_then_revoke(log_: Log, topic: str, positions: dict[int, int], *args: Any) -> list[Record]:
                records = await read(log_, topic, positions, *args)
                if records and not taken:
                    taken.add(records[0].partition)
                    await member.on_revoked(frozenset(taken))
                return records

            return read_then_revoke

        member.poll = poll
        for name in ("read_available_many", "read_any"):  # the read that does not wait, and the one that does
            monkeypatch.setattr(dispatcher_module, name, then_revoke(getattr(dispatcher_module, name)))
        note = await world.notify("GP-A")
        for _ in range(20):
            await dispatcher.step(wait=0.01)
        await dispatcher.close()
        assert taken and receiver.ids() == {}
        assert await world.deliveries(note.notification_id) == []
        successor = await _dispatcher(log)  # the partition's next holder sends it, once
        await successor.settle()
        await successor.close()
    assert receiver.ids() == {note.notification_id: 1}


async def test_partitions_taken_away_are_let_go_only_once_attempts_in_flight_are_recorded(
    world: World, log: Log
) -> None:
    """When the group takes partitions away (a rebalance), the dispatcher's revoke hook returns only after its
    attempt in flight has finished and its delivery is on the ledger, so the next holder never sends it again."""
    async with receiving(["hang"]) as (receiver,):  # the receiver answers after 1 s
        await world.organisation("GP-SLOW", receiver.url)
        note = await world.notify("GP-SLOW")
        dispatcher = await _dispatcher(log, timeout=5.0)
        assert dispatcher._member.on_revoked is not None  # what the group calls on a rebalance
        for _ in range(200):
            await dispatcher.step(wait=0.01)
            if receiver.received:
                break
        assert receiver.received and await world.deliveries(note.notification_id) == []  # still in flight
        await dispatcher._member.on_revoked(frozenset({0}))
        assert outcomes(await world.deliveries(note.notification_id)) == [("attempt", "delivered")]
        await dispatcher.close()
    assert receiver.ids() == {note.notification_id: 1}
