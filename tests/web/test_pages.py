"""The web pages over HTTP without a browser: sign-in, CSRF, inbox, notification, acknowledging, access records."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from broker import topics
from broker.log import EmbeddedLog
from tests.web.support import CHILD, GP, SCHOOL, Site, serve_case

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    """Jigsaw serving the simulated case, local sign-in on."""
    async with serve_case(tmp_path) as running:
        yield running


class Browser:
    """A cookie-keeping HTTP client that follows the pages like a person without JavaScript."""

    def __init__(self, site: Site, session: aiohttp.ClientSession) -> None:
        self.site = site
        self.session = session

    async def get(self, path: str, **kw: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.session.get(self.site.base + path, **kw) as r:
            return r.status, await r.text(), r

    async def post(self, path: str, form: dict[str, str], **kw: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.session.post(self.site.base + path, data=form, **kw) as r:
            return r.status, await r.text(), r

    async def csrf(self, path: str = "/web/sign-in") -> str:
        _, text, _ = await self.get(path)
        match = CSRF.search(text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    async def sign_in(self, user: str) -> None:
        token = await self.csrf()
        status, text, _ = await self.post(
            "/web/sign-in/local", {"csrf_token": token, "user": user, "return_to": "/web/inbox"}
        )
        assert status == 200 and "Signed in as" in text, text[:500]


@pytest.fixture
async def browser(site: Site) -> AsyncIterator[Browser]:
    """A client with its own cookie jar (127.0.0.1 cookies kept)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield Browser(site, session)


async def _inbox_ids(browser: Browser, query: str = "") -> list[str]:
    _, text, _ = await browser.get("/web/inbox" + query)
    return re.findall(r'data-notification-id="([^"]+)"', text)


async def _access(site: Site) -> list[dict[str, Any]]:
    log = EmbeddedLog(site.log_path)
    await log.start()
    try:
        records = await log.read(topics.ACCESS, 0, limit=10_000)
    finally:
        await log.close()
    return [json.loads(r.value) for r in records if r.value is not None]


async def test_pages_need_sign_in(browser: Browser) -> None:
    """Without a session the inbox sends the browser to sign in, and brings it back afterwards."""
    status, _, response = await browser.get("/web/inbox?status=overdue", allow_redirects=False)
    assert status == 303
    where = urllib.parse.urlsplit(response.headers["Location"])
    assert where.path == "/web/sign-in"
    assert urllib.parse.parse_qs(where.query) == {"return_to": ["/web/inbox?status=overdue"]}


async def test_session_cookie_is_httponly_and_samesite(browser: Browser) -> None:
    """The session cookie is HttpOnly and SameSite=Lax, and pages forbid framing and inline script."""
    _, _, response = await browser.get("/web/sign-in")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_a_form_without_its_csrf_token_is_refused(browser: Browser) -> None:
    """Signing in, acknowledging and signing out are all refused without the session's CSRF token."""
    status, text, _ = await browser.post("/web/sign-in/local", {"user": "gp.lead"})
    assert status == 403 and "security token" in text
    await browser.sign_in("gp.lead")
    nid = (await _inbox_ids(browser, "?status=awaiting&priority=urgent"))[0]
    status, _, _ = await browser.post(f"/web/notifications/{nid}/acknowledge", {"note": "done", "csrf_token": "x"})
    assert status == 403
    _, text, _ = await browser.get(f"/web/notifications/{nid}")
    assert "Acknowledged</h2>" not in text


async def test_inbox_lists_the_organisations_notifications_newest_first(browser: Browser, site: Site) -> None:
    """A GP sees its own notifications, newest first, with urgent waiting ones standing out."""
    await browser.sign_in("gp.lead")
    status, text, response = await browser.get("/web/inbox")
    assert status == 200 and "Inbox" in text and GP in text
    assert "Server-Timing" in response.headers
    times = re.findall(r'<td class="govuk-table__cell">(\d+ \w+ \d{4}, \d\d:\d\d) (?:BST|GMT)</td>', text)
    assert times, "no rows"
    assert "jigsaw-row--standout" in text
    urgent = await _inbox_ids(browser, "?status=awaiting&priority=urgent")
    assert urgent
    assert set(urgent) <= set(await _inbox_ids(browser))
    listed = [r for r in await _access(site) if r["action"] == "list"]
    assert listed[-1]["person"]["subject"] == "gp.lead" and listed[-1]["org_id"] == GP
    assert listed[-1]["channel"] == "web"


async def test_acknowledging_needs_a_note_and_is_logged_with_it(browser: Browser, site: Site) -> None:
    """An empty note is refused with an error; a note acknowledges, names the person and shows in the inbox."""
    await browser.sign_in("gp.lead")
    nid = (await _inbox_ids(browser, "?status=awaiting&priority=urgent"))[0]
    token = await browser.csrf(f"/web/notifications/{nid}")
    status, text, _ = await browser.post(f"/web/notifications/{nid}/acknowledge", {"csrf_token": token, "note": " "})
    assert status == 400 and "Enter the action you have taken" in text and "govuk-error-summary" in text
    status, text, _ = await browser.post(
        f"/web/notifications/{nid}/acknowledge", {"csrf_token": token, "note": "Added to records as restricted"}
    )
    assert status == 200 and "Notification acknowledged" in text and "Dr Asha Patel" in text
    assert "Added to records as restricted" in text
    assert nid in await _inbox_ids(browser, "?status=acknowledged")
    assert nid not in await _inbox_ids(browser, "?status=awaiting")
    log = EmbeddedLog(site.log_path)
    await log.start()
    acks = [json.loads(r.value) for r in await log.read(topics.INPUT, 0, limit=1000) if r.value and topics.is_ack(r)]
    await log.close()
    mine = [a for a in acks if a["notification_id"] == nid]
    assert mine == [{**mine[0], "by": "Dr Asha Patel", "note": "Added to records as restricted", "recipient": GP}]
    reads = [r for r in await _access(site) if r["action"] == "ack"]
    assert reads[-1]["notification_ids"] == [nid] and reads[-1]["person"]["name"] == "Dr Asha Patel"


async def test_another_organisation_gets_404(site: Site, browser: Browser) -> None:
    """A school's user asking for the GP's notification gets the same 404 as for an id that does not exist."""
    await browser.sign_in("gp.lead")
    nid = (await _inbox_ids(browser))[0]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other_session:
        other = Browser(site, other_session)
        await other.sign_in("school.dsl")
        status, text, _ = await other.get(f"/web/notifications/{nid}")
        assert status == 404 and "Page not found" in text
        status, _, _ = await other.get("/web/notifications/00000000-0000-0000-0000-000000000000")
        assert status == 404
    refused = [r for r in await _access(site) if r["action"] == "read" and r["org_id"] == SCHOOL]
    assert refused[0]["outcome"] == "not_found" and refused[0]["notification_ids"] == [nid]


async def test_a_school_sees_only_the_education_view(browser: Browser) -> None:
    """A school's notification shows the kind of event, its date and the child, not the police's details."""
    await browser.sign_in("school.dsl")
    ids = await _inbox_ids(browser, "?priority=urgent")
    assert ids
    _, text, _ = await browser.get(f"/web/notifications/{ids[-1]}")
    assert "Education view" in text and "Child present" in text
    assert "Summary" not in text and "Lawful basis" not in text


async def test_chronology_is_for_auditors(browser: Browser, site: Site) -> None:
    """An auditor reads a child's chronology; a GP is refused, and both requests are recorded."""
    await browser.sign_in("gp.lead")
    status, _, _ = await browser.get(f"/web/children/{CHILD}")
    assert status == 403
    await browser.sign_in("auditor")
    status, text, _ = await browser.get(f"/web/children?nhs_number={CHILD[:3]}+{CHILD[3:]}")
    assert status == 200 and "Timeline, oldest first" in text and "Domestic abuse incident" in text
    outcomes = [(r["org_id"], r["outcome"]) for r in await _access(site) if r["action"] == "chronology"]
    assert outcomes == [(GP, "refused"), ("PARTNERSHIP-BRADFORD", "allowed")]


async def test_sign_out_ends_the_session(browser: Browser) -> None:
    """After signing out, the old session cookie opens nothing."""
    await browser.sign_in("gp.lead")
    token = await browser.csrf("/web/inbox")
    status, text, _ = await browser.post("/web/sign-out", {"csrf_token": token})
    assert status == 200 and "You have signed out" in text
    status, _, _ = await browser.get("/web/inbox", allow_redirects=False)
    assert status == 303


async def test_idle_sessions_time_out(tmp_path: Path) -> None:
    """A session idle for longer than the timeout is ended and the person is told why."""
    from tests.web import support

    async with serve_case(tmp_path, idle_minutes=1) as running:
        state = running.app._subapps[0]  # the web app, mounted at /web/
        from broker.web.app import WEB

        web_state = state[WEB]
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            b = Browser(running, session)
            await b.sign_in("gp.lead")
            moved = support.NOW + __import__("datetime").timedelta(minutes=5)
            web_state.clock = lambda: moved
            status, text, _ = await b.get("/web/inbox")
            assert status == 200 and "did nothing for a while" in text


async def test_an_inbox_of_ten_thousand_renders_its_first_page(site: Site, browser: Browser) -> None:
    """With 10,000 notifications the inbox pages them both ways and reports its server time (printed, not asserted)."""
    import dataclasses

    from broker.delivery.inbox import INBOX
    from tests.web.support import NOW

    store = site.app[INBOX].store
    template = await store.notification(GP, await _first_id(browser))
    assert template is not None
    from broker.delivery.inboxes import notification_of
    from broker.routing.records import encode_json
    from broker.store import InboxNotification

    note = notification_of(template)
    bulk = [
        dataclasses.replace(note, notification_id=f"bulk-{i:05d}", at=NOW - dt.timedelta(minutes=i))
        for i in range(10_000)
    ]
    await store.add_notifications(
        [
            InboxNotification.of(n, children=template.notification.children, record=encode_json(n.to_dict()))
            for n in bulk
        ]
    )
    timings = []
    for _ in range(3):
        status, text, response = await browser.get("/web/inbox")
        assert status == 200 and "page 1 of" in text
        timings.append(float(response.headers["Server-Timing"].split("dur=")[1]))
    assert all(t > 0 for t in timings), timings
    print("inbox of 10,000: first page server time (ms)", timings)
    first = re.findall(r'data-notification-id="([^"]+)"', text)
    pages = re.search(r"page 1 of (\d+)", text)
    assert pages and int(pages.group(1)) >= 400
    nxt = re.search(r'href="([^"]+)" rel="next"', text)
    assert nxt
    status, text, _ = await browser.get(nxt.group(1).replace("&amp;", "&"))
    assert status == 200 and f"page 2 of {pages.group(1)}" in text
    second = re.findall(r'data-notification-id="([^"]+)"', text)
    assert len(second) == 25 and not set(first) & set(second)
    prev = re.search(r'href="([^"]+)" rel="prev"', text)
    assert prev
    status, text, _ = await browser.get(prev.group(1).replace("&amp;", "&"))
    assert re.findall(r'data-notification-id="([^"]+)"', text) == first and 'rel="prev"' not in text


async def _first_id(browser: Browser) -> str:
    await browser.sign_in("gp.lead")
    return (await _inbox_ids(browser))[0]
