"""A router starting on a machine with no local files over a big city on Kafka: from its snapshot, and without one.

Accepts the synthetic city of ``bench/city.py`` (``FAMILIES`` families, signed
envelopes) into the input topic on a Kafka broker of the run's own (or
``--bootstrap``, under a fresh topic prefix), routes it once with a live router
that saves its snapshots in a store (SQLite here; PostgreSQL in a scaled-out
deployment), then times fresh routers, each with an empty working directory:

- from the newest snapshot: until it routes a new live event (it applies only
  the records after the snapshot), and the resident memory it then holds;
- baseline, in the same run: a router with no snapshot, which re-applies every
  input record from offset 0 before it routes the new event.

Usage::

    .venv/bin/python bench/router_start.py [FAMILIES] [--bootstrap HOST:PORT] [--no-baseline]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from city import city_events, directory_events
from latency import own_broker

from broker import topics
from broker.client import build_envelope
from broker.codec import jsonable
from broker.envelope.keys import new_key
from broker.envelope.model import encode_envelope
from broker.log.kafka import KafkaLog
from broker.log.namespace import NamespacedLog
from broker.routing.live import LiveRouter
from broker.store.sqlite import SqliteStore
from broker.validation import subject_key

KINDS = {
    "GP": "gp_practice",
    "HV": "health_visiting",
    "SCHOOL": "school",
    "CSC": "childrens_social_care",
    "POLICE": "police",
    "MIDWIFERY": "midwifery",
    "MARAC": "marac",
    "PARTNERSHIP": "partnership",
    "ADULTS": "adult_services",
}


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _records(events: list[Any]) -> list[tuple[bytes, bytes, tuple[tuple[str, bytes], ...], int]]:
    keys: dict[str, Any] = {}
    out = []
    for e in events:
        kind = KINDS[e.source.split("-")[0]]
        if e.source not in keys:
            keys[e.source] = new_key(e.source, kind, valid_from=e.occurred_at.replace(year=2000))[1]
        env = build_envelope(
            e.event_type,
            jsonable(dict(e.data)),
            source=e.source,
            key=keys[e.source],
            occurred_at=e.occurred_at,
            issued_at=e.occurred_at,
            event_id=e.event_id,
        )
        headers = (
            (topics.RECORD_HEADER, topics.EVENT),
            ("event_type", e.event_type.encode()),
            ("event_id", e.event_id.encode()),
            ("source", e.source.encode()),
            (topics.SOURCE_KIND_HEADER, kind.encode()),
        )
        out.append((subject_key(e).encode(), encode_envelope(env), headers, int(e.occurred_at.timestamp() * 1000)))
    return out


async def _start_and_route(log: Any, store: Any, offset: int) -> float:
    """Seconds from a fresh router's start until it has routed the live event at ``offset`` (appended just before)."""
    started = time.perf_counter()
    router = LiveRouter(log, snapshots=store)
    await router.router.start()
    await router._restore()
    while router.router.position <= offset:
        await router.turn()
    return time.perf_counter() - started


async def run(args: argparse.Namespace, bootstrap: str) -> None:
    prefix = f"start{uuid.uuid4().hex[:8]}."
    t0 = time.perf_counter()
    events = directory_events(args.families) + list(city_events(args.families))
    records = _records(events)
    print(
        f"city: {args.families:,} families, {len(records):,} signed events (built in {time.perf_counter() - t0:.0f} s)"
    )
    log = NamespacedLog(KafkaLog(bootstrap, client_id="jigsaw-bench-start"), prefix)
    await log.start()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "store.db")
        await store.start()
        try:
            await log.create_topic(topics.INPUT)
            t0 = time.perf_counter()
            for i in range(0, len(records), 5000):
                chunk = records[i : i + 5000]
                await log.append_many(topics.INPUT, [(k, v, h) for k, v, h, _ in chunk], timestamp_ms=chunk[-1][3])
            print(f"accepted into Kafka at {bootstrap}: {time.perf_counter() - t0:.0f} s")
            t0 = time.perf_counter()
            first = LiveRouter(log, snapshots=store, snapshot_every=args.snapshot_every)
            await first.router.start()
            while True:
                before = first.router.position
                await first.router.step()
                await first._snapshot()
                if first.router.position == before:
                    break
            print(
                f"first router: routed the whole city in {time.perf_counter() - t0:.0f} s "
                f"({first.router.routed:,} events), snapshot at offset {first._snapshot_at:,}"
            )
            del first, events, records
            gc.collect()
            live = _records(list(city_events(1, seed=99))[:1])[0]
            key, value, headers, ms = live
            position = await log.append(topics.INPUT, value, key=key, headers=headers, timestamp_ms=ms)
            rss_before = _rss_mib()
            seconds = await _start_and_route(log, store, position.offset)
            print(
                f"a fresh router from the snapshot: routing the live event after {seconds:.1f} s; "
                f"resident memory {_rss_mib():,.0f} MiB (process; {_rss_mib() - rss_before:+,.0f} MiB for it)"
            )
            if not args.no_baseline:
                empty = SqliteStore(Path(tmp) / "empty.db")
                await empty.start()
                seconds = await _start_and_route(log, empty, position.offset)
                await empty.close()
                print(f"baseline, a fresh router with no snapshot (every record from offset 0): {seconds:.1f} s")
        finally:
            await store.close()
            await log.close()


async def main_async(args: argparse.Namespace) -> None:
    if args.bootstrap:
        await run(args, args.bootstrap)
        return
    async with own_broker() as bootstrap:
        await run(args, bootstrap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("families", nargs="?", type=int, default=100_000)
    parser.add_argument("--bootstrap", default=None, help="an existing broker (default: start one of its own)")
    parser.add_argument("--snapshot-every", type=int, default=50_000, help="input records between snapshots")
    parser.add_argument("--no-baseline", action="store_true", help="skip the start with no snapshot")
    from broker.logging import configure_logging

    configure_logging("json", "warning")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
