"""The sealer: a Merkle tree over the input topic, built after the append, and signed tree heads.

Writers (any number of gateways, the inbox) only append to ``jigsaw.input``;
none of them hashes anything. The one active router reads every input record in
offset order anyway, so it is also the sealer (Kafka's group membership elects
it): it hands each record to ``Sealer.observe``, which appends the record's leaf
hash (``merkle_leaf``) to an RFC 9162 tree, and when a head is due (every
``every`` records, or ``interval`` seconds after the first record no head covers
yet) and at ``seal`` (shutdown, the end of a simulation) publishes a ``Seal``
(``seal.py``) on ``jigsaw.tree-heads``: the signed tree head, the leaf hashes
it adds to the previous head (so an auditor can name each altered, removed,
reordered or inserted record), the tree's peaks, and where the output topics
ended (so records cut off their ends show).

The sealer keeps only the tree's peaks in memory. With ``tree`` it also keeps
the whole tree in a ``TreeStore`` file, to serve proofs from.

A sealer that starts again (a restart, a standby taking over, a machine with no
local files) reads the last seal from the topic and goes on from its peaks;
records it observes again below that size are skipped, so nothing is sealed
twice. Its tree file is cut back to that head (leaves past it may be torn) or
extended from the log up to it, and checked against the signed root.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker import topics
from broker.audit.merkle import Frontier, ProofInvalid
from broker.audit.merkle_leaf import record_leaf_hash
from broker.audit.seal import Seal, decode_seal, encode_seal, sign_seal
from broker.audit.sth import SignedTreeHead
from broker.audit.tree_store import TreeStore
from broker.errors import ConfigError
from broker.log.base import Log, Position, Record
from broker.log.scan import read_available
from broker.logging import get_logger

__all__ = ["DEFAULT_EVERY", "SEALED_TOPICS", "KeySource", "Sealer", "last_seal"]

DEFAULT_EVERY = 100
# Topics whose end offsets each seal records, so that cutting records off their end shows.
SEALED_TOPICS = (topics.NOTIFICATIONS, topics.DECISIONS, topics.REJECTED)

KeySource = Ed25519PrivateKey | Callable[[], Ed25519PrivateKey]
_log = get_logger("jigsaw.audit.sealer")


async def last_seal(log: Log, *, step: int = 64) -> tuple[Seal, int] | None:
    """The newest well-formed seal on the tree heads topic, with its offset (None when there is none).

    Reads backwards from the end in steps, so a long topic is not scanned (and a
    transaction marker or a damaged record at the end is stepped over).
    """
    end = await log.end_offset(topics.TREE_HEADS)
    while end > 0:
        start = max(0, end - step)
        records = [r for r in await read_available(log, topics.TREE_HEADS, start, limit=step) if r.offset < end]
        for record in reversed(records):
            try:
                return decode_seal(record), record.offset
            except ProofInvalid:
                continue
        end = start
    return None


class Sealer:
    """Builds the Merkle tree over the input topic in offset order, after the append, and publishes signed heads.

    Args:
        log: the log.
        key: Jigsaw's signing key, or a callable giving it on first use; None publishes nothing.
        every: a head once this many records wait for one.
        interval: ... or once the oldest waiting record has waited this many seconds (None: by count only).
        tree: a tree file to keep the whole tree in, for proofs (None: the peaks only).
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        log: Log,
        *,
        key: KeySource | None = None,
        every: int = DEFAULT_EVERY,
        interval: float | None = None,
        tree: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self._key_source = key
        self._key: Ed25519PrivateKey | None = key if isinstance(key, Ed25519PrivateKey) else None
        self.every = every
        self.interval = interval
        self._tree_path = tree
        self._store: TreeStore | None = None
        self._clock = clock
        self._frontier = Frontier()
        self.sealed = 0  # the tree size the last published head covers
        self._pending: list[bytes] = []  # leaf hashes of the records after ``sealed``, in order
        self._since: float | None = None  # when the oldest pending record was observed
        self.heads = 0

    @property
    def next_offset(self) -> int:
        """The input offset the next observed record must have."""
        return self._frontier.size

    @property
    def store(self) -> TreeStore | None:
        """The tree file, when the sealer keeps one."""
        return self._store

    async def start(self) -> None:
        """Create the tree heads topic and go on from the last published head."""
        await self.log.create_topic(topics.TREE_HEADS)
        self._frontier, self.sealed, self._pending, self._since = Frontier(), 0, [], None
        found = await last_seal(self.log)
        if found is not None:
            seal, offset = found
            if seal.peaks_match():
                self._frontier, self.sealed = seal.frontier(), seal.size
            else:  # a damaged seal: an auditor will name it; sealing on from it would hide nothing
                _log.error("seal_peaks_mismatch", offset=offset, size=seal.size)
        if self._tree_path is not None:
            await self._open_store(found[0].head if found is not None else None)

    async def _open_store(self, head: SignedTreeHead | None) -> None:
        if self._store is None:
            assert self._tree_path is not None
            try:
                self._tree_path.parent.mkdir(parents=True, exist_ok=True)
                self._store = TreeStore(self._tree_path)
            except (OSError, ConfigError) as exc:  # e.g. a standby on the same machine holds the file
                _log.warning("merkle_file_unavailable", path=str(self._tree_path), error=str(exc))
                return
        store, size = self._store, self.sealed
        if store.size > size:
            store.truncate(size)
        if store.size == size and (head is None or store.root(size) == head.root_hash):
            return
        if head is not None and store.size == size:
            _log.warning("merkle_file_mismatch", path=str(store.path), size=size)
            store.truncate(0)
        while store.size < size:  # a machine with no (or a stale) tree file: rebuild it from the log
            records = await read_available(self.log, topics.INPUT, store.size, limit=5000)
            if not records:
                break
            store.append_many([record_leaf_hash(r) for r in records[: size - store.size]], sync=False)
        store.sync()
        if head is not None and (store.size != size or store.root(size) != head.root_hash):
            _log.error("merkle_file_disagrees_with_head", path=str(store.path), size=store.size, head_size=size)

    async def catch_up(self, offset: int) -> None:
        """Observe the input records from ``next_offset`` up to (not including) ``offset`` from the log.

        For a router that starts from a snapshot rather than from offset 0: call it after ``start``
        with the snapshot's offset, so no record between the last head and the snapshot goes unsealed.
        """
        while self.next_offset < offset:
            records = await read_available(self.log, topics.INPUT, self.next_offset, limit=5000)
            if not records:
                break
            for record in records:
                if record.offset >= offset:
                    return
                self.observe(record)

    def observe(self, record: Record) -> None:
        """Add one input record's leaf (records in offset order; those already sealed are skipped)."""
        if record.offset < self.next_offset:
            return
        if record.offset != self.next_offset:  # the log has a gap where the sealer expected a record
            _log.error("seal_gap", expected=self.next_offset, offset=record.offset)
        leaf = record_leaf_hash(record)
        self._frontier = self._frontier.append(leaf)[0]
        self._pending.append(leaf)
        if self._since is None:
            self._since = self._clock()

    def due(self) -> bool:
        """True when enough records, or records waiting long enough, wait for a head."""
        if not self._pending:
            return False
        if len(self._pending) >= self.every:
            return True
        return self.interval is not None and self._since is not None and self._clock() - self._since >= self.interval

    async def prepare(self, now: dt.datetime) -> Seal | None:
        """The signed seal of the records no head covers yet, not yet published (None: nothing to seal, no key).

        The tree file (if any) holds its leaves when this returns. Publish the seal, then call ``published``:
        ``seal`` does both; a router writing its outputs in a transaction can put the seal in the same one.
        """
        key = self._signing_key()
        if key is None or not self._pending:
            return None
        ends = []
        for topic in SEALED_TOPICS:
            for partition in range(await self.log.partitions(topic)):
                ends.append((topic, partition, await self.log.end_offset(topic, partition=partition)))
        frontier = self._frontier
        if self._store is not None and self._store.size < frontier.size:  # durable before a head says so
            self._store.append_many(self._pending[len(self._pending) - (frontier.size - self._store.size) :])
        unsigned = Seal(
            SignedTreeHead(frontier.size, frontier.root(), int(now.timestamp() * 1000)),
            first=self.sealed,
            leaves=tuple(self._pending),
            peaks=frontier.peaks,
            ends=tuple(ends),
        )
        return sign_seal(unsigned, key)

    def published(self, seal: Seal) -> None:
        """Note that ``seal`` (from ``prepare``) is on the log: the records it covers are sealed."""
        if seal.size <= self.sealed:
            return
        self._pending = self._pending[seal.size - self.sealed :]
        self.sealed = seal.size
        self._since = self._clock() if self._pending else None
        self.heads += 1
        _log.info("tree_head", topic=topics.INPUT, size=seal.size, key_id=seal.head.key_id)

    async def seal(self, now: dt.datetime) -> Position | None:
        """Publish a signed head of the records no head covers yet (None when there are none)."""
        seal = await self.prepare(now)
        if seal is None:
            return None
        record_key, value, headers = encode_seal(seal)
        position = await self.log.append(
            topics.TREE_HEADS, value, key=record_key, headers=headers, timestamp_ms=seal.head.timestamp_ms
        )
        self.published(seal)
        return position

    def close(self) -> None:
        """Release the tree file (idempotent)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def _signing_key(self) -> Ed25519PrivateKey | None:
        if self._key is None and self._key_source is not None and not isinstance(self._key_source, Ed25519PrivateKey):
            self._key = self._key_source()
        return self._key
