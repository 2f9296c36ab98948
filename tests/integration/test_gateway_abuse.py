"""Issue 11's abuse attacks on a running gateway, each repeated and shown to do no harm."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.flood import measure
from broker import topics
from broker.gateway.auth import CredentialsFile, add_credential, list_credentials, revoke_credential
from broker.gateway.guard import GUARD
from broker.log import EmbeddedLog
from tests.integration.serve_support import TOKENS, Served, serving

MIB = 1024 * 1024


def _auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role][0]}"}


async def _records(log: EmbeddedLog, topic: str) -> list[dict[str, Any]]:
    out = []
    for record in await log.read(topic, 0, limit=10_000):
        assert record.value is not None
        out.append(json.loads(record.value))
    return out


async def _raw(served: Served) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", served.site.port)


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> float:
    """Seconds until the server closes the connection (reading whatever it sends first)."""
    started = time.monotonic()
    async with asyncio.timeout(seconds):
        while await reader.read(4096):
            pass
    return time.monotonic() - started


async def test_anonymous_flood_writes_under_1mib(tmp_path: Path) -> None:
    """5,000 anonymous requests, with the rate limit lifted, append under 1 MiB to the log (one summary)."""
    figures = await measure(tmp_path, requests=5000, concurrency=20, limits=False)
    assert sum(figures.statuses.values()) == 5000 and 500 not in figures.statuses
    assert figures.record_bytes < MIB and figures.file_growth < MIB, figures
    assert figures.records <= 5 and figures.record_bytes < 8 * 1024  # one summary per address per 60 s


async def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    """Past its burst a client address gets 429 rate_limited with Retry-After; a credential has its own bucket."""
    async with serving(tmp_path, rate_per_address=0.5, rate_burst_per_address=2) as served:
        async with aiohttp.ClientSession() as session:
            statuses = []
            for _ in range(3):
                async with session.get(served.url + "/healthz") as response:
                    statuses.append(response.status)
                    if response.status == 429:
                        assert response.headers["Retry-After"] == "2"
                        assert (await response.json())["error"] == "rate_limited"
        assert statuses == [200, 200, 429]
    async with serving(tmp_path / "2", rate_per_credential=0.5, rate_burst_per_credential=1) as served:
        async with aiohttp.ClientSession() as session:
            got = []
            for role in ("admin", "admin", "recipient"):
                async with session.get(served.url + "/healthz", headers=_auth(role)) as response:
                    got.append(response.status)
        assert got == [200, 429, 200]
        await served.app[GUARD].flush()
        [summary] = await _records(served.log, topics.REJECTED)
        assert summary["caller"] == "PARTNERSHIP-BRADFORD" and summary["codes"] == {"rate_limited": 1}


async def test_slow_loris_headers_are_closed(tmp_path: Path) -> None:
    """A connection that trickles its headers is closed at the header deadline (shortened here to 1 s)."""
    async with serving(tmp_path, http_header_timeout=1.0) as served:
        reader, writer = await _raw(served)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")

        async def trickle() -> None:
            for i in range(100):
                writer.write(f"X-Slow-{i}: a\r\n".encode())
                await asyncio.sleep(0.1)

        dripping = asyncio.create_task(trickle())
        try:
            took = await _closed_within(reader, 10.0)
        finally:
            dripping.cancel()
            writer.close()
        assert 0.5 < took < 3.0, took


async def test_stalled_body_is_closed_and_recorded(tmp_path: Path) -> None:
    """A publisher that stops sending its body is cut off at the body deadline, and the refusal is recorded."""
    async with serving(tmp_path, http_body_timeout=1.0) as served:
        reader, writer = await _raw(served)
        writer.write(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer token-police\r\n"
            b"Content-Type: application/vnd.jigsaw.envelope+avro\r\nContent-Length: 1000\r\n\r\n" + b"\x00" * 10
        )
        took = await _closed_within(reader, 10.0)
        writer.close()
        assert took < 4.0
        [refusal] = await _records(served.log, topics.REJECTED)
    assert refusal["error"] == "request_timeout" and refusal["caller"] == "POLICE-WYP"
    assert refusal["client"] == "127.0.0.1"


async def test_client_dropping_mid_body_is_a_4xx_not_a_500(tmp_path: Path) -> None:
    """A client that goes away mid-body is an incomplete_request refusal; nothing is counted as a 500."""
    async with serving(tmp_path) as served:
        _reader, writer = await _raw(served)
        writer.write(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer token-police\r\n"
            b"Content-Type: application/vnd.jigsaw.envelope+avro\r\nContent-Length: 1000\r\n\r\n" + b"\x00" * 10
        )
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()
        for _ in range(50):
            refusals = await _records(served.log, topics.REJECTED)
            if refusals:
                break
            await asyncio.sleep(0.05)
        async with aiohttp.ClientSession() as session, session.get(served.url + "/metrics") as response:
            metrics = await response.text()
    assert [r["error"] for r in refusals] == ["incomplete_request"]
    assert 'status="500"' not in metrics and 'route="/v1/events",status="400"' in metrics


async def test_connection_cap_per_address(tmp_path: Path) -> None:
    """Past the per-address connection cap a new connection is closed at once; those open still work."""
    async with serving(tmp_path, http_max_connections_per_address=2) as served:
        held = [await _raw(served) for _ in range(2)]
        await asyncio.sleep(0.1)
        reader, writer = await _raw(served)
        assert await _closed_within(reader, 2.0) < 1.0
        writer.close()
        r0, w0 = held[0]
        w0.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await r0.readline()).startswith(b"HTTP/1.1 200")
        assert served.site.refused == 1
        for _, w in held:
            w.close()


async def test_http_parse_errors_are_recorded_bounded(tmp_path: Path) -> None:
    """Garbage instead of HTTP is answered 400 and counted in one summary per address, with no traceback."""
    async with serving(tmp_path) as served:
        for _ in range(3):
            reader, writer = await _raw(served)
            writer.write(b"\x16\x03\x01 NOT HTTP AT ALL\r\n\r\n")
            assert (await reader.read(100)).split(b" ")[1] == b"400"
            writer.close()
        await served.app[GUARD].flush()
        [summary] = await _records(served.log, topics.REJECTED)
    assert summary["codes"] == {"bad_http_request": 3} and summary["client"] == "127.0.0.1"


async def test_refused_reads_are_recorded_with_caller_and_reason(tmp_path: Path) -> None:
    """Every refused inbox or chronology read is recorded once: on jigsaw.access if signed in, else summarised."""
    child = "9434765919"
    async with serving(tmp_path) as served, aiohttp.ClientSession() as session:
        cases = [
            ("/v1/inbox", {}, 401),
            ("/v1/inbox", _auth("publisher"), 403),
            ("/v1/inbox?limit=0", _auth("recipient"), 400),
            ("/v1/inbox/00000000-0000-4000-8000-000000000000", _auth("recipient"), 404),
            ("/v1/children/123/chronology", _auth("recipient"), 422),
            (f"/v1/children/{child}/chronology", _auth("publisher"), 403),
            (f"/v1/children/{child}/chronology", {}, 401),
        ]
        for path, headers, status in cases:
            async with session.get(served.url + path, headers=headers) as response:
                assert response.status == status, (path, await response.text())
        await served.app[GUARD].flush()
        access = await _records(served.log, topics.ACCESS)
        [summary] = await _records(served.log, topics.REJECTED)
    assert summary["count"] == 2 and summary["codes"] == {"unauthenticated": 2}
    assert summary["routes"] == {"/v1/inbox": 1, "/v1/children/{nhs_number}/chronology": 1}
    assert len(access) == 5, access
    refused = [a for a in access if a["action"] == "refused"]
    assert [(a["org_id"], a["status"], a["error"]) for a in refused] == [
        ("POLICE-WYP", 403, "forbidden"),
        ("HV-BRADFORD-NORTH", 400, "invalid_request"),
        ("HV-BRADFORD-NORTH", 422, "invalid_nhs_number"),
    ]
    assert all(a["client"] == "127.0.0.1" and a["message"] for a in refused)
    assert {a.get("outcome") for a in access if a["action"] != "refused"} == {"not_found", "refused"}


async def test_metrics_can_require_a_credential(tmp_path: Path) -> None:
    """With JIGSAW_METRICS_REQUIRE_CREDENTIAL /metrics is 401 anonymous, 403 for a publisher, 200 for an admin."""
    async with serving(tmp_path, metrics_require_credential=True) as served, aiohttp.ClientSession() as session:
        got = []
        for headers in ({}, _auth("publisher"), _auth("admin")):
            async with session.get(served.url + "/metrics", headers=headers) as response:
                got.append(response.status)
    assert got == [401, 403, 200]


async def test_credentials_are_added_and_revoked_on_a_running_gateway(tmp_path: Path) -> None:
    """A credential added to the file works within the recheck; revoked, it is refused, with no restart."""
    path = tmp_path / "credentials.json"
    add_credential(path, "PARTNERSHIP-BRADFORD", "admin")
    async with serving(tmp_path, credentials=CredentialsFile(path, recheck_seconds=0)) as served:
        token = add_credential(path, "HV-BRADFORD-NORTH", "recipient")
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as session:
            async with session.get(served.url + "/v1/inbox", headers=headers) as response:
                assert response.status == 200
            [entry] = [c for c in list_credentials(path) if c["org_id"] == "HV-BRADFORD-NORTH"]
            revoke_credential(path, entry["id"])
            async with session.get(served.url + "/v1/inbox", headers=headers) as response:
                assert response.status == 401
