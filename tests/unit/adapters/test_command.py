"""``jigsaw adapter`` on the command line: dry runs, per-row refusals and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from broker.cli import main
from broker.envelope.keys import KeyStore
from tests.unit.adapters.family import EXAMPLES, family_keys, write_csv


@pytest.fixture(autouse=True)
def _leave_logging_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command configures process-wide logging onto the real stderr; tests keep pytest's capture intact."""
    monkeypatch.setattr("broker.commands.adapter.configure_logging", lambda *args, **kwargs: None)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """The police force's private key, as ``jigsaw keys new`` writes it."""
    keys = family_keys()
    store = KeyStore(tmp_path / "keys")
    store.save(keys.records["POLICE-WYP"], keys.signing["POLICE-WYP"])
    return store.private_path(keys.records["POLICE-WYP"].key_id)


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_dry_run_prints_one_line_per_event_and_a_summary(key_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--dry-run sends nothing, prints each event with its row, record and id, then a summary; exit 0."""
    code = main(["adapter", "police", str(EXAMPLES / "police-wyp.csv"), "--key", str(key_file), "--dry-run"])
    lines = _lines(capsys.readouterr().out)
    assert code == 0
    assert [(line["kind"], line.get("row")) for line in lines] == [("event", 2), ("event", 3), ("summary", None)]
    first = lines[0]
    assert first["record"] == "incident:WYP-25-018842@1" and first["event_type"] == "police.domestic_abuse_incident"
    assert first["data"]["risk_level"] == "medium"  # type: ignore[index]
    assert lines[1]["data"]["risk_level"] == "high"  # type: ignore[index]  # DASH 15 graded medium
    assert lines[-1] == {
        "kind": "summary",
        "agency": "police",
        "source": "POLICE-WYP",
        "file": str(EXAMPLES / "police-wyp.csv"),
        "rows": 2,
        "events": 2,
        "refused_rows": 0,
        "repeated_in_file": 0,
        "would_send": 2,
        "dry_run": True,
    }


def test_a_refused_row_is_reported_and_the_exit_code_is_1(
    key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad row gives a refused line with its number and reason, the good row still appears; exit 1."""
    path = write_csv(
        tmp_path / "x.csv",
        "incident_ref,occurred_at,victim_nhs_number,dash_risk,summary",
        "I-1,2025-03-08,9994120018,Severe,s",
        "I-2,2025-03-08,9994120018,High,s",
    )
    code = main(["adapter", "police", str(path), "--key", str(key_file), "--dry-run"])
    lines = _lines(capsys.readouterr().out)
    assert code == 1
    assert [(line["kind"], line.get("row"), line.get("error")) for line in lines] == [
        ("event", 3, None),
        ("refused", 2, "unknown_code"),
        ("summary", None, None),
    ]


@pytest.mark.parametrize(
    "extra",
    [
        [],  # neither --dry-run nor --gateway/--token-file
        ["--dry-run", "--watch", "."],  # FILE and --watch
        ["--gateway", "http://127.0.0.1:1", "--token-file", "/nonexistent/token"],
    ],
)
def test_usage_errors_exit_2(key_file: Path, extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Missing sending options, FILE with --watch, or an unreadable token file are usage errors (exit 2)."""
    code = main(["adapter", "police", str(EXAMPLES / "police-wyp.csv"), "--key", str(key_file), *extra])
    assert code == 2
    assert capsys.readouterr().err.startswith("jigsaw adapter: ")


def test_a_key_of_the_wrong_kind_or_a_missing_file_exits_2(
    key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A police key for the GP adapter, or an export that does not exist, is a usage error."""
    assert main(["adapter", "gp", str(EXAMPLES / "gp-b83001.csv"), "--key", str(key_file), "--dry-run"]) == 2
    assert "gp_practice" in capsys.readouterr().err
    assert main(["adapter", "police", str(tmp_path / "none.csv"), "--key", str(key_file), "--dry-run"]) == 2
    assert "cannot read" in capsys.readouterr().err
