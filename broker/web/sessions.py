"""Server-side sessions for the web pages, and their CSRF tokens.

The browser holds only a random 256-bit session id in a cookie that is
HttpOnly, SameSite=Lax (the identity provider's redirect back is a top-level
GET, which Lax lets through) and Secure whenever the service is reached over
HTTPS (its name then carries the ``__Host-`` prefix). Everything else (who is
signed in, the CSRF token, a sign-in in progress) stays on the server, so
signing out or an idle timeout ends the session for good. A new session id is
issued when someone signs in (no session fixation).

Every form carries the session's CSRF token; ``csrf_ok`` compares in constant time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from broker.web.people import Person

__all__ = ["COOKIE", "SECURE_COOKIE", "Session", "SessionStore", "csrf_ok"]

COOKIE = "jigsaw_session"
SECURE_COOKIE = "__Host-jigsaw_session"


@dataclasses.dataclass(slots=True)
class Session:
    """One browser's session (mutable: the store owns it)."""

    sid: str
    csrf: str
    created: dt.datetime
    last_seen: dt.datetime
    person: Person | None = None
    pending: Mapping[str, Any] | None = None  # a sign-in under way: state, nonce, PKCE verifier, where to return
    flash: str | None = None  # one message for the next page ("Acknowledged")


def csrf_ok(session: Session | None, presented: str | None) -> bool:
    """Whether a form's token is this session's (constant time)."""
    if session is None or not presented:
        return False
    return hmac.compare_digest(session.csrf.encode(), presented.encode())


class SessionStore:
    """Sessions in memory, ended after ``idle`` without a request or ``lifetime`` after they began.

    At most ``capacity`` sessions are kept; past that the least recently used goes first.
    """

    def __init__(self, *, idle: dt.timedelta, lifetime: dt.timedelta, capacity: int = 20_000) -> None:
        self.idle = idle
        self.lifetime = lifetime
        self.capacity = capacity
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def new(self, now: dt.datetime) -> Session:
        """A fresh anonymous session."""
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now)
        self._sessions[session.sid] = session
        while len(self._sessions) > self.capacity:
            self._evict()
        return session

    def _evict(self) -> None:
        """Drop the least recently used anonymous session among the oldest few, else the oldest of all.

        A flood of anonymous visits then pushes out other anonymous sessions, not people who signed in.
        """
        for count, (sid, session) in enumerate(self._sessions.items()):
            if session.person is None:
                del self._sessions[sid]
                return
            if count >= 1000:
                break
        self._sessions.popitem(last=False)

    def get(self, sid: str | None, now: dt.datetime) -> tuple[Session | None, bool]:
        """The live session with this id, and whether one existed but timed out (it is then dropped)."""
        if not sid:
            return None, False
        session = self._sessions.get(sid)
        if session is None:
            return None, False
        if now - session.last_seen > self.idle or now - session.created > self.lifetime:
            del self._sessions[sid]
            return None, session.person is not None
        session.last_seen = now
        self._sessions.move_to_end(sid)
        return session, False

    def alive(self, sid: str, now: dt.datetime) -> bool:
        """Whether a session is still live, without counting as activity (the event stream asks this)."""
        session = self._sessions.get(sid)
        return session is not None and now - session.last_seen <= self.idle and now - session.created <= self.lifetime

    def sign_in(self, old: Session | None, person: Person, now: dt.datetime) -> Session:
        """A new session (new id, new CSRF token) for a person who has just signed in; the old one ends."""
        if old is not None:
            self.drop(old.sid)
        session = self.new(now)
        session.person = person
        return session

    def drop(self, sid: str) -> None:
        """End a session (sign-out)."""
        self._sessions.pop(sid, None)

    def drop_person(self, subject: str) -> int:
        """End every session of one person (their access was withdrawn); how many ended."""
        ids = [s.sid for s in self._sessions.values() if s.person is not None and s.person.subject == subject]
        for sid in ids:
            del self._sessions[sid]
        return len(ids)
