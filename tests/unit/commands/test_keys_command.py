"""`jigsaw keys`: init makes Jigsaw's own key once; the other actions run before that key exists."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from broker.audit.checkpoint import PUBLIC_KEY_FILE, load_public_key
from broker.cli import main
from broker.delivery.signing import load_webhook_key


@pytest.fixture
def etc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The README's /etc/jigsaw in a temporary directory, named by the environment, with nothing made yet."""
    for name, value in {
        "JIGSAW_DATA_DIR": tmp_path / "data",
        "JIGSAW_KEYS_DIR": tmp_path / "etc" / "keys",
        "JIGSAW_CREDENTIALS_FILE": tmp_path / "etc" / "credentials.json",
        "JIGSAW_SIGNING_KEY_FILE": tmp_path / "etc" / "jigsaw.key",
    }.items():
        monkeypatch.setenv(name, str(value))
    return tmp_path / "etc"


def test_init_makes_a_private_key_0600_and_its_public_key(etc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """init writes a key Jigsaw can load (0600) and the public key replay reads, then names both."""
    assert main(["keys", "init"]) == 0
    key = load_webhook_key(etc / "jigsaw.key")
    assert stat.S_IMODE((etc / "jigsaw.key").stat().st_mode) == 0o600
    public = load_public_key(etc / "keys" / PUBLIC_KEY_FILE)
    assert public.public_bytes_raw() == key.public_bytes
    out = capsys.readouterr().out
    assert key.key_id in out and "whsk_" not in out


def test_init_never_overwrites(etc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A second init refuses and leaves the first key as it was."""
    assert main(["keys", "init"]) == 0
    before = (etc / "jigsaw.key").read_bytes()
    assert main(["keys", "init"]) == 1
    assert "config_invalid" in capsys.readouterr().err
    assert (etc / "jigsaw.key").read_bytes() == before


def test_other_actions_run_before_the_signing_key_exists(etc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """new, list and credential work with JIGSAW_SIGNING_KEY_FILE naming a file not made yet (regression)."""
    assert main(["keys", "new", "POLICE-WYP", "--kind", "police"]) == 0
    assert main(["keys", "credential", "POLICE-WYP", "--role", "publisher"]) == 0
    capsys.readouterr()
    assert main(["keys", "list", "--json"]) == 0
    [record] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["org_id"] == "POLICE-WYP"
    assert not (etc / "jigsaw.key").exists() and (etc / "credentials.json").is_file()
