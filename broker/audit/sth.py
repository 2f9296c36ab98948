"""Signed tree heads: the size and root of the Merkle tree over the log, signed by Jigsaw (pure).

The signature is Ed25519 by Jigsaw's own key (the key that signs webhooks and
seals: ``JIGSAW_SIGNING_KEY_FILE``), over::

    F("jigsaw.sth.v1") || F(u64 tree_size) || F(root_hash) || F(i64 timestamp_ms) || F(key_id, UTF-8)

where ``F(x)`` is the u64 big-endian length of ``x`` followed by ``x``. The tag
keeps a tree head signature from ever being taken for a seal's (``seal.py``) or a
webhook's made with the same key. ``key_id`` is ``checkpoint_key_id`` of the
public key (``jigsaw.`` and the first 12 hex digits of its SHA-256).

In JSON a head is ``{"tree_size", "root_hash" (hex), "timestamp_ms",
"key_id", "signature" (base64)}``; ``broker/audit/proofs.md`` documents it.
``encode_tree_head`` and ``decode_tree_head`` put one on a topic and read it back.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import struct
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from broker import wire
from broker.audit.checkpoint import checkpoint_key_id
from broker.audit.merkle import HASH_SIZE, ProofInvalid
from broker.log.base import Headers, Record

__all__ = [
    "STH_TAG",
    "SignedTreeHead",
    "decode_tree_head",
    "encode_tree_head",
    "sign_tree_head",
    "tree_head_valid",
    "verify_tree_head",
]

STH_TAG = b"jigsaw.sth.v1"
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")


def _field(data: bytes) -> bytes:
    return _U64.pack(len(data)) + data


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclasses.dataclass(frozen=True, slots=True)
class SignedTreeHead:
    """The tree of the first ``tree_size`` leaves has root ``root_hash``, said by Jigsaw at ``timestamp_ms``."""

    tree_size: int
    root_hash: bytes  # 32 bytes
    timestamp_ms: int
    key_id: str = ""
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        """The exact bytes the signature covers."""
        return b"".join(
            (
                _field(STH_TAG),
                _field(_U64.pack(self.tree_size)),
                _field(self.root_hash),
                _field(_I64.pack(self.timestamp_ms)),
                _field(self.key_id.encode("utf-8")),
            )
        )

    def to_json(self) -> dict[str, Any]:
        """The head as a JSON object (hashes hex, signature base64)."""
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "timestamp_ms": self.timestamp_ms,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SignedTreeHead:
        """Parse a head written by ``to_json``.

        Raises:
            ProofInvalid: a field is missing or malformed.
        """
        try:
            size, ms = data["tree_size"], data["timestamp_ms"]
            if type(size) is not int or type(ms) is not int or size < 0:
                raise ValueError("tree_size and timestamp_ms must be integers, tree_size not negative")
            head = cls(
                tree_size=size,
                root_hash=bytes.fromhex(str(data["root_hash"])),
                timestamp_ms=ms,
                key_id=str(data["key_id"]),
                signature=base64.b64decode(str(data["signature"]), validate=True),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise ProofInvalid(f"malformed tree head: {exc}") from exc
        if len(head.root_hash) != HASH_SIZE:
            raise ProofInvalid(f"malformed tree head: root_hash is {len(head.root_hash)} bytes, not {HASH_SIZE}")
        return head


def sign_tree_head(head: SignedTreeHead, key: Ed25519PrivateKey) -> SignedTreeHead:
    """A copy carrying the key's id and its signature."""
    unsigned = dataclasses.replace(head, key_id=checkpoint_key_id(_raw(key.public_key())), signature=b"")
    return dataclasses.replace(unsigned, signature=key.sign(unsigned.signed_bytes()))


def verify_tree_head(head: SignedTreeHead, key: Ed25519PublicKey) -> None:
    """Check that ``key`` signed exactly this head.

    Raises:
        ProofInvalid: the head names another key, or the signature does not verify.
    """
    expected = checkpoint_key_id(_raw(key))
    if head.key_id != expected:
        raise ProofInvalid(f"the tree head was signed by {head.key_id!r}, not by the key given ({expected})")
    try:
        key.verify(head.signature, head.signed_bytes())
    except InvalidSignature:
        raise ProofInvalid(f"the signature on the tree head of size {head.tree_size} does not verify") from None


def tree_head_valid(head: SignedTreeHead, key: Ed25519PublicKey) -> bool:
    """True when ``key`` signed exactly this head."""
    try:
        verify_tree_head(head, key)
    except ProofInvalid:
        return False
    return True


def encode_tree_head(head: SignedTreeHead, tree: str) -> tuple[bytes, bytes, Headers]:
    """``(key, value, headers)`` for a tree heads topic: keyed by the tree's name (e.g. the topic it covers)."""
    value = wire.encode_json(head.to_json())
    return tree.encode("utf-8"), value, (("kind", b"tree_head"),)


def decode_tree_head(record: Record) -> SignedTreeHead:
    """The head a record holds.

    Raises:
        ProofInvalid: the record holds no well-formed head.
    """
    try:
        data = wire.decode_json(record.value or b"")
    except ValueError as exc:
        raise ProofInvalid(f"malformed tree head record at offset {record.offset}: {exc}") from exc
    if not isinstance(data, dict):
        raise ProofInvalid(f"malformed tree head record at offset {record.offset}: not a JSON object")
    return SignedTreeHead.from_json(data)
