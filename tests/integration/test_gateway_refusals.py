"""Every refusal code over a real HTTP round trip, on the embedded log and on Kafka.

Each test checks the answer (status and code), that nothing reached an agency
topic, and that the refusal is in the rejection topic.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastavro import parse_schema, schemaless_writer

from broker.codec import from_json
from broker.envelope import encode_envelope, sign
from broker.envelope.batch import encode_batch
from broker.envelope.testing import sample_data
from broker.gateway.guard import GUARD
from broker.schemas import default_catalogue
from tests.integration.gateway_support import MAX_BODY, Gateway, running_gateway

BACKENDS = ["embedded", pytest.param("kafka", marks=pytest.mark.kafka)]


@pytest.fixture(params=BACKENDS)
async def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway on 127.0.0.1 over each log backend."""
    bootstrap = request.getfixturevalue("kafka_bootstrap") if request.param == "kafka" else None
    async with running_gateway(request.param, tmp_path, bootstrap) as gw:
        yield gw


def _zigzag(n: int) -> bytes:
    raw, out = (n << 1) ^ (n >> 63), bytearray()
    while raw > 0x7F:
        out.append((raw & 0x7F) | 0x80)
        raw >>= 7
    out.append(raw)
    return bytes(out)


async def test_forged_signature(gateway: Gateway) -> None:
    """An envelope with a made-up signature is refused as signature_invalid and recorded."""
    marks = await gateway.mark()
    env = gateway.build().with_signature(os.urandom(64))
    status, body = await gateway.post(encode_envelope(env))
    assert (status, body["error"]) == (403, "signature_invalid")
    await gateway.assert_refused(marks, "signature_invalid", [env.event_id])


async def test_key_of_another_org(gateway: Gateway) -> None:
    """POLICE-WYP's event signed with GP-B83001's key is refused as signature_invalid."""
    marks = await gateway.mark()
    env = gateway.build(source="POLICE-WYP", signed_by="GP-B83001")
    status, body = await gateway.post(encode_envelope(env))
    assert (status, body["error"]) == (403, "signature_invalid")
    assert "belongs to GP-B83001" in body["message"]
    await gateway.assert_refused(marks, "signature_invalid", [env.event_id])


async def test_revoked_key(gateway: Gateway) -> None:
    """After `keys revoke`, the running gateway refuses the key's new events as key_revoked."""
    record = gateway.keys.records["POLICE-WYP"]
    gateway.store.revoke(record.key_id, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    marks = await gateway.mark()
    env = gateway.build()
    status, body = await gateway.post(encode_envelope(env))
    assert (status, body["error"]) == (403, "key_revoked")
    await gateway.assert_refused(marks, "key_revoked", [env.event_id])


async def test_backdated_signature_after_revocation_is_refused(gateway: Gateway) -> None:
    """A stolen key revoked a second ago cannot sign an event back-dated to before the revocation."""
    record = gateway.keys.records["POLICE-WYP"]
    now = dt.datetime.now(dt.UTC)
    gateway.store.revoke(record.key_id, now - dt.timedelta(seconds=1))
    marks = await gateway.mark()
    env = gateway.build(issued_at=now - dt.timedelta(hours=2), occurred_at=now - dt.timedelta(hours=3))
    status, body = await gateway.post(encode_envelope(env))
    assert (status, body["error"]) == (403, "key_revoked")
    await gateway.assert_refused(marks, "key_revoked", [env.event_id])


async def test_unknown_key(gateway: Gateway) -> None:
    """An envelope naming a key id that is not registered is refused as unknown_key."""
    marks = await gateway.mark()
    env = gateway.build()
    env = sign(
        dataclasses.replace(env, key_id="POLICE-WYP.000000000000"), gateway.keys.signing["POLICE-WYP"].private_key
    )
    status, body = await gateway.post(encode_envelope(env))
    assert (status, body["error"]) == (403, "unknown_key")
    await gateway.assert_refused(marks, "unknown_key", [env.event_id])


async def test_one_flipped_byte(gateway: Gateway) -> None:
    """Flipping one byte inside the signed payload is refused as signature_invalid."""
    marks = await gateway.mark()
    env = gateway.build()
    data = bytearray(encode_envelope(env))
    data[data.index(env.payload) + 10] ^= 0x01
    status, body = await gateway.post(bytes(data))
    assert (status, body["error"]) == (403, "signature_invalid")
    await gateway.assert_refused(marks, "signature_invalid", [env.event_id])


async def test_wrong_publisher_kind(gateway: Gateway) -> None:
    """A GP practice publishing a police incident (its own key, its own credential) is not_permitted."""
    marks = await gateway.mark()
    env = gateway.build("police.domestic_abuse_incident", source="GP-B83001")
    status, body = await gateway.post(encode_envelope(env), org="GP-B83001")
    assert (status, body["error"]) == (403, "not_permitted")
    await gateway.assert_refused(marks, "not_permitted", [env.event_id])


@pytest.mark.parametrize("where", ["top level", "inside a list"])
async def test_invalid_nhs_number(gateway: Gateway, where: str) -> None:
    """An NHS number failing Modulus 11 (the victim's, or a child's in a list) is invalid_nhs_number."""
    marks = await gateway.mark()
    data = sample_data("police.domestic_abuse_incident")
    if where == "top level":
        data["victim"]["nhs_number"] = "9990000019"
    else:
        data["children_in_household"].append({"nhs_number": "999 000 0019", "name": "Child Wrong"})
    env = gateway.build(data=data)
    status, body = await gateway.post(encode_envelope(env))
    assert (status, body["error"]) == (422, "invalid_nhs_number")
    assert ("children_in_household[2]" in body["message"]) is (where == "inside a list")
    await gateway.assert_refused(marks, "invalid_nhs_number", [env.event_id])


async def test_missing_required_field(gateway: Gateway) -> None:
    """A payload written without a required field (summary) is refused as schema_invalid."""
    marks = await gateway.mark()
    schema = default_catalogue().for_type("police.domestic_abuse_incident")
    short = dict(schema.source)
    short["fields"] = [f for f in schema.source["fields"] if f["name"] != "summary"]
    record = from_json(schema, sample_data("police.domestic_abuse_incident"))
    del record["summary"]
    out = io.BytesIO()
    schemaless_writer(out, parse_schema(short), record)
    env = gateway.build()
    env = sign(dataclasses.replace(env, payload=out.getvalue()), gateway.keys.signing["POLICE-WYP"].private_key)
    status, body = await gateway.post(encode_envelope(env))
    assert (status, body["error"]) == (400, "schema_invalid")
    await gateway.assert_refused(marks, "schema_invalid", [env.event_id])


async def test_oversized_body_with_content_length(gateway: Gateway) -> None:
    """A body whose Content-Length is over the limit is refused as payload_too_large before it is read."""
    marks = await gateway.mark()
    status, body = await gateway.post(b"\x00" * (MAX_BODY + 1))
    assert (status, body["error"]) == (413, "payload_too_large")
    await gateway.assert_refused(marks, "payload_too_large")


async def test_oversized_chunked_body(gateway: Gateway) -> None:
    """A chunked body with no length is cut off at the limit and refused as payload_too_large."""
    marks = await gateway.mark()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4 * MAX_BODY // 4096):
            yield b"\x00" * 4096

    status, body = await gateway.post(chunks())
    assert (status, body["error"]) == (413, "payload_too_large")
    await gateway.assert_refused(marks, "payload_too_large")


async def test_avro_bomb_in_a_signed_payload(gateway: Gateway) -> None:
    """A signed payload declaring fifty million children in a few bytes is refused as schema_invalid."""
    marks = await gateway.mark()
    prefix = _zigzag(2) + b"I1" + b"\x02" + _zigzag(10) + b"9990000018" + b"\x00\x00\x00" + b"\x00"
    env = gateway.build()
    env = sign(
        dataclasses.replace(env, payload=prefix + _zigzag(50_000_000)), gateway.keys.signing["POLICE-WYP"].private_key
    )
    status, body = await gateway.post(encode_envelope(env))
    assert (status, body["error"]) == (400, "schema_invalid")
    assert "children_present" in body["message"]
    await gateway.assert_refused(marks, "schema_invalid", [env.event_id])


async def test_avro_bomb_in_the_batch_framing(gateway: Gateway) -> None:
    """A batch body declaring forty million envelopes in five bytes is refused as schema_invalid."""
    marks = await gateway.mark()
    status, body = await gateway.post(_zigzag(40_000_000), path="/v1/events:batch")
    assert (status, body["error"]) == (400, "schema_invalid")
    await gateway.assert_refused(marks, "schema_invalid")


async def test_duplicate_event_id_with_different_content(gateway: Gateway) -> None:
    """An accepted event id re-sent with different bytes is refused as duplicate_event (409)."""
    first = gateway.build()
    status, _ = await gateway.post(encode_envelope(first))
    assert status == 202
    marks = await gateway.mark()
    data = sample_data("police.domestic_abuse_incident")
    data["summary"] = "A different account of the same incident."
    second = gateway.build(data=data, event_id=first.event_id)
    status, body = await gateway.post(encode_envelope(second))
    assert (status, body["error"]) == (409, "duplicate_event")
    await gateway.assert_refused(marks, "duplicate_event", [first.event_id])


async def test_unauthenticated_and_forbidden(gateway: Gateway) -> None:
    """No token or a wrong token is unauthenticated; another org's envelope or a recipient role is forbidden."""
    env = gateway.build()
    body_bytes = encode_envelope(env)
    marks = await gateway.mark()
    assert (await gateway.post(body_bytes, org=None))[0] == 401
    status, body = await gateway.post(body_bytes, token="not-a-token")
    assert (status, body["error"]) == (401, "unauthenticated")
    await gateway.app[GUARD].flush()  # anonymous refusals are summarised per client address
    events, rejections = await gateway.since(marks)
    assert events == []
    [summary] = rejections
    assert summary["error"] == "refusal_summary" and summary["client"] == "127.0.0.1" and summary["count"] == 2
    assert summary["codes"] == {"unauthenticated": 2} and summary["routes"] == {"/v1/events": 2}
    marks = await gateway.mark()
    status, body = await gateway.post(body_bytes, org="GP-B83001")
    assert (status, body["error"]) == (403, "forbidden")
    status, body = await gateway.post(body_bytes, org="RECIPIENT")
    assert (status, body["error"]) == (403, "forbidden")
    await gateway.assert_refused(marks, "forbidden", [env.event_id])


async def test_wrong_content_type(gateway: Gateway) -> None:
    """A JSON body is refused as invalid_request, naming the content types to use."""
    marks = await gateway.mark()
    status, body = await gateway.post(b"{}", content_type="application/json")
    assert (status, body["error"]) == (400, "invalid_request")
    assert "application/vnd.jigsaw.envelope+avro" in body["message"]
    await gateway.assert_refused(marks, "invalid_request")


async def test_garbage_never_crashes_the_gateway(gateway: Gateway) -> None:
    """Random and truncated bodies are refused as schema_invalid and the gateway keeps answering."""
    marks = await gateway.mark()
    valid = encode_envelope(gateway.build())
    for body_bytes in [b"", os.urandom(1), os.urandom(300), valid[:-1], valid + b"\x00", valid[:40]]:
        status, body = await gateway.post(body_bytes)
        assert (status, body["error"]) == (400, "schema_invalid"), body
        status, _ = await gateway.post(encode_batch([body_bytes]), path="/v1/events:batch")
        assert status == 207
    await gateway.assert_refused(marks, "schema_invalid")
    status, _ = await gateway.post(valid)
    assert status == 202
