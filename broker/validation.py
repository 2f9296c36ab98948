"""The one check every submission passes, live (the gateway) or simulated (``jigsaw simulate``).

``verify`` takes envelope bytes (or an ``Envelope``), the key registry, the
time, and ``publisher_of(event_id)`` for retractions, and either returns the
accepted event or raises a ``Refusal`` with a stable code. In order:

1. the bytes are one canonical envelope (``schema_invalid``);
2. the key exists (``unknown_key``), speaks for ``source`` (``signature_invalid``:
   a key of another organisation), was valid at ``issued_at`` (``unknown_key``
   before ``valid_from``) and is not revoked at ``issued_at`` or at ``now``, the
   receiving time (``key_revoked``): a back-dated ``issued_at`` does not revive
   a revoked key, and replay, which passes the record's timestamp as ``now``,
   judges the same way;
3. the signature is valid (``signature_invalid``);
4. ``issued_at`` is no later than ``now`` plus a small skew and no older than
   ``max_issue_age`` (a stolen revoked key cannot back-date into validity for
   long), ``occurred_at`` is no later than ``issued_at`` plus the skew;
5. the fingerprint is a known schema of ``event_type`` and the payload decodes
   (``schema_invalid``); every string is within its field's length and holds no
   control character or bidirectional override it may not (``freetext.py``:
   ``schema_invalid`` naming the field);
6. every PersonRef has an NHS number or a local id (``schema_invalid``), every
   NHS number passes Modulus 11 (``invalid_nhs_number``), dates are sane;
7. the key's organisation kind may publish this type, an assignment comes from
   the assigned organisation or a CSC, and only the original's publisher may
   retract it (``permissions.py``: ``not_permitted``);
8. every OrgId in the data names a directory organisation of the kind its
   field implies (``unknown_organisation``), when the directory is given.

It is pure: no I/O, no clock. Refusals carry ``event_id`` and ``source`` (once
known) in their evidence for the rejection record.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from broker.codec import DEFAULT_LIMITS, Limits, decode_payload
from broker.envelope.keys import KeyRecord, KeyRegistry
from broker.envelope.model import CONSENT_VALUES, Envelope, decode_envelope
from broker.envelope.signing import signature_valid
from broker.errors import (
    InvalidNhsNumber,
    KeyRevoked,
    Refusal,
    SchemaInvalid,
    SignatureInvalid,
    UnknownKey,
)
from broker.freetext import check_string, check_text
from broker.model import Event
from broker.nhs import is_valid_nhs_number, normalise_nhs_number
from broker.permissions import OrgKindOf, PublisherOf, check_organisations, check_publisher
from broker.schemas import Catalogue, default_catalogue

__all__ = [
    "DEFAULT_RULES",
    "Accepted",
    "OrgKindOf",
    "PublisherOf",
    "Rules",
    "event_of",
    "subject_key",
    "validate",
    "verify",
]

_ONE_DAY = dt.timedelta(days=1)
_UUID = re.compile("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclasses.dataclass(frozen=True, slots=True)
class Rules:
    """Tolerances of the checks (frozen; tests and the simulator may pass their own)."""

    clock_skew: dt.timedelta = dt.timedelta(minutes=5)
    max_issue_age: dt.timedelta = dt.timedelta(days=1)
    earliest: dt.date = dt.date(1900, 1, 1)  # no date or time before this
    max_future: dt.timedelta = dt.timedelta(days=3 * 366)  # no payload date further ahead of issued_at
    limits: Limits = DEFAULT_LIMITS


DEFAULT_RULES = Rules()


@dataclasses.dataclass(frozen=True, slots=True)
class Accepted:
    """A submission that passed every check."""

    envelope: Envelope
    event: Event
    key: KeyRecord

    @property
    def kind(self) -> str:
        """The publishing organisation's kind (it picks the events topic)."""
        return self.key.kind


def _check_key(env: Envelope, keys: KeyRegistry, now: dt.datetime, checked: tuple[bytes, bool] | None) -> KeyRecord:
    key = keys.get(env.key_id)
    if key is None:
        raise UnknownKey(f"no key {env.key_id!r} is registered; ask the partnership to register your public key")
    if key.org_id != env.source:
        raise SignatureInvalid(
            f"key {env.key_id} belongs to {key.org_id}, not to the source {env.source}: sign with your own key"
        )
    if env.issued_at < key.valid_from:
        raise UnknownKey(f"key {env.key_id} is not valid before {key.valid_from.isoformat()}")
    # Judged as the registry stands on receipt too: a back-dated issued_at does not revive a revoked key.
    if key.revoked_at is not None and (env.issued_at >= key.revoked_at or now >= key.revoked_at):
        raise KeyRevoked(
            f"key {env.key_id} was revoked at {key.revoked_at.isoformat()}; sign with a current key of {key.org_id}"
        )
    if checked is not None and checked[0] == key.public_key:
        valid = checked[1]
    else:
        valid = signature_valid(env, key.verifier())
    if not valid:
        raise SignatureInvalid("the signature does not match the envelope: it was altered or signed with another key")
    return key


def _check_times(env: Envelope, now: dt.datetime, rules: Rules) -> None:
    if env.issued_at > now + rules.clock_skew:
        raise SchemaInvalid(f"issued_at {env.issued_at.isoformat()} is in the future; check the sender's clock")
    if env.issued_at < now - rules.max_issue_age:
        raise SchemaInvalid(
            f"issued_at {env.issued_at.isoformat()} is more than {rules.max_issue_age} old; sign it again"
        )
    if env.occurred_at > env.issued_at + rules.clock_skew:
        raise SchemaInvalid("occurred_at is after issued_at: an event cannot be signed before it happened")
    if env.occurred_at.date() < rules.earliest:
        raise SchemaInvalid(f"occurred_at {env.occurred_at.date()} is before {rules.earliest}")


def _is_uuid(text: str) -> bool:
    """True for a lower-case hyphenated UUID: exactly the strings ``str(uuid.UUID(text)) == text`` holds for."""
    return _UUID.fullmatch(text) is not None


def _check_fields(env: Envelope) -> None:
    if not _is_uuid(env.event_id):
        raise SchemaInvalid(f"event_id {env.event_id[:64]!r} is not a lower-case hyphenated UUID")
    if not env.source or not env.lawful_basis:
        raise SchemaInvalid("source and lawful_basis must not be empty")
    if env.consent not in CONSENT_VALUES:
        raise SchemaInvalid(f"consent must be one of {', '.join(CONSENT_VALUES)}")
    check_string(env.lawful_basis, "lawful_basis", "lawful_basis")


@dataclasses.dataclass(frozen=True, slots=True)
class _Bounds:
    earliest: dt.date
    latest: dt.date  # no payload date after this
    born_by: dt.date  # no date of birth after this


_WALKED = (dict, list, dt.date)  # what may hold a PersonRef or be a date


def _plausible(value: Any, bounds: _Bounds) -> bool:
    """True for a date (or time) within the bounds; the common case, checked without building its path."""
    if not isinstance(value, dt.date):
        return False
    day = value.date() if isinstance(value, dt.datetime) else value
    return bounds.earliest <= day <= bounds.latest


def _walk_people(value: Any, path: str, bounds: _Bounds) -> None:
    """Check every PersonRef and date in freshly decoded data, normalising NHS numbers in place."""
    if isinstance(value, dict):
        if "nhs_number" in value and "local_id" in value:
            _person(value, path, bounds)
            return
        for key, item in value.items():
            if isinstance(item, _WALKED) and not _plausible(item, bounds):
                _walk_people(item, f"{path}.{key}" if path else key, bounds)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if not _plausible(item, bounds):
                _walk_people(item, f"{path}[{index}]", bounds)
    elif isinstance(value, dt.date):
        day = value.date() if isinstance(value, dt.datetime) else value
        if not bounds.earliest <= day <= bounds.latest:
            raise SchemaInvalid(f"field {path!r}: the date {day} is not plausible", field=path)


def _person(ref: dict[str, Any], path: str, bounds: _Bounds) -> None:
    nhs = ref.get("nhs_number")
    if nhs is not None:
        nhs = ref["nhs_number"] = normalise_nhs_number(nhs)
        if not is_valid_nhs_number(nhs):
            raise InvalidNhsNumber(
                f"field '{path}.nhs_number' is not a valid NHS number (10 digits, Modulus 11 check digit)",
                field=f"{path}.nhs_number",
            )
    if not nhs and not ref.get("local_id"):
        raise SchemaInvalid(f"field {path!r}: a person needs an nhs_number or a local_id", field=path)
    born = ref.get("date_of_birth")
    if isinstance(born, dt.date) and born > bounds.born_by:
        raise SchemaInvalid(f"field '{path}.date_of_birth' is in the future", field=f"{path}.date_of_birth")
    for key, item in ref.items():
        if isinstance(item, _WALKED) and not _plausible(item, bounds):
            _walk_people(item, f"{path}.{key}", bounds)


def _check_payload(env: Envelope, data: dict[str, Any], rules: Rules) -> dict[str, Any]:
    if env.event_type == "challenge.raised" and not 1 <= int(data.get("level", 0)) <= 4:
        raise SchemaInvalid("field 'level' must be 1 to 4 (the escalation stage)", field="level")
    if env.event_type == "record.retracted":
        if not _is_uuid(str(data.get("original_event_id", ""))):
            raise SchemaInvalid("field 'original_event_id' is not a lower-case hyphenated UUID")
    check_text(data)
    issued = env.issued_at.date()
    _walk_people(data, "", _Bounds(rules.earliest, (env.issued_at + rules.max_future).date(), issued + _ONE_DAY))
    return data


def verify(
    envelope: bytes | Envelope,
    *,
    keys: KeyRegistry,
    now: dt.datetime,
    publisher_of: PublisherOf,
    org_kind: OrgKindOf | None = None,
    catalogue: Catalogue | None = None,
    rules: Rules = DEFAULT_RULES,
    checked: tuple[bytes, bool] | None = None,
) -> Accepted:
    """Check one submission; the accepted envelope, decoded event and signing key.

    Args:
        envelope: the envelope's Avro bytes as received, or an ``Envelope`` (the simulator).
        keys: the key registry as it stands at ``now``.
        now: the receiving time (the gateway's clock, the simulator's virtual clock).
        publisher_of: the source that published an accepted event id, or None.
        org_kind: the directory as it stands at ``now``: an organisation's kind, or None when it is
            not listed. The intake always passes it; None skips the directory rule, for callers that
            cannot know the directory (an adapter preparing events offline: the gateway checks again).
        checked: (public key, valid) when the signature was already checked under that key (a signature
            worker): the answer stands in for the check if the key registered for ``key_id`` is that key.

    Raises:
        Refusal: ``SchemaInvalid``, ``UnknownKey``, ``KeyRevoked``, ``SignatureInvalid``,
            ``NotPermitted``, ``UnknownOrganisation`` or ``InvalidNhsNumber``, with a message a
            person can act on.
    """
    catalogue = catalogue or default_catalogue()
    env: Envelope | None = None
    try:
        if isinstance(envelope, Envelope):
            env = envelope
        else:
            env = decode_envelope(bytes(envelope), catalogue=catalogue, limits=rules.limits)
        _check_fields(env)
        key = _check_key(env, keys, now, checked)
        _check_times(env, now, rules)
        decoded = decode_payload(catalogue, env.event_type, env.schema_fingerprint, env.payload, rules.limits)
        data = _check_payload(env, decoded, rules)
        check_publisher(env.event_type, env.source, key.kind, data, publisher_of)
        if org_kind is not None:
            check_organisations(env.event_type, data, org_kind)
    except Refusal as exc:
        if env is not None:
            exc.evidence.setdefault("event_id", env.event_id)
            exc.evidence.setdefault("source", env.source)
            exc.evidence.setdefault("event_type", env.event_type)
        raise
    return Accepted(env, _event(env, data), key)


def validate(
    envelope: bytes | Envelope,
    *,
    keys: KeyRegistry,
    now: dt.datetime,
    publisher_of: PublisherOf,
    org_kind: OrgKindOf | None = None,
    catalogue: Catalogue | None = None,
    rules: Rules = DEFAULT_RULES,
) -> Event:
    """``verify``, returning only the decoded ``Event``."""
    accepted = verify(
        envelope,
        keys=keys,
        now=now,
        publisher_of=publisher_of,
        org_kind=org_kind,
        catalogue=catalogue,
        rules=rules,
    )
    return accepted.event


def _event(env: Envelope, data: Mapping[str, Any]) -> Event:
    return Event(
        event_id=env.event_id,
        event_type=env.event_type,
        source=env.source,
        occurred_at=env.occurred_at,
        issued_at=env.issued_at,
        lawful_basis=env.lawful_basis,
        consent=env.consent,
        data=data,
    )


def event_of(envelope: bytes | Envelope, *, catalogue: Catalogue | None = None) -> Event:
    """Decode an envelope already accepted into the log (no signature or permission checks).

    For readers of the events topics (router, auditor); NHS numbers are normalised as ``verify`` does.

    Raises:
        SchemaInvalid: the bytes do not decode.
    """
    catalogue = catalogue or default_catalogue()
    env = envelope if isinstance(envelope, Envelope) else decode_envelope(bytes(envelope), catalogue=catalogue)
    data = decode_payload(catalogue, env.event_type, env.schema_fingerprint, env.payload)
    return _event(env, _normalised(data))


def _normalised(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: _normalised(v) for k, v in value.items()}
        if isinstance(out.get("nhs_number"), str) and "local_id" in out:
            out["nhs_number"] = normalise_nhs_number(out["nhs_number"])
        return out
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    return value


_SUBJECT_FIELDS = ("child", "children", "victim", "mother", "person", "a", "children_present")
_FALLBACK_FIELDS = ("org_id", "challenge_ref", "original_event_id")


def _person_id(ref: Any) -> str | None:
    if type(ref) is dict or isinstance(ref, Mapping):  # a decoded record is a dict: no ABC check
        value = ref.get("nhs_number") or ref.get("local_id")
        return str(value) if value else None
    return None


def subject_key(event: Event) -> str:
    """The log key of an event: its subject person's NHS number or local id (else a stable ref).

    The child for child-centred events, the victim for incidents, the mother for
    pregnancies, the person otherwise; directory entries by org id.
    """
    data = event.data
    for name in _SUBJECT_FIELDS:
        value = data.get(name)
        candidates = value if isinstance(value, list) else [value]
        for ref in candidates:
            found = _person_id(ref)
            if found:
                return found
    for name in _FALLBACK_FIELDS:
        if data.get(name):
            return str(data[name])
    return event.event_id
