"""Sending prepared events: answers counted per event, whole-batch refusals split, outages retried."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp

from adapters import ADAPTERS, prepare, rows_from_records
from adapters.publish import Report, publish_records, send_prepared
from broker.client import SendResult, error_for_response
from broker.envelope.model import Envelope
from tests.unit.adapters.family import NOW, family_keys


def _records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "incident_ref": f"I-{i}",
            "occurred_at": "2025-03-08T22:40:00Z",
            "victim": {"nhs_number": "9994120018"},
            "dash_risk": "medium",
            "summary": "s",
        }
        for i in range(n)
    ]


class StubClient:
    """Answers batches from a script: each entry is a status per event, an HTTP status for the batch, or an error."""

    def __init__(self, *script: Any, max_batch: int | None = None) -> None:
        self.key = family_keys().signing["POLICE-WYP"]
        self.script = list(script)
        self.max_batch = max_batch
        self.batches: list[int] = []

    async def send_batch(self, envelopes: Sequence[Envelope]) -> list[SendResult]:
        self.batches.append(len(envelopes))
        if self.max_batch is not None and len(envelopes) > self.max_batch:
            raise error_for_response(413, {"error": "payload_too_large", "message": "too big"})
        step = self.script.pop(0) if self.script else 202
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, int) and step >= 300:
            raise error_for_response(step, {"error": f"e{step}", "message": f"status {step}"})
        statuses = step if isinstance(step, list) else [step] * len(envelopes)
        return [
            SendResult(s, {"event_id": e.event_id} if s < 300 else {"error": "not_permitted", "message": "no"})
            for s, e in zip(statuses, envelopes, strict=True)
        ]


async def _no_sleep(seconds: float) -> None:
    return None


async def _send(client: StubClient, n: int, batch: int) -> Report:
    preparation = prepare(ADAPTERS["police"], rows_from_records(_records(n)), client.key, now=NOW)
    report = Report.of(ADAPTERS["police"], client.key.org_id, "x", preparation)
    return await send_prepared(preparation, client, report, batch=batch, sleep=_no_sleep)  # type: ignore[arg-type]


async def test_answers_are_counted_as_accepted_already_sent_or_refused() -> None:
    """202 is accepted, 200 already sent, anything else a refusal reported against the row."""
    client = StubClient([202, 200, 403])
    report = await _send(client, 3, batch=10)
    assert (report.accepted, report.already_sent) == (1, 1)
    assert [(r.row, r.error) for r in report.refused] == [(3, "not_permitted")]
    assert not report.ok


async def test_a_batch_too_large_for_the_gateway_is_split() -> None:
    """A 413 for a batch halves it until the gateway takes it; every event is still sent once."""
    client = StubClient(max_batch=2)
    report = await _send(client, 5, batch=5)
    assert report.accepted == 5 and report.ok
    assert client.batches == [5, 2, 3, 1, 2]


async def test_an_unreachable_gateway_is_retried_then_reported_as_failed() -> None:
    """Transport errors and 5xx are tried again; when they persist the events are failed, not refused."""
    client = StubClient(aiohttp.ClientConnectionError(), 503)
    report = await _send(client, 2, batch=10)
    assert report.accepted == 2 and report.ok
    client = StubClient(*([503] * 10))
    report = await _send(client, 2, batch=10)
    assert [(f.row, f.error) for f in report.failed] == [(1, "gateway_unavailable"), (2, "gateway_unavailable")]
    assert report.refused == [] and not report.ok


async def test_an_unauthenticated_batch_stops_the_run() -> None:
    """A 401 fails its batch and leaves the rest unsent, reported as not_sent."""
    client = StubClient(401)
    report = await _send(client, 4, batch=2)
    assert client.batches == [2]
    assert [f.error for f in report.failed] == ["e401", "e401", "not_sent", "not_sent"]


async def test_publish_records_is_the_library_entry_point() -> None:
    """publish_records maps, signs, checks and sends records given as data, with the client's key."""
    client = StubClient()
    report = await publish_records("police", [*_records(2), {"incident_ref": "bad"}], client)  # type: ignore[arg-type]
    assert (report.rows, report.events, report.accepted) == (3, 2, 2)
    assert report.refused_rows == [3]
    assert report.summary()["source"] == "POLICE-WYP"


def _counted_once(report: Report) -> bool:
    return report.accepted + report.already_sent + len(report.refused) + len(report.failed) == report.events


async def test_a_refused_credential_inside_a_split_batch_leaves_nothing_uncounted() -> None:
    """When half of a split batch meets a 401, the other half is reported not_sent, never dropped."""
    client = StubClient(401, max_batch=2)
    report = await _send(client, 4, batch=4)
    assert client.batches == [4, 2]
    assert [f.error for f in report.failed] == ["e401", "e401", "not_sent", "not_sent"]
    assert _counted_once(report)


async def test_an_event_too_large_on_its_own_is_refused_against_its_row() -> None:
    """A single event the gateway will not take as a batch (413 alone) is a refusal of its row, not a failure."""
    client = StubClient(max_batch=0)
    report = await _send(client, 2, batch=2)
    assert [(r.row, r.error) for r in report.refused] == [(1, "payload_too_large"), (2, "payload_too_large")]
    assert report.failed == [] and _counted_once(report)
