"""Webhook signatures: Standard Webhooks headers, scheme v1a, Ed25519 with Jigsaw's key."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.delivery.signing import (
    WebhookKey,
    load_webhook_key,
    public_key_text,
    sign_headers,
    signed_content,
    verify_webhook,
    webhook_key_for,
)
from broker.errors import ConfigError

KEY = WebhookKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
BODY = b'{"notification_id":"n-1","kind":"alert"}'


def test_headers_follow_standard_webhooks() -> None:
    """The headers are webhook-id, webhook-timestamp and a v1a signature over id.timestamp.body."""
    headers = sign_headers(KEY, "n-1", 1700000000, BODY)
    assert headers["webhook-id"] == "n-1"
    assert headers["webhook-timestamp"] == "1700000000"
    scheme, _, signature = headers["webhook-signature"].partition(",")
    assert scheme == "v1a"
    KEY.private_key.public_key().verify(base64.b64decode(signature), b"n-1.1700000000." + BODY)
    assert signed_content("n-1", 1700000000, BODY) == b"n-1.1700000000." + BODY


def test_signature_is_deterministic_golden_vector() -> None:
    """Ed25519 is deterministic: a fixed key, id, time and body always give these bytes."""
    headers = sign_headers(KEY, "n-1", 1700000000, BODY)
    again = sign_headers(WebhookKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32)))), "n-1", 1700000000, BODY)
    assert headers == again
    assert headers["webhook-signature"] == (
        "v1a,CfxGgZ8QOq07GHcC9j0IGsxB2wRn5RSkg0UsQb0S47m0QnC47r7B+A3SMiuDp/At6jelGSf1QAm0t4V1dIsMCQ=="
    )
    assert public_key_text(KEY.public_bytes) == "whpk_A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="


def test_verify_accepts_the_real_thing() -> None:
    """A receiver holding the public key verifies the headers and body as sent."""
    headers = sign_headers(KEY, "n-1", 1700000000, BODY)
    assert verify_webhook(public_key_text(KEY.public_bytes), headers, BODY, now=1700000010)
    assert verify_webhook(KEY.public_bytes, headers, BODY, now=1700000010)


@pytest.mark.parametrize("change", ["body", "id", "timestamp", "key", "old", "scheme"])
def test_verify_refuses_anything_altered(change: str) -> None:
    """A changed body, id or timestamp, another key, a stale timestamp or another scheme fails."""
    headers = sign_headers(KEY, "n-1", 1700000000, BODY)
    body, now, public = BODY, 1700000000, KEY.public_bytes
    if change == "body":
        body = BODY.replace(b"alert", b"alerT")
    elif change == "id":
        headers["webhook-id"] = "n-2"
    elif change == "timestamp":
        headers["webhook-timestamp"] = "1700000001"
    elif change == "key":
        public = WebhookKey.generate().public_bytes
    elif change == "old":
        now = 1700000000 + 301
    else:
        headers["webhook-signature"] = headers["webhook-signature"].replace("v1a,", "v1,")
    assert not verify_webhook(public, headers, body, now=now)


def test_any_of_several_signatures_may_match() -> None:
    """During a key rotation the header may carry several signatures; one valid one is enough."""
    headers = sign_headers(KEY, "n-1", 1700000000, BODY)
    other = sign_headers(WebhookKey.generate(), "n-1", 1700000000, BODY)
    headers["webhook-signature"] = f"{other['webhook-signature']} {headers['webhook-signature']}"
    assert verify_webhook(KEY.public_bytes, headers, BODY, now=1700000000)


def test_key_file_round_trip(tmp_path: Path) -> None:
    """A whsk_ key file written 0600 loads back as the same key; a world-readable one is refused."""
    path = tmp_path / "key"
    path.write_text(KEY.secret_text())
    os.chmod(path, 0o600)
    assert load_webhook_key(path).public_bytes == KEY.public_bytes
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_webhook_key(path)


def test_without_a_configured_key_one_is_generated_and_kept(tmp_path: Path) -> None:
    """With no key file configured a key is generated in the data dir, 0600, and the same key is found again."""
    first = webhook_key_for(None, tmp_path)
    assert (tmp_path / "webhook-signing-key").stat().st_mode & 0o777 == 0o600
    assert webhook_key_for(None, tmp_path).public_bytes == first.public_bytes
    assert repr(first) == "WebhookKey(ephemeral=False)"  # the key never shows in logs
