"""Who is calling: bearer tokens from a credentials file, one organisation and role each.

The file (``JIGSAW_CREDENTIALS_FILE``) holds only SHA-256 hashes of tokens::

    {"credentials": [
        {"token_sha256": "<64 hex>", "org_id": "POLICE-WYP", "role": "publisher", "label": "niche adapter"}
    ]}

Tokens are 256-bit random strings, so an unsalted hash is enough; a presented
token's hash is compared with every stored hash in constant time.
``jigsaw keys credential ORG_ID --role ROLE`` adds an entry and prints the
token once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from broker.errors import ConfigError, Unauthenticated

__all__ = ["ROLES", "Caller", "Credentials", "add_credential", "hash_token", "new_token"]

ROLES = ("publisher", "recipient", "auditor", "admin")


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated organisation acting in one role."""

    org_id: str
    role: str


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token, as stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh bearer token (256 random bits)."""
    return "jgs_" + secrets.token_urlsafe(32)


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    digest: bytes
    caller: Caller


class Credentials:
    """The credentials a gateway accepts (immutable)."""

    def __init__(self, entries: Iterable[tuple[str, str, str]] = ()) -> None:
        """Args: entries: ``(token_sha256_hex, org_id, role)`` triples."""
        self._entries: list[_Entry] = []
        for digest, org_id, role in entries:
            if role not in ROLES:
                raise ConfigError(f"credential for {org_id} has unknown role {role!r}; use one of {', '.join(ROLES)}")
            try:
                raw = bytes.fromhex(digest)
            except ValueError:
                raw = b""
            if len(raw) != 32:
                raise ConfigError(f"credential for {org_id} has a malformed token_sha256")
            self._entries.append(_Entry(raw, Caller(org_id, role)))

    @classmethod
    def from_tokens(cls, tokens: Iterable[tuple[str, str, str]]) -> Credentials:
        """Credentials from plain ``(token, org_id, role)`` triples (tests)."""
        return cls((hash_token(t), org, role) for t, org, role in tokens)

    @classmethod
    def load(cls, path: Path | None) -> Credentials:
        """Read a credentials file; no file means no one can authenticate.

        Raises:
            ConfigError: the file is unreadable or malformed.
        """
        if path is None:
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            entries = [(str(e["token_sha256"]), str(e["org_id"]), str(e["role"])) for e in data["credentials"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"cannot read the credentials file {path}: {exc}") from exc
        return cls(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, authorization: str | None) -> Caller:
        """The caller an ``Authorization: Bearer <token>`` header names.

        Raises:
            Unauthenticated: no header, another scheme, or an unknown token.
        """
        if not authorization:
            raise Unauthenticated("send an Authorization: Bearer <token> header")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
        presented = hashlib.sha256(token.strip().encode("utf-8")).digest()
        found: Caller | None = None
        for entry in self._entries:  # every entry is compared: the time does not depend on which matched
            if hmac.compare_digest(presented, entry.digest):
                found = entry.caller
        if found is None:
            raise Unauthenticated("the bearer token is not recognised")
        return found


def add_credential(path: Path, org_id: str, role: str, label: str = "") -> str:
    """Add a credential to a credentials file (created 0600 if missing); returns the new token.

    Raises:
        ConfigError: the role is unknown or the file is malformed.
    """
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    data: dict[str, Any] = {"credentials": []}
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            assert isinstance(data.get("credentials"), list)
        except (OSError, ValueError, AssertionError) as exc:
            raise ConfigError(f"cannot read the credentials file {path}: {exc}") from exc
    token = new_token()
    data["credentials"].append({"token_sha256": hash_token(token), "org_id": org_id, "role": role, "label": label})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)
        out.write("\n")
    os.replace(tmp, path)
    return token
