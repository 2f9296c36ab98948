"""Reading the log for an audit: the shell that streams it through a ``Replayer``.

``replay_log`` reads, in this order and a batch at a time:

1. the notification and decision records, into the replay's temporary index
   (the workers already verify the first input batches meanwhile);
2. the input topic from its first record (or from a router snapshot's offset)
   to where it ends when the replay starts, with the tree heads topic read just
   ahead of it, each batch's events verified on worker processes while the
   main process routes the batch before it, and the next batch read from the
   log while it does.

It also reads how far the router has committed on the input (records past it
are not expected to have notifications yet) and where every audited topic ends.
Memory stays that of the routing state and a few batches, however long the log.
"""

from __future__ import annotations

import asyncio
import gc
from collections import deque
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker import heap, topics
from broker.audit.outputs import OutputIndex
from broker.audit.replay import Replayer
from broker.audit.report import Report
from broker.audit.sealer import DEFAULT_EVERY, SEALED_TOPICS
from broker.audit.spill import Spill
from broker.audit.state_snapshot import RouterSnapshot
from broker.audit.window import Bound, resolve_window
from broker.audit.workers import Verifier
from broker.envelope.keys import KeyRegistry
from broker.errors import ConfigError
from broker.log.base import Log, Record
from broker.log.scan import read_available, scan
from broker.routing.service import GROUP

__all__ = ["read_topic", "replay_log"]

TopicPartition = tuple[str, int]


async def read_topic(log: Log, topic: str) -> list[Record]:
    """Every record of every partition of a topic, partition by partition (a small topic only)."""
    out: list[Record] = []
    async for batch in scan(log, topic):
        out += batch
    return out


async def _record_at(log: Log, bound: Bound) -> Record | None:
    if bound.topic is None:
        return None
    records = await read_available(log, topics.INPUT, bound.offset, limit=1)
    return records[0] if records and records[0].offset == bound.offset else None


async def _settle(log: Log, replayer: Replayer) -> None:
    """Read back the few output records the comparison doubts (their digests differ, or they are named)."""
    if not replayer.outputs.doubts:
        return
    values: dict[int, bytes | None] = {}
    for rowid, topic, partition, offset, *_ in replayer.outputs.rows_needed():
        found = await log.read(topic, offset, partition=partition, limit=1)
        values[rowid] = found[0].value if found and found[0].offset == offset else None
    replayer.outputs.settle(values, replayer.about)


def _fed() -> None:
    """After each batch: what survived it (mostly the routing state, which only grows) leaves the collector's sight.

    The state holds millions of long-lived objects and no reference cycles; left in the oldest generation
    they would be traversed again by every full collection, a third of the replay's time on a large log.
    Frozen objects are still freed when their last reference goes; ``replay_log`` unfreezes them at the end.
    """
    gc.freeze()


class _Inputs:
    """The input topic from ``offset`` to ``end``, a batch at a time, the next batch read while one is routed."""

    def __init__(self, log: Log, offset: int, end: int, batch: int) -> None:
        self._log, self._offset, self._end, self._batch = log, offset, end, batch

    async def next(self) -> list[Record]:
        """The next batch (empty at the end)."""
        if self._offset >= self._end:
            return []
        found = await self._log.read(topics.INPUT, self._offset, limit=self._batch)
        records = [r for r in found if r.offset < self._end]
        self._offset = records[-1].offset + 1 if records else self._end
        return records

    def prefetch(self) -> asyncio.Task[list[Record]]:
        """Start reading the next batch now (the log reads on its own thread while this process routes)."""
        return asyncio.get_running_loop().create_task(self.next())


async def replay_log(
    log: Log,
    *,
    keys: KeyRegistry,
    checkpoint_key: Ed25519PublicKey | None,
    start: Bound | None = None,
    end: Bound | None = None,
    every: int = DEFAULT_EVERY,
    jobs: int = 1,
    keep: bool = False,
    resume: RouterSnapshot | None = None,
    save: bool = False,
    batch: int = 2000,
    temp_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
    total: Callable[[int], None] | None = None,
    peaks: list[int] | None = None,
    spill: Spill | None = None,
) -> Report:
    """Verify a started log and compare the policy's re-run with what it records.

    Args:
        start, end: the ``--from``/``--to`` bounds (None: the whole log).
        every: the sealer's head interval in records.
        jobs: worker processes verifying signatures.
        keep: keep what a chronology needs (grows with the log).
        resume: a router snapshot to start from (only the tail after its offset is read and re-run).
        save: keep a snapshot of the routing state after the last input in ``report.snapshot``.
        progress: called with the number of inputs processed; ``total`` once with how many there are.
        peaks: if given, the workers' peak resident memory (KiB) is appended to it at the end.
        spill: keeps the routing state within a memory ceiling (``audit.spill``; None: all in memory);
            closed at the end.

    Raises:
        ConfigError: a position bound names no input record, or the window ends before it starts.
    """
    at = {b: await _record_at(log, b) for b in (start, end) if b is not None}
    try:
        window = resolve_window(start, end, lambda b: at.get(b)) if start or end else None
    except ValueError as exc:
        raise ConfigError(f"--from/--to: {exc}") from None
    # The router's position first, then where each topic ends, and nothing read past those ends: every input
    # the router had committed had its outputs written before the ends were taken, and outputs of later inputs
    # (a live router) are neither read nor expected.
    routed = await log.committed(GROUP, topics.INPUT, partition=0)
    ends: dict[TopicPartition, int] = {}
    for topic in (topics.INPUT, topics.NOTIFICATIONS, topics.DECISIONS, *SEALED_TOPICS):
        for partition in range(await log.partitions(topic)):
            ends[(topic, partition)] = await log.end_offset(topic, partition=partition)
    input_end = ends.get((topics.INPUT, 0), 0)
    resume_at = resume.input_offset if resume is not None else 0
    if resume_at > input_end:
        raise ConfigError(f"the snapshot reflects {resume_at} input records; the input topic holds {input_end}")
    if total is not None:
        total(max(0, input_end - resume_at))
    index = OutputIndex(temp_dir)
    verifier = Verifier(keys, jobs=jobs)
    replayer = Replayer(
        keys=keys,
        checkpoint_key=checkpoint_key,
        index=index,
        window=window,
        every=every,
        routed=routed,
        resume=resume,
        save=save,
        keep=keep,
        spill=spill,
    )
    # On Kafka the router writes its outputs in transactions: each commit marker takes an offset, so the
    # output topics have gaps no record ever filled. There a removed notification or decision shows as
    # one the policy gives that is not on the log; elsewhere a gap is a removal in its own right.
    replayer.outputs.gaps = log.name != "kafka"
    thresholds = gc.get_threshold()
    try:
        gc.set_threshold(*heap.BATCH_THRESHOLDS)
        queued: deque[list[Record]] = deque()
        inputs = _Inputs(log, resume_at, input_end, batch)
        # The workers start on the first input batches while this process indexes the recorded outputs.
        while len(queued) < verifier.ahead and (records := await inputs.next()):
            verifier.submit(replayer.to_check(records))
            queued.append(records)
        for topic, what in ((topics.NOTIFICATIONS, "notification"), (topics.DECISIONS, "decision")):
            async for found in scan(log, topic):
                until = ends.get((topic, found[0].partition), 0)
                replayer.outputs.recorded(what, [r for r in found if r.offset < until])
        replayer.outputs.recorded_done()
        await _settle(log, replayer)
        heads_at, heads_end = 0, await log.end_offset(topics.TREE_HEADS)

        async def heads_upto(offset: int) -> None:
            nonlocal heads_at
            while heads_at < heads_end and replayer.check.covered <= offset:
                found = await log.read(topics.TREE_HEADS, heads_at, limit=32)
                if not found:
                    break
                replayer.feed_seals(r for r in found if r.offset < heads_end)
                heads_at = found[-1].offset + 1

        gc.freeze()  # see _fed
        while queued:
            records = queued.popleft()
            await heads_upto(records[-1].offset)
            upcoming = inputs.prefetch()  # the next batch is read while this one is routed
            await asyncio.sleep(0)  # let the read reach the log's thread
            replayer.feed(records, verifier.results(), progress)
            _fed()
            await _settle(log, replayer)
            if records := await upcoming:
                verifier.submit(replayer.to_check(records))
                queued.append(records)
        await heads_upto(1 << 62)
        if peaks is not None:
            peaks.append(verifier.worker_peak_kb())
        replayer.finish_routing()
        await _settle(log, replayer)
        report = replayer.finish(ends)
        report.snapshot = replayer.snapshot
        return report
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        verifier.close()
        index.close()
        if spill is not None:
            spill.close()
