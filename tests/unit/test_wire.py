"""Records on the log are CloudEvents in the Kafka binding's binary mode, and JSON records say so."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
from pathlib import Path

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event

from broker import topics, wire
from broker.delivery.records import DeliveryRecord, encode_delivery
from broker.envelope.model import decode_envelope
from broker.log import EmbeddedLog, Record
from broker.log.scan import scan
from broker.schemas import default_catalogue
from broker.simulate import load_scenario, run_scenario

SCENARIO = Path(__file__).parents[1] / "scenarios" / "data" / "family-a.json"


def _message(record: Record) -> KafkaMessage:
    assert record.value is not None
    return KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Record]]:
    """The family-a scenario simulated once (events, one ack, notifications, decisions): its records by topic."""
    path = tmp_path_factory.mktemp("wire") / "log.db"
    asyncio.run(run_scenario(load_scenario(SCENARIO), io.StringIO(), keep_log=path))

    async def read() -> dict[str, list[Record]]:
        log = EmbeddedLog(path)
        await log.start()
        try:
            out: dict[str, list[Record]] = {}
            for topic in (topics.INPUT, topics.NOTIFICATIONS, topics.DECISIONS):
                out[topic] = [r async for batch in scan(log, topic) for r in batch]
            return out
        finally:
            await log.close()

    return asyncio.run(read())


def test_every_accepted_event_reads_back_as_a_cloudevent(records: dict[str, list[Record]]) -> None:
    """The cloudevents SDK reads each event record: id, source, type, time and content type match the envelope."""
    events = [r for r in records[topics.INPUT] if topics.is_event(r)]
    assert events
    catalogue = default_catalogue()
    for record in events:
        event = from_binary_event(_message(record))
        assert record.value is not None
        env = decode_envelope(record.value)
        assert event.get_specversion() == "1.0"
        assert event.get_id() == env.event_id
        assert event.get_source() == f"urn:jigsaw:org:{env.source}"
        assert event.get_type() == f"uk.jigsaw.event.{env.event_type}"
        assert event.get_time() == env.occurred_at
        content_type = event.get_datacontenttype()
        fingerprint_hex = env.schema_fingerprint.hex()
        assert content_type == f"application/vnd.jigsaw.envelope+avro; payload-fingerprint={fingerprint_hex}"
        fingerprint = bytes.fromhex(content_type.rsplit("=", 1)[1])
        assert catalogue.for_fingerprint(fingerprint).event_type == env.event_type
        # Jigsaw's own headers stay beside the binding's: the router and the auditors filter on them.
        assert record.header("event_id") == env.event_id.encode()


def test_an_acknowledgement_reads_back_as_a_cloudevent_with_json_data(records: dict[str, list[Record]]) -> None:
    """An ack on the input topic is a ``uk.jigsaw.ack`` CloudEvent from the recipient, its data the JSON ack."""
    acks = [r for r in records[topics.INPUT] if topics.is_ack(r)]
    assert acks
    for record in acks:
        event = from_binary_event(_message(record))
        data = event.get_data()
        assert isinstance(data, dict)
        assert event.get_type() == "uk.jigsaw.ack" and event.get_datacontenttype() == "application/json"
        assert event.get_source() == f"urn:jigsaw:org:{data['recipient']}"
        assert event.get_id().startswith(f"ack:{data['notification_id']}:")
        assert event.get_time() == dt.datetime.fromisoformat(data["at"])


def test_notifications_decisions_and_deliveries_declare_json(records: dict[str, list[Record]]) -> None:
    """Every notification, decision and delivery record carries ``content-type: application/json``."""
    outputs = records[topics.NOTIFICATIONS] + records[topics.DECISIONS]
    assert records[topics.NOTIFICATIONS] and records[topics.DECISIONS]
    assert {r.header("content-type") for r in outputs} == {b"application/json"}
    at = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    _, value, headers = encode_delivery(DeliveryRecord("inbox", "n-1", "GP-1", at, "inbox", 0, 3))
    assert dict(headers)["content-type"] == b"application/json"
    assert wire.decode_json(value)["notification_id"] == "n-1"


def test_a_delivery_record_writes_every_field_and_reads_back_equal() -> None:
    """The deliveries topic's bytes are those of every field, times in ISO form (as ``dataclasses.asdict`` gave)."""
    at = dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC)
    record = DeliveryRecord(
        "attempt", "n-1", "GP-1", at, "failed", 2, 7, 3, "https://gp.example/hook", 503, "busy", 41, at
    )
    _, value, _ = encode_delivery(record)
    expected = {**dataclasses.asdict(record), "at": "2024-05-01T09:30:00Z", "next_attempt_at": "2024-05-01T09:30:00Z"}
    assert value == wire.encode_json(expected)
    assert DeliveryRecord.from_dict(wire.decode_json(value)) == record


def test_the_json_encoding_is_canonical() -> None:
    """Keys sorted, no spaces, UTF-8 as is: the same value is always the same bytes."""
    assert wire.encode_json({"b": 1, "a": "café"}) == '{"a":"café","b":1}'.encode()
    assert wire.decode_json(None) is None
