"""Who a signed-in person is: their organisation and role, from ID-token claims or the admin's mapping (pure).

A person signs in through the identity provider (NHS CIS2, a council's
provider) as a subject; Jigsaw needs their organisation and what they may do
there. Either the provider says so in claims (``jigsaw_org`` and
``jigsaw_role``), or the partnership admin keeps a mapping file
(``JIGSAW_WEB_USERS_FILE``)::

    {"users": [
        {"match": {"sub": "hv.lead"}, "name": "Health visiting lead", "org_id": "HV-BRADFORD",
         "role": "professional"},
        {"match": {"email": "auditor@partnership.example"}, "org_id": "PARTNERSHIP-BD", "role": "auditor"}
    ]}

The mapping wins over claims: the admin decides who acts for which
organisation. A person with neither is refused with a message saying whom to ask.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from broker.errors import ConfigError

__all__ = ["API_ROLE", "WEB_ROLES", "Person", "UserMap", "demo_users"]

WEB_ROLES = ("professional", "auditor", "admin")
API_ROLE = {"professional": "recipient", "auditor": "auditor", "admin": "admin"}  # what the API services check


@dataclasses.dataclass(frozen=True, slots=True)
class Person:
    """A signed-in person acting for one organisation in one role."""

    subject: str  # the provider's subject (or the demo user's id)
    name: str
    org_id: str
    role: str  # professional, auditor or admin
    via: str  # "oidc" or "local" (the demo's local sign-in)

    @property
    def api_role(self) -> str:
        """The credential role the inbox and chronology services check (``recipient`` for professionals)."""
        return API_ROLE[self.role]

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Person:
        return cls(str(d["subject"]), str(d["name"]), str(d["org_id"]), str(d["role"]), str(d["via"]))


@dataclasses.dataclass(frozen=True, slots=True)
class _Rule:
    match: tuple[tuple[str, str], ...]
    name: str | None
    org_id: str
    role: str


class UserMap:
    """The admin's mapping from identity-provider claims to organisation and role."""

    def __init__(self, rules: Iterable[Mapping[str, Any]] = ()) -> None:
        self._rules: list[_Rule] = []
        for i, rule in enumerate(rules):
            match = rule.get("match")
            role = str(rule.get("role", ""))
            if not isinstance(match, Mapping) or not match or not rule.get("org_id") or role not in WEB_ROLES:
                raise ConfigError(f"users[{i}] needs match (claims to equal), org_id and role ({', '.join(WEB_ROLES)})")
            name = rule.get("name")
            items = tuple(sorted((str(k), str(v)) for k, v in match.items()))
            self._rules.append(_Rule(items, str(name) if name else None, str(rule["org_id"]), role))

    @classmethod
    def load(cls, path: Path | None) -> UserMap:
        """Read the mapping file; no file means claims alone decide.

        Raises:
            ConfigError: the file is unreadable or malformed.
        """
        if path is None:
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(data["users"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"cannot read the web users file {path}: {exc}") from exc

    def local_people(self) -> list[Person]:
        """The people the demo's local sign-in offers: every rule that matches on ``sub`` alone."""
        return [
            Person(r.match[0][1], r.name or r.match[0][1], r.org_id, r.role, "local")
            for r in self._rules
            if len(r.match) == 1 and r.match[0][0] == "sub"
        ]

    def person(self, claims: Mapping[str, Any]) -> Person | None:
        """The person these verified ID-token claims describe, or None when nothing says who they act for."""
        subject = str(claims.get("sub", ""))
        name = str(claims.get("name") or claims.get("preferred_username") or claims.get("email") or subject)
        for rule in self._rules:
            if all(str(claims.get(k, "")) == v for k, v in rule.match):
                return Person(subject, rule.name or name, rule.org_id, rule.role, "oidc")
        org, role = claims.get("jigsaw_org"), claims.get("jigsaw_role")
        if isinstance(org, str) and org and role in WEB_ROLES:
            return Person(subject, name, org, str(role), "oidc")
        return None


def demo_users(organisations: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Seeded people for the demo's local sign-in: a professional per organisation, an auditor and an admin.

    Subjects are ``demo-<org id in lower case>`` (the partnership's is its auditor) and ``demo-admin``.
    """
    users: list[dict[str, Any]] = []
    for org_id, org in sorted(organisations.items()):
        name = org.get("name") or org_id
        if org.get("kind") == "partnership":
            if not any(u["role"] == "admin" for u in users):
                users.insert(
                    0, {"match": {"sub": "demo-admin"}, "name": "Partnership admin", "org_id": org_id, "role": "admin"}
                )
            users.append(
                {
                    "match": {"sub": f"demo-{org_id.lower()}"},
                    "name": f"Auditor, {name}",
                    "org_id": org_id,
                    "role": "auditor",
                }
            )
        else:
            users.append(
                {
                    "match": {"sub": f"demo-{org_id.lower()}"},
                    "name": f"Demo professional, {name}",
                    "org_id": org_id,
                    "role": "professional",
                }
            )
    return users
