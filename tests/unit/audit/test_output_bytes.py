"""The audit's fast encoding of an output writes the router's exact bytes, or falls back to them."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.audit.verify import output_bytes
from broker.routing.model import Notification
from broker.wire import encode_json
from tests.unit.routing.test_model_json import sample_decision, sample_notification

_text = st.text(st.characters(codec="utf-8"), max_size=40)  # every code point, controls and U+2028 included
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=20,
)
_times = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC))


def _notification(content: dict[str, object], at: dt.datetime, reason: str) -> Notification:
    return dataclasses.replace(
        sample_notification(), content=content, at=at, ack_by=at + dt.timedelta(days=1), reason=reason
    )


@settings(max_examples=300, deadline=None)
@given(content=st.dictionaries(_text, _json, max_size=6), at=_times, reason=_text)
def test_a_notification_is_encoded_exactly_as_the_router_writes_it(
    content: dict[str, object], at: dt.datetime, reason: str
) -> None:
    note = _notification(content, at, reason)
    assert output_bytes(note) == encode_json(note.to_dict())


def test_a_decision_is_encoded_exactly_as_the_router_writes_it() -> None:
    decision = dataclasses.replace(sample_decision(), at=dt.datetime(2024, 3, 1, 8, 0, 0, 250_000, tzinfo=dt.UTC))
    assert output_bytes(decision) == encode_json(decision.to_dict())


def test_a_value_the_fast_encoder_refuses_falls_back_to_the_router_encoding() -> None:
    huge = 2**70  # beyond 64 bits: orjson refuses it, the json module writes it
    note = _notification({"count": huge}, dt.datetime(2024, 3, 1, tzinfo=dt.UTC), "why")
    assert output_bytes(note) == encode_json(note.to_dict())
    assert b"1180591620717411303424" in output_bytes(note)


def test_every_field_is_encoded() -> None:
    note = _notification({"a": 1}, dt.datetime(2024, 3, 1, tzinfo=dt.UTC), "why")
    for field in dataclasses.fields(Notification):
        assert f'"{field.name}":'.encode() in output_bytes(note)
