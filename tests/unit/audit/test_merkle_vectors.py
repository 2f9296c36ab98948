"""The pinned Merkle vectors: tree hashes, the leaf encoding, signed tree heads and proof files, byte for byte."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from broker.audit.merkle import MemoryTree, consistency_path, inclusion_path, leaf_hash
from broker.audit.merkle_leaf import record_leaf_data
from broker.audit.merkle_proof import consistency_proof, inclusion_proof, record_from_json, verify_proof
from broker.audit.sth import SignedTreeHead, sign_tree_head, tree_head_valid

VECTORS = Path(__file__).parents[2] / "vectors" / "merkle"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def test_tree_vectors() -> None:
    """Leaf hashes, every root, inclusion path and consistency path of the eleven-leaf tree are as pinned."""
    vec = _load("tree.json")
    tree = MemoryTree.of_data(bytes.fromhex(d) for d in vec["leaves"])
    assert [tree.node(0, i).hex() for i in range(tree.size)] == vec["leaf_hashes"]
    assert [tree.root(n).hex() for n in range(tree.size + 1)] == vec["roots"]
    for case in vec["inclusion"]:
        path = inclusion_path(tree.node, case["leaf_index"], case["tree_size"])
        assert [h.hex() for h in path] == case["inclusion_path"]
    for case in vec["consistency"]:
        path = consistency_path(tree.node, case["first"], case["second"])
        assert [h.hex() for h in path] == case["consistency_path"]


def test_leaf_encoding_vectors() -> None:
    """Each record's leaf data and leaf hash are as pinned, including absent keys and values."""
    for case in _load("records.json")["records"]:
        data = record_leaf_data(record_from_json(case["record"]))
        assert data.hex() == case["leaf_data"]
        assert leaf_hash(data).hex() == case["leaf_hash"]


def _records_tree() -> MemoryTree:
    return MemoryTree(bytes.fromhex(c["leaf_hash"]) for c in _load("records.json")["records"])


def test_tree_head_vectors() -> None:
    """Signing the pinned heads again gives the same signature input and signature (Ed25519 is deterministic)."""
    vec = _load("sth.json")
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vec["seed"]))
    tree = _records_tree()
    for case in vec["heads"]:
        pinned = SignedTreeHead.from_json(case["tree_head"])
        assert pinned.root_hash == tree.root(pinned.tree_size)
        assert pinned.signed_bytes().hex() == case["signed_bytes"]
        assert sign_tree_head(SignedTreeHead(pinned.tree_size, pinned.root_hash, pinned.timestamp_ms), key) == pinned
        raw = base64.b64decode(vec["public_key"].removeprefix("whpk_"))
        assert tree_head_valid(pinned, Ed25519PublicKey.from_public_bytes(raw))


def test_proof_file_vectors() -> None:
    """The library builds the pinned proof files again, and verifies them."""
    vec = _load("sth.json")
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vec["seed"]))
    heads = [SignedTreeHead.from_json(case["tree_head"]) for case in vec["heads"]]
    records = [record_from_json(c["record"]) for c in _load("records.json")["records"]]
    tree = _records_tree()
    built = {
        "inclusion-proof.json": inclusion_proof(tree.node, 3, heads[1], record=records[3], public_key=key.public_key()),
        "inclusion-proof-hash-only.json": inclusion_proof(tree.node, 6, heads[1]),
        "consistency-proof.json": consistency_proof(tree.node, heads[0], heads[1], public_key=key.public_key()),
    }
    for name, doc in built.items():
        assert doc == _load(name), name
        assert verify_proof(doc, key.public_key())
