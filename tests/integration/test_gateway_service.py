"""What the gateway accepts, how it answers re-sends and batches, and its health, metrics and API description."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broker import topics
from broker.client import SendResult
from broker.envelope import encode_envelope
from broker.envelope.batch import encode_batch
from broker.envelope.testing import sample_data
from broker.observability import read_sample
from broker.store.migrations import latest_version
from broker.validation import event_of, subject_key
from tests.integration.gateway_support import ADMIN_TOKEN, Gateway, running_gateway

BACKENDS = ["embedded", pytest.param("kafka", marks=pytest.mark.kafka)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """A backend name and, for Kafka, the broker's address."""
    bootstrap = request.getfixturevalue("kafka_bootstrap") if request.param == "kafka" else None
    return request.param, bootstrap


@pytest.fixture
async def gateway(backend: tuple[str, str | None], tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway on 127.0.0.1 over each log backend."""
    async with running_gateway(backend[0], tmp_path, backend[1]) as gw:
        yield gw


async def test_accepted_event_lands_in_its_agency_topic(gateway: Gateway) -> None:
    """A valid event is answered 202 with its position and appended once, keyed by subject, with headers."""
    marks = await gateway.mark()
    async with gateway.client("POLICE-WYP") as client:
        env = client.build("police.domestic_abuse_incident", sample_data("police.domestic_abuse_incident"))
        result = await client.send(env)
    assert result.status == 202
    assert result.body["event_id"] == env.event_id
    assert result.body["topic"] == topics.INPUT
    events, rejections = await gateway.since(marks)
    assert rejections == []
    [record] = events
    assert (record.topic, record.partition, record.offset) == (
        result.body["topic"],
        result.body["partition"],
        result.body["offset"],
    )
    assert record.value == encode_envelope(env)
    assert record.key == subject_key(event_of(env)).encode()
    assert record.header("event_type") == b"police.domestic_abuse_incident"
    assert record.header("event_id") == env.event_id.encode()
    assert record.header("source") == b"POLICE-WYP"


async def test_resending_an_accepted_event_answers_200_and_appends_nothing(gateway: Gateway) -> None:
    """The same event id with the same bytes gets 200 and the original position; the log holds it once."""
    env = gateway.build("gp.registration")
    status, first = await gateway.post(encode_envelope(env), org="GP-B83001")
    assert status == 202
    marks = await gateway.mark()
    status, again = await gateway.post(encode_envelope(env), org="GP-B83001")
    assert status == 200
    assert {k: again[k] for k in ("event_id", "topic", "partition", "offset")} == {
        k: first[k] for k in ("event_id", "topic", "partition", "offset")
    }
    assert await gateway.since(marks) == ([], [])


async def test_concurrent_resends_are_appended_once(gateway: Gateway) -> None:
    """Ten concurrent posts of one event give one 202 and nine 200s, and one record."""
    env = gateway.build()
    marks = await gateway.mark()
    answers = await asyncio.gather(*(gateway.post(encode_envelope(env)) for _ in range(10)))
    assert sorted(status for status, _ in answers) == [200] * 9 + [202]
    events, _ = await gateway.since(marks)
    assert len(events) == 1


async def test_the_id_index_is_rebuilt_from_the_log_on_start(backend: tuple[str, str | None], tmp_path: Path) -> None:
    """After a restart, re-sending an event accepted before it is answered 200 with its original position."""
    async with running_gateway(backend[0], tmp_path, backend[1]) as gw:
        env = gw.build("csc.child_protection_plan")
        status, first = await gw.post(encode_envelope(env), org="CSC-BRADFORD")
        assert status == 202
    async with running_gateway(backend[0], tmp_path, backend[1]) as gw:
        marks = await gw.mark()
        status, again = await gw.post(encode_envelope(env), org="CSC-BRADFORD")
        assert status == 200 and again["offset"] == first["offset"] and again["topic"] == first["topic"]
        assert await gw.since(marks) == ([], [])


async def test_retraction_by_the_publisher_is_accepted(gateway: Gateway) -> None:
    """record.retracted of an accepted event is accepted from its publisher and refused from anyone else."""
    original = gateway.build()
    assert (await gateway.post(encode_envelope(original)))[0] == 202
    data = {"original_event_id": original.event_id, "reason": "entered on the wrong child"}
    status, body = await gateway.post(
        encode_envelope(gateway.build("record.retracted", data, source="GP-B83001")), org="GP-B83001"
    )
    assert (status, body["error"]) == (403, "not_permitted")
    status, _ = await gateway.post(encode_envelope(gateway.build("record.retracted", data, source="POLICE-WYP")))
    assert status == 202


async def test_batch_gives_one_result_per_envelope(gateway: Gateway) -> None:
    """A batch of good, forged, re-sent and wrong-kind envelopes gets 207 with each item's own answer."""
    good = gateway.build()
    forged = gateway.build().with_signature(bytes(64))
    wrong_kind = gateway.build("gp.registration", source="POLICE-WYP")
    marks = await gateway.mark()
    async with gateway.client("POLICE-WYP") as client:
        results = await client.send_batch([good, forged, good, wrong_kind, gateway.build()])
    assert [r.status for r in results] == [202, 403, 200, 403, 202]
    assert [r.error for r in results] == [None, "signature_invalid", None, "not_permitted", None]
    assert results[2].body["offset"] == results[0].body["offset"]
    events, rejections = await gateway.since(marks)
    assert len(events) == 2
    assert sorted(r["error"] for r in rejections) == ["not_permitted", "signature_invalid"]
    assert {r["event_id"] for r in rejections} == {forged.event_id, wrong_kind.event_id}


async def test_batch_over_the_item_limit_is_refused_whole(gateway: Gateway) -> None:
    """A batch with more envelopes than JIGSAW_MAX_BATCH is refused as a whole (nothing appended)."""
    marks = await gateway.mark()
    body = encode_batch([encode_envelope(gateway.build())] * 51)
    status, answer = await gateway.post(body, path="/v1/events:batch")
    assert (status, answer["error"]) == (400, "schema_invalid")
    await gateway.assert_refused(marks, "schema_invalid")


async def test_healthz_reports_the_log_backend(gateway: Gateway, backend: tuple[str, str | None]) -> None:
    """GET /healthz is 200 ok to anyone; an admin also sees the log's and the store's status, with no file path."""
    async with gateway.session.get(gateway.base_url + "/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with gateway.session.get(gateway.base_url + "/healthz", headers=headers) as response:
        assert response.status == 200
        body = await response.json()
    assert body["status"] == "ok" and body["log"]["backend"] == backend[0] and body["log"]["ok"] is True
    assert "path" not in body["log"] and "/" not in json.dumps(body["log"])
    assert body["store"] == {"backend": "sqlite", "ok": True, "schema": latest_version()}


async def test_metrics_count_accepted_refused_and_requests(gateway: Gateway) -> None:
    """GET /metrics is Prometheus text counting acceptances, refusals by code and requests."""
    await gateway.post(encode_envelope(gateway.build()))
    await gateway.post(b"junk")
    async with gateway.session.get(gateway.base_url + "/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    assert read_sample(text, "jigsaw_events_accepted_total", event_type="police.domestic_abuse_incident") == 1
    assert read_sample(text, "jigsaw_events_refused_total", code="schema_invalid") == 1
    assert read_sample(text, "jigsaw_http_requests_total", method="POST", route="/v1/events", status="202") == 1
    assert "# TYPE jigsaw_http_request_duration_seconds histogram" in text
    assert "jigsaw_log_up{" in text


async def test_openapi_describes_the_routes(gateway: Gateway) -> None:
    """GET /v1/openapi.json lists the event routes and the error codes."""
    async with gateway.session.get(gateway.base_url + "/v1/openapi.json") as response:
        doc = await response.json()
    assert doc["openapi"].startswith("3.1")
    assert {"/v1/events", "/v1/events:batch", "/healthz", "/metrics"} <= set(doc["paths"])
    assert "invalid_nhs_number" in doc["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
    served = {
        resource.canonical for resource in gateway.app.router.resources() if resource.canonical.startswith("/")
    }
    pages = {"/", "/web"}  # the web pages for people (broker/web, HTML at /web/...) are not the machine API
    assert served - pages <= set(doc["paths"]), "every route the app serves is described"


async def test_client_publish_and_send_result(gateway: Gateway) -> None:
    """JigsawClient.publish builds, signs and sends in one call."""
    async with gateway.client("MIDWIFERY-BTHFT") as client:
        result = await client.publish("midwifery.pregnancy_booked", sample_data("midwifery.pregnancy_booked"))
    assert isinstance(result, SendResult) and result.accepted and result.error is None
