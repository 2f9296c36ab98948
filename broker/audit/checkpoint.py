"""Signed checkpoints of the hash chain, and Jigsaw's public key file (pure, but for two small file helpers).

A checkpoint says "after offset N of this events partition the chain value
was C; when it was written, these other topics ended at these offsets", signed
with Jigsaw's own Ed25519 key (the key that signs webhooks: ``JIGSAW_SIGNING_KEY_FILE``).
An auditor holding only the public key can then tell that nothing up to N was
changed, and that no notification, decision, acknowledgement or rejection
written before the checkpoint was cut off the end of its topic.

The signature covers a length-prefixed encoding under its own tag, so it can
never be mistaken for a webhook signature made with the same key (those sign
``"<uuid>.<timestamp>.<body>"`` text).

Jigsaw's public key is kept as one line, ``whpk_<base64 of the 32 raw bytes>``
(what ``GET /v1/webhook-key`` publishes), or as a PEM public key.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import hashlib
import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

from broker.envelope.model import to_millis
from broker.errors import ConfigError
from broker.log.base import Headers, Record
from broker.routing.model import iso, parse_iso

__all__ = [
    "PUBLIC_KEY_FILE",
    "Checkpoint",
    "checkpoint_key_id",
    "checkpoint_valid",
    "decode_checkpoint",
    "encode_checkpoint",
    "load_public_key",
    "public_key_line",
    "sign_checkpoint",
]

PUBLIC_KEY_FILE = "jigsaw-checkpoint.pub"  # beside the agency key records in a keys directory
_TAG = b"jigsaw.checkpoint.v1"
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")

End = tuple[str, int, int]  # (topic, partition, end offset)


def checkpoint_key_id(public: bytes) -> str:
    """``jigsaw.<first 12 hex digits of the public key's SHA-256>``."""
    return f"jigsaw.{hashlib.sha256(public).hexdigest()[:12]}"


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclasses.dataclass(frozen=True, slots=True)
class Checkpoint:
    """The chain value of one events partition after ``offset``, signed by Jigsaw."""

    topic: str
    partition: int
    offset: int  # the last record covered
    chain: bytes  # the chain value after it (32 bytes)
    at: dt.datetime  # when it was written (the intake's clock)
    ends: tuple[End, ...]  # where the other audited topics ended when it was written
    key_id: str
    signature: bytes = b""
    # The chain value of each record the checkpoint covers, oldest first, ending with ``chain``
    # (offsets ``offset - len(links) + 1`` to ``offset``): an auditor names each record that does not match.
    links: tuple[bytes, ...] = ()

    def signed_bytes(self) -> bytes:
        """The exact bytes the signature covers."""
        ends = json.dumps([list(e) for e in self.ends], separators=(",", ":")).encode()
        links = b"".join(self.links)
        fields = (
            _TAG,
            self.topic.encode(),
            _U64.pack(self.partition),
            _U64.pack(self.offset),
            self.chain,
            _I64.pack(to_millis(self.at)),
            ends,
            self.key_id.encode(),
            links,
        )
        return b"".join(_U64.pack(len(f)) + f for f in fields)

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "chain": self.chain.hex(),
            "at": iso(self.at),
            "ends": [{"topic": t, "partition": p, "end": e} for t, p, e in self.ends],
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "links": base64.b64encode(b"".join(self.links)).decode("ascii"),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Checkpoint:
        """Parse a checkpoint record's value; ValueError when it is malformed."""
        try:
            at = parse_iso(str(data["at"]))
            assert at is not None
            return cls(
                topic=str(data["topic"]),
                partition=int(data["partition"]),
                offset=int(data["offset"]),
                chain=bytes.fromhex(str(data["chain"])),
                at=at,
                ends=tuple((str(e["topic"]), int(e["partition"]), int(e["end"])) for e in data["ends"]),
                key_id=str(data["key_id"]),
                signature=base64.b64decode(str(data["signature"]), validate=True),
                links=_split_links(base64.b64decode(str(data.get("links", "")), validate=True)),
            )
        except (KeyError, TypeError, ValueError, AssertionError, binascii.Error) as exc:
            raise ValueError(f"malformed checkpoint: {exc}") from exc


def _split_links(raw: bytes) -> tuple[bytes, ...]:
    if len(raw) % 32:
        raise ValueError("links must be whole 32-byte chain values")
    return tuple(raw[i : i + 32] for i in range(0, len(raw), 32))


def sign_checkpoint(checkpoint: Checkpoint, key: Ed25519PrivateKey) -> Checkpoint:
    """A copy carrying the key's id and its signature."""
    unsigned = dataclasses.replace(checkpoint, key_id=checkpoint_key_id(_raw(key.public_key())), signature=b"")
    return dataclasses.replace(unsigned, signature=key.sign(unsigned.signed_bytes()))


def checkpoint_valid(checkpoint: Checkpoint, key: Ed25519PublicKey) -> bool:
    """True when ``key`` signed exactly this checkpoint."""
    if checkpoint.key_id != checkpoint_key_id(_raw(key)):
        return False
    try:
        key.verify(checkpoint.signature, checkpoint.signed_bytes())
    except InvalidSignature:
        return False
    return True


def encode_checkpoint(checkpoint: Checkpoint) -> tuple[bytes, bytes, Headers]:
    """``(key, value, headers)`` for the checkpoints topic: keyed by ``topic:partition``."""
    value = json.dumps(checkpoint.to_json(), sort_keys=True, separators=(",", ":")).encode()
    return f"{checkpoint.topic}:{checkpoint.partition}".encode(), value, (("kind", b"checkpoint"),)


def decode_checkpoint(record: Record) -> Checkpoint:
    """The checkpoint a record holds; ValueError when it is malformed."""
    if record.value is None:
        raise ValueError("a checkpoint record has no value")
    try:
        data = json.loads(record.value)
    except ValueError as exc:
        raise ValueError(f"malformed checkpoint: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("malformed checkpoint: not a JSON object")
    return Checkpoint.from_json(data)


def public_key_line(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """``whpk_<base64>``: how Jigsaw's public key is written down."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return "whpk_" + base64.b64encode(_raw(public)).decode("ascii")


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read Jigsaw's public key (``whpk_...`` or PEM).

    Raises:
        ConfigError: the file is missing or holds no Ed25519 public key.
    """
    try:
        text = path.read_text(encoding="utf-8").strip()
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("not an Ed25519 key")
            return key
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text.removeprefix("whpk_"), validate=True))
    except (OSError, ValueError, binascii.Error) as exc:
        raise ConfigError(f"cannot read Jigsaw's public key {path}: {exc}") from exc
