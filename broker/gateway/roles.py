"""Background roles started alongside the HTTP gateway (``JIGSAW_ROLES``).

``jigsaw serve`` runs the roles the settings name. The gateway is the HTTP app
itself; every other role is a coroutine started as a task when the app starts
and cancelled when it stops. A role is registered by name with a runner that
takes a ``RoleContext`` and runs until cancelled::

    ROLE_RUNNERS["router"] = "broker.routing.worker:run_router"

Runners are named as ``module:function`` strings and imported only when their
role is started, so the gateway does not import the router or dispatcher. A
role named in the settings with no runner yet is logged and skipped.
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

__all__ = ["ROLE_RUNNERS", "RoleContext", "RoleRunner", "run_roles"]

_log = get_logger("jigsaw.roles")


@dataclasses.dataclass(frozen=True, slots=True)
class RoleContext:
    """What a background role gets: the settings, the (started) log and the key store."""

    settings: Settings
    log: Log
    keys: KeyStore


RoleRunner = Callable[[RoleContext], Awaitable[None]]

# role name -> "module:function" of an ``async def run(ctx: RoleContext) -> None`` (runs until cancelled).
ROLE_RUNNERS: dict[str, str | RoleRunner] = {
    "router": "broker.delivery.workers:run_router",  # routes, and raises escalations on the wall clock
    "dispatcher": "broker.delivery.workers:run_dispatcher",
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
            try:
                await run(ctx)
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("role_failed", role=name)
                raise

        tasks.append(asyncio.create_task(guarded(), name=f"jigsaw-role-{role}"))
        _log.info("role_started", role=role)
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
