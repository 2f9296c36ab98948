"""Who is calling: bearer tokens from a credentials file, one organisation and role each.

The file (``JIGSAW_CREDENTIALS_FILE``) holds only SHA-256 hashes of tokens::

    {"credentials": [
        {"token_sha256": "<64 hex>", "org_id": "POLICE-WYP", "role": "publisher", "label": "niche adapter"}
    ]}

Tokens are 256-bit random strings, so an unsalted hash is enough; a presented
token's hash is compared with every stored hash in constant time.
``jigsaw keys credential ORG_ID --role ROLE`` adds an entry and prints the
token once; ``jigsaw keys revoke-credential ID`` removes one (its id is the
first 12 hex digits of its hash, shown by ``jigsaw keys credentials``).

A running gateway holds a ``CredentialsFile``: it re-reads the file when its
modification time, size or inode changes (looked at no more than once every
``recheck_seconds``) and on demand (``jigsaw serve`` reloads on SIGHUP), so a
credential is added or revoked with no restart. A file that no longer parses
leaves the last good set in force, with a warning.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from broker.callers import Caller
from broker.errors import ConfigError, Unauthenticated
from broker.logging import get_logger

__all__ = [
    "ROLES",
    "Authenticator",
    "Credentials",
    "CredentialsFile",
    "add_credential",
    "hash_token",
    "list_credentials",
    "new_token",
    "revoke_credential",
]

ROLES = ("publisher", "recipient", "auditor", "admin")


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


class Authenticator(Protocol):
    """What the gateway asks of its credentials: a fixed ``Credentials`` or a reloading ``CredentialsFile``."""

    def authenticate(self, authorization: str | None) -> Caller: ...

    def __len__(self) -> int: ...


class CredentialsFile:
    """A credentials file that a running gateway re-reads when it changes (see the module docstring)."""

    def __init__(self, path: Path | None, *, recheck_seconds: float = 2.0) -> None:
        """Read the file now; ConfigError when it is unreadable or malformed at start."""
        self.path = path
        self._recheck = recheck_seconds
        self._stamp = self._current_stamp()
        self._credentials = Credentials.load(path)
        self._checked_at = time.monotonic()

    def _current_stamp(self) -> tuple[int, int, int] | None:
        if self.path is None:
            return None
        try:
            info = self.path.stat()
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    def reload(self) -> bool:
        """Re-read the file if it changed; True when a new set is now in force."""
        self._checked_at = time.monotonic()
        stamp = self._current_stamp()
        if stamp == self._stamp:
            return False
        try:
            fresh = Credentials.load(self.path)
        except ConfigError as exc:  # keep serving with the last good set; try again on the next check
            get_logger(__name__).warning("credentials_unreadable", error=exc.message)
            return False
        self._stamp, self._credentials = stamp, fresh
        get_logger(__name__).info("credentials_reloaded", credentials=len(fresh))
        return True

    def current(self) -> Credentials:
        """The credentials in force (re-read first when the file changed and a check is due)."""
        if time.monotonic() - self._checked_at >= self._recheck:
            self.reload()
        return self._credentials

    def __len__(self) -> int:
        return len(self.current())

    def authenticate(self, authorization: str | None) -> Caller:
        """``Credentials.authenticate`` against the file as it stands."""
        return self.current().authenticate(authorization)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(data, dict) and isinstance(data.get("credentials"), list)
    except (OSError, ValueError, AssertionError) as exc:
        raise ConfigError(f"cannot read the credentials file {path}: {exc}") from exc
    return data


def _write_file(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)
        out.write("\n")
    os.replace(tmp, path)


def list_credentials(path: Path) -> list[dict[str, str]]:
    """Every credential in a file: its id (12 hex digits of its hash), org, role and label; never a hash."""
    return [
        {
            "id": str(e.get("token_sha256", ""))[:12],
            "org_id": str(e.get("org_id", "")),
            "role": str(e.get("role", "")),
            "label": str(e.get("label", "")),
        }
        for e in _read_file(path)["credentials"]
    ]


def revoke_credential(path: Path, credential_id: str) -> dict[str, str]:
    """Remove the one credential whose hash starts with ``credential_id``; what was removed.

    Raises:
        ConfigError: no credential, or more than one, has that id.
    """
    data = _read_file(path)
    wanted = credential_id.strip().lower()
    matches = [e for e in data["credentials"] if len(wanted) >= 8 and str(e.get("token_sha256", "")).startswith(wanted)]
    if len(matches) != 1:
        found = "no credential" if not matches else "more than one credential"
        raise ConfigError(f"{found} in {path} has id {credential_id!r}; see jigsaw keys credentials")
    data["credentials"] = [e for e in data["credentials"] if e is not matches[0]]
    _write_file(path, data)
    return {"id": wanted[:12], "org_id": str(matches[0].get("org_id")), "role": str(matches[0].get("role"))}


def add_credential(path: Path, org_id: str, role: str, label: str = "") -> str:
    """Add a credential to a credentials file (created 0600 if missing); returns the new token.

    Raises:
        ConfigError: the role is unknown or the file is malformed.
    """
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    data: dict[str, Any] = _read_file(path) if path.exists() else {"credentials": []}
    token = new_token()
    data["credentials"].append({"token_sha256": hash_token(token), "org_id": org_id, "role": role, "label": label})
    _write_file(path, data)
    return token
