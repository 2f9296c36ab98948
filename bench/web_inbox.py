"""Web inbox speed: the inbox page's server time for an organisation with 10,000 notifications, next to baselines.

    .venv/bin/python bench/web_inbox.py [--notifications 10000] [--others 10000] [--runs 200]
                                        [--postgres DSN]

Serves the real gateway app (web pages included) on 127.0.0.1 over an empty
embedded log and a store (SQLite in a temporary directory, or a fresh schema
on ``--postgres``) filled with ``--notifications`` synthetic notifications in
one organisation's inbox (a third acknowledged, one in five urgent, children
from the 999 NHS number range) plus ``--others`` in other inboxes. A person of
that organisation signs in with the demo's local sign-in, and each page is
fetched ``--runs`` times; the page's own ``Server-Timing`` (the handler: store
queries, access record, template) and the client's wall time are reported as
median and p95.

Baselines measured in the same run, in the same process: the store's
``list_inbox`` for one page alone, its ``count_inbox``, and reading every row
of the inbox (what the page did before it paged through the store).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scene import INBOX_T0, fill_inbox, inbox_child, inbox_notifications
from broker.envelope.keys import KeyStore
from broker.gateway.app import create_app
from broker.log import EmbeddedLog
from broker.logging import configure_logging
from broker.settings import Settings
from broker.store import InboxQuery, SqliteStore, Store

ORG = "GP-BENCH"
T0 = INBOX_T0
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
Samples = tuple[float, float]


def _summary(samples: list[float]) -> Samples:
    samples = sorted(samples)
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]


async def _time(fn: Callable[[], Awaitable[Any]], runs: int) -> Samples:
    await fn()  # warm
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - start) * 1000)
    return _summary(samples)


async def _pages(base: str, runs: int, child: str) -> dict[str, tuple[Samples, Samples]]:
    """Server-Timing and wall time of each page, signed in as the organisation's safeguarding lead."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.get(base + "/web/sign-in") as r:
            token = CSRF.search(await r.text())
        assert token, "no sign-in form"
        form = {"csrf_token": token.group(1), "user": "lead", "return_to": "/web/inbox"}
        async with client.post(base + "/web/sign-in/local", data=form) as r:
            first = await r.text()
        assert r.status == 200 and "page 1 of" in first, first[:300]
        nxt = re.search(r'href="([^"]+)" rel="next"', first)
        assert nxt
        pages = {
            "inbox, first page": "/web/inbox",
            "inbox, awaiting and urgent": "/web/inbox?status=awaiting&priority=urgent",
            "inbox, one child": "/web/inbox?nhs_number=" + child,
            "inbox, second page (cursor)": nxt.group(1).replace("&amp;", "&"),
        }
        out = {}
        for name, path in pages.items():
            server, wall = [], []
            for i in range(runs + 1):
                start = time.perf_counter()
                async with client.get(base + path) as r:
                    body = await r.text()
                    assert r.status == 200, f"{path} answered {r.status}: {body[:400]}"
                    timing = r.headers["Server-Timing"]
                if i:  # the first is a warm-up
                    wall.append((time.perf_counter() - start) * 1000)
                    server.append(float(timing.split("dur=")[1]))
            out[name] = (_summary(server), _summary(wall))
        return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main(args: argparse.Namespace) -> int:
    configure_logging(level="warning")
    notes = inbox_notifications(ORG, args.notifications, args.others)
    with tempfile.TemporaryDirectory(prefix="jigsaw-web-bench-") as workdir:
        tmp = Path(workdir)
        users = tmp / "users.json"
        rule = {"match": {"sub": "lead"}, "name": "A. Lead", "org_id": ORG, "role": "professional"}
        users.write_text(json.dumps({"users": [rule]}), encoding="utf-8")
        (tmp / "credentials.json").write_text('{"credentials": []}', encoding="utf-8")
        schema = ""
        if args.postgres:
            import asyncpg

            from broker.store.postgres import PostgresStore

            schema = f"bench_{uuid.uuid4().hex[:12]}"
            conn = await asyncpg.connect(args.postgres)
            await conn.execute(f"CREATE SCHEMA {schema}")
            await conn.close()
            store: Store = PostgresStore(f"{args.postgres}{'&' if '?' in args.postgres else '?'}search_path={schema}")
        else:
            store = SqliteStore(tmp / "store.db")
        port = _free_port()
        settings = Settings(
            data_dir=tmp,
            log_path=tmp / "log.db",
            keys_dir=tmp / "keys",
            credentials_file=tmp / "credentials.json",
            http_port=port,
            web_users_file=users,
            web_local_sign_in=True,
            rate_per_address=1e6,  # one client asks for every page: the guard's limit is not what is measured
            rate_burst_per_address=1e6,
            log_level="warning",
        )
        now = T0 + dt.timedelta(minutes=args.notifications + args.others + 60)
        app = create_app(
            settings, EmbeddedLog(tmp / "log.db"), keys=KeyStore(tmp / "keys"), roles=(), clock=lambda: now, store=store
        )
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            started = time.perf_counter()
            await fill_inbox(store, notes)
            fill_s = time.perf_counter() - started
            child = inbox_child(notes[123])
            pages = await _pages(f"http://127.0.0.1:{port}", args.runs, child)
            baselines = {
                "store.list_inbox, one page (25) alone": await _time(
                    lambda: store.list_inbox(InboxQuery(ORG, limit=25)), args.runs
                ),
                "store.count_inbox alone": await _time(lambda: store.count_inbox(ORG, now=now), args.runs),
                "every row of the inbox (the page before)": await _time(lambda: _every_row(store), 10),
            }
        finally:
            await runner.cleanup()
            if schema:
                import asyncpg

                conn = await asyncpg.connect(args.postgres)
                await conn.execute(f"DROP SCHEMA {schema} CASCADE")
                await conn.close()
    print(
        f"web_inbox ({store.name}): {args.notifications:,} notifications in {ORG}'s inbox ({len(notes):,} in all), "
        f"{args.runs} requests per page; milliseconds, median / p95 (filled in {fill_s:.1f} s)"
    )
    print(f"{'':44}{'server (Server-Timing)':>24}{'client wall time':>22}")
    for name, ((s_med, s_p95), (w_med, w_p95)) in pages.items():
        print(f"{name:44}{s_med:>13.2f} / {s_p95:<8.2f}{w_med:>11.2f} / {w_p95:<8.2f}")
    for name, (median, p95) in baselines.items():
        print(f"{'baseline: ' + name:44}{median:>13.2f} / {p95:<8.2f}")
    return 0


async def _every_row(store: Store) -> int:
    rows, after = 0, None
    while True:
        page = await store.list_inbox(InboxQuery(ORG, limit=1000, after=after, oldest_first=True))
        rows += len(page.items)
        if page.next is None:
            return rows
        after = page.next


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notifications", type=int, default=10_000, help="in the measured inbox (default 10000)")
    parser.add_argument("--others", type=int, default=10_000, help="in other inboxes (default 10000)")
    parser.add_argument("--runs", type=int, default=200, help="requests per page (default 200)")
    parser.add_argument("--postgres", default="", help="a PostgreSQL DSN (default: SQLite in a temporary directory)")
    return parser.parse_args()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(_arguments())))
