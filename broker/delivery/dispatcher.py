"""The dispatcher: a role of ``jigsaw serve`` that delivers every notification to its organisation.

It reads the notifications topic (partitioned by recipient organisation) as a member of consumer group
``jigsaw-dispatcher``: dispatchers share its partitions, and when one dies the others take them over (``log.member``;
on Kafka, after the session timeout). An organisation with an endpoint in the directory gets a signed webhook
(retried on the backoff schedule, through a per-endpoint breaker, dead-lettered when retries run out); any other
organisation's notification waits in its inbox. Every attempt, dead letter and inbox drop is a record on the
deliveries topic, written *before* the notifications topic's offset is committed past it.

State lives in the log: on start, and whenever it is given a partition, the dispatcher reads the deliveries topic to
its end (``Ledger``): it skips what was delivered, by itself or by the partition's previous holder, and resumes the
retries owed, always with the same ``webhook-id`` (the notification id). The one gap left is a crash between a
receiver's 2xx and its record; receivers dedupe on ``webhook-id``. A partition the group takes away starts nothing
more here and goes to another only once the attempts in flight on it are recorded. Attempts run as tasks (a slow
endpoint never holds up the others); the committed offset never passes a first outcome not yet recorded."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from broker import heap, topics, wire
from broker.delivery import breaker as breakers
from broker.delivery.backoff import STANDARD, Schedule
from broker.delivery.directory import DirectoryFollower
from broker.delivery.ledger import Job, Ledger, after_attempt, dead_letter, inbox_record
from broker.delivery.records import DeliveryRecord, decode_delivery, encode_delivery
from broker.delivery.signing import WebhookKey
from broker.delivery.webhook import AttemptResult, WebhookSender
from broker.errors import JigsawError
from broker.log.base import Log
from broker.log.scan import GLANCE_S, read_any, read_available_many, read_fetched, read_new
from broker.logging import get_logger
from broker.observability import Metrics
from broker.roles import raise_if_cancelled
from broker.routing.model import Notification

__all__ = ["GROUP", "Dispatcher"]

GROUP = "jigsaw-dispatcher"
_log = get_logger("jigsaw.dispatcher")
_BUSY_POLL_S = 0.02  # how often to look again while attempts are in flight (a retry may come due)
_REQUEUE = dt.timedelta(seconds=1)
_LAG_EVERY_S = 5.0  # how often the consumer lag metric is brought up to date
_DELIVERY_FACTS = ("notification_id", "recipient", "kind", "outcome", "attempt", "status", "error")  # logged
_COMMIT_EVERY_S = 0.5  # not every step (a busy broker's work); a new holder checks re-reads against the ledger
# Closing waits at most this long for its last commit (which aiokafka lets wait for as long as Kafka is away: a
# dispatcher restarting in an outage waited for ever) and to leave the group. The ledger says what was done.
_CLOSE_COMMIT_S, _CLOSE_LEAVE_S = 10.0, 30.0


async def _at_most(seconds: float, what: str, step: Awaitable[None]) -> None:
    """Await ``step`` for at most ``seconds``; a log error or the time running out is logged, not raised."""
    try:
        async with asyncio.timeout(seconds):
            await step
    except (JigsawError, TimeoutError) as exc:
        _log.warning("close_step_skipped", step=what, error=getattr(exc, "message", None) or type(exc).__name__)


class Dispatcher:
    """Delivers what the notifications topic holds; ``start``, then ``step`` (or ``run``), then ``close``."""

    def __init__(
        self,
        log: Log,
        key: WebhookKey,
        *,
        schedule: Schedule = STANDARD,
        timeout: float = 10.0,
        clock: Callable[[], dt.datetime] = functools.partial(dt.datetime.now, dt.UTC),
        group: str = GROUP,
        partitions: int = 1,
        concurrency: int = 64,
        per_endpoint: int = 8,
        breaker: breakers.Breaker = breakers.Breaker(),
        sender: WebhookSender | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """Args:
        log, key: the log (started by the caller) and Jigsaw's webhook signing key.
        schedule: when to retry (``backoff.TESTING`` in tests).
        timeout: seconds an endpoint has to answer one attempt.
        clock: wall-clock time (records, retry times, webhook timestamps).
        group: the consumer group the dispatchers share (and commit under).
        partitions: how many partitions the notifications topic is created with (when it does not exist yet).
        concurrency, per_endpoint: attempts in flight at once, over all endpoints and to one endpoint.
        breaker: the breaker each endpoint starts with (its threshold and cooldown).
        sender: the HTTP side; default a ``WebhookSender`` with ``key`` and ``timeout``.
        metrics: where to record (the app's ``Metrics``); default a registry of its own.
        """
        self.log = log
        self.schedule = schedule
        self.sender = sender or WebhookSender(key, timeout=timeout)
        self._clock = clock
        self._group, self._partitions = group, partitions
        self._member: Any = None
        self._lag_at = 0.0
        self._slots, self._per_endpoint = asyncio.Semaphore(concurrency), per_endpoint
        self._endpoint_slots: dict[str, asyncio.Semaphore] = {}
        self._breaker_template, self._breakers = breaker, dict[str, breakers.Breaker]()
        self.metrics = metrics if metrics is not None else Metrics()
        self.delivered = self.dead_lettered = self.inboxed = 0
        self._forget()

    def _forget(self) -> None:
        """Drop everything learned from the log (``start`` learns it again)."""
        self.ledger = Ledger()
        self.directory = DirectoryFollower(self.log)
        self._positions: dict[int, int] = {}  # the notifications partitions this dispatcher holds now
        self._revoked: set[int] = set()  # taken away by the group: nothing more starts from them
        self._committed: dict[int, int] = {}
        self._commit_at = 0.0  # monotonic time of the last commit
        self._ledger_read: dict[int, int] = {}  # how far the deliveries topic is applied to the ledger
        self._ledger_parts = 1
        self._unrecorded: dict[int, set[int]] = defaultdict(set)  # offsets with no outcome recorded yet
        self._bodies: dict[str, bytes] = {}  # notification id -> body, while attempts are owed
        self._waiting: dict[str, Job] = {}  # retries whose notification has been read again
        self._tasks: dict[str, asyncio.Task[None]] = {}

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Create topics, join the group, replay the deliveries topic; partitions come with ``step``."""
        await self.log.create_topic(topics.NOTIFICATIONS, partitions=self._partitions)
        await self.log.create_topic(topics.DELIVERIES)
        self._member = self.log.member(self._group, topics.NOTIFICATIONS)
        self._member.on_revoked = self._finish_attempts
        await self._member.start()
        await self._read_ledger()
        await self.directory.refresh()
        await self.sender.start()
        _log.info("dispatcher_started", delivered_before=len(self.ledger.done), retries_owed=len(self.ledger.retries))

    async def _read_ledger(self, *, glance: bool = False) -> None:
        """Apply what the deliveries topic gained since the last look (other dispatchers' work included): to its
        end now (start, partitions taken up), or at a ``glance`` what was fetched (each step: ``read_fetched``)."""
        if glance:
            batches = read_fetched(self.log, topics.DELIVERIES, self._ledger_read, self._ledger_parts, GLANCE_S)
        else:
            self._ledger_parts = await self.log.partitions(topics.DELIVERIES)
            batches = read_new(self.log, topics.DELIVERIES, self._ledger_read)
        async for records in batches:
            for delivery in map(decode_delivery, records):
                if delivery is not None:
                    self.ledger.apply(delivery)

    async def _rebalance(self) -> None:
        """Take up partitions the group gave this dispatcher; let go of the ones it took away."""
        held = await self._member.poll()
        revoked, self._revoked = self._revoked, set()  # let go of, even if held again (then taken up afresh)
        lost = set(self._positions) - (held - revoked)
        for partition in lost:
            del self._positions[partition]
            self._committed.pop(partition, None)
            self._unrecorded.pop(partition, None)
            for nid, job in list(self._waiting.items()):
                if job.partition == partition:  # the new holder owes it now, from the ledger
                    del self._waiting[nid]
                    self._bodies.pop(nid, None)
        gained = sorted(held - set(self._positions))
        if gained:
            await self._read_ledger()  # what the previous holder recorded, up to now
            for partition in gained:
                owed = [job.offset for job in self.ledger.retries.values() if job.partition == partition]
                committed = await self._member.committed(partition) or 0
                self._committed[partition] = committed
                self._positions[partition] = min([committed, *owed])
        if lost or gained:
            _log.info("dispatcher_partitions", held=sorted(held), gained=gained, lost=sorted(lost))

    async def close(self, *, grace: float = 5.0) -> None:
        """Let attempts in flight finish (up to ``grace`` seconds), cancel the rest, commit, close HTTP, leave
        the group; each of the last two waits a bounded time (``_CLOSE_COMMIT_S``, ``_CLOSE_LEAVE_S``)."""
        tasks = list(self._tasks.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await _at_most(_CLOSE_COMMIT_S, "commit", self._commit())
        await self.sender.close()
        if self._member is not None:  # one that cannot leave in time leaves once unpolled for max_poll_interval
            await _at_most(_CLOSE_LEAVE_S, "leave the group", self._member.close())

    async def run(self, *, idle_wait: float = 0.5, pause: float = 1.0) -> None:
        """Start, then deliver until cancelled.

        When the log cannot be reached (a retriable error), everything learned is dropped and learned again from
        the log after ``pause`` seconds: the deliveries topic says what was done, so nothing is sent twice."""
        try:
            while True:
                try:
                    await self.start()
                    heap.settle()  # the ledger as read is long-lived: full collections no longer walk it
                    while True:
                        await self.step(wait=idle_wait)
                        raise_if_cancelled()
                except JigsawError as exc:
                    if not exc.retriable:
                        raise
                    _log.warning("dispatcher_restarting", error=exc.message, pause=pause)
                    await self.close(grace=0.0)
                    self._forget()
                    await asyncio.sleep(pause)
        finally:
            await asyncio.shield(self.close())

    # -- one turn -------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Attempts are in flight or retries are waiting."""
        return bool(self._tasks or self._waiting)

    async def step(self, *, wait: float = 0.0) -> int:
        """Read new notifications (waiting up to ``wait`` s), start what is due, commit; how many were read."""
        await self._rebalance()
        now = self._clock()
        timeout = wait
        if self._waiting:
            soonest = min(job.due for job in self._waiting.values())
            timeout = min(timeout, max(0.0, (soonest - now).total_seconds()))
        if self._tasks:
            timeout = min(timeout, _BUSY_POLL_S)
        if timeout > 0:  # wait on every partition held at once (a standby holds none: it only polls the group)
            found = await read_any(self.log, topics.NOTIFICATIONS, self._positions, min(timeout, 0.5))
        else:
            found = await read_available_many(self.log, topics.NOTIFICATIONS, self._positions)
        fetched = [(record.partition, record) for record in found]
        # After the read: the router wrote these after it read the directory entries they depend on.
        await self.directory.refresh_for(record for _, record in fetched)
        if fetched or self._waiting:  # what any dispatcher recorded up to now: nothing it delivered is sent again
            await self._read_ledger(glance=True)
        inbox: list[DeliveryRecord] = []
        for partition, record in fetched:
            if partition in self._revoked:  # taken away during the read: the new holder sends it
                continue
            self._positions[partition] = record.offset + 1
            if record.value is None:
                continue
            job = self._admit(partition, record.offset, record.value)
            if job is None:
                continue
            entry = self.directory.directory.get(job.recipient)
            if entry is None or entry.endpoint is None:
                inbox.append(inbox_record(job, self._clock()))
                self._bodies.pop(job.notification_id, None)
                continue
            self._unrecorded[partition].add(record.offset)
            self._spawn(job)
        if inbox:
            await self._record(inbox)
        now = self._clock()
        for nid, job in list(self._waiting.items()):
            if not self.ledger.owes(nid):  # delivered meanwhile (another dispatcher's record): nothing more to send
                self._bodies.pop(nid, None)
                del self._waiting[nid]
            elif job.due <= now and nid not in self._tasks and job.partition not in self._revoked:
                del self._waiting[nid]
                self._spawn(job)
        if time.monotonic() - self._commit_at >= _COMMIT_EVERY_S:
            await self._commit()
        return len(fetched)

    def _admit(self, partition: int, offset: int, value: bytes) -> Job | None:
        """A first attempt for a notification just read, or None (done already, a copy, or a retry that waits)."""
        note = Notification.from_dict(wire.decode_json(value))
        nid = note.notification_id
        if not self.ledger.owes(nid) or nid in self._bodies:
            return None  # done already, or a second copy of a record (a producer retry)
        self._bodies[nid] = value
        retry = self.ledger.retries.get(nid)
        if retry is not None:  # owed from before a restart: it waits for its time
            self._waiting[nid] = retry
            return None
        return Job(nid, note.recipient, partition, offset, 1, self._clock())

    async def settle(self, *, timeout: float = 10.0, wait: float = 0.02) -> None:
        """Step until everything read is delivered or dead-lettered and nothing new arrives (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            read = await self.step(wait=wait)
            if not read and not self.busy:
                return
            if self._tasks:
                await asyncio.wait(list(self._tasks.values()), timeout=wait)
        raise TimeoutError(f"deliveries did not settle in {timeout} s")

    # -- attempts -----------------------------------------------------------------------------

    async def _finish_attempts(self, partitions: frozenset[int]) -> None:
        """Partitions are being taken away: start nothing more from them; attempts in flight finish and are recorded."""
        self._revoked |= partitions
        deadline = asyncio.get_running_loop().time() + self.sender.timeout + 5.0
        while self._tasks and (left := deadline - asyncio.get_running_loop().time()) > 0:
            await asyncio.wait(list(self._tasks.values()), timeout=left)

    def _spawn(self, job: Job) -> None:
        self._tasks[job.notification_id] = asyncio.create_task(
            self._attempt(job), name=f"jigsaw-deliver-{job.notification_id}"
        )

    async def _attempt(self, job: Job) -> None:
        try:
            entry = self.directory.directory.get(job.recipient)
            if entry is None or entry.endpoint is None:  # the endpoint was withdrawn since
                records, retry = [inbox_record(job, self._clock())], None
            elif self.ledger.endpoint_gone(entry.endpoint, entry.updated_ms):
                reason = "the endpoint answered 410 Gone to an earlier notification and has not been republished"
                records = [dead_letter(job, self._clock(), reason, endpoint=entry.endpoint, attempts=job.attempt - 1)]
                retry = None
            else:
                slots = self._endpoint_slots.setdefault(entry.endpoint, asyncio.Semaphore(self._per_endpoint))
                async with self._slots, slots:
                    result = await self._try(job, entry.endpoint, entry.endpoint_internal)
                records, retry = after_attempt(
                    job,
                    outcome=result.outcome,
                    at=self._clock(),
                    endpoint=entry.endpoint,
                    schedule=self.schedule,
                    status=result.status,
                    error=result.error,
                    duration_ms=result.duration_ms,
                )
            await self._record(records)
            if retry is not None:
                self._waiting[job.notification_id] = retry
            else:
                self._bodies.pop(job.notification_id, None)
            self._unrecorded[job.partition].discard(job.offset)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # e.g. the log could not take the record: make the same attempt again soon
            message = exc.message if isinstance(exc, JigsawError) else repr(exc)
            _log.warning("delivery_not_recorded", notification_id=job.notification_id, error=message)
            self._waiting[job.notification_id] = dataclasses.replace(job, due=self._clock() + _REQUEUE)
        finally:
            self._tasks.pop(job.notification_id, None)

    async def _try(self, job: Job, endpoint: str, internal: bool) -> AttemptResult:
        """One attempt through the endpoint's breaker."""
        state = self._breakers.get(endpoint, self._breaker_template)
        allowed, state = breakers.allow(state, time.monotonic())
        self._breakers[endpoint] = state
        self.metrics.breaker(job.recipient, state.state)
        if not allowed:
            return AttemptResult("circuit_open", error="the endpoint's breaker is open after repeated failures")
        body = self._bodies[job.notification_id]
        try:
            result = await self.sender.deliver(
                endpoint,
                internal=internal,
                webhook_id=job.notification_id,
                body=body,
                timestamp=int(self._clock().timestamp()),
            )
        except BaseException:  # cancelled (or a bug): the probe slot must not stay taken
            self._breakers[endpoint] = breakers.release(self._breakers.get(endpoint, self._breaker_template))
            raise
        state = self._breakers.get(endpoint, self._breaker_template)
        self._breakers[endpoint] = breakers.settle(state, result.outcome, time.monotonic())
        self.metrics.breaker(job.recipient, self._breakers[endpoint].state)
        return result

    async def _record(self, records: list[DeliveryRecord]) -> None:
        """Append delivery records (durable on return) and apply them to the ledger."""
        at = records[-1].at
        await self.log.append_many(
            topics.DELIVERIES, [encode_delivery(r) for r in records], timestamp_ms=int(at.timestamp() * 1000)
        )
        for record in records:
            self.ledger.apply(record)
            if record.kind == "attempt":
                self.metrics.delivery(record.outcome, record.attempt)
            if record.outcome == "delivered":
                self.delivered += 1
            elif record.kind == "dead_letter":
                self.dead_lettered += 1
                self.metrics.dead_lettered()
            elif record.kind == "inbox":
                self.inboxed += 1
            _log.info("delivery", **{name: getattr(record, name) for name in _DELIVERY_FACTS})

    async def _commit(self) -> None:
        """Commit each partition held up to the first notification whose first outcome is not yet recorded."""
        self._commit_at = time.monotonic()
        for partition, position in list(self._positions.items()):
            unrecorded = self._unrecorded.get(partition)
            target = min(unrecorded) if unrecorded else position
            if target > self._committed.get(partition, 0):
                try:
                    await self._member.commit(partition, target)
                except JigsawError as exc:  # taken away meanwhile: the new holder goes on from the last commit
                    _log.warning("commit_refused", partition=partition, offset=target, error=exc.message)
                    continue
                self._committed[partition] = target
        if time.monotonic() - self._lag_at >= _LAG_EVERY_S:  # one end-offset request, now and then
            self._lag_at = time.monotonic()
            at = dict(self._positions)
            for partition, end in (await self.log.end_offsets(topics.NOTIFICATIONS, sorted(at))).items():
                self.metrics.set_consumer_lag(self._group, topics.NOTIFICATIONS, partition, max(0, end - at[partition]))
