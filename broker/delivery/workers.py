"""The ``router`` and ``dispatcher`` roles of ``jigsaw serve``, each a coroutine that runs until cancelled.

**Router, on the live clock.** The router service routes whatever the log
holds; given a time, it also raises the escalations due by then (an
unacknowledged notification at its ``ack_by``, an unanswered challenge the day
after its ``respond_by``). Each turn routes every record stamped before a
horizon a moment ago (``horizon.py``), then raises what is due by the clock
less that moment. Escalation timers therefore survive restarts: they
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
from broker.delivery.dispatcher import Dispatcher, raise_if_cancelled
from broker.delivery.horizon import HorizonLog
from broker.delivery.signing import webhook_key_for
from broker.delivery.webhook import WebhookSender
from broker.errors import ConfigError, JigsawError
from broker.log.base import Log
from broker.logging import get_logger
from broker.routing.service import GROUP, RouterService
from broker.routing.state import Output
from broker.settings import Settings

__all__ = ["LiveRouter", "RoleContext", "dispatcher_for", "run_dispatcher", "run_router"]

_log = get_logger("jigsaw.roles")


class RoleContext(Protocol):
    """What a role gets (``broker.gateway.roles.RoleContext``): the settings and the started log."""

    @property
    def settings(self) -> Settings: ...

    @property
    def log(self) -> Log: ...


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LiveRouter:
    """The router service on a live log: reads through a horizon, escalates on a clock."""

    def __init__(
        self,
        log: Log,
        *,
        group: str = GROUP,
        clock: Callable[[], dt.datetime] = _utc_now,
        grace: float = 0.2,
        poll: float = 0.05,
    ) -> None:
        """Args:
        log: the (started) log.
        group: the router's consumer group.
        clock: the time escalations are raised by (tests pass their own; records keep wall-clock stamps).
        grace: seconds a record must be old before it is routed (``horizon.py`` says why).
        poll: seconds to wait when there was nothing to do.
        """
        self._log = log
        self._group = group
        self.view = HorizonLog(log)
        self.router = RouterService(self.view, group=group)
        self.caught_up_to: dt.datetime | None = None  # every record stamped before this is routed
        self._clock = clock
        self._grace = dt.timedelta(seconds=grace)
        self._poll = poll
        self._started = False

    async def start(self) -> None:
        """Create topics, learn what was written and replay the log up to the horizon. Idempotent."""
        if not self._started:
            await self.router.start()
            self._started = True
            self._set_horizon()
            await self.router.run_until_idle()

    def _set_horizon(self) -> dt.datetime:
        horizon = dt.datetime.now(dt.UTC) - self._grace
        self.view.horizon_ms = int(horizon.timestamp() * 1000)
        return horizon

    async def turn(self) -> list[Output]:
        """Route everything stamped before the horizon, then raise the escalations due by the clock.

        The clock is applied by a second step, and only when the first read every
        input to its end (no read came back full: the router cuts a full batch at
        its last timestamp), so an acknowledgement already in the log always
        cancels its escalation first, even while catching up with a long backlog.
        """
        horizon = self._set_horizon()
        self.view.saw_full_read = False
        out = await self.router.step()
        if self.view.saw_full_read:
            return out  # behind: keep reading before the clock moves
        out += await self.router.step(now=self._clock() - self._grace)
        if not self.view.saw_full_read:
            self.caught_up_to = horizon
        return out

    async def run(self, *, pause: float = 1.0) -> None:
        """Start, then turn until cancelled.

        When the log cannot be reached (a retriable error) the router is built
        again from the log after ``pause`` seconds: whatever it had read but not
        yet written is routed again, and what it had written is recognised by id.
        """
        while True:
            try:
                await self.start()
                while True:
                    done = await self.turn()
                    raise_if_cancelled()
                    if not done:
                        await asyncio.sleep(self._poll)
            except JigsawError as exc:
                if not exc.retriable:
                    raise
                _log.warning("router_restarting", error=exc.message, pause=pause)
                self.view = HorizonLog(self._log)
                self.router = RouterService(self.view, group=self._group)
                self._started = False
                await asyncio.sleep(pause)


async def run_router(ctx: RoleContext) -> None:
    """The ``router`` role: route and escalate on the wall clock."""
    _log.info("router_starting")
    await LiveRouter(ctx.log).run()


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
    timeout = float(settings.webhook_timeout)
    sender = WebhookSender(key, timeout=timeout, ca_file=settings.webhook_ca_file)  # trusts JIGSAW_WEBHOOK_CA_FILE
    return Dispatcher(log, key, schedule=schedule, timeout=timeout, sender=sender)


async def run_dispatcher(ctx: RoleContext) -> None:
    """The ``dispatcher`` role: deliver every notification until cancelled."""
    await dispatcher_for(ctx.settings, ctx.log).run()
