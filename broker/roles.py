"""Background roles started alongside the HTTP gateway (``JIGSAW_ROLES``).

``jigsaw serve`` runs the roles the settings name. The gateway is the HTTP app
itself; every other role is a coroutine started as a task when the app starts
and cancelled when it stops. A role is registered by name with a runner that
takes a ``RoleContext`` and runs until cancelled::

    ROLE_RUNNERS["router"] = "broker.routing.worker:run_router"

Runners are named as ``module:function`` strings and imported only when their
role is started, so the gateway does not import the router or dispatcher. A
role named in the settings with no runner yet is logged and skipped.

Every role is supervised: a runner that raises anything (a bare ``TimeoutError``
from a client library included) is logged and started again after a backoff
(1 s doubling to 30 s), never left dead. Each role's state (``running``,
``restarting``), restarts, last error and whatever the runner reports about
itself (the router's lag) are on a ``RoleBoard`` that ``/healthz`` shows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from broker.envelope.keys import KeyStore
from broker.log.base import Log
from broker.logging import get_logger
from broker.settings import Settings

__all__ = ["ROLE_RUNNERS", "RoleBoard", "RoleContext", "RoleRunner", "raise_if_cancelled", "restart_delay", "run_roles"]

_log = get_logger("jigsaw.roles")


class RoleBoard:
    """What each role of this process is doing, for ``/healthz`` and ``/metrics``."""

    def __init__(self) -> None:
        self._roles: dict[str, dict[str, Any]] = {}

    def set(self, role: str, **fields: Any) -> None:
        """Record facts about a role (its state, lag, ...), keeping the ones not named."""
        self._roles.setdefault(role, {"state": "starting", "restarts": 0}).update(fields)

    def get(self, role: str) -> dict[str, Any]:
        """What is known of one role (empty when it is not run here)."""
        return dict(self._roles.get(role, {}))

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every role's facts, as plain data."""
        return {role: dict(facts) for role, facts in self._roles.items()}

    @property
    def healthy(self) -> bool:
        """True when every role runs (none is waiting to be restarted)."""
        return all(facts.get("state") == "running" for facts in self._roles.values())


@dataclasses.dataclass(frozen=True, slots=True)
class RoleContext:
    """What a background role gets: the settings, the (started) log, the key store and the role board."""

    settings: Settings
    log: Log
    keys: KeyStore
    board: RoleBoard = dataclasses.field(default_factory=RoleBoard)
    metrics: Any = None  # the app's ``broker.observability.Metrics`` (None: the role keeps its own)
    store: Any = None  # the gateway's started ``broker.store.Store`` in this process (None: open one if needed)
    recent: Any = None  # the intake's ``broker.recent.RecentEvents`` (what it accepted lately, decoded)


def restart_delay(failures: int, *, first: float = 1.0, most: float = 30.0) -> float:
    """Seconds to wait before starting a role again after its ``failures``-th failure in a row."""
    return float(min(most, first * 2 ** max(0, failures - 1)))


RoleRunner = Callable[[RoleContext], Awaitable[None]]

# role name -> "module:function" of an ``async def run(ctx: RoleContext) -> None`` (runs until cancelled).
ROLE_RUNNERS: dict[str, str | RoleRunner] = {
    "router": "broker.routing.live:run_router",  # routes, and raises escalations on the wall clock
    "dispatcher": "broker.delivery.workers:run_dispatcher",
    "views": "broker.store.views_role:run_views",  # the serving views followed in the background
}


def _resolve(spec: str | RoleRunner) -> RoleRunner:
    if not isinstance(spec, str):
        return spec
    module, _, name = spec.partition(":")
    runner: Any = getattr(importlib.import_module(module), name)
    return runner  # type: ignore[no-any-return]


async def run_roles(ctx: RoleContext, roles: tuple[str, ...]) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Start every named background role as a task; on exit cancel them and wait (a cleanup context)."""
    tasks: list[asyncio.Task[None]] = []
    for role in roles:
        if role == "gateway":
            continue
        spec = ROLE_RUNNERS.get(role)
        if spec is None:
            _log.warning("role_not_available", role=role, hint="no runner is registered for it yet")
            continue
        runner = _resolve(spec)

        async def guarded(name: str = role, run: RoleRunner = runner) -> None:
            failures = 0
            while True:
                ctx.board.set(name, state="running")
                started = asyncio.get_running_loop().time()
                try:
                    await run(ctx)
                    raise RuntimeError("the role's runner returned; it must run until cancelled")
                except asyncio.CancelledError:
                    ctx.board.set(name, state="stopped")
                    raise
                except Exception as exc:
                    if asyncio.get_running_loop().time() - started > 60:
                        failures = 0  # it ran for a while: start the backoff again
                    failures += 1
                    delay = restart_delay(failures)
                    error = getattr(exc, "code", None) or type(exc).__name__
                    restarts = int(ctx.board.get(name).get("restarts", 0)) + 1
                    ctx.board.set(name, state="restarting", last_error=error, restarts=restarts)
                    _log.error("role_failed", role=name, error=error, restart_in=delay, exc_info=True)
                    await asyncio.sleep(delay)

        tasks.append(asyncio.create_task(guarded(), name=f"jigsaw-role-{role}"))
        _log.info("role_started", role=role)
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def raise_if_cancelled() -> None:
    """Stop a worker loop that was cancelled even if an inner await swallowed the CancelledError.

    Python 3.11's ``asyncio.wait_for`` can lose a cancellation that races with
    the awaited thing completing (a log read woken by an append); the task's
    ``cancelling()`` count still says it was asked to stop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
