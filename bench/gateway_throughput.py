"""Accepted events per second through ``POST /v1/events:batch``, next to the raw Ed25519 verify rate.

Starts a gateway in this process on 127.0.0.1 (ephemeral port) over Kafka (or
the embedded log), with sample keys and credentials, pre-builds and signs
synthetic police incidents (999-range NHS numbers), then posts them in batches
and counts what was accepted. In the same run it measures, over the same
envelopes:

- the raw Ed25519 verify rate (``cryptography``, PAE precomputed): the ceiling
  signature checks put on a single core;
- both ratios of the gateway to it: by wall-clock time, and by this process's
  CPU time (steadier when other processes share the machine);
- the full ``validation.verify`` rate with no HTTP and no log (decode, key,
  signature, schema, permission, NHS numbers).

The gateway runs as a scale-out gateway process does (``JIGSAW_ROLES=gateway``):
the serving views are followed by a ``views`` process (``--views`` runs that
role in the gateway's process too, as the embedded default does), and a
batch's signatures are checked on ``JIGSAW_VERIFY_WORKERS`` worker processes
(``--verify-workers``; default auto, as the service). The CPU-time ratio counts
this process only: with workers, read the wall-clock one.

Usage::

    python bench/gateway_throughput.py --bootstrap 127.0.0.1:19092 [--events 20000] [--batch 500]
    python bench/gateway_throughput.py --backend embedded

The client shares the process and event loop with the gateway, but only posts
pre-encoded bytes, so the figure is the gateway's (slightly understated).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scene import cpu_seconds
from broker import heap
from broker.client import build_envelope
from broker.envelope import KeyStore, encode_envelope, pre_auth_encoding
from broker.envelope.batch import BATCH_CONTENT_TYPE, encode_batch
from broker.envelope.testing import make_keys, sample_data
from broker.gateway.app import create_app
from broker.gateway.auth import Credentials
from broker.gateway.keys import INTAKE
from broker.log import EmbeddedLog, Log
from broker.nhs import synthetic_nhs_numbers
from broker.settings import Settings, verify_worker_count
from broker.validation import verify

SOURCE = "POLICE-WYP"
TOKEN = "bench-token"


def _envelopes(count: int, keys: object) -> list[bytes]:
    signing = keys.signing[SOURCE]  # type: ignore[attr-defined]
    numbers = synthetic_nhs_numbers()
    now = dt.datetime.now(dt.UTC)
    out = []
    for index in range(count):
        data = sample_data("police.domestic_abuse_incident", index % 1000)
        data["victim"] = {"nhs_number": next(numbers), "name": f"Victim {index}"}
        data["incident_ref"] = f"BENCH-{index}"
        env = build_envelope(
            "police.domestic_abuse_incident",
            data,
            source=SOURCE,
            key=signing,
            occurred_at=now - dt.timedelta(hours=1),
            issued_at=now,
            event_id=str(uuid.uuid4()),
        )
        out.append(encode_envelope(env))
    return out


def _raw_verify_rate(bodies: list[bytes], keys: object) -> tuple[float, float]:
    """Verifies per second of wall-clock time and per second of this process's CPU time."""
    from broker.envelope import decode_envelope

    public = keys.records[SOURCE].verifier()  # type: ignore[attr-defined]
    items = []
    for body in bodies:
        env = decode_envelope(body)
        items.append((env.signature, pre_auth_encoding(env)))
    started, cpu = time.perf_counter(), time.process_time()
    for signature, message in items:
        public.verify(signature, message)
    return len(items) / (time.perf_counter() - started), len(items) / (time.process_time() - cpu)


def _validate_rate(bodies: list[bytes], keys: object) -> float:
    registry = keys.registry  # type: ignore[attr-defined]
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    for body in bodies:
        verify(body, keys=registry, now=now, publisher_of=lambda _i: None)
    return len(bodies) / (time.perf_counter() - started)


async def _log_rates(log: Log, bodies: list[bytes], batch: int) -> tuple[float, float]:
    """Appends per second to a scratch topic: one at a time (awaiting each), and in batches."""
    topic = f"jigsaw.bench.{uuid.uuid4().hex}"
    await log.start()
    try:
        await log.create_topic(topic)
        await log.append(topic, b"warm-up")
        singles = bodies[: min(len(bodies), 2000)]
        started = time.perf_counter()
        for body in singles:
            await log.append(topic, body, key=b"k")
        single = len(singles) / (time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(0, len(bodies), batch):
            await log.append_many(topic, [(b"k", body, ()) for body in bodies[i : i + batch]])
        many = len(bodies) / (time.perf_counter() - started)
    finally:
        await log.close()
    return single, many


def _workers_cpu(app: web.Application) -> float:
    """CPU seconds the gateway's signature workers have used so far."""
    return sum(cpu_seconds(worker.process.pid) for worker in app[INTAKE].signatures._workers)


def _open_log(args: argparse.Namespace, workdir: Path) -> Log:
    if args.backend == "embedded":
        return EmbeddedLog(workdir / "log.db")
    from broker.log.kafka import KafkaLog
    from broker.log.namespace import NamespacedLog

    # Topics of this run's own, so nothing else appending to the broker interleaves with the chain.
    return NamespacedLog(KafkaLog(args.bootstrap, client_id="jigsaw-bench"), f"bench{uuid.uuid4().hex[:10]}.")


async def _post_all(base_url: str, bodies: list[bytes], batch: int, concurrency: int) -> tuple[int, int, float, float]:
    """Accepted, refused, wall-clock seconds and this process's CPU seconds (gateway and client together)."""
    batches = [encode_batch(bodies[i : i + batch]) for i in range(0, len(bodies), batch)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for item in batches:
        queue.put_nowait(item)
    accepted = refused = 0
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": BATCH_CONTENT_TYPE}

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal accepted, refused
        while not queue.empty():
            body = queue.get_nowait()
            async with session.post(base_url + "/v1/events:batch", data=body, headers=headers) as response:
                answer = await response.json()
                if response.status != 207:
                    raise RuntimeError(f"batch refused: {answer}")
                accepted += int(answer["accepted"])
                refused += int(answer["refused"])

    async with aiohttp.ClientSession() as session:
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return accepted, refused, elapsed, cpu


async def main(args: argparse.Namespace) -> int:
    keys = make_keys()
    with tempfile.TemporaryDirectory(prefix="jigsaw-bench-") as tmp:
        workdir = Path(tmp)
        store = KeyStore(workdir / "keys")
        for record in keys.records.values():
            store.save(record)
        settings = Settings(
            data_dir=workdir,
            keys_dir=workdir / "keys",
            max_body_bytes=8 * 1024 * 1024,
            max_batch=args.batch,
            verify_workers=args.verify_workers,
        )
        credentials = Credentials.from_tokens([(TOKEN, SOURCE, "publisher")])
        print(f"building and signing {args.events} envelopes ...", flush=True)
        started = time.perf_counter()
        bodies = _envelopes(args.events, keys)
        build_rate = args.events / (time.perf_counter() - started)
        size = sum(map(len, bodies)) / len(bodies)
        raw, raw_cpu = _raw_verify_rate(bodies, keys)
        full = _validate_rate(bodies, keys)
        single, many = await _log_rates(_open_log(args, workdir / "scratch"), bodies, args.batch)

        # A gateway process as the scale-out runbook runs it: the views are followed by a ``views`` process
        # (``--views``: by this one too, as the embedded default does).
        roles = ("views",) if args.views else ()
        heap.configure()  # the collector as ``jigsaw serve`` sets it
        app = create_app(settings, _open_log(args, workdir), keys=store, credentials=credentials, roles=roles)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        heap.settle()  # as ``jigsaw serve`` does once it listens: the envelopes built above are long-lived
        try:
            # A warm-up batch (connections, topic metadata) that is not counted.
            warm = _envelopes(min(args.batch, 200), keys)
            await _post_all(f"http://{host}:{port}", warm, args.batch, 1)
            workers_before = _workers_cpu(app)
            accepted, refused, elapsed, cpu = await _post_all(
                f"http://{host}:{port}", bodies, args.batch, args.concurrency
            )
            workers_cpu = _workers_cpu(app) - workers_before
        finally:
            await runner.cleanup()

    workers = verify_worker_count(settings)
    backend = f"kafka at {args.bootstrap}" if args.backend == "kafka" else "embedded (SQLite)"
    print(f"log backend                     : {backend}")
    print(f"envelopes                       : {args.events} (mean {size:.0f} bytes), batches of {args.batch}")
    print(f"roles in the gateway's process  : {'gateway, views' if args.views else 'gateway'}")
    print(f"signature worker processes      : {workers} (JIGSAW_VERIFY_WORKERS)")
    print(f"build + sign (client side)      : {build_rate:,.0f} envelopes/s")
    print(f"raw Ed25519 verify              : {raw:,.0f} verifies/s (one core, PAE precomputed)")
    print(f"validation.verify (no HTTP/log) : {full:,.0f} envelopes/s")
    print(f"log append, one at a time       : {single:,.0f} records/s")
    print(f"log append_many, batches of {args.batch:<4}: {many:,.0f} records/s")
    print(
        f"POST /v1/events:batch           : {accepted / elapsed:,.0f} accepted events/s "
        f"({accepted} accepted, {refused} refused in {elapsed:.2f} s, concurrency {args.concurrency})"
    )
    print(f"gateway / raw verify            : {accepted / elapsed / raw:.1%}")
    # The same ratio in CPU time: steadier on a shared machine, where other processes take wall-clock time.
    print(
        f"gateway / raw verify, CPU time  : {accepted / cpu / raw_cpu:.1%} "
        f"({accepted / cpu:,.0f} accepted per CPU-second, {raw_cpu:,.0f} verifies per CPU-second)"
    )
    if workers:
        print(
            f"... counting the workers' CPU  : {accepted / (cpu + workers_cpu) / raw_cpu:.1%} "
            f"({accepted / (cpu + workers_cpu):,.0f} accepted per CPU-second of the gateway and its "
            f"{workers} worker(s), which took {workers_cpu:.2f} s)"
        )
    return 0 if accepted == args.events and refused == 0 else 1


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("kafka", "embedded"), default="kafka")
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("JIGSAW_TEST_KAFKA_BOOTSTRAP")
        or os.environ.get("JIGSAW_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
    )
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument(
        "--verify-workers", type=int, default=None, help="signature worker processes (default: auto, as the service)"
    )
    parser.add_argument(
        "--views", action="store_true", help="run the views role (serving views followed) in the gateway's process"
    )
    return parser.parse_args()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(_arguments())))
