"""The web pages with another ``WebData`` behind them, and the demo's local sign-in users."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from broker.audit.chronology import Chronology, Entry
from broker.commands.demo import find_cases, prepare
from broker.settings import Settings
from broker.simulate import load_scenario
from broker.web import UserMap, create_web_app
from broker.web.people import Person
from tests.web.test_pages import CSRF

NOW = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


class StoryOnly:
    """A WebData holding one child's chronology with a retracted event (the pages need nothing else here)."""

    def __init__(self) -> None:
        self.access: list[tuple[str, str]] = []

    async def chronology(self, person: Person, nhs_number: str) -> tuple[Chronology, set[str]] | None:
        entries = (
            Entry(NOW, "event", "e1", "police.domestic_abuse_incident", "POLICE-WYP", detail="risk_level: high"),
            Entry(NOW, "event", "e2", "record.retracted", "POLICE-WYP"),
        )
        return Chronology(nhs_number, NOW, "not verified", entries), {"e1"}

    async def directory(self) -> list[Any]:
        return []

    async def record_access(self, person: Person, action: str, ids: list[str], **detail: Any) -> None:
        self.access.append((person.subject, action))


async def test_a_retracted_entry_is_struck_through() -> None:
    """The chronology page strikes through a retracted event and says so; the data behind it is swappable."""
    users = UserMap([{"match": {"sub": "aud"}, "org_id": "PARTNERSHIP", "role": "auditor"}])
    data = StoryOnly()
    app = create_web_app(Settings(web_local_sign_in=True), data, lambda: NOW, users=users)  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        page = await (await client.get("/sign-in")).text()
        token = CSRF.search(page)
        assert token
        await client.post("/sign-in/local", data={"csrf_token": token.group(1), "user": "aud", "return_to": ""})
        response = await client.get("/children/9994986260")
        text = await response.text()
    assert response.status == 200
    assert "<del>Domestic abuse incident</del>" in text and "Retracted</strong>" in text
    assert "<del>risk_level: high</del>" in text
    assert data.access == [("aud", "chronology")]


def test_the_demo_offers_local_sign_in_as_each_organisation(tmp_path: Path) -> None:
    """jigsaw demo turns on the marked local sign-in with a professional per organisation, an auditor and an admin."""
    cases = [load_scenario(p) for p in find_cases()]
    setup = prepare(tmp_path / "demo", cases, 8080)
    assert setup.settings.web_local_sign_in
    people = UserMap.load(setup.settings.web_users_file).local_people()
    roles = {p.role for p in people}
    assert roles == {"professional", "auditor", "admin"}
    assert {p.org_id for p in people if p.role == "professional"} >= {"GP-B83001", "SCHOOL-107300"}


async def test_over_https_the_cookie_is_secure_and_host_only() -> None:
    """With an https base URL the session cookie is Secure and __Host- prefixed, and HSTS is sent."""
    app = create_web_app(Settings(web_base_url="https://jigsaw.example"), StoryOnly(), lambda: NOW)  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/sign-in")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-jigsaw_session=") and "Secure" in cookie and "HttpOnly" in cookie
    assert "Strict-Transport-Security" in response.headers


async def test_a_callback_without_a_sign_in_under_way_is_refused() -> None:
    """The provider's redirect back is refused unless this browser started that sign-in (state is checked)."""
    settings = Settings(web_oidc_issuer="http://127.0.0.1:9/none")
    app = create_web_app(settings, StoryOnly(), lambda: NOW)  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/callback?code=abc&state=forged")
        text = await response.text()
    assert response.status == 401 and "no sign-in was under way" in text
