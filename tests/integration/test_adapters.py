"""The agency adapters against the real gateway (create_app, real HTTP on 127.0.0.1), on the embedded log and Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from adapters import ADAPTERS, prepare, read_export
from broker import topics
from broker.cli import main
from broker.client import JigsawClient
from broker.envelope.keys import KeyStore
from broker.envelope.testing import SampleKeys, sample_directory
from broker.gateway.app import create_app
from broker.gateway.auth import Credentials
from broker.gateway.keys import CLOCK
from broker.log import EmbeddedLog, Log
from broker.log.namespace import NamespacedLog
from broker.model import Event
from broker.settings import Settings
from broker.validation import event_of
from tests.conftest import unique_name
from tests.unit.adapters.family import EXAMPLES, EXPORTS, FAMILY_ORGS, NOW, family_keys, write_csv

BACKENDS = ["embedded", pytest.param("kafka", marks=pytest.mark.kafka)]


def open_log(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Log:
    """A fresh (unstarted) log: an embedded file, or a private prefix on the test Kafka broker."""
    if backend == "embedded":
        return EmbeddedLog(tmp_path / "log.db")
    from broker.log.kafka import KafkaLog

    bootstrap: str = request.getfixturevalue("kafka_bootstrap")
    return NamespacedLog(KafkaLog(bootstrap, client_id="jigsaw-adapter-tests"), unique_name("adapters") + ".")


@dataclasses.dataclass
class FamilyGateway:
    """A running gateway for the family's organisations, and what a test needs to use it."""

    base_url: str
    log: Log
    keys: SampleKeys
    store: KeyStore
    tokens: dict[str, str]
    session: aiohttp.ClientSession
    tmp_path: Path

    def client(self, org_id: str) -> JigsawClient:
        """A client signed in as the organisation, signing with its key."""
        return JigsawClient(self.base_url, self.tokens[org_id], key=self.keys.signing[org_id], session=self.session)

    def key_file(self, org_id: str) -> Path:
        """The organisation's private key file (as ``jigsaw keys new`` writes it)."""
        return self.store.private_path(self.keys.records[org_id].key_id)

    def token_file(self, org_id: str) -> Path:
        """A file holding the organisation's bearer token."""
        path = self.tmp_path / f"{org_id}.token"
        path.write_text(self.tokens[org_id] + "\n", encoding="utf-8")
        return path

    async def events(self) -> list[Event]:
        """Every event the agencies' adapters sent that was accepted into the log so far."""
        found: list[Event] = []
        for topic in (topics.INPUT,):
            offset = 0
            while records := await self.log.read(topic, offset, limit=1000):
                found += [event_of(r.value) for r in records if r.value is not None and topics.is_event(r)]
                offset = records[-1].offset + 1
        return [e for e in found if e.event_type != "directory.organisation"]  # not the gateway's own set-up


@contextlib.asynccontextmanager
async def family_gateway(
    tmp_path: Path, log: Log | None = None, *, clock: Callable[[], dt.datetime] | None = None
) -> AsyncIterator[FamilyGateway]:
    """The real gateway app on an ephemeral port of 127.0.0.1, the family's public keys registered."""
    keys = family_keys()
    store = KeyStore(tmp_path / "keys", recheck_seconds=0)
    for org_id, record in keys.records.items():
        store.save(record, keys.signing[org_id])
    tokens = {org_id: f"token-{org_id.lower()}" for org_id in keys.records}
    credentials = Credentials.from_tokens([(token, org_id, "publisher") for org_id, token in tokens.items()])
    settings = Settings(data_dir=tmp_path, keys_dir=tmp_path / "keys", max_batch=50)
    log = log or EmbeddedLog(tmp_path / "log.db")
    options: dict[str, Any] = {"clock": clock} if clock is not None else {}
    app = create_app(settings, log, keys=store, credentials=credentials, roles=(), **options)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as session:
            gateway = FamilyGateway(f"http://{host}:{port}", log, keys, store, tokens, session, tmp_path)
            # The partnership lists the family's organisations first: events naming others are refused.
            orgs = {**FAMILY_ORGS, "HV-BRADFORD-NORTH": "health_visiting", "SCHOOL-107300": "school"}
            directory = sample_directory(keys, at=app[CLOCK](), orgs=orgs)
            for result in await gateway.client("PARTNERSHIP-BRADFORD").send_batch(directory):
                assert result.status in (200, 202), result.body
            yield gateway
    finally:
        await runner.cleanup()


@pytest.fixture(autouse=True)
def _leave_logging_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command configures process-wide logging onto the real stderr; tests keep pytest's capture intact."""
    monkeypatch.setattr("broker.commands.adapter.configure_logging", lambda *args, **kwargs: None)


async def _jigsaw(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]]]:
    """Run ``jigsaw`` in a worker thread (it runs its own event loop); the exit code and stdout's JSON lines."""
    code = await asyncio.to_thread(main, list(argv))
    return code, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _send_args(gw: FamilyGateway, agency: str, org_id: str, path: Path | None, *extra: str) -> list[str]:
    key, token = str(gw.key_file(org_id)), str(gw.token_file(org_id))
    target = [str(path)] if path is not None else []
    return ["adapter", agency, *target, "--gateway", gw.base_url, "--key", key, "--token-file", token, *extra]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_every_example_export_goes_through_the_gateway_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each example CSV is accepted in full; its JSON twin and a re-run are already sent; the log holds each once."""
    expected: set[str] = set()
    async with family_gateway(tmp_path, open_log(backend, tmp_path, request)) as gw:
        for export in EXPORTS:
            key = family_keys().signing[export.org_id]
            for path in export.files:
                preparation = prepare(ADAPTERS[export.agency], read_export(path), key, now=NOW)
                expected |= {p.envelope.event_id for p in preparation.events}
            runs = [(name, "accepted") for name in export.csv] + [
                (export.json, "already_sent"),
                (export.csv[0], "already_sent"),
            ]
            for name, outcome in runs:
                args = _send_args(gw, export.agency, export.org_id, EXAMPLES / name, "--batch", "2")
                code, lines = await _jigsaw(capsys, *args)
                summary = lines[-1]
                assert code == 0 and summary["kind"] == "summary" and summary["refused_rows"] == 0, lines
                assert summary[outcome] == summary["events"] > 0 and summary["failed"] == 0, (name, summary)
    events = await gw.events()
    assert sorted(e.event_id for e in events) == sorted(expected)
    assert {e.source for e in events} == {export.org_id for export in EXPORTS}


async def test_bad_rows_are_refused_by_number_and_good_rows_still_reach_the_gateway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A row refused locally and a row the gateway refuses (changed content, same record) are reported; the rest go."""
    header = "incident_ref,version,occurred_at,victim_nhs_number,dash_risk,summary"
    async with family_gateway(tmp_path) as gw:
        first = write_csv(tmp_path / "a.csv", header, "WYP-1,1,2025-03-08 22:40,9994120018,High,Pushed")
        code, _ = await _jigsaw(capsys, *_send_args(gw, "police", "POLICE-WYP", first))
        assert code == 0
        second = write_csv(
            tmp_path / "b.csv",
            header,
            "WYP-2,1,2025-03-09 10:00,9994120018,Medium,Threats",  # 2: new
            "WYP-3,1,2025-03-09 11:00,9994120019,Medium,Bad NHS number",  # 3: refused here
            "WYP-1,1,2025-03-08 22:40,9994120018,High,Pushed and kicked",  # 4: changed without a new version
            "WYP-1,2,2025-03-08 22:40,9994120018,High,Pushed and kicked",  # 5: the correction, as version 2
            "WYP-1,1,2025-03-08 22:40,9994120018,High,Pushed",  # 6 repeats row 4's record: refused as conflicting
        )
        code, lines = await _jigsaw(capsys, *_send_args(gw, "police", "POLICE-WYP", second, "--batch", "1"))
        events = await gw.events()
    refused = {line["row"]: line["error"] for line in lines if line["kind"] == "refused"}
    assert code == 1
    assert refused == {3: "invalid_nhs_number", 4: "duplicate_event", 6: "conflicting_record"}
    assert lines[-1]["accepted"] == 2 and lines[-1]["refused_rows"] == 3
    summaries = sorted(e.data["summary"] for e in events)
    assert summaries == ["Pushed", "Pushed and kicked", "Threats"]


async def test_watch_mode_files_each_dropped_export_with_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Dropped exports are sent once and moved to done/ or failed/ with a JSON report beside them."""
    drop = tmp_path / "drop"
    drop.mkdir()
    shutil.copy(EXAMPLES / "gp-b83001.csv", drop / "moor-lane-2026-08-05.csv")
    (drop / "moor-lane-2026-08-06.csv").write_text(
        "record_type,patient_nhs_number,code,entry_id,entry_date\ncoded_entry,9994120018,0000,E-9,2026-08-05\n"
    )
    async with family_gateway(tmp_path) as gw:
        args = _send_args(gw, "gp", "GP-B83001", None, "--watch", str(drop), "--settle", "0", "--once")
        code, lines = await _jigsaw(capsys, *args)
        events = await gw.events()
    assert code == 1
    assert lines[-1] == {
        "kind": "watch",
        "polls": 1,
        "done": ["moor-lane-2026-08-05.csv"],
        "failed": ["moor-lane-2026-08-06.csv"],
        "retried": [],
    }
    done = json.loads((drop / "done" / "moor-lane-2026-08-05.csv.report.json").read_text())
    assert (done["accepted"], done["refused"]) == (4, [])
    failed = json.loads((drop / "failed" / "moor-lane-2026-08-06.csv.report.json").read_text())
    assert [(r["row"], r["error"]) for r in failed["refused"]] == [(2, "unknown_code")]
    assert len(events) == 4 and not [p for p in drop.iterdir() if p.is_file()]


def test_sigterm_stops_a_watching_adapter_cleanly(tmp_path: Path) -> None:
    """A watching ``jigsaw adapter`` process told to stop with SIGTERM exits 0 and says what it did."""
    keys = family_keys()
    store = KeyStore(tmp_path / "keys")
    store.save(keys.records["POLICE-WYP"], keys.signing["POLICE-WYP"])
    token = tmp_path / "token"
    token.write_text("token-police-wyp\n")
    drop = tmp_path / "drop"
    drop.mkdir()
    argv = [sys.executable, "-m", "broker", "adapter", "police", "--watch", str(drop), "--interval", "60"]
    argv += ["--gateway", "http://127.0.0.1:9", "--key", str(store.private_path(keys.records["POLICE-WYP"].key_id))]
    argv += ["--token-file", str(token)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as proc:
        try:
            out, err = proc.communicate(timeout=3)
            pytest.fail(f"the watcher exited on its own ({proc.returncode}): {err}")
        except subprocess.TimeoutExpired:
            pass
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[-1]) == {"kind": "watch", "polls": 1, "done": [], "failed": [], "retried": []}
