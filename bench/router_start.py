"""A router starting on a machine with no local files over a big city on Kafka: from its snapshot, and without one.

Accepts the synthetic city of ``bench/city.py`` (``FAMILIES`` families, signed
envelopes) into the input topic on a Kafka broker of the run's own (or
``--bootstrap``, under a fresh topic prefix) and routes it once with a live
router that saves one snapshot in a store (SQLite here; PostgreSQL in a
scaled-out deployment) ``--tail`` input records before the end (default 10,000:
the most a router started with ``JIGSAW_SNAPSHOT_EVERY`` at its default finds
after its newest snapshot), routes the rest and raises the escalations its
clock makes due, as a live router does. Then it appends one new live event and
times fresh routers, each a new process with an empty working directory:

- from the snapshot: until it has routed the new live event (it applies only
  the records after the snapshot), and the resident memory it then holds;
- baseline: a router with no snapshot, which re-applies every input record
  from offset 0 before it routes the new event.

Usage::

    .venv/bin/python bench/router_start.py [FAMILIES] [--bootstrap HOST:PORT] [--tail N] [--no-baseline]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import resource
import subprocess
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


async def _start_and_route(bootstrap: str, prefix: str, store_path: str, offset: int) -> dict[str, float]:
    """In a fresh process: seconds from a router's start until it has routed the live event at ``offset``."""
    started = time.perf_counter()
    log = NamespacedLog(KafkaLog(bootstrap, client_id="jigsaw-bench-start"), prefix)
    await log.start()
    store = SqliteStore(Path(store_path))
    await store.start()
    try:
        router = LiveRouter(log, snapshots=store)
        await router.router.start()
        await router._restore()
        restored = time.perf_counter() - started
        while router.router.position <= offset:
            await router.turn()
        return {
            "seconds": time.perf_counter() - started,
            "restored": restored,
            "snapshot_offset": router._snapshot_at,  # 0: no snapshot was loaded
            "rss_mib": _rss_mib(),
        }
    finally:
        await store.close()
        await log.close()


def _fresh_router(bootstrap: str, prefix: str, store_path: Path, offset: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--start-only", prefix, str(store_path), str(offset), "--bootstrap", bootstrap]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def run(args: argparse.Namespace, bootstrap: str) -> None:
    prefix = f"start{uuid.uuid4().hex[:8]}."
    t0 = time.perf_counter()
    events = directory_events(args.families) + list(city_events(args.families))
    records = _records(events)
    print(
        f"city: {args.families:,} families, {len(records):,} signed events (built in {time.perf_counter() - t0:.0f} s)",
        flush=True,
    )
    log = NamespacedLog(KafkaLog(bootstrap, client_id="jigsaw-bench-start"), prefix)
    await log.start()
    with tempfile.TemporaryDirectory() as tmp:
        store_path = Path(tmp) / "store.db"
        store = SqliteStore(store_path)
        await store.start()
        try:
            await log.create_topic(topics.INPUT)
            t0 = time.perf_counter()
            for i in range(0, len(records), 5000):
                chunk = records[i : i + 5000]
                await log.append_many(topics.INPUT, [(k, v, h) for k, v, h, _ in chunk], timestamp_ms=chunk[-1][3])
            print(f"accepted into Kafka at {bootstrap}: {time.perf_counter() - t0:.0f} s", flush=True)
            t0 = time.perf_counter()
            at = max(0, len(records) - args.tail)
            first = LiveRouter(log, snapshots=store, snapshot_every=at or 1)
            await first.router.start()
            while first.router.position < at:
                first.router._batch = min(1000, at - first.router.position)  # stop at the snapshot
                await first.router.step()
            await first._snapshot()
            await first.saved()  # the snapshot is saved in the background: in the store before the store closes
            first.router._batch = 1000
            while first.router.position < len(records):
                await first.router.step()
            await first.router.step(now=dt.datetime.now(dt.UTC))  # caught up: the escalations now due
            print(
                f"first router: routed the whole city in {time.perf_counter() - t0:.0f} s "
                f"({first.router.routed:,} events), snapshot at offset {first._snapshot_at:,}",
                flush=True,
            )
            if first.router._writer is not None:
                await first.router._writer.close()
            await store.close()
            del first, events, records
            live = _records(list(city_events(1, seed=99))[:1])[0]
            key, value, headers, ms = live
            position = await log.append(topics.INPUT, value, key=key, headers=headers, timestamp_ms=ms)
            await log.close()  # idle for minutes while the fresh routers run, its fetches would time out
            got = _fresh_router(bootstrap, prefix, store_path, position.offset)
            if got["snapshot_offset"] != at:  # else the figure below would be a start with no snapshot
                raise SystemExit(f"the fresh router did not load the snapshot at {at:,} ({got['snapshot_offset']:,})")
            print(
                f"a fresh router from the snapshot (a new process): routing the live event after "
                f"{got['seconds']:.1f} s (snapshot at {got['snapshot_offset']:,} loaded after {got['restored']:.1f} s, "
                f"{position.offset - at:,} records after it); resident memory {got['rss_mib']:,.0f} MiB",
                flush=True,
            )
            if not args.no_baseline:
                got = _fresh_router(bootstrap, prefix, Path(tmp) / "empty.db", position.offset)
                print(
                    f"baseline, a fresh router with no snapshot (every record from offset 0): {got['seconds']:.1f} s; "
                    f"resident memory {got['rss_mib']:,.0f} MiB",
                    flush=True,
                )
        finally:
            await log.close()


async def main_async(args: argparse.Namespace) -> None:
    if args.start_only:
        prefix, store_path, offset = args.start_only
        print(json.dumps(await _start_and_route(args.bootstrap, prefix, store_path, int(offset))))
        return
    if args.bootstrap:
        await run(args, args.bootstrap)
        return
    async with own_broker() as bootstrap:
        await run(args, bootstrap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("families", nargs="?", type=int, default=100_000)
    parser.add_argument("--bootstrap", default=None, help="an existing broker (default: start one of its own)")
    parser.add_argument("--tail", type=int, default=10_000, help="input records after the snapshot")
    parser.add_argument("--start-only", nargs=3, metavar=("PREFIX", "STORE", "OFFSET"), help=argparse.SUPPRESS)
    parser.add_argument("--no-baseline", action="store_true", help="skip the start with no snapshot")
    from broker.logging import configure_logging

    configure_logging("json", "warning")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
