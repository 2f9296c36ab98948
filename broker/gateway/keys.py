"""The gateway application's typed state (``web.AppKey``s) and the intake it talks to.

Handlers (``routes.py``) and the app factory (``app.py``) both import these,
so neither imports the other.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from broker.envelope.keys import KeyStore
from broker.errors import Refusal
from broker.gateway.auth import Authenticator
from broker.log.base import Log, Position
from broker.observability import Metrics
from broker.roles import RoleBoard
from broker.settings import Settings
from broker.store import Store

__all__ = [
    "CLOCK",
    "CREDENTIALS",
    "INTAKE",
    "KEYS",
    "LOG",
    "METRICS",
    "ROLE_BOARD",
    "ROLE_TASKS",
    "SETTINGS",
    "STORE",
    "Clock",
    "Outcome",
    "Submitter",
]


class Outcome(Protocol):
    """What the intake says about one submission (``broker.intake.Outcome``)."""

    status: str
    event_id: str | None
    position: Position | None
    error: Refusal | None

    @property
    def http_status(self) -> int: ...

    def body(self) -> dict[str, object]: ...


class Submitter(Protocol):
    """Accept-or-refuse over the log (``broker.intake.Intake``)."""

    async def start(self) -> None: ...

    async def submit(self, body: bytes, *, caller: str | None, now: dt.datetime, client: str | None = None) -> Any: ...

    async def refuse(
        self, error: Refusal, *, caller: str | None, body: bytes, now: dt.datetime, client: str | None = None
    ) -> Position: ...


SETTINGS = web.AppKey("settings", Settings)
LOG = web.AppKey("log", Log)
KEYS = web.AppKey("keys", KeyStore)
CREDENTIALS: web.AppKey[Authenticator] = web.AppKey("credentials")
INTAKE = web.AppKey("intake", Submitter)
METRICS = web.AppKey("metrics", Metrics)
Clock = Callable[[], dt.datetime]
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
ROLE_BOARD = web.AppKey("role_board", RoleBoard)
ROLE_TASKS = web.AppKey("role_tasks", list[asyncio.Task[None]])
STORE = web.AppKey("store", Store)  # the serving views; only in an app with the gateway role
