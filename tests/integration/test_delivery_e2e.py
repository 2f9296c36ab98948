"""End to end on the embedded log: agency POST, webhook or inbox, acknowledgement, escalation."""

from __future__ import annotations

import json
from pathlib import Path

from broker.log import EmbeddedLog
from broker.observability import read_sample
from tests.integration.delivery_service import (
    Cast,
    eventually,
    post_ack_escalate,
    post_incident,
    publish_directory,
    running_service,
)
from tests.integration.delivery_support import receiving


async def test_post_to_webhook_ack_and_escalation(tmp_path: Path) -> None:
    """The victim's GP gets a webhook and acknowledges; the perpetrator's GP does not and is escalated."""
    cast = Cast.fresh()
    async with (
        receiving(None) as (receiver,),
        running_service(EmbeddedLog(tmp_path / "log.db"), tmp_path, cast.orgs()) as service,
    ):
        await post_ack_escalate(service, cast, receiver.url, lambda: [json.loads(r.body) for r in receiver.received])


async def test_serve_roles_deliver_on_the_wall_clock(tmp_path: Path) -> None:
    """With the router and dispatcher roles of jigsaw serve, a posted event reaches its webhook and the inbox."""
    cast = Cast.fresh()
    log = EmbeddedLog(tmp_path / "log.db")
    async with (
        receiving(None) as (receiver,),
        running_service(log, tmp_path, cast.orgs(), roles=("router", "dispatcher")) as service,
    ):
        await publish_directory(service, cast, {cast.hook: receiver.url})
        event_id = await post_incident(service, cast)

        async def delivered() -> bool:
            return any(json.loads(r.body)["event_id"] == event_id for r in receiver.received)

        async def in_inbox() -> bool:
            return any(n["event_id"] == event_id for n in await service.inbox(cast.boxed))

        await eventually(delivered, what="the webhook")
        await eventually(in_inbox, what="the inbox")
        async with service.session.get(service.base_url + "/metrics") as response:
            text = await response.text()
    assert receiver.ids().most_common(1)[0][1] == 1
    # the router's and the dispatcher's work is on the same /metrics as the gateway's
    assert (read_sample(text, "jigsaw_router_events_routed_total") or 0) >= 1
    assert (read_sample(text, "jigsaw_notifications_total", kind="alert") or 0) >= 1
    assert (read_sample(text, "jigsaw_webhook_deliveries_total", outcome="delivered") or 0) >= 1
    assert read_sample(text, "jigsaw_router_lag_records") == 0
