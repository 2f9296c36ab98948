"""The ``router`` role of ``jigsaw serve``: the router service on a live log, escalating on the wall clock.

Each turn applies what the input topic holds, in offset order, as soon as it
is there (the read waits for new records, so a new event is routed within a
fetch round trip of its append), then, once the input is read to its end,
raises the escalations due by the clock (an unacknowledged notification at its
``ack_by``, an unanswered challenge the day after its ``respond_by``). The clock
step lags the wall clock by ``grace`` seconds so that an acknowledgement
appended just before a deadline is applied before the deadline is judged.
Escalation timers survive restarts: they are rebuilt from the log on start,
and each escalation's id is derived from what it escalates, so it is raised
once however often the router restarts.

The router is also the sealer: every ``checkpoint_every`` input records (or
``tree_head_interval`` seconds after the first record no head covers), and
when the role stops, it publishes a signed tree head.
**One active, any number standing by.** Every router process joins the
consumer group ``jigsaw-router`` over the single input partition
(``log.member``): the group gives the partition to one of them, the active
router; the others poll and wait. When the active one dies, Kafka gives the
partition to a standby once the session times out (10 s); the standby opens
the router's transactional writer, which fences the old one (a zombie's
transaction is aborted), rebuilds the routing state (from the newest snapshot in
the store, then the input after it) and routes on from the committed offset.
An active router that loses the partition stops routing at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from broker import heap, topics
from broker.audit.sealer import Sealer
from broker.errors import JigsawError
from broker.log.base import Log
from broker.logging import get_logger
from broker.roles import RoleBoard, RoleContext
from broker.routing.service import GROUP, RouterService
from broker.routing.state import Output

__all__ = ["SNAPSHOT_BYTES_PER_S", "SNAPSHOT_NAME", "LiveRouter", "run_router"]

SNAPSHOT_NAME = "router"
# Snapshots written, on average, at most this fast: a snapshot of N bytes is followed by none for N / this
# seconds. A city's state is hundreds of MB; written every ``snapshot_every`` records at 200 events/s it held
# the SQLite store's one write lock, and the disk, often enough to slow every gateway's POST eightfold.
SNAPSHOT_BYTES_PER_S = 1_000_000
_LAG_EVERY_S = 1.0  # the lag shown on /healthz and /metrics: an end-offset request, not on every turn

_log = get_logger("jigsaw.router")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LiveRouter:
    """The router service on a live log: routes in offset order, escalates on a clock."""

    def __init__(
        self,
        log: Log,
        *,
        group: str = GROUP,
        clock: Callable[[], dt.datetime] = _utc_now,
        grace: float = 0.2,
        wait: float = 0.5,
        sealer: Sealer | None = None,
        board: RoleBoard | None = None,
        notification_partitions: int = 1,
        metrics: Any = None,
        snapshots: Any = None,
        snapshot_every: int = 10_000,
        linger: float = 0.0,
    ) -> None:
        """Args:
        log: the (started) log.
        group: the router's consumer group.
        clock: the time escalations are raised by (tests pass their own; records keep wall-clock stamps).
        grace: seconds the escalation clock lags the wall clock.
        wait: seconds a read waits for new input before the clock is looked at again.
        sealer: builds the Merkle tree over the input and publishes signed tree heads (None: none).
        board: where the role reports its position and lag.
        notification_partitions: partitions of the notifications topic (when the router creates it).
        metrics: the app's ``Metrics`` (lag, events routed, notifications, escalations).
        snapshots: a ``broker.store.Store`` to save router snapshots in and start from (None: replay the log).
        snapshot_every: input records between snapshots.
        linger: seconds a read that found input waits for more before routing it (``RouterService``).
        """
        self._log = log
        self._group = group
        self._sealer = sealer
        self._clock = clock
        self._grace = dt.timedelta(seconds=grace)
        self._wait = wait
        self._board = board
        self._metrics = metrics
        self._snapshots = snapshots
        self._snapshot_every = snapshot_every
        self._linger = linger
        self._snapshot_at = 0  # the input offset of the newest snapshot saved or loaded
        self._next_snapshot = 0.0  # monotonic time before which no snapshot starts (``SNAPSHOT_BYTES_PER_S``)
        self._saving: asyncio.Task[None] | None = None  # the snapshot being encoded and saved
        self._lag_at = -_LAG_EVERY_S  # monotonic time the lag was last reported
        self._started = False
        self._writer: Any = None
        self._sealing = False
        self._notification_partitions = notification_partitions
        self.router = RouterService(
            log,
            group=group,
            sealer=sealer,
            notification_partitions=notification_partitions,
            metrics=metrics,
            linger=linger,
        )

    async def start(self) -> None:
        """Create topics, learn what was written and replay the log to its end. Idempotent."""
        if not self._started:
            await self.router.start()
            self._started = True
            await self.router.run_until_idle()

    async def turn(self, *, wait: float = 0.0) -> list[Output]:
        """Route the next input records; when the input is read to its end, raise what the clock makes due.

        The clock is applied only once the read reached the end of the input, so an
        acknowledgement already in the log always cancels its escalation first, even
        while catching up with a long backlog.
        """
        before = self.router.position
        out = await self.router.step(wait=wait)
        if self.router.position == before:  # idle: say where the router reached (it commits at most every 0.5 s)
            await self.router.flush()
        if self.router.caught_up:
            now = self._clock() - self._grace
            due = self.router.state.next_due()
            if due is not None and due <= now:  # else nothing to raise, and no strict read of the input's end
                out += await self.router.step(now=now)
        if self._board is None and self._metrics is None:
            return out
        if self.router.caught_up:  # the read reached the end of the input: no lag, and no request to say so
            lag = 0
        elif time.monotonic() - self._lag_at >= _LAG_EVERY_S:  # a backlog: an end-offset request now and then
            self._lag_at = time.monotonic()
            lag = max(0, await self._log.end_offset(topics.INPUT) - self.router.position)
        else:
            return out
        if self._board is not None:
            self._board.set("router", position=self.router.position, lag=lag)
        if self._metrics is not None:
            self._metrics.set_router_lag(lag)
        return out

    async def seal(self) -> None:
        """Publish a signed tree head of the input records no head covers yet, and commit the input offset
        reached (the role is stopping)."""
        if self._sealer is not None and self._started:
            await self.router.seal(self._clock())
        if self._started:
            await self.router.flush()

    async def run(self, *, pause: float = 1.0, standby_poll: float = 0.5) -> None:
        """Join the router group; route while this process holds the input partition, stand by otherwise.

        When the log cannot be reached (a retriable error) the router is built
        again from the log after ``pause`` seconds: whatever it had read but not
        yet written is routed again, and what it had written is recognised by id.
        Any other error reaches the role's supervisor, which starts it again.
        """
        await self._log.create_topic(topics.INPUT)  # a group over a topic that is not there yet gets nothing
        member = self._log.member(self._group, topics.INPUT)
        try:
            while True:
                try:
                    await member.start()
                    if 0 not in await member.poll():
                        self._report(active=False)
                        await asyncio.sleep(standby_poll)
                        continue
                    await self._lead(member)
                except JigsawError as exc:
                    if not exc.retriable:
                        raise
                    _log.warning("router_restarting", error=exc.message, pause=pause)
                    await asyncio.sleep(pause)
                finally:
                    await self._step_down()
        finally:
            await asyncio.shield(member.close())

    async def _lead(self, member: Any) -> None:
        """Route as the active router until the group takes the input partition away."""
        _log.info("router_active")
        writer = self._log.writer(self._group)  # the same id in every router process: it fences a zombie
        await writer.start()
        self.router = RouterService(
            self._log,
            group=self._group,
            sealer=self._sealer,
            writer=writer,
            notification_partitions=self._notification_partitions,
            metrics=self._metrics,
            linger=self._linger,
        )
        self._writer = writer
        await self.router.start()
        await self._restore()
        self._started = self._sealing = True
        self._report(active=True)
        while True:  # catch up, polling the group between batches so it knows this process is alive
            before = self.router.position
            await self.router.step()
            if 0 not in await member.poll():
                _log.warning("router_lost_partition", during="catch_up")
                self._sealing = False  # the new active router seals from here
                return
            if self.router.position == before:
                break
        await self.router.flush()
        heap.settle()  # the state as caught up is long-lived: full collections no longer walk it
        while True:
            await self.turn(wait=self._wait)
            await self._snapshot()
            if 0 not in await member.poll():
                _log.warning("router_lost_partition", position=self.router.position)
                self._sealing = False
                return

    async def _restore(self) -> None:
        """Start from the newest router snapshot in the store, when there is one that fits this log."""
        if self._snapshots is None:
            return
        from broker.audit.state_snapshot import SnapshotInvalid, decode_snapshot

        saved = await self._snapshots.latest_snapshot(SNAPSHOT_NAME)
        if saved is None:
            return
        end = await self._log.end_offset(topics.INPUT)
        committed = await self._log.committed(self._group, topics.INPUT) or 0
        if saved.offset > min(end, committed):  # another log's, or ahead of what was committed: not ours
            _log.warning("router_snapshot_ignored", offset=saved.offset, end=end, committed=committed)
            return
        try:
            # On a thread, so the group's heartbeats go on: a big city's state takes longer than the session.
            snapshot = await asyncio.to_thread(decode_snapshot, saved.blob)
        except SnapshotInvalid as exc:
            _log.warning("router_snapshot_ignored", offset=saved.offset, error=exc.message)
            return
        await self.router.restore(
            snapshot.state,
            snapshot.input_offset,
            snapshot.at_ms,
            outputs=snapshot.outputs,
            escalations=snapshot.escalations,
        )
        self._snapshot_at = snapshot.input_offset
        _log.info("router_restored", offset=snapshot.input_offset, escalations=len(snapshot.escalations))

    async def _snapshot(self) -> None:
        """Start saving a snapshot every ``snapshot_every`` input records (its outputs are committed by now),
        and no sooner after the last one than its size at ``SNAPSHOT_BYTES_PER_S`` allows.

        A copy of this process encodes the state as it stands (``snapshot_aside``) while this one goes on
        routing; one snapshot at a time, saved in the background (``saved`` waits for it).
        """
        if self._snapshots is None or self.router.position - self._snapshot_at < self._snapshot_every:
            return
        if time.monotonic() < self._next_snapshot:  # a big state is written less often
            return
        if self._saving is not None and not self._saving.done():
            return
        from broker.audit.state_snapshot import RouterSnapshot
        from broker.routing.snapshot_aside import encode_aside

        await self.router.flush()  # a router trusts no snapshot ahead of the committed input offset
        position = self.router.position
        outputs = await self.router.output_ends()  # everything this state wrote lies before these
        snapshot = RouterSnapshot(
            self.router.state,
            position,
            self.router.at_ms,
            outputs=outputs,
            escalations=self.router.early_escalations,
        )
        encoding = await encode_aside(snapshot)
        self._snapshot_at = position
        self._saving = asyncio.get_running_loop().create_task(self._save(encoding, position))

    async def _save(self, encoding: asyncio.Future[bytes], position: int) -> None:
        from broker.audit.state_snapshot import SnapshotInvalid
        from broker.store import Snapshot

        assert self._snapshots is not None
        try:
            blob = await encoding
            await self._snapshots.put_snapshot(Snapshot(SNAPSHOT_NAME, position, blob, self._clock()))
        except (SnapshotInvalid, JigsawError, OSError) as exc:  # the next one is due in snapshot_every records
            error = exc.message if isinstance(exc, JigsawError) else repr(exc)
            _log.warning("router_snapshot_failed", offset=position, error=error)
            return
        self._next_snapshot = time.monotonic() + len(blob) / SNAPSHOT_BYTES_PER_S
        _log.info("router_snapshot", offset=position, bytes=len(blob))

    async def saved(self) -> None:
        """Wait for the snapshot being saved, if any."""
        if self._saving is not None:
            await asyncio.shield(self._saving)

    async def _step_down(self) -> None:
        """Publish a last tree head of what this process sealed (when it still holds the input) and close its writer."""
        if not self._started:
            return
        try:
            if self._sealing:
                await asyncio.shield(self.seal())
        except (JigsawError, asyncio.CancelledError) as exc:  # the next active router seals what this one could not
            _log.warning("tree_head_failed", error=getattr(exc, "code", type(exc).__name__))
        self._started = False
        with contextlib.suppress(asyncio.CancelledError):
            await self.saved()  # a snapshot of committed outputs is good whoever routes next
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.shield(writer.close())

    def _report(self, *, active: bool) -> None:
        if self._board is not None:
            self._board.set("router", active=active)


async def run_router(ctx: RoleContext) -> None:
    """The ``router`` role: route in offset order, seal, and escalate on the wall clock."""
    from broker.delivery.signing import webhook_key_for

    settings = ctx.settings
    sealer = Sealer(
        ctx.log,
        key=lambda: webhook_key_for(settings.signing_key_file, settings.data_dir).private_key,
        every=settings.checkpoint_every,
        interval=settings.tree_head_interval,
        tree=settings.data_dir / "merkle" / "jigsaw.input.0.tree",
    )
    from broker.delivery.workers import notification_partitions
    from broker.store import open_store

    store = open_store(settings)  # router snapshots: a router on a machine with no files starts from one
    await store.start()
    _log.info("router_starting")
    try:
        await LiveRouter(
            ctx.log,
            sealer=sealer,
            board=ctx.board,
            notification_partitions=notification_partitions(settings),
            metrics=ctx.metrics,
            snapshots=store,
            snapshot_every=settings.snapshot_every,
            linger=settings.router_linger_ms / 1000,
        ).run()
    finally:
        await asyncio.shield(store.close())
