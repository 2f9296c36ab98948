"""Webhook signatures, Standard Webhooks style, with Jigsaw's own Ed25519 key (scheme ``v1a``).

Every webhook carries ``webhook-id`` (the notification id: receivers dedupe on
it), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``: a
space-separated list of ``v1a,<base64 Ed25519 signature>`` over
``"<webhook-id>.<webhook-timestamp>.<body>"``. Receivers verify with Jigsaw's
public key, published at ``GET /v1/webhook-key`` as ``whpk_`` followed by the
base64 of the 32 raw key bytes. An asymmetric scheme means receivers hold no
secret that could sign a forged notification.

Signing and verifying are pure. ``load_webhook_key`` reads the key file named by
``JIGSAW_SIGNING_KEY_FILE``: either ``whsk_<base64 32-byte seed>`` or the JSON
private-key file ``jigsaw keys new`` writes.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from broker.errors import ConfigError
from broker.logging import get_logger

__all__ = [
    "SCHEME",
    "TOLERANCE_S",
    "WebhookKey",
    "load_webhook_key",
    "public_key_text",
    "sign_headers",
    "signed_content",
    "verify_webhook",
    "webhook_key_for",
]

SCHEME = "v1a"
TOLERANCE_S = 300  # how far a receiver lets webhook-timestamp stray from its clock
_log = get_logger("jigsaw.delivery")


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookKey:
    """Jigsaw's webhook signing key. Its repr never shows the key."""

    private_key: Ed25519PrivateKey = dataclasses.field(repr=False)
    ephemeral: bool = False

    @classmethod
    def generate(cls, *, ephemeral: bool = False) -> WebhookKey:
        """A fresh random key."""
        return cls(Ed25519PrivateKey.generate(), ephemeral)

    @property
    def public_bytes(self) -> bytes:
        """The 32 raw public key bytes."""
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        """A short stable name for the key: ``jigsaw-webhooks.<12 hex of the public key's SHA-256>``."""
        return f"jigsaw-webhooks.{hashlib.sha256(self.public_bytes).hexdigest()[:12]}"

    def secret_text(self) -> str:
        """``whsk_<base64 seed>``: the file format ``load_webhook_key`` reads (keep it secret)."""
        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return "whsk_" + base64.b64encode(seed).decode("ascii")


def public_key_text(public: bytes) -> str:
    """``whpk_<base64>`` for 32 raw public key bytes."""
    return "whpk_" + base64.b64encode(public).decode("ascii")


def signed_content(webhook_id: str, timestamp: int, body: bytes) -> bytes:
    """What is signed: ``id.timestamp.body``."""
    return f"{webhook_id}.{timestamp}.".encode() + body


def sign_headers(key: WebhookKey, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery attempt."""
    signature = key.private_key.sign(signed_content(webhook_id, timestamp, body))
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"{SCHEME},{base64.b64encode(signature).decode('ascii')}",
    }


def verify_webhook(
    public_key: str | bytes, headers: Mapping[str, str], body: bytes, *, now: int, tolerance: int = TOLERANCE_S
) -> bool:
    """True when the headers carry a valid ``v1a`` signature over ``body`` by this key, made recently.

    What a receiver runs (headers looked up case-insensitively by the caller's mapping).

    Args:
        public_key: ``whpk_...`` text or the 32 raw bytes.
        headers: the request's headers.
        body: the raw request body, exactly as received.
        now: the receiver's clock, Unix seconds.
        tolerance: how far ``webhook-timestamp`` may be from ``now``.
    """
    if isinstance(public_key, str):
        try:
            public_key = base64.b64decode(public_key.removeprefix("whpk_"), validate=True)
        except (binascii.Error, ValueError):
            return False
    try:
        verifier = Ed25519PublicKey.from_public_bytes(public_key)
        webhook_id = headers["webhook-id"]
        timestamp = int(headers["webhook-timestamp"])
        presented = headers["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    content = signed_content(webhook_id, timestamp, body)
    for item in presented:
        scheme, _, encoded = item.partition(",")
        if not hmac.compare_digest(scheme, SCHEME):
            continue
        try:
            verifier.verify(base64.b64decode(encoded, validate=True), content)
        except (InvalidSignature, binascii.Error, ValueError):
            continue
        return True
    return False


def load_webhook_key(path: Path) -> WebhookKey:
    """Read Jigsaw's webhook key from a file (``whsk_...`` or a ``jigsaw keys`` JSON private file).

    Raises:
        ConfigError: the file is unreadable, readable by other users, or malformed.
    """
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{path} is readable by other users: chmod 600 it")
        text = path.read_text(encoding="utf-8").strip()
        if text.startswith("{"):
            seed = base64.b64decode(str(json.loads(text)["private_key"]), validate=True)
        else:
            seed = base64.b64decode(text.removeprefix("whsk_"), validate=True)
        return WebhookKey(Ed25519PrivateKey.from_private_bytes(seed))
    except ConfigError:
        raise
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"cannot read the webhook signing key {path}: {exc}") from exc


def webhook_key_for(signing_key_file: Path | None, data_dir: Path) -> WebhookKey:
    """The webhook key the settings name; without one, a generated key kept in the data directory.

    Without ``JIGSAW_SIGNING_KEY_FILE`` a key is generated (with a warning) and
    written to ``<data_dir>/webhook-signing-key`` (0600), so the gateway that
    publishes the key and the dispatcher that signs with it agree, and a restart
    does not silently change the key receivers have pinned. If the data
    directory cannot be written the key is ephemeral: it lives as long as the process.
    """
    if signing_key_file is not None:
        return load_webhook_key(signing_key_file)
    path = data_dir / "webhook-signing-key"
    if path.exists():
        return load_webhook_key(path)
    key = WebhookKey.generate()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(key.secret_text() + "\n")
        os.link(tmp, path)  # atomic, and fails if another process of this box made one first
    except FileExistsError:
        return load_webhook_key(path)
    except OSError as exc:
        _log.warning(
            "webhook_key_ephemeral",
            hint="set JIGSAW_SIGNING_KEY_FILE; this key dies with the process",
            error=str(exc),
            key_id=key.key_id,
        )
        return dataclasses.replace(key, ephemeral=True)
    finally:
        tmp.unlink(missing_ok=True)
    _log.warning(
        "webhook_key_generated",
        path=str(path),
        key_id=key.key_id,
        hint="set JIGSAW_SIGNING_KEY_FILE to a key of your own in production",
    )
    return key
