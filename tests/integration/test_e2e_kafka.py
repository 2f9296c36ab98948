"""End to end on a real Kafka broker: agency POST, webhook or inbox, acknowledgement, escalation."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from broker.log.kafka import KafkaLog
from broker.log.namespace import NamespacedLog
from tests.integration.delivery_service import Cast, post_ack_escalate, running_service
from tests.integration.delivery_support import receiving

pytestmark = pytest.mark.kafka


async def test_post_to_webhook_ack_and_escalation_on_kafka(tmp_path: Path, kafka_bootstrap: str) -> None:
    """On Kafka, the victim's GP gets a webhook and acknowledges; the perpetrator's GP's inbox gets the
    notification and, unacknowledged past ack_by on the router's clock, its escalation."""
    cast = Cast.fresh()
    log = NamespacedLog(KafkaLog(kafka_bootstrap, client_id="jigsaw-e2e-tests"), f"e2e-{uuid.uuid4().hex[:12]}.")
    async with receiving(None) as (receiver,), running_service(log, tmp_path, cast.orgs()) as service:
        await post_ack_escalate(service, cast, receiver.url, lambda: [json.loads(r.body) for r in receiver.received])
    assert max(receiver.ids().values()) == 1
