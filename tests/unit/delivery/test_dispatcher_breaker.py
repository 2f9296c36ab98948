"""The dispatcher settles an endpoint's breaker after every probe, including refused, gone and cancelled ones."""

from __future__ import annotations

import asyncio
import datetime as dt

from broker.delivery.breaker import CLOSED, HALF_OPEN, Breaker
from broker.delivery.dispatcher import Dispatcher
from broker.delivery.ledger import Job
from broker.delivery.signing import WebhookKey
from broker.delivery.webhook import AttemptResult, WebhookSender
from broker.log import MemoryLog

URL = "http://127.0.0.1:9/hook"
JOB = Job("n-1", "GP-1", 0, 0, 1, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))


class _Sender(WebhookSender):
    """Answers every attempt with one outcome, or hangs until cancelled."""

    def __init__(self, outcome: str | None) -> None:
        super().__init__(WebhookKey.generate())
        self.outcome = outcome

    async def deliver(
        self, url: str, *, internal: bool, webhook_id: str, body: bytes, timestamp: int | None = None
    ) -> AttemptResult:
        if self.outcome is None:
            await asyncio.Event().wait()
        return AttemptResult(self.outcome or "failed")


def _half_open(outcome: str | None) -> Dispatcher:
    dispatcher = Dispatcher(MemoryLog(), WebhookKey.generate(), sender=_Sender(outcome))
    dispatcher._bodies[JOB.notification_id] = b"{}"
    dispatcher._breakers[URL] = Breaker(state="open", opened_at=-1e9, threshold=1, cooldown=1.0)
    return dispatcher


async def test_gone_and_refused_probes_do_not_leave_the_breaker_waiting() -> None:
    """A gone probe closes the breaker; a refused one frees the probe slot (regression: both stuck half-open)."""
    gone = _half_open("gone")
    assert (await gone._try(JOB, URL, internal=True)).outcome == "gone"
    assert gone._breakers[URL].state == CLOSED
    assert gone.metrics.value("jigsaw_breaker_state", org=JOB.recipient) == 0
    refused = _half_open("refused")
    await refused._try(JOB, URL, internal=True)
    assert refused._breakers[URL].state == HALF_OPEN and not refused._breakers[URL].probing


async def test_a_cancelled_probe_frees_the_slot() -> None:
    """Cancelling an attempt mid-probe lets the next attempt probe (regression: the breaker never closed again)."""
    dispatcher = _half_open(None)
    task = asyncio.create_task(dispatcher._try(JOB, URL, internal=True))
    await asyncio.sleep(0)
    assert dispatcher._breakers[URL].probing
    assert dispatcher.metrics.value("jigsaw_breaker_state", org=JOB.recipient) == 1  # half open
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not dispatcher._breakers[URL].probing
    dispatcher.sender = _Sender("delivered")
    assert (await dispatcher._try(JOB, URL, internal=True)).outcome == "delivered"
    assert dispatcher._breakers[URL].state == CLOSED
