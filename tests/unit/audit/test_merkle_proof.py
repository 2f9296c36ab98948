"""Tree heads and proof files: built from the tree file, checked by the library, the CLI and the standalone verifier."""

from __future__ import annotations

import ast
import copy
import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import broker.audit.standalone_verify as standalone
from broker.audit.checkpoint import public_key_line
from broker.audit.merkle import ProofInvalid
from broker.audit.merkle_leaf import record_leaf_data, record_leaf_hash
from broker.audit.merkle_proof import consistency_proof, inclusion_proof, verify_proof
from broker.audit.sth import (
    SignedTreeHead,
    decode_tree_head,
    encode_tree_head,
    sign_tree_head,
    tree_head_valid,
    verify_tree_head,
)
from broker.audit.tree_store import TreeStore
from broker.cli import main
from broker.log.base import Record

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
VERIFIER = Path(standalone.__file__)


def _record(offset: int) -> Record:
    headers = (("event_id", f"event-{offset}".encode()), ("source", b"police-1"))
    return Record("jigsaw.input", 0, offset, b"child-1", f"envelope {offset}".encode(), headers, 1_700_000_000_000)


RECORDS = [_record(i) for i in range(1000)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> TreeStore:
    tree = TreeStore(tmp_path_factory.mktemp("merkle") / "tree")
    tree.append_many(record_leaf_hash(r) for r in RECORDS)
    return tree


def _head(store: TreeStore, size: int, key: Ed25519PrivateKey = KEY) -> SignedTreeHead:
    return sign_tree_head(SignedTreeHead(size, store.root(size), 1_700_000_100_000 + size), key)


def test_the_leaf_encoding_covers_every_field() -> None:
    """Changing any field of a record, or an absent key for an empty one, changes its leaf."""
    record = _record(7)
    changes: list[dict[str, Any]] = [
        {"topic": "jigsaw.input2"},
        {"partition": 1},
        {"offset": 8},
        {"timestamp_ms": record.timestamp_ms + 1},
        {"key": None},
        {"key": b""},
        {"value": None},
        {"value": b""},
        {"headers": record.headers[:1]},
        {"headers": tuple(reversed(record.headers))},
        {"headers": (("event_id", b"event-7source"), ("", b"police-1"))},
    ]
    leaves = {record_leaf_data(dataclasses.replace(record, **change)) for change in changes}
    assert len(leaves | {record_leaf_data(record)}) == len(changes) + 1


def test_a_tree_head_verifies_only_unchanged_and_with_its_key() -> None:
    """Any changed field breaks the signature; another key is named as such."""
    head = sign_tree_head(SignedTreeHead(3, b"\x01" * 32, 1_700_000_000_000), KEY)
    assert tree_head_valid(head, KEY.public_key())
    for change in ({"tree_size": 4}, {"root_hash": b"\x02" * 32}, {"timestamp_ms": 1}, {"signature": b"\x00" * 64}):
        assert not tree_head_valid(dataclasses.replace(head, **change), KEY.public_key())  # type: ignore[arg-type]
    with pytest.raises(ProofInvalid, match="signed by"):
        verify_tree_head(head, OTHER.public_key())
    assert SignedTreeHead.from_json(head.to_json()) == head
    with pytest.raises(ProofInvalid, match="malformed"):
        SignedTreeHead.from_json({**head.to_json(), "tree_size": "3"})


def test_a_tree_head_round_trips_through_a_log_record() -> None:
    """Encoded for a topic and read back, a head is unchanged; a record holding something else is refused."""
    head = sign_tree_head(SignedTreeHead(3, b"\x01" * 32, 1_700_000_000_000), KEY)
    key, value, headers = encode_tree_head(head, "jigsaw.input")
    assert (key, headers) == (b"jigsaw.input", (("kind", b"tree_head"),))
    assert decode_tree_head(Record("jigsaw.tree-heads", 0, 0, key, value, headers, 0)) == head
    for bad in (b"[]", b"not json", None):
        with pytest.raises(ProofInvalid, match="malformed"):
            decode_tree_head(Record("jigsaw.tree-heads", 0, 1, key, bad, headers, 0))


def test_proofs_from_the_tree_file_verify(store: TreeStore) -> None:
    """An inclusion proof for a record and a consistency proof between two heads verify with Jigsaw's key."""
    head = _head(store, 1000)
    doc = inclusion_proof(store.node, 777, head, record=RECORDS[777])
    assert "jigsaw.input:0:777" in verify_proof(doc, KEY.public_key())
    assert len(doc["inclusion_path"]) == 10
    doc = consistency_proof(store.node, _head(store, 300), head, public_key=KEY.public_key())
    assert "extends the log of 300" in verify_proof(doc)


def test_proofs_are_not_built_for_a_head_or_record_that_does_not_match(store: TreeStore) -> None:
    """A head whose root is not the tree's, or a record that is not the leaf, is refused before any proof."""
    forged = sign_tree_head(SignedTreeHead(10, b"\x00" * 32, 0), KEY)
    with pytest.raises(ProofInvalid, match="signed root"):
        inclusion_proof(store.node, 1, forged)
    with pytest.raises(ProofInvalid, match="not the hash"):
        inclusion_proof(store.node, 1, _head(store, 10), record=RECORDS[2])
    with pytest.raises(ProofInvalid, match="larger"):
        consistency_proof(store.node, _head(store, 10), _head(store, 9))


def _tamperings() -> list[tuple[str, str, Callable[[dict[str, Any]], None]]]:
    def set_in(*keys: str, value: Any) -> Callable[[dict[str, Any]], None]:
        def apply(doc: dict[str, Any]) -> None:
            target = doc
            for key in keys[:-1]:
                target = target[key]
            target[keys[-1]] = value

        return apply

    def swap(name: str) -> Callable[[dict[str, Any]], None]:
        def apply(doc: dict[str, Any]) -> None:
            doc[name][0], doc[name][1] = doc[name][1], doc[name][0]

        return apply

    return [
        ("inclusion", "record was changed", set_in("record", "value", value="YWx0ZXJlZA==")),
        ("inclusion", "record was changed", set_in("record", "offset", value=778)),
        ("inclusion", "does not lead", set_in("leaf_index", value=776)),
        ("inclusion", "signature", set_in("tree_head", "tree_size", value=999)),
        ("inclusion", "signature", set_in("tree_head", "root_hash", value="00" * 32)),
        ("inclusion", "too short", lambda doc: doc["inclusion_path"].pop()),
        ("inclusion", "does not lead", swap("inclusion_path")),
        ("inclusion", "not hex", set_in("leaf_hash", value="zz")),
        ("inclusion", "different public key", set_in("public_key", value=public_key_line(OTHER))),
        ("consistency", "signature", set_in("second", "tree_size", value=1001)),
        ("consistency", "rebuild", swap("consistency_path")),
        ("consistency", "too short", lambda doc: doc["consistency_path"].pop()),
        ("consistency", "shrank", lambda doc: doc.update(first=doc["second"], second=doc["first"])),
    ]


@pytest.fixture(scope="module")
def proofs(store: TreeStore) -> dict[str, dict[str, Any]]:
    head = _head(store, 1000)
    return {
        "inclusion": inclusion_proof(store.node, 777, head, record=RECORDS[777], public_key=KEY.public_key()),
        "consistency": consistency_proof(store.node, _head(store, 300), head, public_key=KEY.public_key()),
    }


@pytest.mark.parametrize(("kind", "reason", "tamper"), _tamperings())
def test_a_tampered_proof_fails_in_the_library_and_the_standalone_verifier(
    proofs: dict[str, dict[str, Any]], kind: str, reason: str, tamper: Callable[[dict[str, Any]], None]
) -> None:
    """Each tampering is refused by both implementations, with a reason naming what broke."""
    doc = copy.deepcopy(proofs[kind])
    tamper(doc)
    with pytest.raises(ProofInvalid):
        verify_proof(doc, KEY.public_key())
    with pytest.raises(standalone.Failed, match=reason):
        standalone.check(doc, public_key_line(KEY))


def test_the_standalone_verifier_imports_nothing_from_jigsaw() -> None:
    """Its imports are the standard library and cryptography only."""
    tree = ast.parse(VERIFIER.read_text(encoding="utf-8"))
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert {m.split(".")[0] for m in modules} <= {"__future__", "argparse", "base64", "hashlib", "json"} | {
        "struct",
        "sys",
        "pathlib",
        "typing",
        "cryptography",
    }


def _run_standalone(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", str(VERIFIER), str(path), *args], capture_output=True, text=True, check=False
    )


def test_the_standalone_verifier_as_a_program(proofs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """Run in an isolated interpreter on a library-made proof: OK and 0; on a tampered copy: FAILED and 1."""
    key_file = tmp_path / "jigsaw.pub"
    key_file.write_text(public_key_line(KEY) + "\n")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(proofs["inclusion"]))
    result = _run_standalone(good, "--key", str(key_file))
    assert (result.returncode, result.stdout.split(":")[0]) == (0, "OK"), result.stdout + result.stderr
    assert "the key given" in result.stdout
    assert "compare it" in _run_standalone(good).stdout
    bad = tmp_path / "bad.json"
    tampered = copy.deepcopy(proofs["inclusion"])
    tampered["record"]["timestamp_ms"] += 1
    bad.write_text(json.dumps(tampered))
    result = _run_standalone(bad, "--key", public_key_line(KEY))
    assert result.returncode == 1 and result.stdout.startswith("FAILED: the record does not hash"), result.stdout
    result = _run_standalone(good, "--key", public_key_line(OTHER))
    assert result.returncode == 1 and "different public key" in result.stdout
    result = _run_standalone(tmp_path / "missing.json")
    assert result.returncode == 1 and result.stdout.startswith("FAILED: cannot read")


def test_jigsaw_proof_verify(
    proofs: dict[str, dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``jigsaw proof --verify`` prints OK and exits 0, or FAILED with the reason and exits 1."""
    monkeypatch.setenv("JIGSAW_KEYS_DIR", str(tmp_path / "keys"))
    key_file = tmp_path / "jigsaw.pub"
    key_file.write_text(public_key_line(KEY) + "\n")
    good = tmp_path / "consistency.json"
    good.write_text(json.dumps(proofs["consistency"]))
    assert main(["proof", "--verify", str(good), "--key", str(key_file)]) == 0
    assert capsys.readouterr().out.startswith("OK: the log of 1000 entries extends the log of 300")
    tampered = copy.deepcopy(proofs["consistency"])
    tampered["consistency_path"][0] = "11" * 32
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tampered))
    assert main(["proof", "--verify", str(bad)]) == 1
    assert capsys.readouterr().out.startswith("FAILED: the consistency path does not rebuild")
    assert main(["proof", "--verify", str(tmp_path / "missing.json")]) == 1
    assert "config_invalid" in capsys.readouterr().err
