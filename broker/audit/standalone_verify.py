#!/usr/bin/env python3
"""Check a Jigsaw proof file with nothing but Python's standard library and ``cryptography``.

    python3 standalone_verify.py PROOF.json [--key KEY]

KEY is Jigsaw's public key: a file holding ``whpk_<base64>`` or a PEM public
key, or the ``whpk_...`` text itself. Without ``--key`` the key written in the
proof file is used, and the output says so: anyone can sign with a key of their
own, so compare it with the key Jigsaw publishes.

Prints ``OK: ...`` and exits 0 when the proof verifies, ``FAILED: <reason>``
and exits 1 when it does not. This file imports nothing from Jigsaw on purpose:
it is the format of ``broker/audit/proofs.md`` implemented a second time, so
that a court or an auditor can read all of it in a few minutes.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import struct
import sys
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

__all__ = ["Failed", "check", "main"]


class Failed(Exception):
    """The proof does not verify; the message says why."""


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _hash_leaf(data: bytes) -> bytes:
    return _sha256(b"\x00" + data)


def _hash_children(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right)


def _f(data: bytes) -> bytes:  # u64 big-endian length, then the bytes
    return struct.pack(">Q", len(data)) + data


def _hex32(value: Any, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except (TypeError, ValueError):
        raise Failed(f"{what} is not hex") from None
    if len(raw) != 32:
        raise Failed(f"{what} is {len(raw)} bytes, not 32")
    return raw


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (TypeError, ValueError):
        raise Failed(f"{what} is not base64") from None


def _count(value: Any, what: str, *, signed: bool = False) -> int:
    if type(value) is not int or (not signed and value < 0):
        raise Failed(f"{what} must be an integer" + ("" if signed else " >= 0"))
    return value


def _leaf_data(rec: dict[str, Any]) -> bytes:
    """proofs.md, "The leaf": the bytes of one log record."""
    out = _f(b"jigsaw.leaf.v1") + _f(str(rec["topic"]).encode("utf-8"))
    out += _f(struct.pack(">Q", _count(rec["partition"], "record.partition")))
    out += _f(struct.pack(">Q", _count(rec["offset"], "record.offset")))
    out += _f(struct.pack(">q", _count(rec["timestamp_ms"], "record.timestamp_ms", signed=True)))
    for name in ("key", "value"):
        out += b"\x00" if rec[name] is None else b"\x01" + _f(_b64(rec[name], f"record.{name}"))
    out += _f(struct.pack(">Q", len(rec["headers"])))
    for header in rec["headers"]:
        out += _f(str(header["name"]).encode("utf-8")) + _f(_b64(header["value"], "a header value"))
    return out


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _key_id(key: Ed25519PublicKey) -> str:
    return "jigsaw." + _sha256(_raw(key)).hex()[:12]


def _checked_head(head: Any, key: Ed25519PublicKey, what: str) -> tuple[int, bytes]:
    """proofs.md, "Signed tree heads": (tree_size, root_hash) once the signature verifies."""
    if not isinstance(head, dict):
        raise Failed(f"{what} is missing")
    size = _count(head.get("tree_size"), f"{what}.tree_size")
    root = _hex32(head.get("root_hash"), f"{what}.root_hash")
    millis = _count(head.get("timestamp_ms"), f"{what}.timestamp_ms", signed=True)
    key_id = str(head.get("key_id"))
    if key_id != _key_id(key):
        raise Failed(f"{what} was signed by {key_id}, not by the key used ({_key_id(key)})")
    signed = _f(b"jigsaw.sth.v1") + _f(struct.pack(">Q", size)) + _f(root)
    signed += _f(struct.pack(">q", millis)) + _f(key_id.encode("utf-8"))
    try:
        key.verify(_b64(head.get("signature"), f"{what}.signature"), signed)
    except InvalidSignature:
        raise Failed(f"the signature on {what} does not verify") from None
    return size, root


def _root_from_path(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        raise Failed(f"leaf_index {index} is not below tree_size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise Failed("the inclusion path is too long")
        if fn % 2 == 1 or fn == sn:
            r = _hash_children(p, r)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn // 2, sn // 2
        else:
            r = _hash_children(r, p)
        fn, sn = fn // 2, sn // 2
    if sn != 0:
        raise Failed("the inclusion path is too short")
    return r


def _consistent(size1: int, size2: int, root1: bytes, root2: bytes, path: list[bytes]) -> None:
    """RFC 9162 section 2.1.4.2, with the two edge cases proofs.md defines."""
    if size1 > size2:
        raise Failed(f"the second head ({size2}) is smaller than the first ({size1}): the log shrank")
    if size1 == 0 or size1 == size2:
        if path:
            raise Failed("the consistency path must be empty for these sizes")
        if size1 == 0 and root1 != _sha256(b""):
            raise Failed("the empty tree's root must be SHA-256 of nothing")
        if size1 == size2 and root1 != root2:
            raise Failed("two heads of the same size have different roots: the log was changed")
        return
    if not path:
        raise Failed("the consistency path is empty")
    if size1 & (size1 - 1) == 0:
        path = [root1, *path]
    fn, sn = size1 - 1, size2 - 1
    while fn % 2 == 1:
        fn, sn = fn // 2, sn // 2
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Failed("the consistency path is too long")
        if fn % 2 == 1 or fn == sn:
            fr, sr = _hash_children(c, fr), _hash_children(c, sr)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn // 2, sn // 2
        else:
            sr = _hash_children(sr, c)
        fn, sn = fn // 2, sn // 2
    if sn != 0:
        raise Failed("the consistency path is too short")
    if fr != root1:
        raise Failed("the consistency path does not rebuild the first root")
    if sr != root2:
        raise Failed("the consistency path does not rebuild the second root: the log was changed")


def _parse_key(text: str) -> Ed25519PublicKey:
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise Failed("the PEM key is not an Ed25519 key")
            return key
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text.removeprefix("whpk_"), validate=True))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise Failed(f"cannot read the public key: {exc}") from None


def check(proof: Any, key_text: str | None) -> str:
    """Verify a parsed proof document; what it proves, or raise ``Failed``."""
    if not isinstance(proof, dict) or proof.get("format") != "jigsaw.proof.v1":
        raise Failed("not a jigsaw.proof.v1 document")
    if key_text is not None:
        key, source = _parse_key(key_text), "the key given"
        if "public_key" in proof and _raw(_parse_key(str(proof["public_key"]))) != _raw(key):
            raise Failed("the proof names a different public key from the one given")
    elif "public_key" in proof:
        key, source = _parse_key(str(proof["public_key"])), "the key in the proof file: compare it with Jigsaw's"
    else:
        raise Failed("no public key: pass --key")
    if proof.get("type") == "inclusion":
        size, root = _checked_head(proof.get("tree_head"), key, "tree_head")
        index = _count(proof.get("leaf_index"), "leaf_index")
        leaf = _hex32(proof.get("leaf_hash"), "leaf_hash")
        what = f"leaf {index}"
        if "record" in proof:
            try:
                data = _leaf_data(proof["record"])
            except (KeyError, TypeError) as exc:
                raise Failed(f"the record is malformed: {exc!r}") from None
            if _hash_leaf(data) != leaf:
                raise Failed("the record does not hash to leaf_hash: the record was changed")
            what = f"record {proof['record']['topic']}:{proof['record']['offset']} (leaf {index})"
        path = [_hex32(h, "an inclusion_path hash") for h in proof.get("inclusion_path") or []]
        if _root_from_path(leaf, index, size, path) != root:
            raise Failed("the inclusion path does not lead to the signed root")
        return f"{what} is in the signed log of {size} entries (signed by {_key_id(key)}, {source})"
    if proof.get("type") == "consistency":
        size1, root1 = _checked_head(proof.get("first"), key, "first")
        size2, root2 = _checked_head(proof.get("second"), key, "second")
        path = [_hex32(h, "a consistency_path hash") for h in proof.get("consistency_path") or []]
        _consistent(size1, size2, root1, root2, path)
        return f"the log of {size2} entries extends the log of {size1} unchanged (signed by {_key_id(key)}, {source})"
    raise Failed(f"unknown proof type {proof.get('type')!r}")


def main(argv: list[str] | None = None) -> int:
    """Command line: ``standalone_verify.py PROOF.json [--key KEY]``; exit 0 when OK, 1 when FAILED."""
    parser = argparse.ArgumentParser(description="Check a Jigsaw proof file (jigsaw.proof.v1).")
    parser.add_argument("proof", type=Path, help="the proof JSON file")
    parser.add_argument("--key", help="Jigsaw's public key: a file (whpk_... or PEM) or the whpk_... text")
    args = parser.parse_args(argv)
    try:
        key_text = None
        if args.key is not None:
            key_text = args.key if args.key.startswith("whpk_") else Path(args.key).read_text(encoding="utf-8")
        proof = json.loads(args.proof.read_text(encoding="utf-8"))
        print("OK: " + check(proof, key_text))
        return 0
    except Failed as exc:
        print(f"FAILED: {exc}")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        print(f"FAILED: cannot read the input: {exc}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
