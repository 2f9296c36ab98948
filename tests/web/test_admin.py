"""The partnership admin's page: directory, delivery status from the ledger, keys and credentials issued and revoked."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from pathlib import Path

import aiohttp

from broker import topics
from broker.client import build_envelope
from broker.delivery.records import DeliveryRecord, encode_delivery
from broker.envelope.batch import ENVELOPE_CONTENT_TYPE
from broker.envelope.keys import KeyStore, load_signing_key
from broker.envelope.model import encode_envelope
from broker.envelope.testing import sample_data
from broker.gateway.app import LOG
from tests.web.support import GP, NOW, SCHOOL, serve_case
from tests.web.test_pages import Browser, _access

POLICE = "POLICE-WYP"


def _record(kind: str, org: str, outcome: str, minute: int, attempt: int, error: str | None = None) -> DeliveryRecord:
    at = NOW - dt.timedelta(hours=1) + dt.timedelta(minutes=minute)
    return DeliveryRecord(kind, f"n{minute}", org, at, outcome, 0, minute, attempt, error=error)


async def test_delivery_status_comes_from_the_ledger(tmp_path: Path) -> None:
    """Deliveries, failed attempts and dead letters on the deliveries topic show per organisation on the admin page."""
    async with serve_case(tmp_path) as site:
        log = site.app[LOG]
        for record in (
            _record("attempt", GP, "failed", 1, 1, "timed out"),
            _record("attempt", GP, "delivered", 1, 2),
            _record("attempt", GP, "delivered", 2, 1),
            _record("dead_letter", GP, "dead_letter", 3, 0, "retries ran out"),
            _record("inbox", SCHOOL, "inbox", 4, 0),
        ):
            key, value, headers = encode_delivery(record)
            await log.append(topics.DELIVERIES, value, key=key, headers=headers)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            browser = Browser(site, session)
            await browser.sign_in("admin")
            status, text, _ = await browser.get("/web/admin")
    assert status == 200
    rows = dict(re.findall(r'data-org="([^"]+)">(.*?)</tr>', text, re.S))
    assert "2 delivered" in rows[GP] and "1 failed attempts" in rows[GP] and "1 dead letters" in rows[GP]
    assert "timed out" in rows[GP]
    assert "1 left in the inbox" in rows[SCHOOL]


async def test_the_admin_sees_the_partnership_and_revokes_a_key(tmp_path: Path) -> None:
    """The admin page lists the directory and keys; revoking one marks it revoked in the registry."""
    async with serve_case(tmp_path, signing=((GP, "gp_practice"),)) as site:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            browser = Browser(site, session)
            await browser.sign_in("gp.lead")
            status, _, _ = await browser.get("/web/admin")
            assert status == 404  # not for professionals
            await browser.sign_in("admin")
            status, text, _ = await browser.get("/web/admin")
            assert status == 200 and "Partnership administration" in text
            assert 'data-org="SCHOOL-107300"' in text and "Practice GP-B83020" in text
            key_id = re.search(r'/web/admin/keys/([^/"]+)/revoke', text)
            assert key_id
            token = await browser.csrf("/web/admin")
            status, text, _ = await browser.post(f"/web/admin/keys/{key_id.group(1)}/revoke", {"csrf_token": token})
            assert status == 200 and "revoked" in text
    record = KeyStore(tmp_path / "keys").load().get(key_id.group(1))
    assert record is not None and record.revoked_at == NOW


async def test_the_admin_issues_a_key_and_a_credential_the_gateway_takes_at_once(tmp_path: Path) -> None:
    """Key and credential issued in the pages sign and authenticate an event; the revoked credential is refused."""
    async with serve_case(tmp_path) as site:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            browser = Browser(site, session)
            await browser.sign_in("gp.lead")
            token = await browser.csrf("/web/inbox")
            for path in ("/web/admin/keys", "/web/admin/credentials", "/web/admin/credentials/abcdef123456/revoke"):
                status, _, _ = await browser.post(path, {"csrf_token": token, "org_id": POLICE, "role": "admin"})
                assert status == 404  # the admin forms do not exist for professionals
            await browser.sign_in("admin")
            form = {"org_id": POLICE, "role": "publisher", "label": "niche adapter"}
            status, _, _ = await browser.post("/web/admin/credentials", form)
            assert status == 403  # no CSRF token
            token = await browser.csrf("/web/admin")
            status, text, _ = await browser.post("/web/admin/credentials", {**form, "csrf_token": token})
            assert status == 200 and "API credential issued" in text and "shown once" in text
            bearer = re.search(r'id="secret" type="text" value="([^"]+)"', text)
            assert bearer and bearer.group(1).startswith("jgs_")
            status, text, _ = await browser.post(
                "/web/admin/keys", {"org_id": POLICE, "kind": "police", "csrf_token": token}
            )
            assert status == 200 and "Signing key issued" in text
            link = re.search(r'href="data:application/json;base64,([^"]+)" download="([^"]+)"', text)
            assert link
            private = base64.b64decode(link.group(1))
            key_file = tmp_path / link.group(2)
            key_file.write_bytes(private)
            key_file.chmod(0o600)  # as the page tells the agency
            key = load_signing_key(key_file)
            assert KeyStore(tmp_path / "keys").private_path(key.key_id).read_bytes() == private  # as `keys new`

            async def publish(n: int) -> int:
                data = sample_data("police.domestic_abuse_incident", 900 + n)
                for child in data["children_present"]:
                    child["date_of_birth"] = "2012-03-04"  # born before the case's clock
                env = build_envelope(
                    "police.domestic_abuse_incident",
                    data,
                    source=POLICE,
                    key=key,
                    occurred_at=NOW - dt.timedelta(minutes=5),
                    issued_at=NOW,
                )
                headers = {"Authorization": f"Bearer {bearer.group(1)}", "Content-Type": ENVELOPE_CONTENT_TYPE}
                async with session.post(site.base + "/v1/events", data=encode_envelope(env), headers=headers) as r:
                    return r.status

            assert await publish(1) == 202  # the new key signs and the new credential authenticates, no restart
            _, text, _ = await browser.get("/web/admin")
            credential = re.search(r"/web/admin/credentials/([0-9a-f]{12})/revoke", text)
            assert credential and "niche adapter" in text
            status, text, _ = await browser.post(
                f"/web/admin/credentials/{credential.group(1)}/revoke", {"csrf_token": token}
            )
            assert status == 200 and f"Credential {credential.group(1)} of {POLICE} revoked" in text
            assert await publish(2) == 401
    records = [r for r in await _access(site) if r["action"].startswith(("issue_", "revoke_"))]
    assert [(r["action"], r["person"]["subject"]) for r in records] == [
        ("issue_credential", "admin"),
        ("issue_key", "admin"),
        ("revoke_credential", "admin"),
    ]
    assert records[1]["key_id"] == key.key_id and records[2]["credential_id"] == credential.group(1)
    assert bearer.group(1) not in json.dumps(records) and link.group(1) not in json.dumps(records)
