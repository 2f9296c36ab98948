"""End-to-end latency on Kafka: from an agency's ``POST /v1/events`` to the webhook arriving at the GP.

Runs ``jigsaw serve`` (gateway, router and dispatcher in one process, or with
``--split`` three processes, one role each, as a scaled-out deployment runs
them) as subprocesses on a real Kafka broker: by default one of its own, started with
``deploy/kafka/start.sh`` on free loopback ports and a state directory of its
own, and stopped with ``deploy/kafka/stop.sh`` at the end (so the topics hold
only this run's records); ``--bootstrap`` uses a broker already running,
with a webhook receiver in this process on 127.0.0.1 that the directory marks
internal. Organisations are fresh for each run (a police force, a GP practice
with the webhook, the partnership). It registers a pool of synthetic victims
at the practice, then posts police incidents at a steady rate (open loop, at
most ``--in-flight`` requests outstanding); each incident is routed to the
victim's GP and pushed by webhook. Latency is from just before the POST to the
receiver reading the webhook whose ``event_id`` matches, on one monotonic
clock. The first ``--warmup`` seconds are not counted.

Usage::

    bash deploy/kafka/fetch.sh
    .venv/bin/python bench/latency.py [--rate 20] [--seconds 60] [--split] [--bootstrap 127.0.0.1:19092]

Prints, next to the latency, the CPU each process spent per measured event (the serve processes, this
client with its receiver, and the broker: its pid from ``JIGSAW_BENCH_KAFKA_PID_FILE`` when it is not
the run's own); ``--profile ROLE`` runs that role's process under cProfile (``ROLE.prof``).

Loopback only. On a shared broker the serve process's dispatcher group is moved
to the end of the notifications topic first, so notifications other runs left
there are not sent again (retries they still owe may be).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scene import Receiver, cpu_seconds, free_port, incident, registration, victim
from broker import topics
from broker.client import JigsawClient
from broker.delivery.dispatcher import GROUP as DISPATCHER_GROUP
from broker.delivery.signing import WebhookKey
from broker.envelope.keys import KeyStore, SigningKey, new_key
from broker.gateway.auth import add_credential
from broker.log.kafka import KafkaLog

ROOT = Path(__file__).resolve().parent.parent


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))  # nearest rank
    return ordered[index]


async def _quiet_old_notifications(bootstrap: str) -> None:
    """Start serve's dispatcher at the end of every partition of the notifications topic (a shared dev broker
    has old ones). A topic that is not there is left for the router to create with its partitions."""
    log = KafkaLog(bootstrap, client_id="jigsaw-bench")
    await log.start()
    try:
        for partition in range(await log.partitions(topics.NOTIFICATIONS)):
            end = await log.end_offset(topics.NOTIFICATIONS, partition=partition)
            if (await log.committed(DISPATCHER_GROUP, topics.NOTIFICATIONS, partition=partition) or 0) < end:
                await log.commit(DISPATCHER_GROUP, topics.NOTIFICATIONS, end, partition=partition)
    finally:
        await log.close()


async def _wait_healthy(session: aiohttp.ClientSession, base: str, process: asyncio.subprocess.Process) -> None:
    for _ in range(600):
        if process.returncode is not None:
            raise RuntimeError(f"jigsaw serve exited with {process.returncode}")
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{base}/healthz") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError("jigsaw serve did not become healthy in 60 s")


@contextlib.asynccontextmanager
async def own_broker() -> AsyncIterator[str]:
    """A Kafka broker of this run's own (deploy/kafka/start.sh on free ports), stopped afterwards."""
    state = Path(tempfile.mkdtemp(prefix="jigsaw-latency-kafka-"))
    os.environ["JIGSAW_BENCH_KAFKA_PID_FILE"] = str(state / "kafka.pid")
    port, controller = free_port(), free_port()
    env = {
        **os.environ,
        "JIGSAW_KAFKA_STATE": str(state),
        "JIGSAW_KAFKA_PORT": str(port),
        "JIGSAW_KAFKA_CONTROLLER_PORT": str(controller),
    }
    start = await asyncio.create_subprocess_exec("bash", str(ROOT / "deploy/kafka/start.sh"), env=env)
    try:
        if await start.wait() != 0:
            raise RuntimeError("deploy/kafka/start.sh failed (run deploy/kafka/fetch.sh first)")
        yield f"127.0.0.1:{port}"
    finally:
        stop = await asyncio.create_subprocess_exec(
            "bash", str(ROOT / "deploy/kafka/stop.sh"), "--quiet", env=env, stdout=asyncio.subprocess.DEVNULL
        )
        await stop.wait()
        shutil.rmtree(state, ignore_errors=True)


async def bench(args: argparse.Namespace) -> int:
    if args.bootstrap is None:
        async with own_broker() as bootstrap:
            args.bootstrap = bootstrap
            return await measure(args, shared=False)
    return await measure(args, shared=True)


async def measure(args: argparse.Namespace, *, shared: bool) -> int:
    run = uuid.uuid4().hex[:6].upper()
    police, gp, partnership = f"POLICE-B{run}", f"GP-B{run}", f"PARTNERSHIP-B{run}"
    kinds = {police: "police", gp: "gp_practice", partnership: "partnership"}
    tmp = Path(tempfile.mkdtemp(prefix="jigsaw-latency-"))
    store = KeyStore(tmp / "keys")
    signing: dict[str, SigningKey] = {}
    tokens: dict[str, str] = {}
    for org, kind in kinds.items():
        record, signing[org] = new_key(org, kind, valid_from=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        store.save(record)
        tokens[org] = add_credential(tmp / "credentials.json", org, "publisher", "bench")
    key_file = tmp / "webhook-key"
    key_file.write_text(WebhookKey.generate().secret_text())
    key_file.chmod(0o600)
    receiver = Receiver()
    await receiver.start()
    if shared:
        await _quiet_old_notifications(args.bootstrap)
    port = free_port()
    env = {
        **os.environ,
        "JIGSAW_LOG_BACKEND": "kafka",
        "JIGSAW_KAFKA_BOOTSTRAP": args.bootstrap,
        "JIGSAW_DATA_DIR": str(tmp),
        "JIGSAW_CREDENTIALS_FILE": str(tmp / "credentials.json"),
        "JIGSAW_SIGNING_KEY_FILE": str(key_file),
        "JIGSAW_HTTP_PORT": str(port),
        "JIGSAW_LOG_LEVEL": "info" if args.serve_log else "warning",
        "JIGSAW_LOG_FORMAT": "json",
        # One agency posting 200 events a second is the load here, not an abuse to throttle.
        "JIGSAW_RATE_PER_ADDRESS": "100000",
        "JIGSAW_RATE_BURST_PER_ADDRESS": "100000",
        "JIGSAW_RATE_PER_CREDENTIAL": "100000",
        "JIGSAW_RATE_BURST_PER_CREDENTIAL": "100000",
    }
    jigsaw = str(ROOT / ".venv" / "bin" / "jigsaw")
    serve_log = open(args.serve_log, "wb") if args.serve_log else None
    layout = ["gateway", "router", "dispatcher"] if args.split else ["gateway,router,dispatcher"]
    processes = []
    for i, roles in enumerate(layout):
        own = {**env, "JIGSAW_ROLES": roles, "JIGSAW_HTTP_PORT": str(port if i == 0 else free_port())}
        command = [jigsaw, "serve"]
        if args.profile and args.profile in roles.split(","):  # cProfile that process; written when it stops
            command = [sys.executable, "-m", "cProfile", "-o", f"{args.profile}.prof", "-m", "broker", "serve"]
        processes.append(
            await asyncio.create_subprocess_exec(*command, env=own, stderr=serve_log or asyncio.subprocess.DEVNULL)
        )
    serve = processes[0]
    base = f"http://127.0.0.1:{port}"
    # CPU each process spends per measured event: where a 2-core machine's budget goes.
    watched = {roles: process.pid for roles, process in zip(layout, processes, strict=True)}
    watched["bench client and receiver"] = os.getpid()
    kafka_pid_file = os.environ.get("JIGSAW_BENCH_KAFKA_PID_FILE")
    if kafka_pid_file:  # set for a broker of its own; set it by hand for --bootstrap's
        watched["kafka broker"] = int(Path(kafka_pid_file).read_text())
    cpu_before: dict[str, float] = {}
    cpu_after: dict[str, float] = {}
    latencies: list[float] = []
    posts: list[float] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.in_flight)) as session:
            await _wait_healthy(session, base, serve)
            clients = {o: JigsawClient(base, tokens[o], key=signing[o], session=session) for o in kinds}
            for org, kind in kinds.items():
                entry = {
                    "org_id": org,
                    "kind": kind,
                    "name": f"Bench {org}",
                    "area": f"bench-{run.lower()}",
                    "endpoint": receiver.url if org == gp else None,
                    "endpoint_internal": org == gp,
                    "safeguarding_lead": "Bench lead",
                }
                assert (
                    await clients[partnership].publish("directory.organisation", entry, occurred_at=_now())
                ).accepted
            base_index = random.randrange(0, 700_000)
            victims = [victim(base_index + i) for i in range(args.victims)]
            for person in victims:
                assert (
                    await clients[gp].publish("gp.registration", registration(person, gp), occurred_at=_now())
                ).accepted
            # The pipeline is live once one incident has come through: on a fresh broker the router's first
            # transaction waits while Kafka creates its transaction log, which is start-up, not latency.
            ready_at = time.perf_counter()
            first = incident(f"B{run}-ready", victims[0])
            envelope = clients[police].build("police.domestic_abuse_incident", first, occurred_at=_now())
            assert (await clients[police].send(envelope)).accepted
            for _ in range(1200):
                if envelope.event_id in receiver.arrived:
                    break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the first incident's webhook did not arrive in 120 s")
            print(f"pipeline ready: the first webhook arrived {time.perf_counter() - ready_at:.1f} s after its POST")
            sent: dict[str, float] = {}
            in_flight = asyncio.Semaphore(args.in_flight)

            async def post(index: int, counted: bool) -> None:
                async with in_flight:
                    data = incident(f"B{run}-{index}", victims[index % len(victims)])
                    envelope = clients[police].build("police.domestic_abuse_incident", data, occurred_at=_now())
                    started = time.perf_counter()
                    result = await clients[police].send(envelope)
                    posts.append(time.perf_counter() - started)
                    if not result.accepted:
                        print(f"refused: {result.body}", file=sys.stderr)
                    elif counted:
                        sent[envelope.event_id] = started

            # Warm up (routing state, connections, JIT-free but cache-warm paths), then the measured window.
            interval = 1.0 / args.rate
            tasks: list[asyncio.Task[None]] = []
            total = int((args.warmup + args.seconds) * args.rate)
            start = time.perf_counter()
            for index in range(total):
                delay = start + index * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if index == int(args.warmup * args.rate):
                    cpu_before = {name: cpu_seconds(pid) for name, pid in watched.items()}
                tasks.append(asyncio.create_task(post(index, counted=index >= args.warmup * args.rate)))
            await asyncio.gather(*tasks)
            for _ in range(300):  # stragglers: up to 30 s
                if all(e in receiver.arrived for e in sent):
                    break
                await asyncio.sleep(0.1)
            cpu_after = {name: cpu_seconds(pid) for name, pid in watched.items()}
            latencies = [(receiver.arrived[e] - t) * 1000 for e, t in sent.items() if e in receiver.arrived]
            missing = len(sent) - len(latencies)
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 20)
        await receiver.stop()
        if serve_log is not None:
            serve_log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if not latencies:
        print("no webhook arrived", file=sys.stderr)
        return 1
    posts_ms = sorted(p * 1000 for p in posts)
    shape = "gateway, router and dispatcher as 3 processes" if args.split else "one process with every role"
    print(f"end-to-end latency, agency POST -> webhook received (Kafka at {args.bootstrap}, loopback; {shape})")
    print(f"  load: {args.rate:g} events/s for {args.seconds:g} s after {args.warmup:g} s warm-up,", end=" ")
    print(f"at most {args.in_flight} in flight")
    print(f"  measured: {len(latencies)} events, {missing} missing")
    print(
        f"  median {statistics.median(latencies):.1f} ms   p90 {_percentile(latencies, 90):.1f} ms   "
        f"p99 {_percentile(latencies, 99):.1f} ms   max {max(latencies):.1f} ms"
    )
    post_median, post_p99 = statistics.median(posts_ms), _percentile(posts_ms, 99)
    print(f"  (POST /v1/events alone: median {post_median:.1f} ms, p99 {post_p99:.1f} ms)")
    counted = max(1, len(sent))
    wall = args.seconds
    for name in watched:
        used = cpu_after.get(name, 0.0) - cpu_before.get(name, 0.0)
        print(f"  CPU {name}: {used * 1000 / counted:.2f} ms per event ({used / wall * 100:.0f} % of one core)")
    return 0 if not missing else 1


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=None, help="an existing broker (default: start one of its own)")
    parser.add_argument("--rate", type=float, default=20.0, help="events per second (default 20)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds (default 60)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds not counted (default 5)")
    parser.add_argument("--in-flight", type=int, default=16, help="most POSTs outstanding at once (default 16)")
    parser.add_argument("--split", action="store_true", help="gateway, router and dispatcher as separate processes")
    parser.add_argument("--serve-log", default=None, help="write jigsaw serve's info log here (diagnosis)")
    parser.add_argument("--profile", default=None, help="cProfile the process running this role (to ROLE.prof)")
    parser.add_argument("--victims", type=int, default=50, help="synthetic victims registered at the GP (default 50)")
    return asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
