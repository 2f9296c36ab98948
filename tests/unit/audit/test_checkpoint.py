"""Checkpoints: signed by Jigsaw's key, round-tripped through the log, and Jigsaw's public key file."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from broker.audit.checkpoint import (
    Checkpoint,
    checkpoint_key_id,
    checkpoint_valid,
    decode_checkpoint,
    encode_checkpoint,
    load_public_key,
    public_key_line,
    sign_checkpoint,
)
from broker.errors import ConfigError
from broker.log.base import Record

AT = dt.datetime(2022, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
SEED = bytes(range(32))


def _key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(SEED)


def _checkpoint() -> Checkpoint:
    ends = (("jigsaw.notifications", 0, 12), ("jigsaw.acks", 0, 3))
    return sign_checkpoint(Checkpoint("jigsaw.events.police", 0, 99, b"\x07" * 32, AT, ends, ""), _key())


def test_a_signed_checkpoint_verifies_with_the_public_key() -> None:
    """The key that signed it verifies it, and the key id names that key."""
    cp = _checkpoint()
    raw = _key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert cp.key_id == checkpoint_key_id(raw)
    assert checkpoint_valid(cp, _key().public_key())


@pytest.mark.parametrize(
    "change",
    [
        {"offset": 100},
        {"partition": 1},
        {"topic": "jigsaw.events.gp_practice"},
        {"chain": b"\x08" * 32},
        {"at": AT + dt.timedelta(milliseconds=1)},
        {"ends": (("jigsaw.notifications", 0, 11), ("jigsaw.acks", 0, 3))},
    ],
)
def test_any_change_to_a_checkpoint_breaks_its_signature(change: dict[str, object]) -> None:
    """Every field is covered by the signature."""
    assert not checkpoint_valid(dataclasses.replace(_checkpoint(), **change), _key().public_key())  # type: ignore[arg-type]


def test_another_key_does_not_verify_it() -> None:
    """A checkpoint signed by some other key is not Jigsaw's."""
    assert not checkpoint_valid(_checkpoint(), Ed25519PrivateKey.generate().public_key())


def test_a_checkpoint_round_trips_through_a_log_record() -> None:
    """encode_checkpoint and decode_checkpoint are inverses, and the record is keyed by topic:partition."""
    cp = _checkpoint()
    key, value, headers = encode_checkpoint(cp)
    assert key == b"jigsaw.events.police:0"
    back = decode_checkpoint(Record("jigsaw.checkpoints", 0, 0, key, value, headers, 0))
    assert back == cp and checkpoint_valid(back, _key().public_key())


@pytest.mark.parametrize("value", [b"not json", b"[]", b'{"topic": "x"}', None])
def test_a_malformed_checkpoint_record_is_a_value_error(value: bytes | None) -> None:
    """Damaged checkpoint records are refused with ValueError, never a crash."""
    with pytest.raises(ValueError):
        decode_checkpoint(Record("jigsaw.checkpoints", 0, 0, b"k", value, (), 0))


def test_the_signed_bytes_cannot_be_mistaken_for_a_webhook_signature() -> None:
    """Checkpoint bytes start with a binary length, webhook content with a UUID: the same key can sign both."""
    assert _checkpoint().signed_bytes()[:8] == (20).to_bytes(8, "big")


def test_the_public_key_file_reads_back_as_whpk_or_pem(tmp_path: Path) -> None:
    """Jigsaw's public key is read from its whpk_ line or from a PEM file."""
    line = tmp_path / "jigsaw.pub"
    line.write_text(public_key_line(_key()) + "\n")
    pem = tmp_path / "jigsaw.pem"
    pem.write_bytes(_key().public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    for path in (line, pem):
        assert checkpoint_valid(_checkpoint(), load_public_key(path))


def test_a_missing_or_malformed_public_key_file_is_a_config_error(tmp_path: Path) -> None:
    """The auditor is told which file could not be read."""
    bad = tmp_path / "bad.pub"
    bad.write_text("whpk_not-base64!\n")
    for path in (bad, tmp_path / "absent.pub"):
        with pytest.raises(ConfigError, match=path.name):
            load_public_key(path)
