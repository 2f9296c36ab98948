"""The ``router`` and ``dispatcher`` roles of ``jigsaw serve``, each a coroutine that runs until cancelled.

**Router, on the live clock.** The router service routes whatever the log
holds; given a time, it also raises the escalations due by then (an
unacknowledged notification at its ``ack_by``, an unanswered challenge the day
after its ``respond_by``). This role catches up with the log first, then
steps with the wall clock. Escalation timers therefore survive restarts: they
are rebuilt from the log (notifications and acks) on start, never held only in
memory, and each escalation's id is derived from what it escalates, so it is
raised once however often the router restarts.

**Dispatcher.** ``dispatcher.Dispatcher`` with Jigsaw's webhook key and the
retry schedule and timeout from the settings.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Protocol

from broker.delivery.backoff import parse_schedule
from broker.delivery.dispatcher import Dispatcher
from broker.delivery.signing import webhook_key_for
from broker.errors import ConfigError
from broker.log.base import Log
from broker.logging import get_logger
from broker.routing.service import RouterService
from broker.settings import Settings

__all__ = ["RoleContext", "dispatcher_for", "run_dispatcher", "run_router", "run_router_with"]

_log = get_logger("jigsaw.roles")


class RoleContext(Protocol):
    """What a role gets (``broker.gateway.roles.RoleContext``): the settings and the started log."""

    @property
    def settings(self) -> Settings: ...

    @property
    def log(self) -> Log: ...


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def run_router_with(
    router: RouterService, *, clock: Callable[[], dt.datetime] = _utc_now, poll: float = 0.05
) -> None:
    """Route and raise escalations on ``clock`` until cancelled.

    Each turn reads everything the inputs hold before applying the clock, so an
    acknowledgement already in the log always cancels its escalation first, even
    after a restart with a long log to replay.

    Args:
        router: a started router service.
        clock: the time escalations are raised by (tests pass their own).
        poll: seconds to wait when there was nothing to do.
    """
    while True:
        caught_up = await router.run_until_idle()
        due = await router.step(now=clock())
        if not caught_up and not due:
            await asyncio.sleep(poll)


async def run_router(ctx: RoleContext) -> None:
    """The ``router`` role: route and escalate on the wall clock."""
    router = RouterService(ctx.log)
    await router.start()
    _log.info("router_started")
    await run_router_with(router)


def dispatcher_for(settings: Settings, log: Log) -> Dispatcher:
    """A dispatcher configured by the settings (key, retry schedule, timeout).

    Raises:
        ConfigError: the retry schedule or the key file is malformed.
    """
    try:
        schedule = parse_schedule(settings.webhook_retry_schedule)
    except ValueError as exc:
        raise ConfigError(f"JIGSAW_WEBHOOK_RETRY_SCHEDULE: {exc}") from exc
    key = webhook_key_for(settings.signing_key_file, settings.data_dir)
    return Dispatcher(log, key, schedule=schedule, timeout=float(settings.webhook_timeout))


async def run_dispatcher(ctx: RoleContext) -> None:
    """The ``dispatcher`` role: deliver every notification until cancelled."""
    await dispatcher_for(ctx.settings, ctx.log).run()
