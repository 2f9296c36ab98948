"""The chronology over HTTP (auditors and the child's CSC, each read recorded); a live gateway's log replayed."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from broker import topics
from broker.audit.api import mount_audit
from broker.client import build_envelope
from broker.envelope.batch import ENVELOPE_CONTENT_TYPE
from broker.envelope.keys import KeyStore
from broker.envelope.model import encode_envelope
from broker.envelope.testing import SAMPLE_ORGS, make_keys, publisher_for, sample_data, sample_directory
from broker.gateway.app import create_app
from broker.gateway.auth import Credentials
from broker.log import EmbeddedLog, Record
from broker.routing.service import GROUP
from broker.settings import Settings
from broker.store import SqliteStore
from tests.integration.test_replay import CHILD_1, jigsaw, simulate
from tests.shared import SCENARIOS, require_shared

NOW = dt.datetime(2022, 2, 1, 9, 0, tzinfo=dt.UTC)
CREDENTIALS = Credentials.from_tokens(
    [
        ("t-auditor", "AUDIT-OFFICE", "auditor"),
        ("t-csc", "CSC-BRADFORD", "recipient"),
        ("t-gp", "GP-B83001", "recipient"),
    ]
)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def child1_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """child-1 simulated once, its log kept."""
    require_shared(SCENARIOS)
    log = tmp_path_factory.mktemp("api") / "child-1.db"
    simulate("child-1", log)
    return log


@pytest.fixture
async def client(
    child1_log: Path, tmp_path: Path
) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], EmbeddedLog]]:
    """A bare aiohttp app with only the audit route mounted, over a copy of child-1's log."""
    path = tmp_path / "log.db"
    shutil.copy(child1_log, path)
    log = EmbeddedLog(path)
    await log.start()
    store = SqliteStore(tmp_path / "store.db")
    await store.start()
    app = web.Application()
    mount_audit(app, log=log, store=store, authenticate=CREDENTIALS.authenticate, clock=lambda: NOW)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client, log
    await store.close()
    await log.close()


async def _access(log: EmbeddedLog) -> list[dict[str, object]]:
    records: list[Record] = await log.read(topics.ACCESS, 0, limit=100)
    return [json.loads(r.value or b"") for r in records]


async def test_an_auditor_reads_any_childs_chronology_and_the_read_is_recorded(
    client: tuple[TestClient[web.Request, web.Application], EmbeddedLog],
) -> None:
    """GET /v1/children/{nhs}/chronology with an auditor credential is 200, and ACCESS says who read which child."""
    http, log = client
    response = await http.get(f"/v1/children/{CHILD_1}/chronology", headers=_auth("t-auditor"))
    assert response.status == 200
    doc = await response.json()
    assert doc["nhs_number"] == CHILD_1 and doc["entries"]
    assert doc["integrity"].startswith("Not verified by this request")
    assert response.headers["Cache-Control"] == "no-store"
    [access] = await _access(log)
    assert access == {
        "at": "2022-02-01T09:00:00Z",
        "org_id": "AUDIT-OFFICE",
        "role": "auditor",
        "action": "chronology",
        "nhs_number": CHILD_1,
        "outcome": "allowed",
        "format": "json",
        "entries": len(doc["entries"]),
    }


async def test_the_childs_responsible_csc_may_read_it_and_another_recipient_may_not(
    client: tuple[TestClient[web.Request, web.Application], EmbeddedLog],
) -> None:
    """The CSC that published the child's strategy meeting reads it; the GP is refused; both reads are recorded."""
    http, log = client
    allowed = await http.get(f"/v1/children/{CHILD_1}/chronology?format=csv", headers=_auth("t-csc"))
    assert allowed.status == 200 and allowed.content_type == "text/csv"
    assert (await allowed.text()).startswith("at,what,event_type")
    refused = await http.get(f"/v1/children/{CHILD_1}/chronology", headers=_auth("t-gp"))
    assert refused.status == 403 and (await refused.json())["error"] == "forbidden"
    outcomes = [(a["org_id"], a["outcome"]) for a in await _access(log)]
    assert outcomes == [("CSC-BRADFORD", "allowed"), ("GP-B83001", "refused")]


async def test_the_html_chronology_is_a_page_with_no_scripts_allowed(
    client: tuple[TestClient[web.Request, web.Application], EmbeddedLog],
) -> None:
    """?format=html gives the printable page, served with a CSP that forbids scripts."""
    http, _ = client
    response = await http.get(f"/v1/children/{CHILD_1}/chronology?format=html", headers=_auth("t-auditor"))
    assert response.status == 200 and response.content_type == "text/html"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "<script" not in await response.text()


@pytest.mark.parametrize(
    ("path", "headers", "status", "code"),
    [
        (f"/v1/children/{CHILD_1}/chronology", {}, 401, "unauthenticated"),
        ("/v1/children/9993571432/chronology", _auth("t-auditor"), 422, "invalid_nhs_number"),
        (f"/v1/children/{CHILD_1}/chronology?format=pdf", _auth("t-auditor"), 400, "invalid_request"),
    ],
)
async def test_bad_requests_are_refused_with_a_code(
    client: tuple[TestClient[web.Request, web.Application], EmbeddedLog],
    path: str,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    """No credential, a bad NHS number or an unknown format are JSON errors, and nothing is read."""
    http, log = client
    response = await http.get(path, headers=headers)
    assert response.status == status and (await response.json())["error"] == code
    assert await _access(log) == []


async def _routed(log: EmbeddedLog) -> bool:
    end = await log.end_offset(topics.INPUT)
    return not end or (await log.committed(GROUP, topics.INPUT) or 0) >= end


async def test_a_live_gateways_log_replays_clean_with_the_key_it_publishes(tmp_path: Path) -> None:
    """Events posted to create_app (router role on) and a clean shutdown give a log jigsaw replay verifies."""
    keys = make_keys()
    store = KeyStore(tmp_path / "keys", recheck_seconds=0)
    for record in keys.records.values():
        store.save(record)
    tokens = [(f"t-{org}", org, "publisher") for org in SAMPLE_ORGS] + [("t-auditor", "AUDIT-OFFICE", "auditor")]
    settings = Settings(data_dir=tmp_path, keys_dir=tmp_path / "keys", checkpoint_every=2)
    log = EmbeddedLog(tmp_path / "log.db")
    app = create_app(settings, log, keys=store, credentials=Credentials.from_tokens(tokens), roles=("router",))
    now = dt.datetime.now(dt.UTC)
    async with TestClient(TestServer(app)) as http:
        for entry in sample_directory(keys, at=now):  # the partnership lists the organisations first
            response = await http.post(
                "/v1/events",
                data=encode_envelope(entry),
                headers={**_auth("t-PARTNERSHIP-BRADFORD"), "Content-Type": ENVELOPE_CONTENT_TYPE},
            )
            assert response.status == 202, await response.text()
        for index, event_type in enumerate(
            ["gp.registration", "midwifery.birth_notified", "police.domestic_abuse_incident", "csc.strategy_meeting"]
        ):
            source = publisher_for(event_type)
            env = build_envelope(
                event_type,
                sample_data(event_type),
                source=source,
                key=keys.signing[source],
                occurred_at=now - dt.timedelta(hours=4 - index),
                issued_at=now,
            )
            response = await http.post(
                "/v1/events",
                data=encode_envelope(env),
                headers={**_auth(f"t-{source}"), "Content-Type": ENVELOPE_CONTENT_TYPE},
            )
            assert response.status == 202, await response.text()
        for _ in range(200):
            if await _routed(log):
                break
            await asyncio.sleep(0.05)
        key = await (await http.get("/v1/webhook-key")).json()
        mounted = await http.get(
            f"/v1/children/{sample_data('gp.registration')['person']['nhs_number']}/chronology",
            headers=_auth("t-auditor"),
        )
        assert mounted.status == 200
    public = tmp_path / "jigsaw.pub"
    public.write_text(key["public_key"] + "\n")
    run = jigsaw("replay", "--log", tmp_path / "log.db", "--keys", tmp_path / "keys", "--checkpoint-key", public)
    assert run.code == 0, run.out + run.err
    counts = re.search(r"leaves of (\d+) signed tree heads.*?(\d+) notifications and (\d+) decision", run.out, re.S)
    assert counts is not None and all(int(n) > 0 for n in counts.groups()), run.out
