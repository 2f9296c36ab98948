"""A gateway started as ``jigsaw serve`` starts it (``start_site``), on 127.0.0.1 with settings a test chooses.

Unlike ``gateway_support.running_gateway`` (a plain aiohttp site), this one has
the listener's connection caps, header deadline, parse-error logger and TLS.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from broker.commands.serve import start_site
from broker.gateway.app import create_app
from broker.gateway.auth import Authenticator, Credentials
from broker.gateway.listener import GatewaySite
from broker.log import EmbeddedLog
from broker.settings import Settings

TOKENS = {
    "publisher": ("token-police", "POLICE-WYP", "publisher"),
    "recipient": ("token-hv", "HV-BRADFORD-NORTH", "recipient"),
    "admin": ("token-admin", "PARTNERSHIP-BRADFORD", "admin"),
}


@dataclasses.dataclass
class Served:
    """A running gateway: its app, log, site and URL."""

    app: web.Application
    log: EmbeddedLog
    site: GatewaySite
    url: str


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, *, credentials: Authenticator | None = None, **changes: Any) -> AsyncIterator[Served]:
    """A gateway over an embedded log in ``tmp_path``, with ``changes`` to the default settings."""
    settings = Settings(
        data_dir=tmp_path, log_path=tmp_path / "log.db", keys_dir=tmp_path / "keys", http_port=0, roles=("gateway",)
    ).replace(**changes)
    log = EmbeddedLog(settings.log_path)
    if credentials is None:
        credentials = Credentials.from_tokens(TOKENS.values())
    app = create_app(settings, log, credentials=credentials, roles=())
    site = await start_site(app, settings, shutdown_timeout=1.0)
    scheme = "https" if settings.tls_cert_file else "http"
    try:
        yield Served(app, log, site, f"{scheme}://127.0.0.1:{site.port}")
    finally:
        await site.runner.cleanup()
