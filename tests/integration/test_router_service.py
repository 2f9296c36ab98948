"""The router service on a real log: it rebuilds from the log, and a router killed mid-batch and
restarted loses no notification and writes none twice (memory, embedded and a real Kafka broker)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from broker import topics
from broker.audit.state_snapshot import RouterSnapshot, SnapshotInvalid
from broker.log import EmbeddedLog, Headers, Log, MemoryLog, Position, Record
from broker.log.membership import SequentialWriter
from broker.log.namespace import NamespacedLog
from broker.routing import snapshot_aside
from broker.routing.live import SNAPSHOT_NAME, LiveRouter
from broker.routing.service import RouterService
from broker.routing.state import RoutingState
from broker.simulate import load_scenario, run_scenario
from broker.store import Snapshot, SqliteStore, Store

SCENARIO = Path(__file__).parents[1] / "scenarios" / "data" / "family-a.json"
INPUTS = (topics.INPUT,)


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dt.datetime]:
    """The family-a scenario simulated once, its embedded log kept."""
    import asyncio

    path = tmp_path_factory.mktemp("kept") / "family-a.db"
    scenario = load_scenario(SCENARIO)
    asyncio.run(run_scenario(scenario, io.StringIO(), keep_log=path))
    assert scenario.run_until is not None
    return path, scenario.run_until


async def _read_all(log: Log, topic: str) -> list:  # type: ignore[type-arg]
    out, offset = [], 0
    while records := await log.read(topic, offset, limit=1000):
        out += records
        offset = records[-1].offset + 1
    return out


async def _recorded(path: Path) -> tuple[list[str], list]:  # type: ignore[type-arg]
    """The output ids and the input records of a finished embedded log."""
    source = EmbeddedLog(path)
    await source.start()
    try:
        return await _ids(source), await _read_all(source, topics.INPUT)
    finally:
        await source.close()


async def _append_all(log: Log, records: list) -> None:  # type: ignore[type-arg]
    """Append input records to ``log`` as they were (key, headers, timestamp)."""
    for r in records:
        await log.append(topics.INPUT, r.value, key=r.key, headers=r.headers, timestamp_ms=r.timestamp_ms)


async def _ids(log: Log) -> list[str]:
    return [json.loads(r.value)["notification_id"] for r in await _read_all(log, topics.NOTIFICATIONS)]


@contextlib.asynccontextmanager
async def _started(log: Log, tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """The log started with its input topic, and a store beside it for the routers' snapshots; both closed after."""
    await log.start()
    store = SqliteStore(tmp_path / "store.db")
    await store.start()
    try:
        await log.create_topic(topics.INPUT)
        yield store
    finally:
        await store.close()
        await log.close()


async def _route_and_snapshot(router: LiveRouter, store: Store) -> Snapshot:
    """Start a live router, route what the input holds, and save a snapshot now: the store's newest."""
    await router.start()
    await router.turn()
    await router._snapshot()
    await router.saved()
    saved = await store.latest_snapshot(SNAPSHOT_NAME)
    assert saved is not None
    return saved


async def _snapshot_at_half(
    log: Log, store: Store, inputs: list[Record], until: dt.datetime, *, every: int
) -> tuple[LiveRouter, Snapshot]:
    """Route the first half of ``inputs`` with a live router that saves a snapshot, then append the rest."""
    await _append_all(log, inputs[: len(inputs) // 2])
    router = LiveRouter(log, snapshots=store, snapshot_every=every, clock=lambda: until)
    saved = await _route_and_snapshot(router, store)
    await _append_all(log, inputs[len(inputs) // 2 :])
    return router, saved


class Crash(RuntimeError):
    """The router process dies here."""


class CrashingLog(NamespacedLog):
    """A log that dies after ``n`` writes of router output (no commit happens after it)."""

    def __init__(self, inner: Log, prefix: str, n: int) -> None:
        super().__init__(inner, prefix)
        self.left = n

    async def append_many(
        self,
        topic: str,
        items: Sequence[tuple[bytes | None, bytes | None, Headers]],
        *,
        timestamp_ms: int | None = None,
    ) -> list[Position]:
        if topic in (topics.NOTIFICATIONS, topics.DECISIONS):
            if self.left == 0:
                raise Crash(topic)
            self.left -= 1
        return await super().append_many(topic, items, timestamp_ms=timestamp_ms)

    def writer(self, transactional_id: str) -> SequentialWriter:
        """Appends through this log, so the crash happens where the router writes its outputs."""
        return SequentialWriter(self, transactional_id)


async def test_router_rebuilds_from_the_log_and_writes_nothing_twice(kept: tuple[Path, dt.datetime]) -> None:
    """A router started on a log it already routed writes nothing new: its state comes from the log."""
    path, until = kept
    log = EmbeddedLog(path)
    await log.start()
    try:
        before = await _ids(log)
        router = RouterService(log)
        await router.start()
        assert await router.run_until_idle(now=until) == []
        assert await _ids(log) == before
        assert router.routed > 0
    finally:
        await log.close()


BACKENDS = ["memory", "embedded", pytest.param("kafka", marks=pytest.mark.kafka)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("crash_after", [0, 2, 9])
async def test_router_killed_mid_batch_and_restarted_loses_and_duplicates_nothing(
    kept: tuple[Path, dt.datetime], tmp_path: Path, request: pytest.FixtureRequest, backend: str, crash_after: int
) -> None:
    """Killed while writing its outputs and started again, the router ends with exactly the notifications
    a clean run wrote (the simulator's), each once."""
    path, until = kept
    source = EmbeddedLog(path)
    await source.start()
    expected = await _ids(source)
    prefix = f"t{uuid.uuid4().hex[:10]}." if backend == "kafka" else ""
    memory = MemoryLog()

    def fresh() -> Log:
        if backend == "memory":
            return memory
        if backend == "embedded":
            return EmbeddedLog(tmp_path / "copy.db")
        from broker.log.kafka import KafkaLog

        return KafkaLog(request.getfixturevalue("kafka_bootstrap"), client_id="jigsaw-router-tests")

    first = CrashingLog(fresh(), prefix, crash_after)
    await first.start()
    try:
        for topic in INPUTS:
            await first.create_topic(topic)
            for r in await _read_all(source, topic):
                await first.append(topic, r.value, key=r.key, headers=r.headers, timestamp_ms=r.timestamp_ms)
        router = RouterService(first)
        await router.start()
        with pytest.raises(Crash):
            await router.run_until_idle(now=until)
    finally:
        if backend != "memory":
            await first.close()
        await source.close()

    second = NamespacedLog(fresh(), prefix)
    await second.start()
    try:
        router = RouterService(second)
        await router.start()
        await router.run_until_idle(now=until)
        got = await _ids(second)
        assert [i for i, n in Counter(got).items() if n > 1] == []
        assert set(got) == set(expected)
        assert len(expected) > 20
        committed = await second.committed("jigsaw-router", topics.INPUT)
        assert committed == await second.end_offset(topics.INPUT)
    finally:
        await second.close()


async def test_a_router_starts_from_its_snapshot_and_routes_the_tail_exactly_as_a_full_replay(
    kept: tuple[Path, dt.datetime], tmp_path: Path
) -> None:
    """A live router saves snapshots in the store; a fresh one (new process, same store) starts from the newest,
    applies only the records after it, and the log ends with exactly the notifications a full run wrote."""
    import shutil

    path, until = kept
    copy = tmp_path / "log.db"
    shutil.copy(path, copy)
    expected, inputs = await _recorded(copy)

    log = EmbeddedLog(tmp_path / "live.db")
    async with _started(log, tmp_path) as store:
        _, saved = await _snapshot_at_half(log, store, inputs, until, every=10)
        assert 0 < saved.offset <= len(inputs) // 2
        second = LiveRouter(log, snapshots=store, snapshot_every=10, clock=lambda: until)
        await second.router.start()
        await second._restore()
        assert second.router.position == saved.offset  # it starts where the snapshot stood, not at 0
        await second.router.run_until_idle(now=until)
        assert second.router.routed == len([r for r in inputs[saved.offset :] if topics.is_event(r)])
        got = await _ids(log)
        assert [i for i, n in Counter(got).items() if n > 1] == []
        assert set(got) == set(expected)


@pytest.mark.parametrize(("rate", "snapshots"), [(1e12, 2), (1.0, 1)])
async def test_a_big_snapshot_is_followed_by_the_next_only_when_its_size_allows(
    kept: tuple[Path, dt.datetime], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rate: float, snapshots: int
) -> None:
    """Snapshots are written at most ``SNAPSHOT_BYTES_PER_S`` on average: after one of N bytes the next waits
    N / rate seconds even when ``snapshot_every`` records have come (a city's state is hundreds of MB, and
    writing it every 10,000 records slowed every POST sharing the SQLite store eightfold)."""
    from broker.routing import live

    monkeypatch.setattr(live, "SNAPSHOT_BYTES_PER_S", rate)
    path, until = kept
    _, inputs = await _recorded(path)
    log = EmbeddedLog(tmp_path / "live.db")
    async with _started(log, tmp_path) as store:
        router, first = await _snapshot_at_half(log, store, inputs, until, every=1)
        await router.router.run_until_idle()
        await router._snapshot()
        await router.saved()
        newest = await store.latest_snapshot(SNAPSHOT_NAME)
        assert newest is not None
        assert newest.offset == (len(inputs) if snapshots == 2 else first.offset)


@pytest.mark.parametrize("backend", ["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
async def test_a_router_from_a_snapshot_reads_only_newer_outputs_and_still_writes_no_escalation_twice(
    kept: tuple[Path, dt.datetime], tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    """Escalations one router raised by its clock before a second one's snapshot state got there are carried
    in the snapshot; a third router started from it reads only the outputs written after it and writes each
    notification once."""
    from broker.audit.state_snapshot import decode_snapshot
    path, until = kept
    expected, inputs = await _recorded(path)
    if backend == "kafka":
        from broker.log.kafka import KafkaLog

        inner: Log = KafkaLog(request.getfixturevalue("kafka_bootstrap"), client_id="jigsaw-router-tests")
        log: Log = NamespacedLog(inner, f"t{uuid.uuid4().hex[:10]}.")
    else:
        log = EmbeddedLog(tmp_path / "live.db")
    async with _started(log, tmp_path) as store:
        await _append_all(log, inputs)
        ahead = RouterService(log)  # its clock is ahead: it raises every escalation due by ``until``
        await ahead.start()
        await ahead.run_until_idle(now=until)
        written = await _ids(log)
        assert set(written) == set(expected)
        if ahead._writer is not None:
            await ahead._writer.close()
        past = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        behind = LiveRouter(log, snapshots=store, snapshot_every=1, clock=lambda: past)  # its clock is behind
        saved = await _route_and_snapshot(behind, store)
        snapshot = decode_snapshot(saved.blob)
        assert snapshot.escalations  # written by the router ahead, not raised yet by this state
        assert snapshot.outputs is not None and sum(snapshot.outputs[topics.NOTIFICATIONS]) >= len(
            written
        )  # + transaction markers
        if behind.router._writer is not None:
            await behind.router._writer.close()
        third = LiveRouter(log, snapshots=store, clock=lambda: until)
        await third.router.start()
        await third._restore()
        assert await third.router.run_until_idle(now=until) == []  # every escalation was written already
        assert (
            third.router._written is not None and not set(written) - set(snapshot.escalations) & third.router._written
        )
        got = await _ids(log)
        assert [i for i, n in Counter(got).items() if n > 1] == []
        assert set(got) == set(expected)


async def test_input_arriving_while_the_router_lingers_is_routed_in_the_same_step(
    kept: tuple[Path, dt.datetime],
) -> None:
    """Once input arrives, a router with a linger waits that long for more: what arrives meanwhile is routed and
    written in the same step (on Kafka, one transaction instead of two), and routes exactly as without the wait."""
    _, records = await _recorded(kept[0])
    first, second = records[:5], records[5:]
    positions: dict[float, int] = {}
    outputs: dict[float, list[str]] = {}
    for linger in (0.0, 1.0):
        log = MemoryLog()
        router = RouterService(log, linger=linger)
        await router.start()
        await _append_all(log, first)
        step = asyncio.create_task(router.step())
        await asyncio.sleep(0.05)  # the step has read the first records by now, and lingers if it may
        await _append_all(log, second)
        await step
        positions[linger] = router.position
        await router.run_until_idle()
        outputs[linger] = await _ids(log)
    assert positions == {0.0: len(first), 1.0: len(first) + len(second)}
    assert outputs[0.0] == outputs[1.0] and outputs[0.0]


async def test_every_notification_names_the_last_directory_entry_its_router_had_applied(
    kept: tuple[Path, dt.datetime],
) -> None:
    """Each notification carries ``directory_at``: the offset of the last partnership event the router had
    applied when it wrote it, so a dispatcher reads the input again only when it lacks that entry."""
    _, records = await _recorded(kept[0])
    partnership = [r.offset for r in records if r.header(topics.SOURCE_KIND_HEADER) == b"partnership"]
    assert partnership, "the scenario publishes directory entries"
    log = MemoryLog()
    router = RouterService(log, batch=1)
    await router.start()
    await _append_all(log, records)
    seen = 0
    while (at := router.position) < len(records):
        await router.step()
        notes = await _read_all(log, topics.NOTIFICATIONS)
        expected = max((o for o in partnership if o <= at), default=-1)
        for note in notes[seen:]:
            assert note.header(topics.DIRECTORY_AT_HEADER) == b"%d" % expected, (at, note.offset)
        seen = len(notes)
    assert seen > 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="encoding aside needs fork")
async def test_a_snapshot_encoded_aside_holds_the_state_as_it_stood_while_routing_goes_on(
    kept: tuple[Path, dt.datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The router goes on routing (changing its state) while a copy of the process encodes the snapshot: the
    snapshot holds the state as it stood when it was started, not as it became."""
    _, records = await _recorded(kept[0])
    half = len(records) // 2
    gate_read, gate_write = os.pipe()
    encode = snapshot_aside.encode_snapshot

    def held(snapshot: RouterSnapshot) -> bytes:  # the copy waits until the router has moved on
        os.read(gate_read, 1)
        return encode(snapshot)

    monkeypatch.setattr(snapshot_aside, "encode_snapshot", held)
    log = MemoryLog()
    router = RouterService(log)
    await router.start()
    await _append_all(log, records[:half])
    await router.run_until_idle()
    encoding = await snapshot_aside.encode_aside(RouterSnapshot(router.state, router.position, router.at_ms))
    await _append_all(log, records[half:])
    await router.run_until_idle()  # the state changes while the copy still waits
    assert not encoding.done() and router.position == len(records)
    os.write(gate_write, b"go")
    blob = await encoding
    os.close(gate_read)
    os.close(gate_write)

    alone = RouterService(MemoryLog())  # the same first half, routed by a router that never went further
    await alone.start()
    await _append_all(alone.log, records[:half])
    await alone.run_until_idle()
    assert blob == encode(RouterSnapshot(alone.state, alone.position, alone.at_ms))
    assert blob != encode(RouterSnapshot(router.state, alone.position, alone.at_ms))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="encoding aside needs fork")
async def test_a_snapshot_the_copy_cannot_encode_is_refused_not_saved(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the copy fails to encode, the snapshot is refused with ``SnapshotInvalid`` (the router logs it, keeps
    routing and tries again after the next ``snapshot_every`` records)."""

    def broken(snapshot: RouterSnapshot) -> bytes:
        raise SnapshotInvalid("the state holds something the format cannot write")

    monkeypatch.setattr(snapshot_aside, "encode_snapshot", broken)
    encoding = await snapshot_aside.encode_aside(RouterSnapshot(RoutingState(), 0, 0))
    with pytest.raises(SnapshotInvalid, match="ended with 1"):
        await encoding


async def test_the_input_offset_is_committed_at_most_so_often_and_at_once_when_the_router_goes_idle(
    kept: tuple[Path, dt.datetime],
) -> None:
    """Outputs are written every batch, but the input offset only every ``commit_every`` seconds (on Kafka two
    round trips fewer per transaction); ``flush`` (idle, snapshot, stop, ``run_until_idle``) commits it at once."""
    _, records = await _recorded(kept[0])
    log = MemoryLog()
    router = RouterService(log, batch=5, commit_every=3600)
    await router.start()
    await _append_all(log, records)
    for _ in range(4):
        await router.step()
    assert router.position == 20
    assert await log.committed("jigsaw-router", topics.INPUT) == 5  # the first batch; the next is an hour away
    assert len(await _read_all(log, topics.DECISIONS)) > 1  # outputs were not held back meanwhile
    await router.flush()
    assert await log.committed("jigsaw-router", topics.INPUT) == 20
    await router.run_until_idle()
    assert await log.committed("jigsaw-router", topics.INPUT) == len(records)

    every = RouterService(MemoryLog(), batch=5, commit_every=0)
    await every.start()
    await _append_all(every.log, records[:10])
    await every.step()
    assert await every.log.committed("jigsaw-router", topics.INPUT) == 5
    await every.step()
    assert await every.log.committed("jigsaw-router", topics.INPUT) == 10
