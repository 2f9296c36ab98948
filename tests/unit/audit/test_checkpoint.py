"""Jigsaw's public key file: written as a whpk_ line or PEM, read back, and named by its key id."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from broker.audit.checkpoint import checkpoint_key_id, load_public_key, public_key_line
from broker.errors import ConfigError

SEED = bytes(range(32))


def _key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(SEED)


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_the_public_key_file_reads_back_as_whpk_or_pem(tmp_path: Path) -> None:
    """Jigsaw's public key is read from its whpk_ line or from a PEM file."""
    line = tmp_path / "jigsaw.pub"
    line.write_text(public_key_line(_key()) + "\n")
    pem = tmp_path / "jigsaw.pem"
    pem.write_bytes(_key().public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    for path in (line, pem):
        loaded = load_public_key(path).public_bytes(Encoding.Raw, PublicFormat.Raw)
        assert loaded == _raw(_key())


def test_the_key_id_names_the_public_key() -> None:
    """The key id is jigsaw. and the first 12 hex digits of the public key's SHA-256."""
    key_id = checkpoint_key_id(_raw(_key()))
    assert key_id.startswith("jigsaw.") and len(key_id) == len("jigsaw.") + 12
    assert key_id != checkpoint_key_id(_raw(Ed25519PrivateKey.generate()))


def test_a_missing_or_malformed_public_key_file_is_a_config_error(tmp_path: Path) -> None:
    """The auditor is told which file could not be read."""
    bad = tmp_path / "bad.pub"
    bad.write_text("whpk_not-base64!\n")
    for path in (bad, tmp_path / "absent.pub"):
        with pytest.raises(ConfigError, match=path.name):
            load_public_key(path)
