"""Merkle hash trees as RFC 9162 section 2.1 defines them (pure).

A leaf hashes as ``SHA-256(0x00 || data)`` and an interior node as
``SHA-256(0x01 || left || right)``; a tree of ``n > 1`` leaves splits at ``k``,
the largest power of two smaller than ``n``. The two prefixes keep a leaf from
ever being read as an interior node (second-preimage resistance).

Proofs are built from a ``NodeSource``: ``node(level, index)`` is the hash of
the complete subtree of ``2**level`` leaves starting at leaf ``index * 2**level``
(level 0 is a leaf hash). In the RFC's recursion every left subtree is complete
and aligned, and a right subtree that is not splits the same way, so any root
or proof needs O(log n) of those hashes. ``tree_store.TreeStore`` keeps them on
disk; ``MemoryTree`` keeps them in lists, for tests and small trees. A
``Frontier`` keeps only the O(log n) peaks: enough to append and to compute
the current root, which is what a streaming replay needs to check each signed
tree head it meets against the records it has read.

Verification follows RFC 9162 2.1.3.2 and 2.1.4.2 and raises ``ProofInvalid``
with a reason a person can read. Two cases the RFC leaves aside are defined
here: a consistency proof from the empty tree (size 0) and between two heads of
the same size are both the empty list; the first is always consistent, the
second only when the two roots are equal.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar

from broker.errors import JigsawError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "MemoryTree",
    "NodeSource",
    "ProofInvalid",
    "consistency_path",
    "inclusion_path",
    "leaf_hash",
    "node_hash",
    "perfect_subtrees",
    "root_from_inclusion",
    "subtree_root",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH of the empty tree
_LEAF = b"\x00"
_NODE = b"\x01"

NodeSource = Callable[[int, int], bytes]


class ProofInvalid(JigsawError, ValueError):
    """A Merkle proof, tree head or proof file does not verify; ``message`` says why."""

    code: ClassVar[str] = "proof_invalid"
    http_status: ClassVar[int] = 422


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one leaf."""
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return hashlib.sha256(_NODE + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """The complete subtrees, as ``(level, index)`` left to right, whose fold is ``MTH(D[start:end])``.

    ``start`` must be a multiple of a power of two at least ``end - start`` (as
    every subtree in the RFC's recursion is); the pieces are then the binary
    digits of ``end - start``, largest first.
    """
    pieces = []
    size = end - start
    while size > 0:
        level = size.bit_length() - 1
        pieces.append((level, start >> level))
        start += 1 << level
        size -= 1 << level
    return pieces


def subtree_root(node: NodeSource, start: int, end: int) -> bytes:
    """``MTH(D[start:end])`` for a subtree that arises in the RFC's recursion (see ``perfect_subtrees``)."""
    if end <= start:
        return EMPTY_ROOT
    hashes = [node(level, index) for level, index in perfect_subtrees(start, end)]
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


def tree_root(node: NodeSource, size: int) -> bytes:
    """``MTH(D[0:size])``, the root of the first ``size`` leaves."""
    return subtree_root(node, 0, size)


def inclusion_path(node: NodeSource, index: int, size: int) -> list[bytes]:
    """``PATH(index, D[0:size])`` (RFC 9162 2.1.3.1), the leaf's sibling first.

    Raises:
        ValueError: ``index`` is not a leaf of a tree of ``size`` leaves.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index - start < k:
            path.append(subtree_root(node, start + k, end))
            end = start + k
        else:
            path.append(subtree_root(node, start, start + k))
            start += k
    path.reverse()
    return path


def consistency_path(node: NodeSource, first: int, second: int) -> list[bytes]:
    """``PROOF(first, D[0:second])`` (RFC 9162 2.1.4.1); empty when ``first`` is 0 or equals ``second``.

    Raises:
        ValueError: the sizes are negative or ``first > second``.
    """
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from a tree of {first} leaves to one of {second}")
    if first in (0, second):
        return []
    path: list[bytes] = []
    start, end, whole = 0, second, True
    m = first
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            path.append(subtree_root(node, start + k, end))
            end = start + k
        else:
            path.append(subtree_root(node, start, start + k))
            start += k
            m -= k
            whole = False
    if not whole:
        path.append(subtree_root(node, start, end))
    path.reverse()
    return path


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofInvalid(f"{name} is {len(value)} bytes, not {HASH_SIZE}")


def root_from_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """The root that ``path`` proves leaf hash ``leaf`` at ``index`` belongs to (RFC 9162 2.1.3.2, steps 1-4).

    Raises:
        ProofInvalid: the index is outside the tree, or the path is too short or too long.
    """
    _check_hash("the leaf hash", leaf)
    if not 0 <= index < size:
        raise ProofInvalid(f"leaf index {index} is not in a tree of {size} leaves")
    fn, sn, r = index, size - 1, leaf
    for i, p in enumerate(path):
        _check_hash(f"inclusion path hash {i}", p)
        if sn == 0:
            raise ProofInvalid(f"the inclusion path is too long: {len(path)} hashes, {i} expected")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofInvalid(f"the inclusion path is too short: {len(path)} hashes for leaf {index} of {size}")
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> None:
    """Check that leaf hash ``leaf`` is leaf ``index`` of the tree of ``size`` leaves with root ``root``.

    Raises:
        ProofInvalid: it is not (the message says how the proof failed).
    """
    _check_hash("the root hash", root)
    if root_from_inclusion(leaf, index, size, path) != root:
        raise ProofInvalid(f"the inclusion path for leaf {index} does not lead to the root of the tree of {size}")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]) -> None:
    """Check that the tree of ``second`` leaves extends the tree of ``first`` leaves (RFC 9162 2.1.4.2).

    Raises:
        ProofInvalid: the sizes go backwards, or the path does not join the two roots.
    """
    _check_hash("the first root hash", first_root)
    _check_hash("the second root hash", second_root)
    for i, c in enumerate(path):
        _check_hash(f"consistency path hash {i}", c)
    if not 0 <= first <= second:
        raise ProofInvalid(f"a tree of {second} leaves cannot extend one of {first}: the log shrank")
    if first == 0 or first == second:
        if path:
            raise ProofInvalid(f"a consistency proof from size {first} to {second} must be empty")
        if first == second and first_root != second_root:
            raise ProofInvalid(f"two trees of {first} leaves have different roots: the log was changed")
        if first == 0 and first_root != EMPTY_ROOT:
            raise ProofInvalid("the empty tree's root must be SHA-256 of nothing")
        return
    if not path:
        raise ProofInvalid("the consistency path is empty")
    hashes = list(path)
    if first & (first - 1) == 0:  # a power of two: the first tree is itself a node of the second
        hashes.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = hashes[0]
    for c in hashes[1:]:
        if sn == 0:
            raise ProofInvalid(f"the consistency path is too long for sizes {first} and {second}")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofInvalid(f"the consistency path is too short for sizes {first} and {second}")
    if fr != first_root:
        raise ProofInvalid(f"the consistency path does not rebuild the root of the tree of {first}")
    if sr != second_root:
        raise ProofInvalid(f"the consistency path does not rebuild the root of the tree of {second}")


@dataclasses.dataclass(frozen=True, slots=True)
class Frontier:
    """The hashes of the complete subtrees a tree of ``size`` leaves ends in (its peaks), largest first."""

    size: int = 0
    peaks: tuple[bytes, ...] = ()

    def append(self, leaf: bytes) -> tuple[Frontier, tuple[bytes, ...]]:
        """The frontier with one more leaf hash, and the hashes of the subtrees it completes, lowest first."""
        peaks = list(self.peaks)
        completed = []
        current, size = leaf, self.size
        while size & 1:  # each trailing one bit of the old size is a peak the new leaf completes
            current = node_hash(peaks.pop(), current)
            completed.append(current)
            size >>= 1
        peaks.append(current)
        return Frontier(self.size + 1, tuple(peaks)), tuple(completed)

    def root(self) -> bytes:
        """``MTH`` of the leaves appended so far."""
        if not self.peaks:
            return EMPTY_ROOT
        root = self.peaks[-1]
        for left in reversed(self.peaks[:-1]):
            root = node_hash(left, root)
        return root


class MemoryTree:
    """Every complete subtree's hash in lists: a ``NodeSource`` for tests and small trees (O(n) memory)."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append(h)

    @classmethod
    def of_data(cls, leaves: Iterable[bytes]) -> MemoryTree:
        """A tree of these leaves' data (each hashed with ``leaf_hash``)."""
        return cls(leaf_hash(d) for d in leaves)

    @property
    def size(self) -> int:
        """How many leaves the tree has."""
        return len(self.levels[0])

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash, and every subtree it completes."""
        self.levels[0].append(leaf)
        level = 0
        while len(self.levels[level]) % 2 == 0:
            row = self.levels[level]
            if level + 1 == len(self.levels):
                self.levels.append([])
            self.levels[level + 1].append(node_hash(row[-2], row[-1]))
            level += 1

    def node(self, level: int, index: int) -> bytes:
        """The hash of complete subtree ``index`` at ``level``."""
        return self.levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        """The root of the first ``size`` leaves (all of them by default)."""
        return tree_root(self.node, self.size if size is None else size)
