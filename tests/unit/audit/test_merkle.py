"""Merkle trees, inclusion and consistency proofs against a naive reference written from RFC 9162's definitions."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryTree,
    ProofInvalid,
    consistency_path,
    inclusion_path,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from broker.errors import JigsawError

# --- the reference: RFC 9162 2.1.1, 2.1.3.1 and 2.1.4.1 read literally, over slices of leaf data ----------


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return _h(b"")
    if len(d) == 1:
        return _h(b"\x00" + d[0])
    k = _k(len(d))
    return _h(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def _data(n: int) -> list[bytes]:
    return [f"leaf {i}".encode() for i in range(n)]


TREE = MemoryTree.of_data(_data(300))
REF_ROOTS = [ref_mth(_data(n)) for n in range(301)]


# --- agreement with the reference --------------------------------------------------------------------


def test_the_published_rfc_6962_test_roots_come_out() -> None:
    """The roots of the eight test leaves used by Certificate Transparency implementations match."""
    leaves = [bytes.fromhex(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657")]
    leaves.append(bytes.fromhex("606162636465666768696a6b6c6d6e6f"))
    tree = MemoryTree.of_data(leaves)
    assert tree.root(1).hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert tree.root(7).hex() == "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"
    assert tree.root(8).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def test_the_empty_tree_and_one_leaf() -> None:
    """MTH of nothing is SHA-256 of nothing; one leaf is its leaf hash; hashes carry the RFC's prefixes."""
    assert MemoryTree().root() == EMPTY_ROOT == _h(b"")
    assert leaf_hash(b"x") == _h(b"\x00x")
    assert node_hash(b"a" * 32, b"b" * 32) == _h(b"\x01" + b"a" * 32 + b"b" * 32)
    assert MemoryTree.of_data([b"x"]).root() == leaf_hash(b"x")


def test_every_root_up_to_300_matches_the_reference() -> None:
    """The incremental tree's root for each size equals the recursive definition."""
    assert [TREE.root(n) for n in range(301)] == REF_ROOTS


def test_a_frontier_keeps_only_the_peaks_and_gives_every_root() -> None:
    """Appending to a frontier gives each size's root, the subtrees each leaf completes, and log-many peaks."""
    frontier, completed = Frontier(), 0
    for n in range(1, 301):
        frontier, done = frontier.append(TREE.node(0, n - 1))
        assert frontier.root() == REF_ROOTS[n] and len(frontier.peaks) == n.bit_count()
        for level, node in enumerate(done, start=1):
            assert node == TREE.node(level, ((n - 1) >> level))
        completed += len(done)
    assert completed == 300 - (300).bit_count()
    assert Frontier().root() == EMPTY_ROOT


def test_every_inclusion_and_consistency_proof_up_to_64_matches_the_reference() -> None:
    """For every size up to 64, every index and every earlier size, the proofs equal the RFC's."""
    for n in range(1, 65):
        d = _data(n)
        for m in range(n):
            assert inclusion_path(TREE.node, m, n) == ref_path(m, d)
        for m in range(1, n):
            assert consistency_path(TREE.node, m, n) == ref_subproof(m, d, True)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_inclusion_proofs_match_the_reference_and_verify(case: tuple[int, int]) -> None:
    """Any leaf of any tree up to 300 leaves: the RFC's path, and it verifies against the root."""
    n, m = case
    path = inclusion_path(TREE.node, m, n)
    assert path == ref_path(m, _data(n))
    verify_inclusion(TREE.node(0, m), m, n, path, REF_ROOTS[n])


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
def test_consistency_proofs_match_the_reference_and_verify(case: tuple[int, int]) -> None:
    """Any two sizes up to 300: the RFC's proof, and it verifies against both roots."""
    m, n = case
    path = consistency_path(TREE.node, m, n)
    if m < n:
        assert path == ref_subproof(m, _data(n), True)
    verify_consistency(m, n, REF_ROOTS[m], REF_ROOTS[n], path)


def test_every_pair_of_sizes_up_to_128_is_consistent() -> None:
    """Exhaustively: each size is consistent with every larger one, and with itself, and the empty tree."""
    for n in range(129):
        for m in range(n + 1):
            verify_consistency(m, n, TREE.root(m), TREE.root(n), consistency_path(TREE.node, m, n))


# --- what must fail ----------------------------------------------------------------------------------


def _swap(path: list[bytes], i: int) -> list[bytes]:
    swapped = list(path)
    swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    return swapped


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1), st.integers(0, n - 1))))
def test_a_tampered_inclusion_proof_fails(case: tuple[int, int, int]) -> None:
    """An altered leaf, another index, another size, a truncated, lengthened, altered or reordered path all fail."""
    n, m, other = case
    leaf, root = TREE.node(0, m), REF_ROOTS[n]
    path = inclusion_path(TREE.node, m, n)
    bad: list[tuple[bytes, int, int, list[bytes], bytes]] = [
        (leaf_hash(b"altered"), m, n, path, root),
        (leaf, m, n, path[:-1], root),
        (leaf, m, n, [*path, path[0]], root),
        (leaf, m, n, [_h(b"x"), *path[1:]], root),
        (leaf, m, n, path, _h(b"another root")),
    ]
    if other != m:
        bad.append((leaf, other, n, path, root))
    for size in (n - 1, n + 1):
        if m < size <= 300:
            bad.append((leaf, m, size, path, REF_ROOTS[size]))
    if len(path) > 1:
        bad.append((leaf, m, n, _swap(path, 0), root))
    for args in bad:
        with pytest.raises(ProofInvalid):
            verify_inclusion(*args)


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 300).flatmap(lambda n: st.tuples(st.integers(1, n - 1), st.just(n))))
def test_a_tampered_consistency_proof_fails(case: tuple[int, int]) -> None:
    """Wrong roots, other sizes, a truncated, lengthened, altered or reordered path all fail."""
    m, n = case
    path = consistency_path(TREE.node, m, n)
    r1, r2 = REF_ROOTS[m], REF_ROOTS[n]
    bad: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (m, n, _h(b"x"), r2, path),
        (m, n, r1, _h(b"x"), path),
        (m, n, r1, r2, path[:-1]),
        (m, n, r1, r2, [*path, path[0]]),
        (m, n, r1, r2, [_h(b"x"), *path[1:]]),
        (n, m, r2, r1, path),
    ]
    if m + 1 < n:
        bad.append((m + 1, n, REF_ROOTS[m + 1], r2, path))
    if n < 300:
        bad.append((m, n + 1, r1, REF_ROOTS[n + 1], path))
    if len(path) > 1:
        bad.append((m, n, r1, r2, _swap(path, 0)))
    for args in bad:
        with pytest.raises(ProofInvalid):
            verify_consistency(*args)


def test_edge_cases_of_consistency() -> None:
    """Equal sizes need equal roots and an empty path; the empty tree needs its own root; a shrinking log fails."""
    verify_consistency(5, 5, REF_ROOTS[5], REF_ROOTS[5], [])
    verify_consistency(0, 5, EMPTY_ROOT, REF_ROOTS[5], [])
    with pytest.raises(ProofInvalid, match="different roots"):
        verify_consistency(5, 5, REF_ROOTS[5], REF_ROOTS[4], [])
    with pytest.raises(ProofInvalid, match="must be empty"):
        verify_consistency(5, 5, REF_ROOTS[5], REF_ROOTS[5], [REF_ROOTS[1]])
    with pytest.raises(ProofInvalid, match="empty tree"):
        verify_consistency(0, 5, REF_ROOTS[1], REF_ROOTS[5], [])
    with pytest.raises(ProofInvalid, match="shrank"):
        verify_consistency(6, 5, REF_ROOTS[6], REF_ROOTS[5], [])
    with pytest.raises(ProofInvalid, match="empty"):
        verify_consistency(3, 5, REF_ROOTS[3], REF_ROOTS[5], [])


def test_malformed_inputs_are_refused() -> None:
    """Short hashes, indexes outside the tree and impossible sizes raise, as Jigsaw errors or ValueError."""
    with pytest.raises(ProofInvalid, match="not in a tree"):
        verify_inclusion(TREE.node(0, 0), 5, 5, [], REF_ROOTS[5])
    with pytest.raises(ProofInvalid, match="bytes"):
        verify_inclusion(b"short", 0, 1, [], REF_ROOTS[1])
    with pytest.raises(ProofInvalid, match="bytes"):
        verify_consistency(1, 2, REF_ROOTS[1], REF_ROOTS[2], [b"short"])
    with pytest.raises(ValueError):
        inclusion_path(TREE.node, 3, 3)
    with pytest.raises(ValueError):
        consistency_path(TREE.node, 4, 3)
    assert issubclass(ProofInvalid, JigsawError) and ProofInvalid.code == "proof_invalid"
