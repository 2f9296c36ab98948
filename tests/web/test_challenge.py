"""Raising a professional challenge from a notification: validated, signed as the organisation, accepted."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import aiohttp

from broker import topics
from broker.log import EmbeddedLog
from broker.validation import event_of
from broker.web.challenge import children_named, validate
from tests.web.support import CHILD, GP, NOW, serve_case
from tests.web.test_pages import Browser, _inbox_ids


def test_children_named_in_full_and_education_views() -> None:
    """Children come from the event's child fields, or the education view's child, each once."""
    ref = {"nhs_number": CHILD, "local_id": None, "name": "S", "date_of_birth": "2014-06-01"}
    full = {"data": {"children_present": [ref], "children_in_household": [ref], "victim": {"nhs_number": "1"}}}
    assert children_named(full) == [ref]
    assert children_named({"child": {"nhs_number": CHILD, "local_id": None, "name": "S"}})[0]["nhs_number"] == CHILD
    assert children_named({"data": {}}) == []


def test_validate_names_each_missing_field() -> None:
    """Every field is required; the date must be real and in the future."""
    children = [{"nhs_number": CHILD}]
    _, errors = validate({"child": "3", "day": "31", "month": "2", "year": "2030"}, children, {"CSC"}, NOW.date())
    assert set(errors) == {"child", "directed_to", "level", "summary", "respond_by"}
    form = {
        "child": "0",
        "directed_to": "CSC",
        "level": "2",
        "summary": "No plan yet",
        "day": "1",
        "month": "6",
        "year": "2020",
    }
    data, errors = validate(form, children, {"CSC"}, NOW.date())
    assert errors == {}
    assert data["respond_by"] == "2020-06-01" and data["level"] == 2 and data["child"] == children[0]
    assert re.fullmatch(r"CH-20200516-[0-9A-F]{6}", data["challenge_ref"])


async def test_a_gp_raises_a_challenge_signed_as_the_practice(tmp_path: Path) -> None:
    """With the practice's key held by Jigsaw, the challenge is published as a signed challenge.raised event."""
    async with serve_case(tmp_path, signing=((GP, "gp_practice"),)) as site:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            browser = Browser(site, session)
            await browser.sign_in("gp.lead")
            nid = (await _inbox_ids(browser, f"?priority=urgent&status=awaiting&nhs_number={CHILD}"))[0]
            _, page, _ = await browser.get(f"/web/notifications/{nid}")
            assert "Raise a professional challenge about this child" in page
            token = await browser.csrf(f"/web/notifications/{nid}/challenge")
            status, text, _ = await browser.post(f"/web/notifications/{nid}/challenge", {"csrf_token": token})
            assert status == 400 and "Enter what you are challenging" in text
            form = {
                "csrf_token": token,
                "child": "0",
                "directed_to": "CSC-BRADFORD",
                "level": "1",
                "summary": "Child present at a serious assault; no strategy meeting yet",
                "day": "23",
                "month": "5",
                "year": "2020",
            }
            status, text, _ = await browser.post(f"/web/notifications/{nid}/challenge", form)
            assert status == 200 and "raised with CSC-BRADFORD" in text, text[-3000:]
    log = EmbeddedLog(site.log_path)
    await log.start()
    inputs = await log.read(topics.INPUT, 0, limit=1000)
    records = [r for r in inputs if r.header(topics.SOURCE_KIND_HEADER) == b"gp_practice"]
    await log.close()
    raised = [e for e in (event_of(r.value) for r in records if r.value) if e.event_type == "challenge.raised"]
    assert len(raised) == 1 and raised[0].source == GP
    assert raised[0].data["child"]["nhs_number"] == CHILD and raised[0].data["directed_to"] == "CSC-BRADFORD"
    assert raised[0].occurred_at == NOW and raised[0].data["respond_by"] == dt.date(2020, 5, 23)


async def test_without_the_organisations_key_the_challenge_is_not_sent(tmp_path: Path) -> None:
    """When Jigsaw holds no key of the organisation, the page says so and nothing is published."""
    async with serve_case(tmp_path) as site:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            browser = Browser(site, session)
            await browser.sign_in("gp.lead")
            nid = (await _inbox_ids(browser, f"?priority=urgent&nhs_number={CHILD}"))[0]
            _, page, _ = await browser.get(f"/web/notifications/{nid}/challenge")
            assert "does not hold your organisation's signing key" in page
            token = await browser.csrf(f"/web/notifications/{nid}/challenge")
            form = {
                "csrf_token": token,
                "child": "0",
                "directed_to": "CSC-BRADFORD",
                "level": "1",
                "summary": "x",
                "day": "23",
                "month": "5",
                "year": "2020",
            }
            status, text, _ = await browser.post(f"/web/notifications/{nid}/challenge", form)
            assert status == 400 and "cannot sign for your organisation" in text
