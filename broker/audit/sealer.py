"""The intake's side of the hash chain: chain values on appends, signed checkpoints at intervals.

``ChainWriter`` is the imperative shell around ``chain.py`` and
``checkpoint.py``. The intake hands it every events record while rebuilding
its index at start (``observe``), appends accepted envelopes through it
(``append``: the chain value goes into the ``chain`` header), and asks it to
``seal`` at shutdown or the end of a simulation. Every ``every`` accepted
events per partition, and at ``seal``, it writes a checkpoint signed with
Jigsaw's key to ``jigsaw.checkpoints``.

A chain needs one writer per partition: appends go through one lock, and the
offset a record will get is known before it is written. If another process
appends to the same partition the offsets disagree; that is logged, and the
auditor will see the chain break there.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker import topics
from broker.audit.chain import CHAIN_HEADER, GENESIS, next_link
from broker.audit.checkpoint import Checkpoint, decode_checkpoint, encode_checkpoint, sign_checkpoint
from broker.log.base import Headers, Log, Position, Record, partition_for
from broker.log.scan import scan
from broker.logging import get_logger

__all__ = ["DEFAULT_EVERY", "SEALED_TOPICS", "ChainWriter", "KeySource"]

DEFAULT_EVERY = 100
# Topics whose end offsets each checkpoint records, so that cutting records off their end shows.
SEALED_TOPICS = (topics.NOTIFICATIONS, topics.DECISIONS, topics.ACKS, topics.REJECTED)

KeySource = Ed25519PrivateKey | Callable[[], Ed25519PrivateKey]
TopicPartition = tuple[str, int]
_log = get_logger("jigsaw.audit.sealer")


def _time(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


class ChainWriter:
    """Chains the events topics as they are appended to, and checkpoints them.

    Args:
        log: the log the intake appends to.
        key: Jigsaw's signing key, or a callable giving it on first use; None writes no checkpoints
            (the chain values are still written).
        every: write a checkpoint after this many accepted events in a partition.
    """

    def __init__(self, log: Log, *, key: KeySource | None = None, every: int = DEFAULT_EVERY) -> None:
        self.log = log
        self._key_source = key
        self._key: Ed25519PrivateKey | None = key if isinstance(key, Ed25519PrivateKey) else None
        self.every = every
        self.heads: dict[TopicPartition, tuple[int, bytes]] = {}  # last offset and its chain value
        self._sealed: dict[TopicPartition, int] = {}  # last checkpointed offset
        self._partitions: dict[str, int] = {}
        self.lock = asyncio.Lock()

    def observe(self, record: Record) -> None:
        """Learn a partition's head from a record read at start (records in offset order)."""
        tp = (record.topic, record.partition)
        stored = record.header(CHAIN_HEADER)
        if stored is None or len(stored) != 32:  # a record from before the chain: chain it as it stands
            prev = self.heads.get(tp, (-1, GENESIS))[1]
            stored = next_link(prev, record.offset, record.key, record.value, record.headers, record.timestamp_ms)
        self.heads[tp] = (record.offset, stored)

    async def start(self) -> None:
        """Create the checkpoints topic and learn where each partition was last sealed."""
        await self.log.create_topic(topics.CHECKPOINTS)
        async for records in scan(self.log, topics.CHECKPOINTS, limit=1000):
            for record in records:
                try:
                    cp = decode_checkpoint(record)
                except ValueError:
                    continue
                tp = (cp.topic, cp.partition)
                self._sealed[tp] = max(self._sealed.get(tp, -1), cp.offset)

    def _signing_key(self) -> Ed25519PrivateKey | None:
        if self._key is None and self._key_source is not None and not isinstance(self._key_source, Ed25519PrivateKey):
            self._key = self._key_source()
        return self._key

    async def _partition(self, topic: str, key: bytes | None) -> int:
        count = self._partitions.get(topic)
        if count is None:
            count = max(1, await self.log.partitions(topic))
            self._partitions[topic] = count
        return partition_for(key, count)

    async def append(
        self, topic: str, value: bytes, *, key: bytes | None, headers: Headers, timestamp_ms: int
    ) -> Position:
        """Append one accepted envelope with its chain value; checkpoint the partition when it is due."""
        async with self.lock:
            partition = await self._partition(topic, key)
            tp = (topic, partition)
            last, prev = self.heads.get(tp, (-1, GENESIS))
            link = next_link(prev, last + 1, key, value, headers, timestamp_ms)
            position = await self.log.append(
                topic,
                value,
                key=key,
                headers=(*headers, (CHAIN_HEADER, link)),
                timestamp_ms=timestamp_ms,
                partition=partition,
            )
            if position.offset != last + 1:
                _log.error(
                    "chain_offset_mismatch",
                    topic=topic,
                    partition=partition,
                    expected=last + 1,
                    offset=position.offset,
                    hint="another process appends to this partition; the chain breaks here",
                )
            self.heads[tp] = (position.offset, link)
            if position.offset - self._sealed.get(tp, -1) >= self.every:
                await self._checkpoint(tp, _time(timestamp_ms))
        return position

    async def append_many(
        self, topic: str, items: Sequence[tuple[bytes | None, bytes, Headers]], *, timestamp_ms: int
    ) -> list[Position]:
        """Append several accepted envelopes in one durable write, each with its chain value."""
        async with self.lock:
            heads = dict(self.heads)
            linked: list[tuple[bytes | None, bytes | None, Headers]] = []
            expected: list[tuple[TopicPartition, int, bytes]] = []
            for key, value, headers in items:
                tp = (topic, await self._partition(topic, key))
                last, prev = heads.get(tp, (-1, GENESIS))
                link = next_link(prev, last + 1, key, value, headers, timestamp_ms)
                heads[tp] = (last + 1, link)
                linked.append((key, value, (*headers, (CHAIN_HEADER, link))))
                expected.append((tp, last + 1, link))
            positions = await self.log.append_many(topic, linked, timestamp_ms=timestamp_ms)
            for (tp, offset, link), position in zip(expected, positions, strict=True):
                if (position.partition, position.offset) != (tp[1], offset):
                    _log.error(
                        "chain_offset_mismatch",
                        topic=topic,
                        partition=position.partition,
                        expected=offset,
                        offset=position.offset,
                        hint="another process appends to this partition",
                    )
                self.heads[(topic, position.partition)] = (position.offset, link)
            for tp in sorted({e[0] for e in expected}):
                if self.heads[tp][0] - self._sealed.get(tp, -1) >= self.every:
                    await self._checkpoint(tp, _time(timestamp_ms))
        return positions

    async def seal(self, now: dt.datetime) -> list[Position]:
        """Checkpoint every partition that has records no checkpoint covers yet (shutdown, end of a simulation)."""
        async with self.lock:
            written = []
            for tp in sorted(self.heads):
                if self.heads[tp][0] > self._sealed.get(tp, -1):
                    position = await self._checkpoint(tp, now)
                    if position is not None:
                        written.append(position)
            return written

    async def _checkpoint(self, tp: TopicPartition, at: dt.datetime) -> Position | None:
        key = self._signing_key()
        if key is None:
            return None
        ends = []
        for topic in SEALED_TOPICS:
            for partition in range(await self.log.partitions(topic)):
                ends.append((topic, partition, await self.log.end_offset(topic, partition=partition)))
        offset, link = self.heads[tp]
        checkpoint = sign_checkpoint(Checkpoint(tp[0], tp[1], offset, link, at, tuple(ends), ""), key)
        record_key, value, headers = encode_checkpoint(checkpoint)
        ms = int(at.timestamp() * 1000)
        position = await self.log.append(topics.CHECKPOINTS, value, key=record_key, headers=headers, timestamp_ms=ms)
        self._sealed[tp] = offset
        _log.info("checkpoint", topic=tp[0], partition=tp[1], offset=offset, key_id=checkpoint.key_id)
        return position
