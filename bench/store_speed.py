"""Store speed: inbox-listing latency over 10,000 notifications on SQLite and PostgreSQL, next to baselines.

    .venv/bin/python bench/store_speed.py [--notifications 10000] [--others 10000] [--runs 200]
                                          [--postgres DSN] [--no-postgres]

Fills each backend with ``--notifications`` synthetic notifications in one
organisation's inbox (every child an NHS number from the 999 range with a valid
Modulus 11 check digit; a third acknowledged, one in five urgent) plus
``--others`` spread over other organisations, then times, ``--runs`` times each:

- the first page (50, newest first);
- a filtered page (awaiting acknowledgement and urgent);
- one child's page;
- a page 5,000 deep (keyset cursor);
- the inbox counts;
- one acknowledgement (a durable write transaction).

Baselines measured in the same run: the backend's bare round trip
(``SELECT 1``) and an in-memory filter-and-sort over the same notifications
(what the inbox API did before the store replaced it).
PostgreSQL is ``--postgres``, else ``JIGSAW_TEST_POSTGRES_DSN``, else a
throwaway cluster from ``deploy/postgres/start.sh`` (stopped at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scene import INBOX_T0, fill_inbox, inbox_child, inbox_notifications
from broker.logging import configure_logging
from broker.routing.model import ACK_KINDS, Notification
from broker.store import InboxAck, InboxQuery, SqliteStore, Store
from broker.store.model import encode_cursor, to_ms
from broker.store.sqlstore import SqlStore

ROOT = Path(__file__).resolve().parents[1]
ORG = "ORG-BENCH"
T0 = INBOX_T0
PAGE = 50


async def _time(fn: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, float]:
    await fn()  # warm: prepared statements, page cache
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


async def _fill(store: Store, notes: list[Notification]) -> float:
    start = time.perf_counter()
    await fill_inbox(store, notes)
    return time.perf_counter() - start


async def _measure(store: Store, notes: list[Notification], runs: int) -> dict[str, tuple[float, float]]:
    child = inbox_child(notes[123])
    deep = notes[len([n for n in notes if n.recipient == ORG]) // 2]
    cursor = encode_cursor(to_ms(deep.at), deep.notification_id)
    now = T0 + dt.timedelta(days=30)
    assert isinstance(store, SqlStore)

    async def round_trip() -> None:
        async with store._read() as conn:
            await conn.fetchrow("SELECT 1")

    queries: dict[str, Callable[[], Awaitable[Any]]] = {
        "baseline: round trip (SELECT 1)": round_trip,
        "first page (50, newest)": lambda: store.list_inbox(InboxQuery(ORG, limit=PAGE)),
        "filtered page (awaiting, urgent)": lambda: store.list_inbox(
            InboxQuery(ORG, state="awaiting", priority="urgent", limit=PAGE)
        ),
        "one child's page": lambda: store.list_inbox(InboxQuery(ORG, child=child, limit=PAGE)),
        "page 5,000 deep (keyset)": lambda: store.list_inbox(InboxQuery(ORG, limit=PAGE, after=cursor)),
        "counts (6 statuses)": lambda: store.count_inbox(ORG, now=now),
    }
    timings = {name: await _time(fn, runs) for name, fn in queries.items()}
    # Last, as it changes the inbox: one acknowledgement, committed durably, each of a different notification.
    waiting = iter([n for n in notes if n.recipient == ORG][1::3])

    async def acknowledge() -> None:
        n = next(waiting)
        await store.acknowledge(InboxAck(ORG, n.notification_id, "B. Worker", now))

    timings["acknowledge one (a write transaction)"] = await _time(acknowledge, min(runs, 1000))
    return timings


async def _baseline(notes: list[Notification], runs: int) -> dict[str, tuple[float, float]]:
    mine = [n for n in notes if n.recipient == ORG]
    acked = {n.notification_id for n in notes[::3]}

    def query(*, unacknowledged: bool = False, priority: str | None = None) -> list[Notification]:
        found = [
            n
            for n in mine
            if (priority is None or n.priority == priority)
            and not (unacknowledged and (n.kind not in ACK_KINDS or n.notification_id in acked))
        ]
        found.sort(key=lambda n: n.at)
        return found[:PAGE]

    async def first() -> None:
        query()

    async def filtered() -> None:
        query(unacknowledged=True, priority="urgent")

    return {
        "baseline: in-memory filter and sort, first page": await _time(first, runs),
        "baseline: in-memory filter and sort, filtered": await _time(filtered, runs),
    }


def _start_postgres(state: str) -> str:
    env = {**os.environ, "JIGSAW_POSTGRES_STATE": state}
    out = subprocess.run([str(ROOT / "deploy/postgres/start.sh")], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


async def main(args: argparse.Namespace) -> int:
    configure_logging(level="warning")
    notes = inbox_notifications(ORG, args.notifications, args.others)
    results: dict[str, dict[str, tuple[float, float]]] = {}
    fills: dict[str, float] = {}
    baseline = await _baseline(notes, args.runs)
    with tempfile.TemporaryDirectory(prefix="jigsaw-store-bench-") as workdir:
        stores: dict[str, Callable[[], Store]] = {"sqlite": lambda: SqliteStore(Path(workdir) / "store.db")}
        dsn = args.postgres or os.environ.get("JIGSAW_TEST_POSTGRES_DSN", "")
        if not args.no_postgres:
            if not dsn:
                dsn = await asyncio.to_thread(_start_postgres, str(Path(workdir) / "pgstate"))
            from broker.store.postgres import PostgresStore

            schema = f"bench_{uuid.uuid4().hex[:12]}"
            stores["postgresql"] = lambda: PostgresStore(f"{dsn}{'&' if '?' in dsn else '?'}search_path={schema}")
        try:
            for name, factory in stores.items():
                if name == "postgresql":
                    import asyncpg

                    conn = await asyncpg.connect(dsn)
                    await conn.execute(f"CREATE SCHEMA {schema}")
                    await conn.close()
                store = factory()
                await store.start()
                try:
                    fills[name] = await _fill(store, notes)
                    results[name] = await _measure(store, notes, args.runs)
                finally:
                    await store.close()
                if name == "postgresql":
                    conn = await asyncpg.connect(dsn)
                    await conn.execute(f"DROP SCHEMA {schema} CASCADE")
                    await conn.close()
        finally:
            if not args.no_postgres and not (args.postgres or os.environ.get("JIGSAW_TEST_POSTGRES_DSN")):
                env = {**os.environ, "JIGSAW_POSTGRES_STATE": str(Path(workdir) / "pgstate")}
                stop = [str(ROOT / "deploy/postgres/stop.sh"), "--quiet"]
                await asyncio.to_thread(subprocess.run, stop, env=env, check=False)

    print(
        f"store_speed: {args.notifications:,} notifications in {ORG}'s inbox ({len(notes):,} in all), "
        f"{args.runs} runs each; milliseconds, median / p95"
    )
    backends = list(results)
    print(f"{'':48}" + "".join(f"{b:>20}" for b in backends))
    for name in next(iter(results.values())):
        cells = "".join(f"{results[b][name][0]:>11.3f} / {results[b][name][1]:<6.3f}" for b in backends)
        print(f"{name:48}{cells}")
    for name, (median, p95) in baseline.items():
        print(f"{name:48}{median:>11.3f} / {p95:<6.3f}  (no database)")
    print("fill (insert, ack a third, VACUUM or ANALYZE): " + ", ".join(f"{b} {s:.1f} s" for b, s in fills.items()))
    return 0


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notifications", type=int, default=10_000, help="in the measured inbox (default 10000)")
    parser.add_argument("--others", type=int, default=10_000, help="in other inboxes (default 10000)")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per query (default 200)")
    parser.add_argument("--postgres", default="", help="a PostgreSQL DSN (default: start a throwaway cluster)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    return parser.parse_args()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(_arguments())))
