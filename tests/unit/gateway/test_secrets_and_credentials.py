"""Secret files must be private; credentials are added and revoked on a running service with no restart."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from broker.errors import ConfigError, Unauthenticated
from broker.gateway.auth import CredentialsFile, add_credential, list_credentials, revoke_credential
from broker.settings import Settings


def _bump(path: Path) -> None:
    """Make sure a rewrite is seen even on a file system with coarse modification times."""
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))


@pytest.mark.parametrize("variable", ["JIGSAW_CREDENTIALS_FILE", "JIGSAW_SIGNING_KEY_FILE", "JIGSAW_TLS_KEY_FILE"])
def test_world_readable_secret_file_is_refused_at_start(tmp_path: Path, variable: str) -> None:
    """A secret file readable by group or others is refused, naming the file and the chmod to run."""
    secret = tmp_path / "secret"
    secret.write_text("{}")
    secret.chmod(0o644)
    env = {variable: str(secret)}
    if variable == "JIGSAW_TLS_KEY_FILE":
        (tmp_path / "cert.pem").write_text("")
        env["JIGSAW_TLS_CERT_FILE"] = str(tmp_path / "cert.pem")
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert f"chmod 600 {secret}" in caught.value.message and variable in caught.value.message
    secret.chmod(0o600)
    Settings.from_env(env)


def test_tls_settings_come_in_pairs(tmp_path: Path) -> None:
    """A certificate without its key, or a client CA without HTTPS, is a configuration error."""
    cert = tmp_path / "cert.pem"
    cert.write_text("")
    with pytest.raises(ConfigError, match="both JIGSAW_TLS_CERT_FILE and JIGSAW_TLS_KEY_FILE"):
        Settings.from_env({"JIGSAW_TLS_CERT_FILE": str(cert)})
    with pytest.raises(ConfigError, match="needs HTTPS"):
        Settings.from_env({"JIGSAW_TLS_CLIENT_CA_FILE": str(cert)})


def test_revoked_credential_stops_working_without_restart(tmp_path: Path) -> None:
    """A credential added to the file works at once; revoked, it is refused, with no new process."""
    path = tmp_path / "credentials.json"
    first = add_credential(path, "POLICE-WYP", "publisher", "niche")
    live = CredentialsFile(path, recheck_seconds=0)
    assert live.authenticate(f"Bearer {first}").org_id == "POLICE-WYP"
    second = add_credential(path, "GP-B83001", "recipient")
    _bump(path)
    assert live.authenticate(f"Bearer {second}").role == "recipient"
    [police] = [c for c in list_credentials(path) if c["org_id"] == "POLICE-WYP"]
    assert revoke_credential(path, police["id"])["org_id"] == "POLICE-WYP"
    _bump(path)
    with pytest.raises(Unauthenticated):
        live.authenticate(f"Bearer {first}")
    assert len(live) == 1 and oct(path.stat().st_mode & 0o777) == "0o600"


def test_reload_waits_for_the_recheck_interval_or_an_explicit_reload(tmp_path: Path) -> None:
    """Between checks the file is not re-read; reload() (SIGHUP) re-reads it at once."""
    path = tmp_path / "credentials.json"
    add_credential(path, "POLICE-WYP", "publisher")
    live = CredentialsFile(path, recheck_seconds=3600)
    token = add_credential(path, "GP-B83001", "publisher")
    _bump(path)
    with pytest.raises(Unauthenticated):
        live.authenticate(f"Bearer {token}")
    assert live.reload() is True
    assert live.authenticate(f"Bearer {token}").org_id == "GP-B83001"


def test_a_broken_credentials_file_keeps_the_last_good_set(tmp_path: Path) -> None:
    """A half-edited file does not lock everyone out: the last good credentials stay in force."""
    path = tmp_path / "credentials.json"
    token = add_credential(path, "POLICE-WYP", "publisher")
    live = CredentialsFile(path, recheck_seconds=0)
    path.write_text("{not json")
    _bump(path)
    assert live.authenticate(f"Bearer {token}").org_id == "POLICE-WYP"


def test_revoking_an_ambiguous_or_unknown_id_is_refused(tmp_path: Path) -> None:
    """A credential id must name exactly one credential, and at least 8 hex digits of it."""
    path = tmp_path / "credentials.json"
    add_credential(path, "POLICE-WYP", "publisher")
    with pytest.raises(ConfigError, match="no credential"):
        revoke_credential(path, "abc")


def test_keys_commands_list_and_revoke_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`jigsaw keys credentials` lists ids (never hashes); `revoke-credential ID` removes that one."""
    from broker.cli import main

    monkeypatch.setenv("JIGSAW_DATA_DIR", str(tmp_path))
    path = tmp_path / "credentials.json"
    assert main(["keys", "credential", "POLICE-WYP", "--role", "publisher", "--file", str(path)]) == 0
    token = capsys.readouterr().out.strip()
    assert main(["keys", "credentials", "--file", str(path)]) == 0
    listing = capsys.readouterr().out
    credential_id = listing.split("\t")[0]
    assert "POLICE-WYP\tpublisher" in listing and len(credential_id) == 12
    assert path.read_text().count(credential_id) == 1 and token not in path.read_text()
    assert main(["keys", "revoke-credential", credential_id, "--file", str(path)]) == 0
    assert "revoked" in capsys.readouterr().out
    assert list_credentials(path) == []
