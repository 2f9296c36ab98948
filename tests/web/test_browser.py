"""The web pages in headless Chromium, signing in through a real OpenID Connect provider, checked by axe-core."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.browser import ServerThread, axe_source, axe_violations, chromium, oidc_issuer
from tests.web.support import CHILD, GP, Site

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("JIGSAW_WEB_SCREENSHOTS")  # a directory: save screenshots of the pages there


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Jigsaw serving the simulated case; the only sign-in is the OIDC provider."""
    issuer = oidc_issuer()
    with ServerThread(tmp_path_factory.mktemp("web"), oidc_issuer=issuer, local=False) as running:
        yield running


@pytest.fixture(scope="module")
def driver(site: Site) -> Iterator[Any]:
    """One headless Chromium for the module."""
    with chromium() as d:
        yield d


@dataclasses.dataclass
class Pages:
    """Drives the pages as a person would."""

    driver: Any
    site: Site

    def go(self, path: str) -> None:
        self.driver.get(self.site.base + path)

    def wait_for(self, test: Any, timeout: float = 15) -> None:
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            WebDriverWait(self.driver, timeout).until(test)
        except TimeoutException:
            text = self.driver.find_element("tag name", "body").text[:1500]
            raise AssertionError(f"waited in vain at {self.driver.current_url}: {text}") from None

    def css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def submit(self, selector: str) -> None:
        """Click what submits a form or follows a link, then wait until the browser has left the old page."""
        from selenium.webdriver.support import expected_conditions

        old = self.css("html")
        self.css(selector).click()
        self.wait_for(expected_conditions.staleness_of(old))

    def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def heading(self) -> str:
        return str(self.css("h1").text)

    def sign_in(self, user: str, claims: dict[str, str] | None = None) -> None:
        """Sign out of anything, then sign in at the identity provider's own page as ``user`` (with extra claims)."""
        self.go("/web/sign-in")
        self.driver.delete_all_cookies()
        self.go("/web/inbox")
        self.wait_for(lambda d: "/web/sign-in" in d.current_url)
        self.submit("#sign-in-oidc")
        self.wait_for(lambda d: "/authorize" in d.current_url)  # the provider's page, not ours
        field = self.css("input[name=username]")
        field.send_keys(user)
        if claims:
            self.css("textarea[name=claims]").send_keys(json.dumps(claims))
        field.submit()
        self.wait_for(lambda d: d.current_url.startswith(self.site.base + "/web/inbox"))
        assert "Signed in as" in self.css(".jigsaw-account__who").text

    def shot(self, name: str) -> None:
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            self.driver.save_screenshot(str(Path(SHOTS) / f"{name}.png"))


@pytest.fixture
def pages(driver: Any, site: Site) -> Pages:
    """The pages, in the module's browser."""
    return Pages(driver, site)


def _ids(pages: Pages) -> list[str]:
    return [row.get_attribute("data-notification-id") for row in pages.all("tr[data-notification-id]")]


def test_a_gp_acknowledges_an_urgent_notification(pages: Pages) -> None:
    """A GP signs in at the provider, opens an urgent notification about the child, acknowledges it, sees it done."""
    pages.sign_in("gp.lead")
    assert pages.heading().startswith("Inbox") and GP in pages.heading()
    pages.shot("inbox")
    pages.css("#status-awaiting").click()
    pages.css("#nhs_number").send_keys(CHILD)
    pages.submit("form.jigsaw-filters button")
    pages.wait_for(lambda d: "status=awaiting" in d.current_url)
    standout = pages.all("tr.jigsaw-row--standout")
    urgent = [row for row in standout if "Urgent" in row.text and "Domestic abuse incident" in row.text]
    assert urgent, "no urgent incident awaiting acknowledgement"
    nid = urgent[0].get_attribute("data-notification-id")
    urgent[0].find_element("css selector", "a").click()
    pages.wait_for(lambda d: f"/web/notifications/{nid}" in d.current_url)
    assert "Why you were told" in pages.driver.page_source
    assert pages.css("#reason").text.startswith("You are the registered GP")
    assert "Restricted: keep this out of any record" in pages.driver.page_source
    pages.shot("notification")
    pages.submit("#acknowledge")  # no note: refused with an error
    assert "Enter the action you have taken" in pages.css(".govuk-error-summary").text
    pages.css("#note").send_keys("Added to the child's and mother's records as restricted; told the health visitor.")
    pages.submit("#acknowledge")
    pages.wait_for(lambda d: "Notification acknowledged" in d.page_source)
    assert "by Dr Asha Patel" in pages.css("#acknowledged").text
    pages.go("/web/inbox?status=acknowledged")
    assert nid in _ids(pages)
    row = pages.css(f'tr[data-notification-id="{nid}"]')
    assert "Acknowledged" in row.text and "By Dr Asha Patel" in row.text
    pages.sign_in("auditor")
    pages.go(f"/web/children/{CHILD}")
    acks = [r.text for r in pages.all("tr.jigsaw-chronology__acknowledgement")]
    assert any("by Dr Asha Patel" in text for text in acks), acks


def test_organisation_and_role_can_come_from_the_providers_claims(pages: Pages) -> None:
    """A person the admin's file does not name is placed by the ID token's jigsaw_org and jigsaw_role claims."""
    pages.sign_in("hv.visitor", {"jigsaw_org": "HV-BRADFORD-EAST", "jigsaw_role": "professional"})
    assert "HV-BRADFORD-EAST" in pages.heading()
    assert "hv.visitor, HV-BRADFORD-EAST (professional)" in pages.css(".jigsaw-account__who").text


def test_a_person_the_partnership_does_not_know_is_refused(pages: Pages) -> None:
    """Signing in at the provider is not enough: with no mapping and no claims, Jigsaw says whom to ask."""
    pages.go("/web/sign-in")
    pages.driver.delete_all_cookies()
    pages.go("/web/sign-in")
    pages.submit("#sign-in-oidc")
    pages.wait_for(lambda d: "/authorize" in d.current_url)
    field = pages.css("input[name=username]")
    field.send_keys("stranger")
    field.submit()
    pages.wait_for(lambda d: "/web/callback" in d.current_url)
    assert "does not know which organisation you act for" in pages.css(".govuk-error-summary").text
    pages.go("/web/inbox")
    assert "/web/sign-in" in pages.driver.current_url


def test_a_school_sees_only_the_education_view(pages: Pages) -> None:
    """The school's designated safeguarding lead sees what kind of event, when, which child: nothing more."""
    pages.sign_in("school.dsl")
    ids = _ids(pages)
    assert ids
    for nid in ids[:3]:
        pages.go(f"/web/notifications/{nid}")
        assert "Education view" in pages.css("#view").text
        content = pages.css("#content").text
        assert "Summary" not in content and "Lawful basis" not in content


def test_another_organisations_notification_is_not_found(pages: Pages) -> None:
    """The school's user opening the GP's notification URL gets 404, as for one that does not exist."""
    pages.sign_in("gp.lead")
    nid = _ids(pages)[0]
    pages.sign_in("school.dsl")
    pages.go(f"/web/notifications/{nid}")
    assert pages.heading() == "Page not found"
    assert pages.driver.title.startswith("Page not found")


def test_a_form_posted_without_its_csrf_token_is_refused(pages: Pages) -> None:
    """Acknowledging from a form whose CSRF token was removed is refused, and nothing is acknowledged."""
    pages.sign_in("gp.lead")
    pages.go("/web/inbox?status=overdue")
    nid = _ids(pages)[0]
    pages.go(f"/web/notifications/{nid}")
    pages.driver.execute_script("document.querySelector('#note').form.querySelector('[name=csrf_token]').remove()")
    pages.css("#note").send_keys("Should not count")
    pages.submit("#acknowledge")
    pages.wait_for(lambda d: "This form has expired" in d.page_source)
    pages.go(f"/web/notifications/{nid}")
    assert pages.all("#acknowledge") and "Should not count" not in pages.driver.page_source


def test_every_page_passes_axe(pages: Pages) -> None:
    """axe-core finds no serious or critical WCAG 2.2 A/AA violation on any page."""
    source = axe_source()
    checked: dict[str, list[dict[str, Any]]] = {}

    def check(name: str) -> None:
        checked[name] = axe_violations(pages.driver, source)

    pages.go("/web/sign-in")
    pages.driver.delete_all_cookies()
    pages.go("/web/sign-in")
    check("sign in")
    pages.sign_in("gp.lead")
    check("inbox")
    pages.go("/web/inbox?status=overdue&priority=urgent")
    check("inbox, filtered")
    pages.go("/web/inbox?status=overdue")
    nid = _ids(pages)[0]
    pages.go(f"/web/notifications/{nid}")
    check("notification")
    pages.submit("#acknowledge")
    check("notification with an error")
    pages.go(f"/web/notifications/{nid}/challenge")
    check("raise a challenge")
    pages.submit("#raise-challenge")
    check("raise a challenge, with errors")
    pages.go("/web/notifications/not-a-notification")
    check("not found")
    pages.go("/web/children")
    check("find a child")
    pages.sign_in("auditor")
    pages.go(f"/web/children/{CHILD}")
    check("chronology")
    pages.sign_in("admin")
    pages.go("/web/admin")
    check("partnership admin")
    pages.css("#credential-org").send_keys("POLICE-WYP")
    pages.css("#credential-label").send_keys("niche adapter")
    pages.submit("#issue-credential button")
    pages.wait_for(lambda d: "credential issued" in d.find_element("tag name", "h1").text)
    assert str(pages.css("#secret").get_attribute("value")).startswith("jgs_")
    check("credential issued")
    pages.go("/web/admin")
    pages.css("#key-org").send_keys("POLICE-WYP")
    pages.submit("#issue-key button")
    pages.wait_for(lambda d: "key issued" in d.find_element("tag name", "h1").text)
    assert str(pages.css("#download-key").get_attribute("href")).startswith("data:application/json;base64,")
    check("key issued")
    pages.go("/web/admin")
    pages.submit(".jigsaw-account__form button")
    pages.wait_for(lambda d: "signed-out" in d.current_url)
    check("signed out")
    assert "/endsession?" in pages.css("#provider-sign-out").get_attribute("href")
    pages.go("/web/inbox")
    assert "/web/sign-in" in pages.driver.current_url
    bad = {page: found for page, found in checked.items() if found}
    assert not bad, bad
    assert len(checked) == 14


def test_new_notifications_are_announced_without_reloading(pages: Pages, site: Site) -> None:
    """With JavaScript, an open inbox says when a new notification arrives (server-sent events)."""
    pages.sign_in("gp.lead")
    pages.wait_for(lambda d: d.execute_script("return document.body.classList.contains('js-enabled')"))
    _append_notification(site, GP)
    pages.wait_for(lambda d: "1 new notification" in pages.css("#live-updates").text, timeout=20)
    assert re.match(r"^\(1\) ", pages.driver.title)


def _append_notification(site: Site, org: str) -> None:
    """A routed notification for ``org`` appears on the log (as the router would write it)."""
    import asyncio
    import uuid

    from broker import topics
    from broker.gateway.keys import LOG
    from broker.routing.model import Notification
    from broker.routing.records import encode_output
    from tests.web.support import NOW

    note = Notification(
        str(uuid.uuid4()),
        "alert",
        str(uuid.uuid4()),
        "police.domestic_abuse_incident",
        org,
        NOW,
        "urgent",
        ("restricted",),
        "full",
        "registered GP (GP-B83020) of child (9994986260)",
        (),
        NOW,
        "R1",
        {},
    )
    key, value, headers = encode_output(note)
    append = site.app[LOG].append(topics.NOTIFICATIONS, value, key=key, headers=headers)
    asyncio.run_coroutine_threadsafe(append, site.loop).result(10)
