"""The key registry: which public key speaks for which organisation, and when.

Each key binds one Ed25519 public key to exactly one OrgId and that org's kind,
with ``valid_from`` and ``revoked_at``. A key is valid at time T when
``valid_from <= T < revoked_at``, so a key revoked today still verifies what it
signed, and Jigsaw received, last year: an auditor replaying history asks
``key_at(key_id, T)``. The intake refuses a key revoked at the moment it
receives an event, so a back-dated ``issued_at`` does not revive it.

On disk (``JIGSAW_KEYS_DIR``, default ``.jigsaw/keys``)::

    <dir>/<key_id>.json            public record (JSON), one per key
    <dir>/private/<key_id>.json    private seed (JSON, mode 0600, dir 0700)

The private file belongs to the agency that signs; the broker needs only the
public records. Files are replaced atomically, so a running gateway that
re-reads the directory never sees half a record.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from broker.errors import ConfigError
from broker.logging import get_logger
from broker.topics import ORG_KINDS

__all__ = [
    "KeyRecord",
    "KeyRegistry",
    "KeyStore",
    "SigningKey",
    "load_signing_key",
    "new_key",
]

_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ORG_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _parse_time(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no zone")
    return moment.astimezone(dt.UTC)


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclasses.dataclass(frozen=True, slots=True)
class KeyRecord:
    """A public key and the one organisation it speaks for."""

    key_id: str
    org_id: str
    kind: str
    public_key: bytes  # 32 raw bytes
    valid_from: dt.datetime
    revoked_at: dt.datetime | None = None

    def valid_at(self, moment: dt.datetime) -> bool:
        """True when the key could sign at ``moment`` (``valid_from <= moment < revoked_at``)."""
        return self.valid_from <= moment and (self.revoked_at is None or moment < self.revoked_at)

    def verifier(self) -> Ed25519PublicKey:
        """The key as a ``cryptography`` object."""
        return _verifier(self.public_key)

    def to_json(self) -> dict[str, Any]:
        """The record as stored on disk and shown by ``jigsaw keys list``."""
        return {
            "key_id": self.key_id,
            "org_id": self.org_id,
            "kind": self.kind,
            "public_key": base64.b64encode(self.public_key).decode("ascii"),
            "valid_from": _iso(self.valid_from),
            "revoked_at": _iso(self.revoked_at) if self.revoked_at else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KeyRecord:
        """Parse a stored record; ValueError when it is malformed."""
        try:
            record = cls(
                key_id=str(data["key_id"]),
                org_id=str(data["org_id"]),
                kind=str(data["kind"]),
                public_key=base64.b64decode(str(data["public_key"]), validate=True),
                valid_from=_parse_time(str(data["valid_from"])),
                revoked_at=_parse_time(str(data["revoked_at"])) if data.get("revoked_at") else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed key record: {exc}") from exc
        if not _KEY_ID.match(record.key_id) or record.kind not in ORG_KINDS or len(record.public_key) != 32:
            raise ValueError(f"malformed key record {record.key_id!r}")
        return record


_VERIFIERS: dict[bytes, Ed25519PublicKey] = {}


def _verifier(raw: bytes) -> Ed25519PublicKey:
    # Parsing a public key costs about as much as a verification: keep them.
    key = _VERIFIERS.get(raw)
    if key is None:
        key = Ed25519PublicKey.from_public_bytes(raw)
        if len(_VERIFIERS) < 100_000:
            _VERIFIERS[raw] = key
    return key


@dataclasses.dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key and whom it signs for. Its repr never shows the key."""

    key_id: str
    org_id: str
    kind: str
    private_key: Ed25519PrivateKey = dataclasses.field(repr=False)

    @property
    def public_key(self) -> bytes:
        """The 32 raw public key bytes."""
        return _raw_public(self.private_key.public_key())

    def to_json(self) -> dict[str, Any]:
        """The private file's content (keep it secret)."""
        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return {
            "key_id": self.key_id,
            "org_id": self.org_id,
            "kind": self.kind,
            "private_key": base64.b64encode(seed).decode("ascii"),
        }


def new_key(
    org_id: str, kind: str, *, valid_from: dt.datetime, seed: bytes | None = None
) -> tuple[KeyRecord, SigningKey]:
    """A fresh key pair for one organisation (pure when ``seed`` is given).

    The key id is ``<org_id>.<first 12 hex digits of the public key's SHA-256>``.

    Raises:
        ConfigError: the org id or kind is not acceptable.
    """
    if not _ORG_ID.match(org_id):
        raise ConfigError(f"org id {org_id!r} must be letters, digits, '-' or '_' (at most 64)")
    if kind not in ORG_KINDS:
        raise ConfigError(f"kind must be one of {', '.join(ORG_KINDS)}, not {kind!r}")
    private = Ed25519PrivateKey.from_private_bytes(seed) if seed is not None else Ed25519PrivateKey.generate()
    public = _raw_public(private.public_key())
    key_id = f"{org_id}.{hashlib.sha256(public).hexdigest()[:12]}"
    record = KeyRecord(key_id, org_id, kind, public, valid_from.astimezone(dt.UTC))
    return record, SigningKey(key_id, org_id, kind, private)


class KeyRegistry:
    """An immutable set of key records, looked up by key id."""

    def __init__(self, records: Iterable[KeyRecord] = ()) -> None:
        self._by_id: dict[str, KeyRecord] = {}
        for record in records:
            if record.key_id in self._by_id:
                raise ConfigError(f"key id {record.key_id} appears twice")
            self._by_id[record.key_id] = record

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[KeyRecord]:
        return iter(sorted(self._by_id.values(), key=lambda r: (r.org_id, r.valid_from, r.key_id)))

    def get(self, key_id: str) -> KeyRecord | None:
        """The record with this id, or None."""
        return self._by_id.get(key_id)

    def key_at(self, key_id: str, moment: dt.datetime) -> KeyRecord | None:
        """The record with this id if it was valid at ``moment``, else None."""
        record = self._by_id.get(key_id)
        return record if record is not None and record.valid_at(moment) else None

    def for_org(self, org_id: str) -> list[KeyRecord]:
        """Every key of one organisation, oldest first."""
        return [r for r in self if r.org_id == org_id]

    def with_records(self, *records: KeyRecord) -> KeyRegistry:
        """A new registry with these records added or replaced (the simulator makes keys this way)."""
        merged = dict(self._by_id)
        merged.update({r.key_id: r for r in records})
        return KeyRegistry(merged.values())


def _write_atomic(path: Path, data: dict[str, Any], mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def load_signing_key(path: Path | str) -> SigningKey:
    """Read a private key file written by ``jigsaw keys new``.

    Raises:
        ConfigError: the file is missing, readable by others, or malformed.
    """
    path = Path(path)
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{path} is readable by other users: chmod 600 it")
        data = json.loads(path.read_text(encoding="utf-8"))
        seed = base64.b64decode(str(data["private_key"]), validate=True)
        return SigningKey(
            str(data["key_id"]),
            str(data["org_id"]),
            str(data["kind"]),
            Ed25519PrivateKey.from_private_bytes(seed),
        )
    except ConfigError:
        raise
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"cannot read the private key {path}: {exc}") from exc


class KeyStore:
    """The registry's directory: the imperative shell around ``KeyRegistry``."""

    def __init__(self, directory: Path | str, *, recheck_seconds: float = 1.0) -> None:
        self.directory = Path(directory)
        self._recheck = recheck_seconds
        self._stamp: tuple[tuple[str, int, int], ...] | None = None
        self._registry = KeyRegistry()
        self._checked_at = float("-inf")

    def private_path(self, key_id: str) -> Path:
        """Where ``save`` puts a key's private file."""
        return self.directory / "private" / f"{key_id}.json"

    def save(self, record: KeyRecord, signing: SigningKey | None = None) -> None:
        """Write a public record (and a private file, 0600, when given)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.directory / f"{record.key_id}.json", record.to_json(), 0o644)
        if signing is not None:
            private_dir = self.directory / "private"
            private_dir.mkdir(mode=0o700, exist_ok=True)
            _write_atomic(self.private_path(record.key_id), signing.to_json(), 0o600)
        self._checked_at = float("-inf")

    def revoke(self, key_id: str, at: dt.datetime) -> KeyRecord:
        """Mark a key revoked from ``at`` on (what it signed before stays valid).

        Raises:
            ConfigError: there is no such key, or it is already revoked.
        """
        record = self.load().get(key_id)
        if record is None:
            raise ConfigError(f"no key {key_id!r} in {self.directory}")
        if record.revoked_at is not None:
            raise ConfigError(f"key {key_id} was already revoked at {_iso(record.revoked_at)}")
        revoked = dataclasses.replace(record, revoked_at=at.astimezone(dt.UTC))
        self.save(revoked)
        return revoked

    def _current_stamp(self) -> tuple[tuple[str, int, int], ...]:
        if not self.directory.is_dir():
            return ()
        entries = []
        for entry in os.scandir(self.directory):
            if entry.name.endswith(".json") and entry.is_file():
                info = entry.stat()
                entries.append((entry.name, info.st_mtime_ns, info.st_size))
        return tuple(sorted(entries))

    def load(self) -> KeyRegistry:
        """The registry as it is on disk now.

        Raises:
            ConfigError: a record is malformed.
        """
        records = []
        for name, _, _ in self._current_stamp():
            path = self.directory / name
            try:
                records.append(KeyRecord.from_json(json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot read the key record {path}: {exc}") from exc
        return KeyRegistry(records)

    def reload(self) -> KeyRegistry:
        """The registry re-read now if the directory changed, whatever the recheck interval (SIGHUP)."""
        self._checked_at = float("-inf")
        return self.current()

    def current(self) -> KeyRegistry:
        """The registry, re-read when the directory changed (checked at most once per ``recheck_seconds``).

        A revocation made with ``jigsaw keys revoke`` reaches a running gateway this way.
        """
        now = time.monotonic()
        if now - self._checked_at >= self._recheck:
            self._checked_at = now
            stamp = self._current_stamp()
            if stamp != self._stamp:
                try:
                    self._registry = self.load()
                except ConfigError as exc:
                    # Keep serving with the last good registry; try again on the next check.
                    get_logger(__name__).warning("key_registry_unreadable", error=exc.message)
                else:
                    self._stamp = stamp
        return self._registry
