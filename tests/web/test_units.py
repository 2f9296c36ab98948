"""The web pages' pure parts: words, listing, people, sessions, and ID-token checks (no server)."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from broker.errors import ConfigError, SignInFailed
from broker.routing.model import Notification
from broker.routing.records import encode_json
from broker.store import InboxAck, InboxNotification, SqliteStore
from broker.store.model import encode_cursor
from broker.web import explain
from broker.web.data import read_inbox_page
from broker.web.listing import PAGE_SIZE, Filters, status_of
from broker.web.oidc import Provider, authorization_url, pkce_pair, verify_id_token
from broker.web.people import Person, UserMap
from broker.web.sessions import SessionStore, csrf_ok

T0 = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)


def note(
    nid: str,
    at: dt.datetime,
    *,
    kind: str = "alert",
    priority: str = "urgent",
    follows: str | None = None,
    reason: str = "registered GP (GP-A) of child (9994986260)",
) -> Notification:
    return Notification(
        nid,
        kind,
        "e-" + nid,
        "csc.child_protection_plan",
        "GP-A",
        at,
        priority,
        ("restricted",),
        "full",
        reason,
        (),
        at + dt.timedelta(hours=24) if kind != "escalation" else None,
        "R3",
        {"data": {}},
        follows=follows,
    )


def test_reason_reads_as_a_sentence_to_the_recipient() -> None:
    """The router's reason path becomes a sentence with spaced NHS numbers."""
    text = explain.reason_in_words("registered GP (GP-B83001) of mother (9999385702) of child (9992178531)")
    assert text == (
        "You are the registered GP (GP-B83001) of mother (NHS number 999 938 5702) of child (NHS number 999 217 8531)."
    )
    assert explain.reason_in_words("") == "The router did not record a reason."
    two = explain.reason_in_words("school (S-1) of child (9994986260); registered GP (GP-A) of victim (9990331995)")
    assert two.split(". ")[1].startswith("You are also the registered GP (GP-A) of victim")


def test_times_read_in_uk_time() -> None:
    """Times show in UK time, GMT in winter and BST in summer."""
    assert explain.when(dt.datetime(2020, 1, 10, 11, 0, tzinfo=dt.UTC)) == "10 January 2020, 11:00 GMT"
    assert explain.when(dt.datetime(2020, 5, 16, 19, 0, tzinfo=dt.UTC)) == "16 May 2020, 20:00 BST"


def test_time_left_and_overdue() -> None:
    """Time to the deadline reads in hours or days, and overdue once it has passed."""
    assert explain.time_left(T0 + dt.timedelta(hours=23), T0) == "23 hours left"
    assert explain.time_left(T0 - dt.timedelta(days=3), T0) == "3 days overdue"
    assert explain.time_left(T0 + dt.timedelta(minutes=90), T0) == "1 hour 30 min left"
    assert explain.time_left(None, T0) == ""


def test_content_rows_name_people_plainly() -> None:
    """Content rows show people by name, NHS number and birth date, and drop empty fields."""
    rows = explain.content_rows(
        {
            "data": {
                "child": {"name": "A", "nhs_number": "9994986260", "local_id": None, "date_of_birth": "2014-06-01"},
                "risk_level": "high",
                "summary": None,
                "child_present": True,
            },
            "source": "POLICE-WYP",
        }
    )
    assert rows == [
        ("Child", "A, NHS number 999 498 6260, born 2014-06-01"),
        ("Risk level", "high"),
        ("Child present", "yes"),
        ("Sent by", "POLICE-WYP"),
    ]


async def _inbox(tmp_path: Path, notes: list[Notification]) -> SqliteStore:
    store = SqliteStore(tmp_path / "views.db")
    await store.start()
    await store.add_notifications(
        [InboxNotification.of(n, children=("9994986260",), record=encode_json(n.to_dict())) for n in notes]
    )
    return store


async def test_listing_statuses_filters_and_pages(tmp_path: Path) -> None:
    """Newest first from the store; awaiting, overdue, escalated and acknowledged counted; pages go both ways."""
    notes = [note(f"n{i}", T0 + dt.timedelta(hours=i)) for i in range(5)]
    notes.append(note("esc", T0 + dt.timedelta(hours=30), kind="escalation", follows="n0"))
    store = await _inbox(tmp_path, notes)
    await store.acknowledge(InboxAck("GP-A", "n1", "Dr A", T0 + dt.timedelta(hours=2)))
    now = T0 + dt.timedelta(hours=26)  # n0 and n1's deadlines have passed

    async def ids(filters: Filters, size: int = PAGE_SIZE) -> list[str]:
        page = await read_inbox_page(store, "GP-A", filters, now, page_size=size)
        return [i.note.notification_id for i in page.items]

    try:
        page = await read_inbox_page(store, "GP-A", Filters(), now, page_size=4)
        assert [i.note.notification_id for i in page.items] == ["esc", "n4", "n3", "n2"]
        assert (page.total, page.pages, page.page, page.size, page.prev) == (6, 2, 1, 6, None)
        assert page.counts == {"awaiting": 4, "overdue": 1, "escalated": 1, "acknowledged": 1}
        assert await ids(Filters(status="overdue")) == ["n0"]
        assert await ids(Filters(status="escalated")) == ["n0"]
        assert await ids(Filters(status="awaiting")) == ["n4", "n3", "n2", "n0"]
        assert await ids(Filters(priority="routine")) == []
        assert await ids(Filters(nhs_number="9994986260"), 2) == ["esc", "n4"]
        second = await read_inbox_page(store, "GP-A", Filters(page=2, after=page.next), now, page_size=4)
        assert [i.note.notification_id for i in second.items] == ["n1", "n0"]
        assert (second.page, second.next) == (2, None) and second.prev is not None
        back = await read_inbox_page(store, "GP-A", Filters(page=1, before=second.prev), now, page_size=4)
        assert [i.note.notification_id for i in back.items] == ["esc", "n4", "n3", "n2"]
        assert (back.page, back.prev, back.next) == (1, None, page.next)
        filtered = await read_inbox_page(store, "GP-A", Filters(status="awaiting", nhs_number="9994986260"), now)
        assert filtered.total == 4
        assert [i.status for i in second.items] == ["acknowledged", "overdue"]
        assert second.items[0].ack is not None and second.items[0].ack.by == "Dr A"
        assert status_of(notes[-1], None, now) == "info"
        urgent_waiting = (await read_inbox_page(store, "GP-A", Filters(status="awaiting"), now)).items[0]
        assert urgent_waiting.stands_out
        assert page.items[0].stands_out and page.items[0].escalated  # the escalation: n0 is still unacknowledged
        await store.acknowledge(InboxAck("GP-A", "n0", "Dr A", now))
        assert not (await read_inbox_page(store, "GP-A", Filters(), now)).items[0].stands_out
    finally:
        await store.close()


def test_filters_from_a_hand_edited_query() -> None:
    """Unknown filter values and cursors are ignored rather than failing the page; the NHS number is normalised."""
    f = Filters.from_query({"status": "bogus", "priority": "urgent", "nhs_number": "999 498 6260", "page": "x"})
    assert f == Filters(None, "urgent", "9994986260", 1)
    assert Filters.from_query({"page": "3", "after": "not-a-cursor"}) == Filters()
    cursor = encode_cursor(5, "n5")
    moved = Filters.from_query({"priority": "urgent", "after": cursor})
    assert moved == Filters(None, "urgent", None, 2, cursor)
    assert moved.query(page=3) == {"priority": "urgent", "after": cursor, "page": "3"}
    assert moved.query(after=None) == {"priority": "urgent"}


def test_the_admins_mapping_wins_over_claims(tmp_path: Path) -> None:
    """The users file decides the organisation; claims alone serve when it says nothing; neither is refused."""
    path = tmp_path / "users.json"
    path.write_text(
        json.dumps(
            {
                "users": [
                    {"match": {"sub": "a"}, "org_id": "GP-A", "role": "professional", "name": "Dr A"},
                    {"match": {"email": "x@y"}, "org_id": "PARTNERSHIP", "role": "auditor"},
                ]
            }
        )
    )
    users = UserMap.load(path)
    assert users.person({"sub": "a", "jigsaw_org": "OTHER", "jigsaw_role": "admin"}) == Person(
        "a", "Dr A", "GP-A", "professional", "oidc"
    )
    assert users.person({"sub": "b", "email": "x@y", "name": "B"}) == Person("b", "B", "PARTNERSHIP", "auditor", "oidc")
    assert users.person({"sub": "c", "jigsaw_org": "SCHOOL-1", "jigsaw_role": "professional"}) is not None
    assert users.person({"sub": "d"}) is None
    assert [p.subject for p in users.local_people()] == ["a"]
    path.write_text(json.dumps({"users": [{"match": {"sub": "a"}, "org_id": "GP-A", "role": "superuser"}]}))
    with pytest.raises(ConfigError):
        UserMap.load(path)


def test_sessions_time_out_and_rotate_on_sign_in() -> None:
    """An idle session ends; signing in issues a new id and CSRF token; sign-out ends it."""
    store = SessionStore(idle=dt.timedelta(minutes=30), lifetime=dt.timedelta(hours=12))
    anon = store.new(T0)
    person = Person("a", "A", "GP-A", "professional", "local")
    session = store.sign_in(anon, person, T0)
    assert session.sid != anon.sid and session.csrf != anon.csrf
    assert store.get(anon.sid, T0) == (None, False)
    assert store.get(session.sid, T0 + dt.timedelta(minutes=29))[0] is session
    assert store.alive(session.sid, T0 + dt.timedelta(minutes=58))
    assert store.get(session.sid, T0 + dt.timedelta(minutes=60)) == (None, True)
    assert csrf_ok(session, session.csrf) and not csrf_ok(session, "x") and not csrf_ok(None, session.csrf)


def test_pkce_and_the_authorization_url() -> None:
    """The challenge is the verifier's S256; the URL carries state, nonce and the challenge."""
    import base64
    import hashlib

    verifier, challenge = pkce_pair()
    assert challenge == base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    provider = Provider("https://idp", "https://idp/auth", "https://idp/token", "https://idp/jwks")
    url = authorization_url(
        provider,
        client_id="jigsaw",
        redirect_uri="https://j/web/callback",
        state="s",
        nonce="n",
        challenge=challenge,
        scope="openid",
    )
    assert url.startswith("https://idp/auth?response_type=code&client_id=jigsaw")
    assert "code_challenge_method=S256" in url and "state=s" in url and "nonce=n" in url
    with pytest.raises(SignInFailed):
        Provider.from_discovery({"issuer": "https://evil"}, "https://idp")


@pytest.fixture(scope="module")
def signer() -> tuple[Any, dict[str, Any]]:
    """An RSA key and its JWKS."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return key, {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}


def _token(key: Any, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": "https://idp", "aud": "jigsaw", "sub": "a", "iat": now, "exp": now + 300, "nonce": "n", **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


def test_an_id_token_is_verified_against_the_jwks(signer: tuple[Any, dict[str, Any]]) -> None:
    """Signature, issuer, audience, expiry and nonce are all checked; any failure refuses the sign-in."""
    key, jwks = signer
    ok = dict(issuer="https://idp", client_id="jigsaw", nonce="n")
    assert verify_id_token(_token(key), jwks, **ok)["sub"] == "a"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bad = [
        _token(other),  # signed by someone else
        _token(key, iss="https://evil"),
        _token(key, aud="someone-else"),
        _token(key, exp=int(time.time()) - 600),
        _token(key, nonce="replayed"),
        jwt.encode({"sub": "a"}, None, algorithm="none"),  # unsigned
    ]
    for token in bad:
        with pytest.raises(SignInFailed):
            verify_id_token(token, jwks, **ok)
    with pytest.raises(SignInFailed) as unknown:
        verify_id_token(jwt.encode({"sub": "a"}, key, algorithm="RS256", headers={"kid": "k2"}), jwks, **ok)
    assert unknown.value.evidence["unknown_kid"] == "k2"


def test_a_flood_of_anonymous_sessions_does_not_push_out_signed_in_people() -> None:
    """Past capacity, anonymous sessions go first; a signed-in person's session stays."""
    store = SessionStore(idle=dt.timedelta(minutes=30), lifetime=dt.timedelta(hours=12), capacity=10)
    person = store.sign_in(None, Person("a", "A", "GP-A", "professional", "local"), T0)
    for _ in range(50):
        store.new(T0)
    assert len(store) == 10 and store.get(person.sid, T0)[0] is person
