"""Jigsaw's public key: how it is written down, read back and named (pure, but for the file reader).

Jigsaw signs its tree heads (``sth.py``, ``seal.py``) with its own Ed25519 key
(the key that signs webhooks: ``JIGSAW_SIGNING_KEY_FILE``). The public key is
kept as one line, ``whpk_<base64 of the 32 raw bytes>`` (what
``GET /v1/webhook-key`` publishes), or as a PEM public key, in
``jigsaw-checkpoint.pub`` beside the agency key records; ``checkpoint_key_id``
names it in every signed head.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

from broker.errors import ConfigError

__all__ = ["PUBLIC_KEY_FILE", "checkpoint_key_id", "load_public_key", "public_key_line"]

PUBLIC_KEY_FILE = "jigsaw-checkpoint.pub"  # beside the agency key records in a keys directory


def checkpoint_key_id(public: bytes) -> str:
    """``jigsaw.<first 12 hex digits of the public key's SHA-256>``."""
    return f"jigsaw.{hashlib.sha256(public).hexdigest()[:12]}"


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


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
