"""The sealer: the hash chain over the input topic, computed after the append, and signed checkpoints.

Writers (any number of gateways, the inbox) only append to ``jigsaw.input``;
none of them chains. The one active router reads every input record in offset
order anyway, so it is also the sealer (Kafka's group membership elects it):
it hands each record to ``Sealer.observe``, which computes the record's chain
value (``chain.py``) from its predecessor's, and every ``every`` records (and at
``seal``: shutdown, the end of a simulation) writes a checkpoint signed with
Jigsaw's key to ``jigsaw.checkpoints``. A checkpoint carries the chain value
of every record it covers, so an auditor can name each altered, removed,
reordered or inserted record, and the value after the last one, which the next
checkpoint chains on from.

A sealer that starts again (a restart, a standby taking over) learns the last
checkpoint from the topic and goes on from there; records it observes again
below that point are skipped, so nothing is sealed twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker import topics
from broker.audit.chain import GENESIS, record_link
from broker.audit.checkpoint import Checkpoint, decode_checkpoint, encode_checkpoint, sign_checkpoint
from broker.log.base import Log, Position, Record
from broker.log.scan import scan
from broker.logging import get_logger

__all__ = ["DEFAULT_EVERY", "SEALED_TOPICS", "KeySource", "Sealer"]

DEFAULT_EVERY = 100
# Topics whose end offsets each checkpoint records, so that cutting records off their end shows.
SEALED_TOPICS = (topics.NOTIFICATIONS, topics.DECISIONS, topics.REJECTED)

KeySource = Ed25519PrivateKey | Callable[[], Ed25519PrivateKey]
_log = get_logger("jigsaw.audit.sealer")


class Sealer:
    """Chains the input topic in offset order, after the append, and checkpoints it.

    Args:
        log: the log.
        key: Jigsaw's signing key, or a callable giving it on first use; None writes no checkpoints.
        every: write a checkpoint once this many records are chained but not yet sealed.
    """

    def __init__(self, log: Log, *, key: KeySource | None = None, every: int = DEFAULT_EVERY) -> None:
        self.log = log
        self._key_source = key
        self._key: Ed25519PrivateKey | None = key if isinstance(key, Ed25519PrivateKey) else None
        self.every = every
        self.sealed_offset = -1  # the last offset a checkpoint covers
        self._head = GENESIS  # the chain value after ``sealed_offset`` plus the pending records
        self._pending: list[bytes] = []  # chain values of the records after ``sealed_offset``, in order
        self.checkpoints = 0

    @property
    def next_offset(self) -> int:
        """The input offset the next observed record must have."""
        return self.sealed_offset + 1 + len(self._pending)

    async def start(self) -> None:
        """Create the checkpoints topic and learn where the input topic was last sealed."""
        await self.log.create_topic(topics.CHECKPOINTS)
        self.sealed_offset, self._head, self._pending = -1, GENESIS, []
        async for records in scan(self.log, topics.CHECKPOINTS, limit=1000):
            for record in records:
                try:
                    cp = decode_checkpoint(record)
                except ValueError:
                    continue
                if (cp.topic, cp.partition) == (topics.INPUT, 0) and cp.offset > self.sealed_offset:
                    self.sealed_offset, self._head = cp.offset, cp.chain

    def observe(self, record: Record) -> None:
        """Chain one input record (records in offset order; those already sealed are skipped)."""
        if record.offset < self.next_offset:
            return
        if record.offset != self.next_offset:  # the log has a gap where the sealer expected a record
            _log.error("seal_gap", expected=self.next_offset, offset=record.offset)
        self._head = record_link(self._head, record)
        self._pending.append(self._head)

    def due(self) -> bool:
        """True when enough records wait for a checkpoint."""
        return len(self._pending) >= self.every

    async def seal(self, now: dt.datetime) -> Position | None:
        """Write a checkpoint of the chained records no checkpoint covers yet (None when there are none)."""
        key = self._signing_key()
        if key is None or not self._pending:
            return None
        ends = []
        for topic in SEALED_TOPICS:
            for partition in range(await self.log.partitions(topic)):
                ends.append((topic, partition, await self.log.end_offset(topic, partition=partition)))
        offset = self.sealed_offset + len(self._pending)
        unsigned = Checkpoint(topics.INPUT, 0, offset, self._head, now, tuple(ends), "", links=tuple(self._pending))
        checkpoint = sign_checkpoint(unsigned, key)
        record_key, value, headers = encode_checkpoint(checkpoint)
        position = await self.log.append(
            topics.CHECKPOINTS, value, key=record_key, headers=headers, timestamp_ms=int(now.timestamp() * 1000)
        )
        self.sealed_offset, self._pending = offset, []
        self.checkpoints += 1
        _log.info("checkpoint", topic=topics.INPUT, offset=offset, key_id=checkpoint.key_id)
        return position

    def _signing_key(self) -> Ed25519PrivateKey | None:
        if self._key is None and self._key_source is not None and not isinstance(self._key_source, Ed25519PrivateKey):
            self._key = self._key_source()
        return self._key
