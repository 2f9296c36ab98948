"""Proof files: an inclusion proof of one leaf, or a consistency proof between two signed tree heads (pure).

The JSON format (``jigsaw.proof.v1``) is documented in ``broker/audit/proofs.md``
precisely enough for an independent verifier; ``standalone_verify.py`` is one
that imports nothing from Jigsaw. Hashes are lowercase hex; signatures, record
keys, values and header values are standard base64 with padding.

``inclusion_proof`` and ``consistency_proof`` build the documents from a
``NodeSource`` (a ``TreeStore``'s ``node``) and signed heads; ``verify_proof``
checks one and says what it proved.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.audit.checkpoint import public_key_line
from broker.audit.merkle import (
    HASH_SIZE,
    NodeSource,
    ProofInvalid,
    consistency_path,
    inclusion_path,
    leaf_hash,
    tree_root,
    verify_consistency,
    verify_inclusion,
)
from broker.audit.merkle_leaf import record_leaf_data
from broker.audit.sth import SignedTreeHead, verify_tree_head
from broker.log.base import Record

__all__ = [
    "PROOF_FORMAT",
    "consistency_proof",
    "inclusion_proof",
    "record_from_json",
    "record_to_json",
    "verify_proof",
]

PROOF_FORMAT = "jigsaw.proof.v1"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def record_to_json(record: Record) -> dict[str, Any]:
    """A log record as the proof format writes it (bytes as base64, absent key or value as null)."""
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp_ms,
        "key": None if record.key is None else _b64(record.key),
        "value": None if record.value is None else _b64(record.value),
        "headers": [{"name": name, "value": _b64(value)} for name, value in record.headers],
    }


def _int(data: Mapping[str, Any], name: str, *, minimum: int | None = 0) -> int:
    value = data[name]
    if type(value) is not int or (minimum is not None and value < minimum):
        raise ValueError(f"{name} must be an integer" + ("" if minimum is None else f" >= {minimum}"))
    return value


def _bytes_or_none(value: Any) -> bytes | None:
    return None if value is None else base64.b64decode(str(value), validate=True)


def record_from_json(data: Mapping[str, Any]) -> Record:
    """The record a proof carries.

    Raises:
        ProofInvalid: a field is missing or malformed.
    """
    try:
        return Record(
            topic=str(data["topic"]),
            partition=_int(data, "partition"),
            offset=_int(data, "offset"),
            key=_bytes_or_none(data["key"]),
            value=_bytes_or_none(data["value"]),
            headers=tuple((str(h["name"]), base64.b64decode(str(h["value"]), validate=True)) for h in data["headers"]),
            timestamp_ms=_int(data, "timestamp_ms", minimum=None),
        )
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ProofInvalid(f"malformed record in the proof: {exc}") from exc


def inclusion_proof(
    node: NodeSource,
    index: int,
    head: SignedTreeHead,
    *,
    record: Record | None = None,
    leaf: bytes | None = None,
    public_key: Ed25519PublicKey | None = None,
) -> dict[str, Any]:
    """The proof document that leaf ``index`` is in the tree ``head`` signs.

    Args:
        node: the tree's complete subtrees (``TreeStore.node``), holding at least ``head.tree_size`` leaves.
        index: the leaf's position in the tree.
        head: a signed tree head with ``index < head.tree_size``.
        record: the log record the leaf is; without it the proof shows only the leaf hash.
        leaf: the leaf hash, when no record is given (else it is computed from the record).
        public_key: Jigsaw's public key, written into the document for convenience (a verifier
            should still compare it with the key Jigsaw publishes).

    Raises:
        ProofInvalid: the tree does not match the head, or the record is not leaf ``index``.
    """
    if record is not None:
        leaf = leaf_hash(record_leaf_data(record))
    elif leaf is None:
        leaf = node(0, index)
    if tree_root(node, head.tree_size) != head.root_hash:
        raise ProofInvalid(f"the tree of {head.tree_size} leaves does not have the signed root: wrong tree or head")
    if node(0, index) != leaf:
        raise ProofInvalid(f"leaf {index} of the tree is not the hash of this record")
    doc: dict[str, Any] = {
        "format": PROOF_FORMAT,
        "type": "inclusion",
        "leaf_index": index,
        "leaf_hash": leaf.hex(),
    }
    if record is not None:
        doc["record"] = record_to_json(record)
    doc["inclusion_path"] = [h.hex() for h in inclusion_path(node, index, head.tree_size)]
    doc["tree_head"] = head.to_json()
    if public_key is not None:
        doc["public_key"] = public_key_line(public_key)
    return doc


def consistency_proof(
    node: NodeSource, first: SignedTreeHead, second: SignedTreeHead, *, public_key: Ed25519PublicKey | None = None
) -> dict[str, Any]:
    """The proof document that the tree ``second`` signs extends the tree ``first`` signs.

    Raises:
        ProofInvalid: the heads go backwards or do not match the tree.
    """
    if first.tree_size > second.tree_size:
        raise ProofInvalid(f"the first head ({first.tree_size} leaves) is larger than the second ({second.tree_size})")
    for head in (first, second):
        if tree_root(node, head.tree_size) != head.root_hash:
            raise ProofInvalid(f"the tree of {head.tree_size} leaves does not have the signed root")
    doc: dict[str, Any] = {
        "format": PROOF_FORMAT,
        "type": "consistency",
        "first": first.to_json(),
        "second": second.to_json(),
        "consistency_path": [h.hex() for h in consistency_path(node, first.tree_size, second.tree_size)],
    }
    if public_key is not None:
        doc["public_key"] = public_key_line(public_key)
    return doc


def _hashes(doc: Mapping[str, Any], name: str) -> list[bytes]:
    value = doc.get(name)
    if not isinstance(value, list):
        raise ProofInvalid(f"{name} must be a list of hex hashes")
    try:
        hashes = [bytes.fromhex(h) for h in value]
    except (TypeError, ValueError) as exc:
        raise ProofInvalid(f"{name} holds something that is not hex: {exc}") from exc
    for i, h in enumerate(hashes):
        if len(h) != HASH_SIZE:
            raise ProofInvalid(f"{name}[{i}] is {len(h)} bytes, not {HASH_SIZE}")
    return hashes


def _key(doc: Mapping[str, Any], key: Ed25519PublicKey | None) -> tuple[Ed25519PublicKey, str]:
    embedded = doc.get("public_key")
    if key is not None:
        if embedded is not None and embedded != public_key_line(key):
            raise ProofInvalid("the proof names a different public key from the one given")
        return key, "the key given"
    if embedded is None:
        raise ProofInvalid("no public key: give Jigsaw's public key (the proof carries none)")
    try:
        raw = base64.b64decode(str(embedded).removeprefix("whpk_"), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw), "the key in the proof file (compare it with Jigsaw's)"
    except (ValueError, binascii.Error) as exc:
        raise ProofInvalid(f"the proof's public_key is malformed: {exc}") from exc


def _head(doc: Mapping[str, Any], name: str) -> SignedTreeHead:
    value = doc.get(name)
    if not isinstance(value, Mapping):
        raise ProofInvalid(f"{name} must be a signed tree head object")
    return SignedTreeHead.from_json(value)


def verify_proof(doc: Mapping[str, Any], key: Ed25519PublicKey | None = None) -> str:
    """Check a proof document; a sentence saying what it proves.

    Args:
        doc: the parsed JSON.
        key: Jigsaw's public key; when None the document's ``public_key`` is used (and the sentence says so).

    Raises:
        ProofInvalid: the document is malformed or does not verify (the message says why).
    """
    if doc.get("format") != PROOF_FORMAT:
        raise ProofInvalid(f"not a {PROOF_FORMAT} document (format {doc.get('format')!r})")
    verifier, source = _key(doc, key)
    kind = doc.get("type")
    if kind == "inclusion":
        head = _head(doc, "tree_head")
        verify_tree_head(head, verifier)
        try:
            index = _int(doc, "leaf_index")
            leaf = bytes.fromhex(str(doc["leaf_hash"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProofInvalid(f"malformed inclusion proof: {exc}") from exc
        what = f"leaf {index}"
        if "record" in doc:
            record = record_from_json(doc["record"])
            if leaf_hash(record_leaf_data(record)) != leaf:
                raise ProofInvalid("the record does not hash to leaf_hash: the record was changed")
            what = f"the record at {record.topic}:{record.partition}:{record.offset} (leaf {index})"
        verify_inclusion(leaf, index, head.tree_size, _hashes(doc, "inclusion_path"), head.root_hash)
        return f"{what} is in the log of {head.tree_size} entries signed by {head.key_id} ({source})"
    if kind == "consistency":
        first, second = _head(doc, "first"), _head(doc, "second")
        verify_tree_head(first, verifier)
        verify_tree_head(second, verifier)
        path = _hashes(doc, "consistency_path")
        verify_consistency(first.tree_size, second.tree_size, first.root_hash, second.root_hash, path)
        return (
            f"the log of {second.tree_size} entries extends the log of {first.tree_size} entries unchanged, "
            f"both signed by {first.key_id} ({source})"
        )
    raise ProofInvalid(f"unknown proof type {kind!r} (inclusion or consistency)")
