"""How long a slow client can hold a connection: a trickle of headers, and a trickle of body.

Starts a gateway in this process as ``jigsaw serve`` does (``start_site``) with
the default settings, unless overridden, on the embedded log in a temporary
directory; then, over raw sockets to 127.0.0.1:

- sends a request line and one header byte every ``--every`` seconds, never
  finishing the head (slow loris), and times how long until the gateway
  closes the connection (``JIGSAW_HTTP_HEADER_TIMEOUT``, default 30 s);
- sends a complete head announcing a 1,000-byte body and then one body byte
  every ``--every`` seconds, and times the close (``JIGSAW_HTTP_BODY_TIMEOUT``,
  default 60 s).

Usage::

    python bench/slow_clients.py [--header-timeout 30] [--body-timeout 60] [--every 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broker.commands.serve import start_site
from broker.gateway.app import create_app
from broker.gateway.auth import Credentials
from broker.log import EmbeddedLog
from broker.settings import Settings

TOKEN = "bench-token"


async def _held_for(port: int, head: bytes, drip: bytes, every: float, limit: float) -> float:
    """Seconds from connecting until the server closes the connection while ``drip`` trickles in."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(head)

    async def trickle() -> None:
        while True:
            await asyncio.sleep(every)
            writer.write(drip)

    dripping = asyncio.create_task(trickle())
    try:
        async with asyncio.timeout(limit):
            while await reader.read(4096):
                pass
    finally:
        dripping.cancel()
        writer.close()
    return time.monotonic() - started


async def measure(directory: Path, *, header_timeout: float, body_timeout: float, every: float) -> tuple[float, float]:
    """The seconds a header trickle and a body trickle each held a connection."""
    settings = Settings(
        data_dir=directory,
        log_path=directory / "log.db",
        keys_dir=directory / "keys",
        http_port=0,
        roles=("gateway",),
        http_header_timeout=header_timeout,
        http_body_timeout=body_timeout,
    )
    credentials = Credentials.from_tokens([(TOKEN, "POLICE-WYP", "publisher")])
    app = create_app(settings, EmbeddedLog(settings.log_path), credentials=credentials, roles=())
    site = await start_site(app, settings, shutdown_timeout=1.0)
    limit = 3 * max(header_timeout, body_timeout) + 10
    try:
        slow_head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
        headers = await _held_for(site.port, slow_head, b"a", every, limit)
        head = (
            f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/vnd.jigsaw.envelope+avro\r\nContent-Length: 1000\r\n\r\n"
        ).encode()
        body = await _held_for(site.port, head, b"\x00", every, limit)
    finally:
        await site.runner.cleanup()
    return headers, body


def main() -> int:
    """Print how long each slow client held its connection."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--header-timeout", type=float, default=Settings().http_header_timeout)
    parser.add_argument("--body-timeout", type=float, default=Settings().http_body_timeout)
    parser.add_argument("--every", type=float, default=0.5, help="seconds between trickled bytes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        headers, body = asyncio.run(
            measure(Path(tmp), header_timeout=args.header_timeout, body_timeout=args.body_timeout, every=args.every)
        )
    print(f"header trickle closed after {headers:.1f} s (JIGSAW_HTTP_HEADER_TIMEOUT={args.header_timeout:g})")
    print(f"body trickle closed after   {body:.1f} s (JIGSAW_HTTP_BODY_TIMEOUT={args.body_timeout:g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
