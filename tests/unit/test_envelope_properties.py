"""Property tests: no mutation of a signed envelope is accepted, and no bytes crash the decoders."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from broker.codec import decode
from broker.envelope import Envelope, decode_envelope, encode_envelope, sign
from broker.envelope.testing import SAMPLE_ORGS, make_keys, signed_sample
from broker.errors import Refusal, SchemaInvalid
from broker.schemas import default_catalogue
from broker.validation import verify

NOW = dt.datetime(2022, 1, 2, 22, 0, tzinfo=dt.UTC)
KEYS = make_keys()
CATALOGUE = default_catalogue()
EVENT_TYPES = [t for t in CATALOGUE.event_types if t != "record.retracted"]


def _valid(event_type: str, index: int) -> Envelope:
    return signed_sample(event_type, index, KEYS, now=NOW)


VALID = {t: encode_envelope(_valid(t, 1)) for t in EVENT_TYPES}


def _accepted(data: bytes | Envelope) -> bool:
    try:
        verify(data, keys=KEYS.registry, now=NOW, publisher_of=lambda _i: None)
    except Refusal:
        return False
    return True


def test_the_unmutated_envelopes_are_accepted() -> None:
    """The starting points of the property tests are themselves valid."""
    assert all(_accepted(data) for data in VALID.values())


@st.composite
def byte_mutations(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A valid envelope and a different byte string made from it by flips, cuts and insertions."""
    original = VALID[draw(st.sampled_from(EVENT_TYPES))]
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "append"]))
        index = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[index] ^= draw(st.integers(1, 255))
        elif kind == "set" and data:
            data[index] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[index:index] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and data:
            del data[index : index + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del data[index:]
        else:
            data += draw(st.binary(min_size=1, max_size=8))
    return original, bytes(data)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(byte_mutations())
def test_no_byte_mutation_is_accepted(case: tuple[bytes, bytes]) -> None:
    """Flipping, setting, inserting, deleting or appending bytes never yields an accepted envelope."""
    original, mutated = case
    assume(mutated != original)
    assert not _accepted(mutated)


_FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "event_id": st.uuids(version=4).map(str),
    "event_type": st.sampled_from(CATALOGUE.event_types),
    "schema_fingerprint": st.one_of(
        st.binary(min_size=8, max_size=8), st.sampled_from([CATALOGUE.for_type(t).fingerprint for t in EVENT_TYPES])
    ),
    "source": st.sampled_from(list(SAMPLE_ORGS)),
    "key_id": st.sampled_from([r.key_id for r in KEYS.records.values()]),
    "occurred_at": st.datetimes(
        min_value=dt.datetime(2021, 1, 1), max_value=dt.datetime(2022, 1, 2, 22), timezones=st.just(dt.UTC)
    ),
    "issued_at": st.datetimes(
        min_value=dt.datetime(2022, 1, 2), max_value=dt.datetime(2022, 1, 2, 22, 4), timezones=st.just(dt.UTC)
    ),
    "lawful_basis": st.sampled_from(["DPA2018-S1P18", "DPA2018-S8P4", "GDPR-6-1-e"]),
    "consent": st.sampled_from(["given", "refused", "not_sought", "not_required"]),
    "payload": st.one_of(st.binary(max_size=64), st.sampled_from([_valid(t, 2).payload for t in EVENT_TYPES])),
}


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(EVENT_TYPES),
    st.lists(st.sampled_from(sorted(_FIELD_VALUES)), min_size=1, max_size=3, unique=True).flatmap(
        lambda names: st.tuples(*(st.tuples(st.just(n), _FIELD_VALUES[n]) for n in names))
    ),
    st.sampled_from([None, *SAMPLE_ORGS]),
)
def test_no_field_change_is_accepted(
    event_type: str, changes: tuple[tuple[str, Any], ...], resign_as: str | None
) -> None:
    """Changing signed fields, then keeping the signature or re-signing with another org's key, is refused."""
    original = _valid(event_type, 1)
    mutated = dataclasses.replace(original, **dict(changes))
    assume(mutated != original)
    if resign_as is not None:
        assume(resign_as != mutated.source)  # a source re-signing its own event is a new event, not a forgery
        mutated = sign(mutated, KEYS.signing[resign_as].private_key)
    assert not _accepted(mutated)
    try:
        assert not _accepted(encode_envelope(mutated))
    except SchemaInvalid:
        pass  # a value the envelope cannot even carry


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash_the_envelope_decoder(data: bytes) -> None:
    """Any bytes either decode to an envelope or raise SchemaInvalid."""
    try:
        decode_envelope(data)
    except SchemaInvalid:
        pass


@pytest.mark.parametrize("event_type", CATALOGUE.event_types)
@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_a_payload_decoder(event_type: str, data: bytes) -> None:
    """Any bytes either decode under an event schema or raise SchemaInvalid."""
    try:
        decode(CATALOGUE.for_type(event_type), data)
    except SchemaInvalid:
        pass
