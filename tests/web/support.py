"""A real Jigsaw with its web pages over the log of a simulated case, for the web tests.

``serve_case`` runs ``broker/demo_data/child-3.json`` through the real pipeline
(``jigsaw simulate``'s code, virtual clock), then serves the gateway app (the
web pages included) over that log on 127.0.0.1 with a fixed clock: the evening
of the case's domestic abuse incident, when its urgent alerts await
acknowledgement. The users file maps demo and OIDC subjects to organisations.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import io
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from broker.envelope.keys import KeyStore, new_key
from broker.gateway.app import create_app
from broker.log import EmbeddedLog
from broker.settings import Settings
from broker.simulate import load_scenario, run_scenario

CASE = Path(__file__).resolve().parents[2] / "broker" / "demo_data" / "child-3.json"
NOW = dt.datetime(2020, 5, 16, 20, 0, tzinfo=dt.UTC)  # an hour after the incident's alerts went out
GP = "GP-B83020"
SCHOOL = "SCHOOL-107300"
CHILD = "9994986260"  # sibling3: at the school, registered with the GP
USERS = {
    "gp.lead": ("Dr Asha Patel", GP, "professional"),
    "school.dsl": ("Sam Jones", SCHOOL, "professional"),
    "csc.worker": ("Kim Lee", "CSC-BRADFORD", "professional"),
    "auditor": ("Alex Morgan", "PARTNERSHIP-BRADFORD", "auditor"),
    "admin": ("Pat Okafor", "PARTNERSHIP-BRADFORD", "admin"),
}


@dataclasses.dataclass
class Site:
    """A running Jigsaw with web pages."""

    base: str
    log_path: Path
    app: web.Application
    loop: asyncio.AbstractEventLoop


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_users(path: Path) -> Path:
    """The admin's mapping file: each test subject to an organisation and role."""
    rules = [{"match": {"sub": sub}, "name": n, "org_id": o, "role": r} for sub, (n, o, r) in USERS.items()]
    path.write_text(json.dumps({"users": rules}), encoding="utf-8")
    return path


async def simulate_case(path: Path, until: dt.datetime = NOW) -> Path:
    """The case's log up to ``until`` (events, notifications, escalations due by then, acks), kept at ``path``."""
    case = load_scenario(CASE)
    steps = tuple(s for s in case.steps if dt.datetime.fromisoformat(str(s["at"]).replace("Z", "+00:00")) <= until)
    await run_scenario(dataclasses.replace(case, steps=steps, run_until=until), io.StringIO(), keep_log=path)
    return path


@contextlib.asynccontextmanager
async def serve_case(
    tmp: Path,
    *,
    oidc_issuer: str | None = None,
    local: bool = True,
    idle_minutes: int = 30,
    clock: dt.datetime = NOW,
    signing: tuple[tuple[str, str], ...] = (),
) -> AsyncIterator[Site]:
    """Serve the simulated case with the web pages on a free loopback port.

    ``signing``: (org id, kind) of organisations whose private keys Jigsaw holds (to raise challenges).
    """
    store = KeyStore(tmp / "keys")
    for org_id, kind in signing:
        store.save(*new_key(org_id, kind, valid_from=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
    log_path = tmp / "case.db"
    if not log_path.exists():
        await simulate_case(log_path, clock)
    credentials = tmp / "credentials.json"
    if not credentials.exists():
        credentials.write_text('{"credentials": []}', encoding="utf-8")
    port = free_port()
    settings = Settings(
        credentials_file=credentials,
        data_dir=tmp,
        log_path=log_path,
        keys_dir=tmp / "keys",
        http_port=port,
        web_users_file=write_users(tmp / "users.json"),
        web_local_sign_in=local,
        web_oidc_issuer=oidc_issuer,
        web_base_url=f"http://127.0.0.1:{port}",
        web_idle_minutes=idle_minutes,
        log_level="warning",
    )
    app = create_app(settings, EmbeddedLog(log_path), roles=(), clock=lambda: clock)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield Site(f"http://127.0.0.1:{port}", log_path, app, asyncio.get_running_loop())
    finally:
        await runner.cleanup()
