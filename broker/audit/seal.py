"""A published seal: a signed tree head as the sealer puts it on ``jigsaw.tree-heads`` (pure).

Each record of the tree heads topic holds one ``Seal``::

    {"tree": "jigsaw.input:0",
     "tree_head": {signed tree head, exactly as proofs.md defines it},
     "first": n,              the first leaf this seal lists (the previous head's size)
     "leaves": base64,        the leaf hashes of leaves first .. tree_size - 1, 32 bytes each
     "peaks": base64,         the hashes of the complete subtrees the tree ends in (merkle.Frontier)
     "ends": [{"topic", "partition", "end"}, ...],  where the output topics ended when it was made
     "seal": base64}          Ed25519 by Jigsaw's key over the bytes below

The tree head alone is what a third party needs (``proofs.md``). The seal adds
what an auditor needs to *name* a damaged record rather than only to say that
something under a head changed: every leaf hash the head covers, signed, so a
record whose leaf differs from the signed one is altered, moved or inserted, a
missing offset is a removed record, and an output topic shorter than a signed
``ends`` lost records off its end. The seal signature covers::

    F("jigsaw.seal.v1") || F(tree head signed bytes) || F(tree) || F(u64 first) || F(leaves) || F(ends JSON)

with ``F(x)`` the u64 big-endian length of ``x`` then ``x``, so it can never be
taken for a tree head's, a webhook's or any other signature made with the key.
The peaks are not signed: they are checked by folding them into the signed root,
and let a sealer that starts again on a machine with no local files go on from
the last seal without reading the log.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import struct
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from broker import wire
from broker.audit.merkle import HASH_SIZE, Frontier, ProofInvalid
from broker.audit.sth import SignedTreeHead, sign_tree_head, tree_head_valid
from broker.log.base import Headers, Record

__all__ = ["INPUT_TREE", "SEAL_TAG", "End", "Seal", "decode_seal", "encode_seal", "seal_valid", "sign_seal"]

SEAL_TAG = b"jigsaw.seal.v1"
INPUT_TREE = "jigsaw.input:0"  # the tree over the router's one ordered input partition
_U64 = struct.Struct(">Q")

End = tuple[str, int, int]  # (topic, partition, end offset)


def _field(data: bytes) -> bytes:
    return _U64.pack(len(data)) + data


def _split(raw: bytes, what: str) -> tuple[bytes, ...]:
    if len(raw) % HASH_SIZE:
        raise ValueError(f"{what} must be whole {HASH_SIZE}-byte hashes")
    return tuple(raw[i : i + HASH_SIZE] for i in range(0, len(raw), HASH_SIZE))


@dataclasses.dataclass(frozen=True, slots=True)
class Seal:
    """A signed tree head with the leaf hashes it adds to the previous one, the tree's peaks and output ends."""

    head: SignedTreeHead
    first: int
    leaves: tuple[bytes, ...]
    peaks: tuple[bytes, ...]
    ends: tuple[End, ...] = ()
    tree: str = INPUT_TREE
    signature: bytes = b""

    @property
    def size(self) -> int:
        """The tree size the head states."""
        return self.head.tree_size

    def signed_bytes(self) -> bytes:
        """The exact bytes the seal signature covers."""
        ends = json.dumps([list(e) for e in self.ends], separators=(",", ":")).encode()
        return b"".join(
            (
                _field(SEAL_TAG),
                _field(self.head.signed_bytes()),
                _field(self.tree.encode("utf-8")),
                _field(_U64.pack(self.first)),
                _field(b"".join(self.leaves)),
                _field(ends),
            )
        )

    def frontier(self) -> Frontier:
        """The tree's peaks at ``size`` (check ``peaks_match`` before trusting them)."""
        return Frontier(self.size, self.peaks)

    def peaks_match(self) -> bool:
        """True when the peaks fold into the signed root for the signed size."""
        return bin(self.size).count("1") == len(self.peaks) and self.frontier().root() == self.head.root_hash

    def to_json(self) -> dict[str, Any]:
        """The seal as a JSON object."""
        return {
            "tree": self.tree,
            "tree_head": self.head.to_json(),
            "first": self.first,
            "leaves": base64.b64encode(b"".join(self.leaves)).decode("ascii"),
            "peaks": base64.b64encode(b"".join(self.peaks)).decode("ascii"),
            "ends": [{"topic": t, "partition": p, "end": e} for t, p, e in self.ends],
            "seal": base64.b64encode(self.signature).decode("ascii"),
        }


def sign_seal(seal: Seal, key: Ed25519PrivateKey) -> Seal:
    """A copy whose tree head and seal are both signed with ``key``."""
    head = sign_tree_head(seal.head, key)
    unsigned = dataclasses.replace(seal, head=head, signature=b"")
    return dataclasses.replace(unsigned, signature=key.sign(unsigned.signed_bytes()))


def seal_valid(seal: Seal, key: Ed25519PublicKey) -> bool:
    """True when ``key`` signed both the tree head and the seal, and the leaves lead on to the head's size."""
    if not tree_head_valid(seal.head, key) or seal.first + len(seal.leaves) != seal.size:
        return False
    try:
        key.verify(seal.signature, seal.signed_bytes())
    except InvalidSignature:
        return False
    return True


def encode_seal(seal: Seal) -> tuple[bytes, bytes, Headers]:
    """``(key, value, headers)`` for the tree heads topic, keyed by the tree's name."""
    value = wire.encode_json(seal.to_json())
    return seal.tree.encode("utf-8"), value, (("kind", b"tree_head"),)


def decode_seal(record: Record) -> Seal:
    """The seal a tree heads record holds.

    Raises:
        ProofInvalid: the record holds no well-formed seal.
    """
    try:
        data = wire.decode_json(record.value or b"")
        if not isinstance(data, dict) or not isinstance(data.get("tree_head"), dict):
            raise ValueError("not a JSON object with a tree_head")
        first = data["first"]
        if type(first) is not int or first < 0:
            raise ValueError("first must be a non-negative integer")
        return Seal(
            head=SignedTreeHead.from_json(data["tree_head"]),
            first=first,
            leaves=_split(base64.b64decode(str(data["leaves"]), validate=True), "leaves"),
            peaks=_split(base64.b64decode(str(data["peaks"]), validate=True), "peaks"),
            ends=tuple((str(e["topic"]), int(e["partition"]), int(e["end"])) for e in data["ends"]),
            tree=str(data["tree"]),
            signature=base64.b64decode(str(data["seal"]), validate=True),
        )
    except ProofInvalid as exc:
        raise ProofInvalid(f"malformed seal at offset {record.offset}: {exc.message}") from exc
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ProofInvalid(f"malformed seal at offset {record.offset}: {exc}") from exc
