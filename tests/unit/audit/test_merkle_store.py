"""The append-only tree file: the same roots and proofs as the in-memory tree, durable, and safe after a torn write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from broker.audit.merkle import MemoryTree, leaf_hash, verify_consistency, verify_inclusion
from broker.audit.tree_store import HEADER, TreeStore, node_count, node_slot
from broker.errors import ConfigError

LEAVES = [leaf_hash(f"record {i}".encode()) for i in range(300)]
MEMORY = MemoryTree(LEAVES)


def test_slots_follow_post_order() -> None:
    """Leaves and the subtrees they complete are numbered in the order they are written."""
    order = [(0, 0), (0, 1), (1, 0), (0, 2), (0, 3), (1, 1), (2, 0), (0, 4)]
    assert [node_slot(level, index) for level, index in order] == list(range(8))
    assert [node_count(n) for n in range(6)] == [0, 1, 3, 4, 7, 8]


def test_the_store_gives_the_same_roots_and_proofs_as_memory(tmp_path: Path) -> None:
    """Appended in uneven batches, every root, inclusion and consistency proof up to 300 leaves matches."""
    with TreeStore(tmp_path / "tree") as store:
        start = 0
        for batch in (1, 2, 5, 64, 100, 128):
            store.append_many(LEAVES[start : start + batch], sync=False)
            start += batch
        assert store.size == 300
        for n in range(301):
            assert store.root(n) == MEMORY.root(n)
        for n in (1, 2, 7, 64, 100, 255, 256, 257, 300):
            for m in range(n):
                path = store.inclusion_proof(m, n)
                verify_inclusion(LEAVES[m], m, n, path, MEMORY.root(n))
            for m in range(n + 1):
                path = store.consistency_proof(m, n)
                verify_consistency(m, n, MEMORY.root(m), MEMORY.root(n), path)
        assert os.path.getsize(tmp_path / "tree") == len(HEADER) + 32 * node_count(300)


def test_a_reopened_store_carries_on(tmp_path: Path) -> None:
    """Closing and reopening keeps every leaf, and appending afterwards gives the same tree as one run."""
    with TreeStore(tmp_path / "tree") as store:
        store.append_many(LEAVES[:77])
    with TreeStore(tmp_path / "tree") as store:
        assert store.size == 77 and store.root() == MEMORY.root(77)
        for leaf in LEAVES[77:]:
            store.append(leaf)
        assert store.root() == MEMORY.root()


def test_a_torn_write_is_dropped_on_open(tmp_path: Path) -> None:
    """Half a hash at the end, or a last leaf whose parents do not match, is cut off; earlier leaves stay."""
    path = tmp_path / "tree"
    with TreeStore(path) as store:
        store.append_many(LEAVES[:8])
    with path.open("ab") as out:
        out.write(b"\x07" * 20)  # part of leaf 8
    with TreeStore(path) as store:
        assert store.size == 8 and store.root() == MEMORY.root(8)
    with path.open("r+b") as out:  # leaf 7 completes three subtrees: spoil the last
        out.seek(len(HEADER) + 32 * (node_count(8) - 1))
        out.write(b"\x00" * 32)
    with TreeStore(path) as store:
        assert store.size == 7 and store.root() == MEMORY.root(7)
        assert os.path.getsize(path) == len(HEADER) + 32 * node_count(7)


def test_a_reader_follows_the_writer(tmp_path: Path) -> None:
    """A read-only store sees what the writer appended after refresh, and cannot append."""
    with TreeStore(tmp_path / "tree") as writer, TreeStore(tmp_path / "tree", readonly=True) as reader:
        writer.append_many(LEAVES[:10])
        assert reader.size == 0
        assert reader.refresh() == 10 and reader.root() == MEMORY.root(10)
        with pytest.raises(ConfigError, match="read-only"):
            reader.append(LEAVES[0])


def test_what_the_store_refuses(tmp_path: Path) -> None:
    """A file that is not a tree, a short leaf hash, and sizes or subtrees beyond the tree are refused."""
    (tmp_path / "other").write_bytes(b"not a tree file at all, no header here")
    with pytest.raises(ConfigError, match="not a Jigsaw Merkle tree"):
        TreeStore(tmp_path / "other")
    with pytest.raises(ConfigError, match="cannot open"):
        TreeStore(tmp_path / "missing", readonly=True)
    with TreeStore(tmp_path / "tree") as store:
        store.append_many(LEAVES[:5])
        with pytest.raises(ValueError, match="32"):
            store.append(b"short")
        with pytest.raises(ValueError, match="not complete"):
            store.node(1, 2)
        with pytest.raises(ValueError, match="5 leaves"):
            store.root(6)
        with pytest.raises(ValueError):
            store.inclusion_proof(5, 5)
        assert store.size == 5


def test_only_one_writer_at_a_time(tmp_path: Path) -> None:
    """A second writer is refused while the first holds the file; readers are not, and closing frees it."""
    with TreeStore(tmp_path / "tree") as writer:
        writer.append_many(LEAVES[:3])
        with pytest.raises(ConfigError, match="another process"):
            TreeStore(tmp_path / "tree")
        with TreeStore(tmp_path / "tree", readonly=True) as reader:
            assert reader.size == 3
    with TreeStore(tmp_path / "tree") as writer:
        assert writer.size == 3


def test_truncate_drops_leaves_to_append_again(tmp_path: Path) -> None:
    """Cutting back to an earlier size and appending the same leaves gives the same tree; sizes beyond are refused."""
    with TreeStore(tmp_path / "tree") as store:
        store.append_many(LEAVES[:100])
        store.truncate(37)
        assert store.size == 37 and store.root() == MEMORY.root(37)
        assert os.path.getsize(tmp_path / "tree") == len(HEADER) + 32 * node_count(37)
        store.append_many(LEAVES[37:100])
        assert store.root() == MEMORY.root(100)
        with pytest.raises(ValueError, match="cannot cut"):
            store.truncate(101)
    with TreeStore(tmp_path / "tree", readonly=True) as reader, pytest.raises(ConfigError, match="read-only"):
        reader.truncate(1)
