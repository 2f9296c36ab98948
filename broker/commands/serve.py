"""``jigsaw serve``: the HTTP gateway, router, dispatcher and views (``JIGSAW_ROLES``) on the configured log.

Runs on the embedded log by default. ``GET /healthz`` reports the log
backend's status, ``GET /metrics`` is Prometheus text. HTTPS when
``JIGSAW_TLS_CERT_FILE`` and ``JIGSAW_TLS_KEY_FILE`` are set (with client
certificates when ``JIGSAW_TLS_CLIENT_CA_FILE`` is); the listener caps
connections and closes one that trickles its headers (``listener.py``).
SIGHUP re-reads the credentials file and the key registry at once (both are
also re-read within seconds of changing). SIGUSR1 writes where every asyncio
task of the process is waiting to standard error (what an operator asks a
process that answers ``/healthz`` but does no work). SIGTERM or SIGINT stops it cleanly:
the listener closes, requests in flight finish (up to ``--shutdown-timeout``
seconds), background roles are cancelled, and the log is flushed and closed
before the process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from aiohttp import web

from broker import heap
from broker.gateway.app import create_app
from broker.gateway.guard import GUARD
from broker.gateway.keys import CREDENTIALS, KEYS
from broker.gateway.listener import GatewaySite, runner_options
from broker.gateway.tls import server_context
from broker.log import open_log
from broker.logging import configure_logging, get_logger
from broker.secretfiles import check_secret_file
from broker.settings import Settings

__all__ = ["add_arguments", "run", "serve", "start_site"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--host``, ``--port`` (override JIGSAW_HTTP_HOST/PORT) and ``--shutdown-timeout``."""
    parser.add_argument("--host", default=None, help="listen address (default: JIGSAW_HTTP_HOST)")
    parser.add_argument("--port", type=int, default=None, help="listen port (default: JIGSAW_HTTP_PORT)")
    parser.add_argument(
        "--shutdown-timeout", type=float, default=10.0, help="seconds to let requests finish on SIGTERM"
    )


async def start_site(app: web.Application, settings: Settings, *, shutdown_timeout: float = 10.0) -> GatewaySite:
    """Set up ``app`` (its start-up runs) and listen as the settings say; ``site.stop()`` then the runner's cleanup."""
    ssl_context = None
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        ssl_context = server_context(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)
    options = runner_options(settings, app[GUARD].note_anonymous)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout, **options)
    await runner.setup()  # runs the cleanup contexts' start-up: log, id index, roles
    site = GatewaySite(
        runner,
        settings.http_host,
        settings.http_port,
        ssl_context=ssl_context,
        max_connections=settings.http_max_connections,
        max_per_address=settings.http_max_connections_per_address,
        handshake_timeout=settings.http_header_timeout,
    )
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()  # the log and roles started: stop them again
        raise
    return site


def _tasks_to_stderr() -> None:
    """SIGUSR1: every asyncio task's stack, innermost frame last, to standard error (never payloads: code only)."""
    tasks = asyncio.all_tasks()
    print(f"--- {len(tasks)} asyncio tasks (SIGUSR1) ---", file=sys.stderr)
    for task in tasks:
        task.print_stack(limit=40, file=sys.stderr)
    print("--- end of tasks ---", file=sys.stderr, flush=True)


def _reload(app: web.Application) -> None:
    """SIGHUP: re-read the credentials file and the key registry now."""
    reload = getattr(app[CREDENTIALS], "reload", None)
    if reload is not None:
        reload()
    keys = app[KEYS].reload()
    get_logger("jigsaw.serve").info("reloaded", credentials=len(app[CREDENTIALS]), keys=len(keys))


async def serve(settings: Settings, *, shutdown_timeout: float = 10.0, stop: asyncio.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); the exit code."""
    log = get_logger("jigsaw.serve")
    generated = settings.data_dir / "webhook-signing-key"  # Jigsaw's own key when none is configured
    if settings.signing_key_file is None and generated.exists():
        check_secret_file(generated, "Jigsaw's generated signing key")
    heap.configure()
    app = create_app(settings, open_log(settings))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, _reload, app)
    loop.add_signal_handler(signal.SIGUSR1, _tasks_to_stderr)
    runner: web.BaseRunner | None = None
    try:
        site = await start_site(app, settings, shutdown_timeout=shutdown_timeout)
        runner = site.runner
        log.info("listening", url=site.name, log_backend=settings.log_backend, roles=list(settings.roles))
        heap.settle()  # what starting made (the app, its views caught up) lives as long as the process
        await stop.wait()
        log.info("stopping", reason="signal")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            loop.remove_signal_handler(signum)
        if runner is not None:
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
