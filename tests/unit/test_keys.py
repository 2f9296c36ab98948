"""The key registry: one org per key, validity in time, files on disk."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest

from broker.envelope.keys import KeyRegistry, KeyStore, load_signing_key, new_key
from broker.errors import ConfigError

T0 = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)


def test_validity_window_is_half_open() -> None:
    """A key is valid from valid_from up to, not including, revoked_at."""
    record, _ = new_key("GP-B83001", "gp_practice", valid_from=T0, seed=bytes(32))
    revoked = dataclasses.replace(record, revoked_at=T0 + dt.timedelta(days=10))
    assert not revoked.valid_at(T0 - dt.timedelta(seconds=1))
    assert revoked.valid_at(T0)
    assert revoked.valid_at(T0 + dt.timedelta(days=9))
    assert not revoked.valid_at(T0 + dt.timedelta(days=10))


def test_registry_answers_history_questions() -> None:
    """key_at answers 'was this key valid at T': a later revocation does not undo the past."""
    record, _ = new_key("GP-B83001", "gp_practice", valid_from=T0, seed=bytes(32))
    registry = KeyRegistry([dataclasses.replace(record, revoked_at=T0 + dt.timedelta(days=10))])
    assert registry.key_at(record.key_id, T0 + dt.timedelta(days=1)) is not None
    assert registry.key_at(record.key_id, T0 + dt.timedelta(days=11)) is None
    assert registry.key_at("nope", T0) is None
    assert registry.for_org("GP-B83001")[0].key_id == record.key_id


def test_key_ids_name_the_org_and_are_deterministic_for_a_seed() -> None:
    """The key id is <org>.<12 hex of the public key hash>, stable for a seed."""
    a, _ = new_key("POLICE-WYP", "police", valid_from=T0, seed=bytes(32))
    b, _ = new_key("POLICE-WYP", "police", valid_from=T0, seed=bytes(32))
    assert (
        a.key_id == b.key_id
        and a.key_id.startswith("POLICE-WYP.")
        and len(a.key_id) == len("POLICE-WYP.") + 12
    )


@pytest.mark.parametrize(("org", "kind"), [("bad org", "police"), ("../x", "police"), ("GP-1", "wizard")])
def test_new_key_refuses_bad_org_ids_and_kinds(org: str, kind: str) -> None:
    """Org ids must be safe names and kinds must be known."""
    with pytest.raises(ConfigError):
        new_key(org, kind, valid_from=T0)


def test_store_writes_public_records_and_private_files_0600(tmp_path: Path) -> None:
    """The public record is readable; the private file is 0600 in a 0700 directory and loads back."""
    store = KeyStore(tmp_path / "keys")
    record, signing = new_key("CSC-BRADFORD", "childrens_social_care", valid_from=T0)
    store.save(record, signing)
    private = store.private_path(record.key_id)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(private.parent.stat().st_mode) == 0o700
    loaded = load_signing_key(private)
    assert loaded.public_key == record.public_key and loaded.org_id == "CSC-BRADFORD"
    assert store.load().get(record.key_id) == record
    assert "private_key" not in (tmp_path / "keys" / f"{record.key_id}.json").read_text()


def test_private_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    """A private key file with group or other permissions is refused."""
    store = KeyStore(tmp_path)
    record, signing = new_key("CSC-BRADFORD", "childrens_social_care", valid_from=T0)
    store.save(record, signing)
    os.chmod(store.private_path(record.key_id), 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_signing_key(store.private_path(record.key_id))


def test_revoke_and_reload(tmp_path: Path) -> None:
    """A revocation is written to disk and seen by a store re-reading the directory."""
    store = KeyStore(tmp_path, recheck_seconds=0)
    record, signing = new_key("POLICE-WYP", "police", valid_from=T0)
    store.save(record, signing)
    assert store.current().get(record.key_id).revoked_at is None  # type: ignore[union-attr]
    KeyStore(tmp_path).revoke(record.key_id, T0 + dt.timedelta(days=1))
    assert store.current().get(record.key_id).revoked_at == T0 + dt.timedelta(days=1)  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="already revoked"):
        store.revoke(record.key_id, T0)
    with pytest.raises(ConfigError, match="no key"):
        store.revoke("POLICE-WYP.000000000000", T0)


def test_a_malformed_record_keeps_the_last_good_registry(tmp_path: Path) -> None:
    """A broken file makes load() fail loudly but current() keeps serving the last good registry."""
    store = KeyStore(tmp_path, recheck_seconds=0)
    record, _ = new_key("POLICE-WYP", "police", valid_from=T0)
    store.save(record)
    assert len(store.current()) == 1
    (tmp_path / "broken.json").write_text(json.dumps({"key_id": "x"}))
    with pytest.raises(ConfigError):
        store.load()
    assert len(store.current()) == 1


def test_signing_key_repr_hides_the_private_key() -> None:
    """repr() of a signing key never shows key material."""
    _, signing = new_key("POLICE-WYP", "police", valid_from=T0)
    assert "private" not in repr(signing)


def test_duplicate_key_ids_are_refused() -> None:
    """A registry with the same key id twice is a configuration error."""
    record, _ = new_key("POLICE-WYP", "police", valid_from=T0, seed=bytes(32))
    with pytest.raises(ConfigError):
        KeyRegistry([record, record])
