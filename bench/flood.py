"""What an anonymous flood costs the log: bytes appended per N unauthenticated requests.

Starts a gateway in this process exactly as ``jigsaw serve`` does (``start_site``:
rate limits, connection caps, header deadline) on the embedded log in a
temporary directory, sends N requests with no credential (a mix of envelope
posts with a junk body, inbox reads and unknown paths) from 127.0.0.1, stops
the gateway (which writes the last refusal summaries) and reports:

- the bytes of every record appended to the log (keys, values, headers);
- how much the SQLite file (with its WAL) grew, against a gateway that
  started and stopped with no requests;
- the answers by status, and the requests per second.

Usage::

    python bench/flood.py [--requests 5000] [--concurrency 20] [--no-limits]

``tests/integration/test_gateway_abuse.py`` runs ``measure`` and checks 5,000
requests append under 1 MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broker import topics
from broker.commands.serve import start_site
from broker.gateway.app import create_app
from broker.log import EmbeddedLog, Log
from broker.settings import Settings

TOPICS = (
    topics.INPUT,
    topics.REJECTED,
    topics.ACCESS,
    topics.NOTIFICATIONS,
    topics.DECISIONS,
    topics.DELIVERIES,
    topics.TREE_HEADS,
)
_REQUESTS = (
    ("POST", "/v1/events", b"\x00" * 1024),
    ("GET", "/v1/inbox", b""),
    ("GET", "/v1/no-such-thing", b""),
    ("POST", "/v1/events:batch", b"junk"),
)


@dataclasses.dataclass(frozen=True, slots=True)
class Figures:
    """What one flood cost."""

    requests: int
    seconds: float
    statuses: dict[int, int]
    records: int
    record_bytes: int
    file_growth: int


async def _record_bytes(log: Log) -> tuple[int, int]:
    """Records in the watched topics, and their bytes (key, value and headers)."""
    count = size = 0
    for topic in TOPICS:
        for partition in range(max(1, await log.partitions(topic))):
            offset = 0
            while batch := await log.read(topic, offset, partition=partition, limit=1000, timeout=0):
                for record in batch:
                    count += 1
                    size += len(record.key or b"") + len(record.value or b"")
                    size += sum(len(k) + len(v) for k, v in record.headers)
                offset = batch[-1].offset + 1
    return count, size


def _file_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


async def _flood(base_url: str, requests: int, concurrency: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    queue = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for i in queue:
                method, path, body = _REQUESTS[i % len(_REQUESTS)]
                try:
                    async with session.request(method, base_url + path, data=body or None) as response:
                        await response.read()
                        statuses[response.status] += 1
                except aiohttp.ClientError:
                    statuses[0] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


async def _run(directory: Path, requests: int, concurrency: int, limits: bool) -> tuple[Counter[int], float]:
    """Start a gateway over ``directory``'s log, send the requests, stop it; the answers and the seconds."""
    path = directory / "log.db"
    settings = Settings(data_dir=directory, log_path=path, keys_dir=directory / "keys", http_port=0, roles=("gateway",))
    if not limits:  # show the summaries bound the log by themselves, whatever the rate limiter lets through
        settings = settings.replace(rate_per_address=1e9, rate_burst_per_address=1e9)
    app = create_app(settings, EmbeddedLog(path), roles=())
    site = await start_site(app, settings, shutdown_timeout=1.0)
    try:
        started = time.perf_counter()
        statuses = await _flood(f"http://127.0.0.1:{site.port}", requests, concurrency)
        seconds = time.perf_counter() - started
    finally:
        await site.runner.cleanup()  # writes the last refusal summaries
    return statuses, seconds


async def _count(path: Path) -> tuple[int, int]:
    log = EmbeddedLog(path)
    await log.start()
    try:
        return await _record_bytes(log)
    finally:
        await log.close()


async def measure(directory: Path, *, requests: int = 5000, concurrency: int = 20, limits: bool = True) -> Figures:
    """Flood a gateway over a fresh embedded log in ``directory`` anonymously and measure what the log gained.

    A second gateway that receives no requests (in ``directory/baseline``) is the baseline for the file size.
    """
    baseline = directory / "baseline"
    flooded = directory / "flooded"
    baseline.mkdir(parents=True)
    flooded.mkdir(parents=True)
    await _run(baseline, 0, 1, limits)
    statuses, seconds = await _run(flooded, requests, concurrency, limits)
    base_records, base_bytes = await _count(baseline / "log.db")
    records, size = await _count(flooded / "log.db")
    return Figures(
        requests,
        seconds,
        dict(sorted(statuses.items())),
        records - base_records,
        size - base_bytes,
        _file_size(flooded / "log.db") - _file_size(baseline / "log.db"),
    )


def main() -> int:
    """Print the figures of one flood."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--no-limits", action="store_true", help="lift the per-address rate limit")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(
            measure(Path(tmp), requests=args.requests, concurrency=args.concurrency, limits=not args.no_limits)
        )
    rate = figures.requests / figures.seconds
    print(f"anonymous requests:   {figures.requests} in {figures.seconds:.1f} s ({rate:.0f}/s)")
    print(f"answers by status:    {figures.statuses}")
    print(f"records appended:     {figures.records}")
    print(f"record bytes:         {figures.record_bytes} ({figures.record_bytes / 1024:.1f} KiB)")
    print(f"log file growth:      {figures.file_growth} bytes ({figures.file_growth / 1024:.1f} KiB)")
    print(f"bytes per request:    {figures.record_bytes / figures.requests:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
