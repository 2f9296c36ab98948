"""The Merkle tree on disk: an append-only file of every complete subtree's hash.

The file is a 32-byte header (``JIGSAW-MERKLE-1\\n`` and 16 zero bytes) and
then 32-byte hashes in post-order: each leaf hash, followed by the hash of every
subtree that leaf completes (as in a Merkle mountain range). Appending a leaf
therefore only ever writes at the end of the file: the leaf and its
``trailing ones of index`` new parents, one hash on average. For ``n`` leaves
the file holds ``2n - popcount(n)`` hashes, 64 bytes a leaf: 61 MiB for a
million leaves.

The complete subtree of ``2**level`` leaves numbered ``index`` sits in slot
``2j - popcount(j) + level`` where ``j = (index + 1) * 2**level - 1`` is its
last leaf, so every hash is one ``pread``: a root or an inclusion or
consistency proof for any size up to the current one costs O(log n) reads, and
the store keeps only the O(log n) hashes of the current peaks in memory.

One process writes (the elected sealer; a second writer is refused by a file
lock); any number may read. A write that a
crash cut short leaves a partial tail: opening the file for writing drops
hashes past the last whole leaf, and a last leaf whose parents do not match.
``append_many`` is durable (fsync) when it returns, so sign a tree head only
after the leaves it covers were appended. A crash can leave unsynced hashes
that look whole; a sealer that starts again should ``truncate`` to its last
published head and append the rest again from the log.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from broker.audit.merkle import (
    HASH_SIZE,
    Frontier,
    NodeSource,
    consistency_path,
    inclusion_path,
    node_hash,
    perfect_subtrees,
    tree_root,
)
from broker.errors import ConfigError
from broker.logging import get_logger

__all__ = ["HEADER", "TreeStore", "node_count", "node_slot"]

HEADER = b"JIGSAW-MERKLE-1\n" + bytes(16)
_log = get_logger("jigsaw.audit.tree_store")


def node_count(leaves: int) -> int:
    """How many hashes a tree of ``leaves`` leaves keeps: ``2n - popcount(n)``."""
    return 2 * leaves - leaves.bit_count()


def node_slot(level: int, index: int) -> int:
    """The post-order slot of complete subtree ``index`` at ``level``."""
    last = ((index + 1) << level) - 1
    return 2 * last - last.bit_count() + level


def _leaves_in(slots: int) -> int:
    """The most leaves whose hashes fit in ``slots`` slots (``node_count`` is strictly increasing)."""
    lo, hi = 0, max(slots, 0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if node_count(mid) <= slots:
            lo = mid
        else:
            hi = mid - 1
    return lo


class TreeStore:
    """A Merkle tree kept in one append-only file.

    Args:
        path: the file; created (with its header) when it does not exist and ``readonly`` is false.
        readonly: open for reading only (proofs against a file the sealer writes).

    Raises:
        ConfigError: the file cannot be opened or is not a tree file.
    """

    def __init__(self, path: Path | str, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        try:
            flags = os.O_RDONLY if readonly else os.O_RDWR | os.O_CREAT
            self._fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise ConfigError(f"cannot open the Merkle tree file {self.path}: {exc}") from exc
        try:
            if not readonly:
                self._lock()
            self._size = self._open_size()
        except BaseException:
            os.close(self._fd)
            raise
        self._frontier = Frontier()  # what appending needs; read from the file when writing
        if not readonly:
            self._frontier = self._read_frontier()

    # -- opening --------------------------------------------------------------

    def _lock(self) -> None:
        try:  # one writer: a second sealer (or a stale one) must not interleave its appends
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise ConfigError(f"another process is writing the Merkle tree file {self.path}") from exc

    def _open_size(self) -> int:
        length = os.fstat(self._fd).st_size
        if length == 0 and not self.readonly:
            os.pwrite(self._fd, HEADER, 0)
            os.fsync(self._fd)
            return 0
        if os.pread(self._fd, len(HEADER), 0) != HEADER:
            raise ConfigError(f"{self.path} is not a Jigsaw Merkle tree file")
        size = _leaves_in((length - len(HEADER)) // HASH_SIZE)
        if self.readonly:
            return size
        while size > 0 and not self._tail_sound(size):
            size -= 1  # a torn write: its parents do not match; the sealer appends it again from the log
        end = self._offset(node_count(size))
        if end != length:
            _log.warning("merkle_tail_dropped", path=str(self.path), leaves=size, dropped_bytes=length - end)
            os.ftruncate(self._fd, end)
            os.fsync(self._fd)
        return size

    def _read_frontier(self) -> Frontier:
        return Frontier(self._size, tuple(self.node(level, i) for level, i in perfect_subtrees(0, self._size)))

    def _tail_sound(self, size: int) -> bool:
        last = size - 1
        level, index = 0, last
        while index & 1:  # every subtree the last leaf completes must hash its two children
            index >>= 1
            level += 1
            left, right = self._read(level - 1, 2 * index), self._read(level - 1, 2 * index + 1)
            if self._read(level, index) != node_hash(left, right):
                return False
        return True

    # -- reading --------------------------------------------------------------

    @staticmethod
    def _offset(slot: int) -> int:
        return len(HEADER) + slot * HASH_SIZE

    def _read(self, level: int, index: int) -> bytes:
        data = os.pread(self._fd, HASH_SIZE, self._offset(node_slot(level, index)))
        if len(data) != HASH_SIZE:
            raise ConfigError(f"{self.path} ends inside node ({level}, {index})")
        return data

    @property
    def size(self) -> int:
        """How many leaves the tree has."""
        return self._size

    def refresh(self) -> int:
        """Re-read the file's length (a reader following the writer); the new size."""
        if self.readonly:
            length = os.fstat(self._fd).st_size
            self._size = _leaves_in((length - len(HEADER)) // HASH_SIZE)
        return self._size

    def node(self, level: int, index: int) -> bytes:
        """The hash of complete subtree ``index`` at ``level`` (a ``NodeSource``).

        Raises:
            ValueError: that subtree is not complete in the tree as it stands.
        """
        if level < 0 or index < 0 or (index + 1) << level > self._size:
            raise ValueError(f"subtree ({level}, {index}) is not complete in a tree of {self._size} leaves")
        return self._read(level, index)

    def leaf(self, index: int) -> bytes:
        """The hash of leaf ``index``."""
        return self.node(0, index)

    def _source(self, size: int) -> NodeSource:
        if not 0 <= size <= self._size:
            raise ValueError(f"the tree has {self._size} leaves, not {size}")
        return self.node

    def root(self, size: int | None = None) -> bytes:
        """The root of the first ``size`` leaves (all of them by default)."""
        size = self._size if size is None else size
        return tree_root(self._source(size), size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The inclusion path of leaf ``index`` in the tree of the first ``size`` leaves."""
        return inclusion_path(self._source(size), index, size)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """The consistency path from the tree of ``first`` leaves to that of ``second``."""
        return consistency_path(self._source(second), first, second)

    # -- writing --------------------------------------------------------------

    def append_many(self, leaf_hashes: Iterable[bytes], *, sync: bool = True) -> int:
        """Append leaf hashes in order with every subtree they complete, in one write; the new size.

        Durable when it returns unless ``sync`` is false (then call ``sync`` before relying on it).

        Raises:
            ConfigError: the store is read-only.
            ValueError: a hash is not 32 bytes.
        """
        if self.readonly:
            raise ConfigError(f"{self.path} was opened read-only")
        frontier = self._frontier
        out = bytearray()
        for leaf in leaf_hashes:
            if len(leaf) != HASH_SIZE:
                raise ValueError(f"a leaf hash is {len(leaf)} bytes, not {HASH_SIZE}")
            frontier, completed = frontier.append(leaf)
            out += leaf
            for node in completed:
                out += node
        if out:
            os.pwrite(self._fd, bytes(out), self._offset(node_count(self._size)))
            if sync:
                os.fsync(self._fd)
        self._frontier, self._size = frontier, frontier.size
        return self._size

    def truncate(self, size: int) -> None:
        """Drop every leaf past ``size`` (durably), to append them again from the log.

        For a sealer starting after a crash: leaves that no published tree head covers
        may have been torn by the crash, so it cuts back to its last head's size and
        re-reads the log from there. Never cut below a published head.

        Raises:
            ConfigError: the store is read-only.
            ValueError: ``size`` is more than the tree holds.
        """
        if self.readonly:
            raise ConfigError(f"{self.path} was opened read-only")
        if not 0 <= size <= self._size:
            raise ValueError(f"cannot cut a tree of {self._size} leaves to {size}")
        os.ftruncate(self._fd, self._offset(node_count(size)))
        os.fsync(self._fd)
        self._size = size
        self._frontier = self._read_frontier()

    def append(self, leaf_hash: bytes) -> int:
        """Append one leaf hash (durably); the new size."""
        return self.append_many((leaf_hash,))

    def sync(self) -> None:
        """Make every append durable."""
        os.fsync(self._fd)

    # -- lifetime -------------------------------------------------------------

    def close(self) -> None:
        """Release the file (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> TreeStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
