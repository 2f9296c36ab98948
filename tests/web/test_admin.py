"""The partnership admin's page: directory, delivery status, signing keys (revocable) and credentials."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import aiohttp

from broker.delivery.records import DeliveryRecord
from broker.envelope.keys import KeyStore
from broker.web.admin import OrgDelivery, delivery_status
from tests.web.support import GP, NOW, serve_case
from tests.web.test_pages import Browser


def _record(kind: str, org: str, outcome: str, minute: int, error: str | None = None) -> DeliveryRecord:
    return DeliveryRecord(kind, f"n{minute}", org, NOW + dt.timedelta(minutes=minute), outcome, 0, minute, error=error)


def test_delivery_status_counts_per_organisation() -> None:
    """Deliveries, failed attempts, dead letters and inbox drops are counted per recipient."""
    status = delivery_status(
        [
            _record("attempt", "A", "failed", 1, "timeout"),
            _record("attempt", "A", "delivered", 2),
            _record("dead_letter", "A", "dead_letter", 3, "retries ran out"),
            _record("inbox", "B", "inbox", 4),
        ]
    )
    assert status["A"] == OrgDelivery(1, NOW + dt.timedelta(minutes=2), 1, "retries ran out", 1, 0)
    assert status["B"] == OrgDelivery(inbox=1)


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
