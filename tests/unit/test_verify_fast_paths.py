"""The submission check's fast paths agree with the full paths they shortcut.

``read_canonical`` (the envelope in one pass, no re-encoding) must give exactly the envelope
``decode_envelope``'s full path gives, and ``verify`` and ``event_of`` must accept, refuse (same
code, message and evidence) and decode exactly as they do with the fast path turned off: on
valid envelopes of every event type, on envelopes with unusual values, and on malformed bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker import validation
from broker.codec import DEFAULT_LIMITS, Limits
from broker.envelope import model
from broker.envelope.model import Envelope, decode_envelope, encode_envelope, read_canonical
from broker.envelope.testing import SAMPLE_ORGS, make_keys, publisher_for, signed_sample
from broker.errors import JigsawError
from broker.schemas import default_catalogue
from broker.validation import Rules, event_of, verify
from tests.unit.test_envelope_properties import byte_mutations

NOW = dt.datetime(2022, 1, 2, 22, 0, tzinfo=dt.UTC)
KEYS = make_keys()
CATALOGUE = default_catalogue()


@contextlib.contextmanager
def full_paths() -> Iterator[None]:
    """Every fast path off: what the check did before they existed."""
    with mock.patch.object(model, "read_canonical", lambda *_args, **_kw: None):
        yield


def outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    """What a call gave: its value, or the refusal's class, code, message and evidence."""
    try:
        return ("ok", call())
    except JigsawError as exc:
        return ("refused", type(exc), exc.code, exc.message, exc.evidence)


def same_both_ways(call: Callable[[], Any]) -> tuple[Any, ...]:
    fast = outcome(call)
    with full_paths():
        full = outcome(call)
    assert fast == full
    return fast


def _envelope(event_type: str, index: int, **changes: Any) -> Envelope:
    env = signed_sample(event_type, index, KEYS, now=NOW)
    return dataclasses.replace(env, **changes) if changes else env


def _check(data: bytes, rules: Rules = Rules()) -> tuple[Any, ...]:
    def run() -> Any:
        accepted = verify(
            data,
            keys=KEYS.registry,
            now=NOW,
            publisher_of=lambda _id: publisher_for("record.retracted"),
            org_kind=SAMPLE_ORGS.get,
            catalogue=CATALOGUE,
            rules=rules,
        )
        return accepted.envelope, accepted.event, accepted.key

    return same_both_ways(run)


def test_the_fast_reader_takes_the_current_envelope_schema() -> None:
    """If envelope.avsc changes, the fast reader must be updated with it (it would silently stand aside)."""
    data = encode_envelope(_envelope("gp.registration", 1))
    fast = read_canonical(data, CATALOGUE.envelope)
    with full_paths():
        assert fast is not None
        assert fast == decode_envelope(data)


@pytest.mark.parametrize("event_type", CATALOGUE.event_types)
def test_valid_envelopes_verify_and_decode_the_same(event_type: str) -> None:
    for index in range(5):
        data = encode_envelope(_envelope(event_type, index))
        assert read_canonical(data, CATALOGUE.envelope) is not None
        checked = _check(data)
        assert event_type == "record.retracted" or checked[0] == "ok", checked
        same_both_ways(lambda data=data: event_of(data, catalogue=CATALOGUE))  # type: ignore[misc]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event_id=st.text(max_size=40),
    source=st.sampled_from([*SAMPLE_ORGS, "", "ÉLAN-ORG"]),
    key_id=st.text(max_size=30),
    occurred_ms=st.integers(-62_135_596_800_000, 253_402_300_799_999),
    issued_ms=st.integers(-62_135_596_800_000, 253_402_300_799_999),
    lawful_basis=st.text(max_size=120),
    consent=st.sampled_from(model.CONSENT_VALUES),
    signature=st.binary(max_size=70),
)
def test_unusual_values_decode_the_same(**fields: Any) -> None:
    """Any encodable envelope: the fast reader gives the full decoder's envelope, or stands aside."""
    occurred, issued = (
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=fields.pop(name))
        for name in ("occurred_ms", "issued_ms")
    )
    env = dataclasses.replace(_envelope("gp.registration", 2), occurred_at=occurred, issued_at=issued, **fields)
    try:
        data = encode_envelope(env)
    except JigsawError:
        return  # a value the envelope cannot carry (a lone surrogate)
    fast = read_canonical(data, CATALOGUE.envelope)
    assert fast is not None
    with full_paths():
        assert fast == decode_envelope(data) == env
    _check(data)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(byte_mutations())
def test_mutated_bytes_are_refused_the_same(pair: tuple[bytes, bytes]) -> None:
    _, mutated = pair
    fast = read_canonical(mutated, CATALOGUE.envelope)
    if fast is not None:
        with full_paths():
            assert outcome(lambda: decode_envelope(mutated)) == ("ok", fast)
    _check(mutated)
    same_both_ways(lambda: event_of(mutated, catalogue=CATALOGUE))


def _over_long_first_length(data: bytes) -> bytes:
    """The same envelope with event_id's length written in two bytes instead of one."""
    assert data[0] < 0x80
    return bytes([data[0] | 0x80, 0x00]) + data[1:]


@pytest.mark.parametrize(
    "limits",
    [DEFAULT_LIMITS, Limits(max_string=20), Limits(max_bytes=60), Limits(max_depth=0), Limits(max_items=0)],
)
def test_non_canonical_and_over_limit_envelopes_are_refused_the_same(limits: Limits) -> None:
    good = encode_envelope(_envelope("police.domestic_abuse_incident", 3))
    over_long = _over_long_first_length(good)
    invalid_utf8 = good[:1] + b"\xff" + good[2:]
    for data in (good, over_long, invalid_utf8, good + b"\x00", good[:-1], b"", b"\x00" * 40):
        assert read_canonical(over_long, CATALOGUE.envelope, limits) is None
        _check(data, Rules(limits=limits))
    assert _check(over_long)[3] == "the envelope bytes are not in canonical Avro form"


def _old_is_uuid(text: str) -> bool:
    """The check as it was written before the regular expression: parse, print, compare."""
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


_NEAR_UUIDS = st.builds(
    lambda u, how: how(str(u)),
    st.uuids(),
    st.sampled_from(
        [
            str,
            str.upper,
            lambda s: s.replace("-", ""),
            lambda s: "{" + s + "}",
            lambda s: "urn:uuid:" + s,
            lambda s: s + "\n",
            lambda s: " " + s,
            lambda s: s[:8] + "_" + s[9:],
            lambda s: s.replace("1", "\u0661"),  # an Arabic-Indic digit one
            lambda s: s[:-1],
        ]
    ),
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(_NEAR_UUIDS, st.text(max_size=40)))
def test_the_uuid_rule_is_the_parse_and_print_rule(text: str) -> None:
    assert validation._is_uuid(text) == _old_is_uuid(text)
