"""Schemathesis hooks for fuzzing the gateway (loaded with ``SCHEMATHESIS_HOOKS``; see test_schemathesis.py).

What an OpenAPI document cannot say, these supply: valid signed Avro bodies for
the Avro media types (a fresh event id each time, signed with the sample
publisher's deterministic key, so every positive example is accepted), NHS
numbers with a right Modulus 11 check digit for positive chronology requests,
the id of a notification that is in the inbox for positive inbox requests,
and a credential of the role each path needs (the running gateway's tokens,
``gateway_support.running_gateway``).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from typing import Any

import schemathesis
from hypothesis import strategies as st

from broker.client import build_envelope
from broker.envelope.batch import BATCH_CONTENT_TYPE, ENVELOPE_CONTENT_TYPE, encode_batch
from broker.envelope.model import encode_envelope
from broker.envelope.testing import make_keys, sample_data
from broker.nhs import synthetic_nhs_number
from broker.store.model import encode_cursor
from tests.integration.gateway_support import ADMIN_TOKEN

__all__: list[str] = []

_KEYS = make_keys()
_PUBLISHER = "POLICE-WYP"
_EVENT_TYPE = "police.domestic_abuse_incident"
_TOKENS = {
    "/v1/inbox": "token-recipient",  # HV-BRADFORD-NORTH's recipient credential
    "/healthz": ADMIN_TOKEN,
    "/metrics": ADMIN_TOKEN,
}
_PUBLISHER_TOKEN = f"token-{_PUBLISHER.lower()}"
_CHRONOLOGY = "/v1/children/{nhs_number}/chronology"
_NOTIFICATION = "JIGSAW_FUZZ_NOTIFICATION_ID"  # one notification in the recipient's inbox (the test appends it)


def _envelope(index: int) -> bytes:
    """A valid, freshly signed envelope (new event id: always accepted, never a re-send)."""
    now = dt.datetime.now(dt.UTC)
    env = build_envelope(
        _EVENT_TYPE,
        sample_data(_EVENT_TYPE, index % 5),
        source=_PUBLISHER,
        key=_KEYS.signing[_PUBLISHER],
        occurred_at=now - dt.timedelta(hours=1),
        issued_at=now,
        event_id=str(uuid.uuid4()),
    )
    return encode_envelope(env)


_ENVELOPES = st.integers(min_value=0, max_value=1000).map(_envelope)
schemathesis.openapi.media_type(ENVELOPE_CONTENT_TYPE, _ENVELOPES, aliases=["application/avro"])
schemathesis.openapi.media_type(
    BATCH_CONTENT_TYPE, st.lists(_ENVELOPES, min_size=1, max_size=3).map(lambda items: encode_batch(items))
)


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """Positive requests name what exists: an NHS number with a right check digit, the seeded notification."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    params = case.path_parameters or {}
    if case.operation.path == _CHRONOLOGY:
        seed = sum(ord(c) for c in str(params.get("nhs_number", ""))) % 1000
        case.path_parameters = {**params, "nhs_number": synthetic_nhs_number(seed)}
    elif "notification_id" in params and os.environ.get(_NOTIFICATION):
        case.path_parameters = {**params, "notification_id": os.environ[_NOTIFICATION]}
    query = case.query or {}
    if case.operation.path == "/v1/inbox" and query.get("after") is not None:
        # The cursor is opaque: a positive request carries one of the shape the service gives out.
        seed = sum(ord(c) for c in str(query["after"]))
        case.query = {**query, "after": encode_cursor(seed, f"n-{seed}")}
    return case


@schemathesis.auth(cache_by_key=lambda case, context: case.operation.path)
class _Tokens:
    """The bearer token of the role each path needs."""

    def get(self, case: Any, context: Any) -> str:
        path = case.operation.path
        return next((token for prefix, token in _TOKENS.items() if path.startswith(prefix)), _PUBLISHER_TOKEN)

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
