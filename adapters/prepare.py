"""From rows to signed, checked envelopes: pure (no I/O; the time is passed in).

Each row is mapped by its agency's adapter, each event is signed with the
agency's key under an id derived from the agency's record key, and checked by
``broker.validation.verify``: the very checks the gateway runs (schema, NHS
numbers, dates, permissions), against a registry that holds only the agency's
own public key. A row is all or nothing: if any of its events fails, none of
them goes, and the row is refused with its number and the reason.

A record that appears twice in one file with the same content is sent once; with
different content, the later row is refused (a changed record needs a new version).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from typing import Any

from adapters.base import Adapter, RecordKey, Row, RowError, event_id
from adapters.files import Unreadable
from broker.client import build_envelope
from broker.envelope.keys import KeyRecord, KeyRegistry, SigningKey
from broker.envelope.model import Envelope, to_millis
from broker.errors import ConfigError, Refusal
from broker.schemas import Catalogue, default_catalogue
from broker.validation import verify

__all__ = ["Preparation", "Prepared", "RowRefusal", "check_key", "own_registry", "prepare"]

_KEY_VALID_FROM = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class Prepared:
    """One signed, checked envelope and the row and record it comes from."""

    row: int
    record: RecordKey
    envelope: Envelope


@dataclasses.dataclass(frozen=True, slots=True)
class RowRefusal:
    """Why a row (or one of its events) did not go: a stable code and a message a person can act on."""

    row: int
    error: str
    message: str
    record: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The refusal as reported (never the row's contents)."""
        out: dict[str, Any] = {"row": self.row, "error": self.error, "message": self.message}
        if self.record is not None:
            out["record"] = self.record
        return out


@dataclasses.dataclass(frozen=True, slots=True)
class Preparation:
    """What a file's rows became: envelopes to send, refused rows, and repeats left out."""

    rows: int
    events: tuple[Prepared, ...]
    refused: tuple[RowRefusal, ...]
    repeats: int


def check_key(adapter: Adapter, key: SigningKey) -> None:
    """Refuse a key of the wrong kind of organisation for this adapter.

    Raises:
        ConfigError: e.g. a police key given to the GP adapter.
    """
    if key.kind != adapter.org_kind:
        raise ConfigError(
            f"the key {key.key_id} signs for {key.org_id}, a {key.kind} organisation; "
            f"the {adapter.name} adapter needs a key of a {adapter.org_kind} organisation"
        )


def own_registry(key: SigningKey) -> KeyRegistry:
    """A registry holding only the agency's own public key: what the local checks verify against."""
    record = KeyRecord(key.key_id, key.org_id, key.kind, key.public_key, _KEY_VALID_FROM)
    return KeyRegistry([record])


def _content(env: Envelope) -> str:
    parts = (env.event_type.encode(), str(to_millis(env.occurred_at)).encode(), env.consent.encode(), env.payload)
    return hashlib.sha256(b"\x00".join(parts)).hexdigest()


def _no_publisher(original_event_id: str) -> str | None:
    return None  # adapters publish no retractions; nothing else asks


def _map_row(
    adapter: Adapter, row: Row, key: SigningKey, now: dt.datetime, registry: KeyRegistry, catalogue: Catalogue
) -> list[Prepared]:
    """The row's envelopes, each checked as the gateway will check it; raises RowError or a Refusal."""
    out: list[Prepared] = []
    for mapped in adapter.map_row(row, key.org_id):
        try:
            env = build_envelope(
                mapped.event_type,
                mapped.data,
                source=key.org_id,
                key=key,
                occurred_at=mapped.occurred_at,
                issued_at=now,
                event_id=event_id(key.org_id, mapped.record),
                consent=row.get("consent") or "not_sought",
                catalogue=catalogue,
            )
            verify(env, keys=registry, now=now, publisher_of=_no_publisher, catalogue=catalogue)
        except Refusal as exc:
            exc.evidence["record"] = mapped.record.ref
            raise
        out.append(Prepared(row.number, mapped.record, env))
    return out


def prepare(
    adapter: Adapter,
    items: Iterable[Row | Unreadable],
    key: SigningKey,
    *,
    now: dt.datetime,
    catalogue: Catalogue | None = None,
    progress: Callable[[int], None] | None = None,
) -> Preparation:
    """Map, sign and check every row; the envelopes to send and the rows refused.

    Args:
        adapter: the agency's mapping.
        items: the export's rows (and records that could not be read).
        key: the agency's signing key (its org id is the source).
        now: the signing time (``issued_at``), also the time the checks use.
        progress: called with the number of rows done after each row.
    """
    check_key(adapter, key)
    catalogue = catalogue or default_catalogue()
    registry = own_registry(key)
    events: list[Prepared] = []
    refused: list[RowRefusal] = []
    seen: dict[str, tuple[int, str]] = {}
    rows = repeats = 0
    for item in items:
        rows += 1
        if progress is not None:
            progress(rows)
        if isinstance(item, Unreadable):
            refused.append(RowRefusal(item.number, "row_unreadable", item.message))
            continue
        try:
            prepared = _map_row(adapter, item, key, now, registry, catalogue)
        except RowError as exc:
            refused.append(RowRefusal(item.number, exc.code, exc.message))
            continue
        except Refusal as exc:
            refused.append(RowRefusal(item.number, exc.code, exc.message, exc.evidence.get("record")))
            continue
        fresh: list[Prepared] = []
        conflict: RowRefusal | None = None
        for p in prepared:
            earlier = seen.get(p.envelope.event_id)
            if earlier is None:
                fresh.append(p)
            elif earlier[1] != _content(p.envelope):
                conflict = RowRefusal(
                    item.number,
                    "conflicting_record",
                    f"record {p.record.ref} already appears at row {earlier[0]} with different content; "
                    "give a changed record a new version",
                    p.record.ref,
                )
                break
        if conflict is not None:
            refused.append(conflict)
            continue
        repeats += len(prepared) - len(fresh)
        for p in fresh:
            seen[p.envelope.event_id] = (p.row, _content(p.envelope))
        events.extend(fresh)
    return Preparation(rows, tuple(events), tuple(refused), repeats)
