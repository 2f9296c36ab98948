"""``jigsaw serve``: the HTTP gateway, router and dispatcher (``JIGSAW_ROLES``) on the configured log.

Runs on the embedded log by default. ``GET /healthz`` reports the log
backend's status, ``GET /metrics`` is Prometheus text. SIGTERM or SIGINT stops
it cleanly: the listener closes, requests in flight finish (up to
``--shutdown-timeout`` seconds), background roles are cancelled, and the log
is flushed and closed before the process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from aiohttp import web

from broker.gateway.app import create_app
from broker.log import open_log
from broker.logging import configure_logging, get_logger
from broker.settings import Settings

__all__ = ["add_arguments", "run", "serve"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--host``, ``--port`` (override JIGSAW_HTTP_HOST/PORT) and ``--shutdown-timeout``."""
    parser.add_argument("--host", default=None, help="listen address (default: JIGSAW_HTTP_HOST)")
    parser.add_argument("--port", type=int, default=None, help="listen port (default: JIGSAW_HTTP_PORT)")
    parser.add_argument(
        "--shutdown-timeout", type=float, default=10.0, help="seconds to let requests finish on SIGTERM"
    )


async def serve(settings: Settings, *, shutdown_timeout: float = 10.0, stop: asyncio.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); the exit code."""
    log = get_logger("jigsaw.serve")
    app = create_app(settings, open_log(settings))
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=shutdown_timeout)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await runner.setup()  # runs the cleanup contexts' start-up: log, id index, roles
        site = web.TCPSite(runner, settings.http_host, settings.http_port)
        await site.start()
        addresses = [f"{a[0]}:{a[1]}" for a in (runner.addresses or []) if isinstance(a, tuple)]
        log.info("listening", addresses=addresses, log_backend=settings.log_backend, roles=list(settings.roles))
        await stop.wait()
        log.info("stopping", reason="signal")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await runner.cleanup()  # stop listening, finish requests, cancel roles, close the log
    log.info("stopped")
    return 0


def run(args: argparse.Namespace) -> int:
    """Build settings from the environment and serve until told to stop."""
    settings = Settings.from_env(os.environ)
    overrides: dict[str, object] = {}
    if args.host is not None:
        overrides["http_host"] = args.host
    if args.port is not None:
        overrides["http_port"] = args.port
    if overrides:
        settings = settings.replace(**overrides)
    configure_logging(settings.log_format, settings.log_level)
    return asyncio.run(serve(settings, shutdown_timeout=args.shutdown_timeout))
