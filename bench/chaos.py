"""Chaos on a real Kafka: every role as separate processes, one SIGKILLed every few seconds, nothing lost.

Starts 2 gateways, 2 routers (one active, one standing by) and 2 dispatchers,
each a ``jigsaw serve`` process with one role (``JIGSAW_ROLES``), on a Kafka
broker of the run's own (``deploy/kafka/start.sh`` on free ports; or
``--bootstrap`` with a fresh topic prefix). A webhook receiver stands in for a
GP practice. Agencies post police incidents about the practice's patients at a
steady rate through both gateways, and re-send with the same bytes whatever was
not answered 2xx. Every ``--kill-every`` seconds one process, chosen at random,
is killed with SIGKILL and started again at once.

At the end it counts, from the log and the receiver:

- accepted events, and how often each is on the input topic (must be once);
- notifications the policy gives (one to the victim's GP per incident) and
  how many were recorded, and how many records repeat an id (must be none);
- webhooks that arrived (every notification at least once), and webhooks
  sent again after the dispatchers had recorded that ``webhook-id`` as
  delivered (must be none): attempts on the ledger that started after the
  record (in ms), or arrivals whose ``webhook-timestamp`` (whole seconds) is
  after it. An arrival after the record that was sent before it (an earlier
  attempt that timed out, or two dispatchers' first attempts at once during a
  rebalance) is counted and shown apart, as receivers dedupe those by
  ``webhook-id``. The ledger's record of every id that arrives late is printed;
- ``jigsaw replay --kafka`` over the whole log (must exit 0).

Usage::

    bash deploy/kafka/fetch.sh
    .venv/bin/python bench/chaos.py [--seconds 60] [--kill-every 10] [--rate 10] [--bootstrap HOST:PORT]

Exits 0 only when nothing was lost or duplicated and the replay is clean.
Loopback only; bounded in requests and time.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.latency import own_broker
from bench.scene import (
    Receiver,
    directory_entry,
    free_port,
    incident,
    jigsaw_key,
    organisations,
    registration,
    victim,
    wait_healthy,
)
from broker import topics
from broker.client import JigsawClient
from broker.delivery.records import decode_delivery
from broker.envelope.keys import SigningKey
from broker.envelope.model import Envelope
from broker.log.base import Log, Record
from broker.log.kafka import KafkaLog
from broker.log.namespace import NamespacedLog
from broker.routing.model import notification_id

ROOT = Path(__file__).resolve().parent.parent
ROLES = ("gateway", "gateway", "router", "router", "dispatcher", "dispatcher")


@dataclass
class Fleet:
    """The role processes, each restartable with the same environment."""

    base_env: dict[str, str]
    logs: Path
    processes: list[asyncio.subprocess.Process | None] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    kills: list[str] = field(default_factory=list)

    async def start(self, index: int) -> None:
        role = ROLES[index]
        env = {**self.base_env, "JIGSAW_ROLES": role, "JIGSAW_HTTP_PORT": str(self.ports[index])}
        out = open(self.logs / f"{index}-{role}.log", "ab")
        jigsaw = str(ROOT / ".venv" / "bin" / "jigsaw")
        self.processes[index] = await asyncio.create_subprocess_exec(jigsaw, "serve", env=env, stderr=out, stdout=out)

    async def start_all(self) -> None:
        self.ports = [free_port() for _ in ROLES]
        self.processes = [None] * len(ROLES)
        for index in range(len(ROLES)):
            await self.start(index)

    async def kill_and_restart(self, index: int) -> None:
        process = self.processes[index]
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        self.kills.append(f"{ROLES[index]}#{index}")
        await self.start(index)

    async def stop_all(self) -> None:
        for process in self.processes:
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            if process is not None:
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    process.kill()
                    await process.wait()

    def gateway_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{self.ports[i]}" for i, role in enumerate(ROLES) if role == "gateway"]


class Agency:
    """Publishes through any gateway; re-sends the same bytes until one answers 2xx."""

    def __init__(self, session: aiohttp.ClientSession, urls: list[str], token: str, key: SigningKey) -> None:
        self.clients = [JigsawClient(url, token, key=key, session=session) for url in urls]
        self.accepted: dict[str, Envelope] = {}
        self.owed: dict[str, Envelope] = {}
        self.attempts = 0
        self.failures: collections.Counter[str] = collections.Counter()

    async def send(self, envelope: Envelope) -> bool:
        self.attempts += 1
        client = random.choice(self.clients)
        try:
            result = await asyncio.wait_for(client.send(envelope), 20)
        except Exception as exc:  # a killed gateway: connection refused or reset, or no answer
            self.failures[type(exc).__name__] += 1
            self.owed[envelope.event_id] = envelope
            return False
        if result.status in (200, 202):
            self.accepted[envelope.event_id] = envelope
            self.owed.pop(envelope.event_id, None)
            return True
        self.failures[f"http {result.status}"] += 1
        self.owed[envelope.event_id] = envelope
        return False

    async def until_accepted(self, envelope: Envelope, *, tries: int = 120) -> None:
        """Send until a gateway answers 2xx (every half second, ``tries`` times at most)."""
        for _ in range(tries):
            if await self.send(envelope):
                return
            await asyncio.sleep(0.5)
        raise RuntimeError(f"{envelope.event_type} {envelope.event_id} was never accepted")

    async def resend_owed(self) -> None:
        for envelope in list(self.owed.values()):
            await self.send(envelope)


async def _read_all(log: Log, topic: str) -> list[Record]:
    out: list[Record] = []
    for partition in range(await log.partitions(topic)):
        offset = 0
        while batch := await log.read(topic, offset, partition=partition, limit=5000):
            out += batch
            offset = batch[-1].offset + 1
    return out


async def run(args: argparse.Namespace, bootstrap: str, prefix: str) -> int:
    run_id = uuid.uuid4().hex[:6].upper()
    police, gp, partnership = f"POLICE-C{run_id}", f"GP-C{run_id}", f"PARTNERSHIP-C{run_id}"
    kinds = {police: "police", gp: "gp_practice", partnership: "partnership"}
    tmp = Path(tempfile.mkdtemp(prefix="jigsaw-chaos-"))
    (tmp / "logs").mkdir()
    signing, tokens = organisations(tmp, kinds)
    jigsaw_key(tmp)
    env = {
        **os.environ,
        "JIGSAW_LOG_BACKEND": "kafka",
        "JIGSAW_KAFKA_BOOTSTRAP": bootstrap,
        "JIGSAW_KAFKA_TOPIC_PREFIX": prefix,
        "JIGSAW_KAFKA_PARTITIONS": "4",
        "JIGSAW_DATA_DIR": str(tmp),
        "JIGSAW_CREDENTIALS_FILE": str(tmp / "credentials.json"),
        "JIGSAW_SIGNING_KEY_FILE": str(tmp / "jigsaw.key"),
        "JIGSAW_WEBHOOK_RETRY_SCHEDULE": "testing",
        "JIGSAW_CHECKPOINT_EVERY": "50",
        "JIGSAW_SNAPSHOT_EVERY": "25",  # routers that take over start from snapshots, not from offset 0
        "JIGSAW_LOG_FORMAT": "json",
        "JIGSAW_RATE_PER_ADDRESS": "10000",
        "JIGSAW_RATE_BURST_PER_ADDRESS": "10000",
        "JIGSAW_RATE_PER_CREDENTIAL": "10000",
        "JIGSAW_RATE_BURST_PER_CREDENTIAL": "10000",
    }
    receiver = Receiver()
    await receiver.start()
    fleet = Fleet(env, tmp / "logs")
    await fleet.start_all()
    timeout = aiohttp.ClientTimeout(total=30)
    ok = False
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for url in fleet.gateway_urls():
                await wait_healthy(session, url)
            urls = fleet.gateway_urls()
            agencies = {o: Agency(session, urls, tokens[o], signing[o]) for o in kinds}
            for org, kind in kinds.items():
                entry = directory_entry(
                    org, kind, f"chaos-{run_id.lower()}", endpoint=receiver.url if org == gp else None
                )
                envelope = agencies[partnership].clients[0].build("directory.organisation", entry, occurred_at=_now())
                await agencies[partnership].until_accepted(envelope)
            base = random.randrange(0, 700_000)
            victims = [victim(base + i) for i in range(20)]
            for person in victims:
                data = registration(person, gp)
                envelope = agencies[gp].clients[0].build("gp.registration", data, occurred_at=_now())
                await agencies[gp].until_accepted(envelope)
            print(f"set up: {len(ROLES)} processes ({', '.join(ROLES)}), Kafka at {bootstrap}, prefix {prefix!r}")
            incidents = await _post_under_fire(args, fleet, agencies[police], victims, run_id)
            for agency in agencies.values():  # whatever is still owed, until accepted
                for _ in range(60):
                    if not agency.owed:
                        break
                    await agency.resend_owed()
                    await asyncio.sleep(0.5)
            accepted = agencies[police].accepted
            expected = {notification_id(event_id, gp): event_id for event_id in incidents if event_id in accepted}
            for _ in range(int(args.settle * 2)):
                if set(expected) <= set(receiver.arrivals):
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(2.0)  # late duplicates, if any, arrive now
        ok = await _verdict(args, bootstrap, prefix, tmp, agencies, expected, receiver, fleet)
    finally:
        await fleet.stop_all()
        await receiver.stop()
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


async def _post_under_fire(
    args: argparse.Namespace, fleet: Fleet, police: Agency, victims: list[dict[str, Any]], run_id: str
) -> list[str]:
    """Post incidents at the rate for the duration, killing a random process every ``kill_every`` seconds."""
    sent: list[str] = []
    interval = 1.0 / args.rate
    started = time.monotonic()
    next_kill = started + args.kill_every
    index = 0
    in_flight: set[asyncio.Task[bool]] = set()
    while time.monotonic() - started < args.seconds:
        now = time.monotonic()
        if now >= next_kill:
            chosen = random.randrange(len(ROLES))
            await fleet.kill_and_restart(chosen)
            next_kill += args.kill_every
        data = incident(f"C{run_id}-{index}", victims[index % len(victims)])
        envelope = police.clients[0].build("police.domestic_abuse_incident", data, occurred_at=_now())
        sent.append(envelope.event_id)
        task = asyncio.create_task(police.send(envelope))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        if index % max(1, int(args.rate)) == 0 and police.owed:
            await police.resend_owed()
        index += 1
        await asyncio.sleep(max(0.0, started + index * interval - time.monotonic()))
    if in_flight:
        await asyncio.gather(*in_flight)
    return sent


async def _verdict(
    args: argparse.Namespace,
    bootstrap: str,
    prefix: str,
    tmp: Path,
    agencies: dict[str, Agency],
    expected: dict[str, str],
    receiver: Receiver,
    fleet: Fleet,
) -> bool:
    log = NamespacedLog(KafkaLog(bootstrap, client_id="jigsaw-chaos-audit"), prefix)
    await log.start()
    try:
        inputs = [r for r in await _read_all(log, topics.INPUT) if topics.is_event(r)]
        notes = await _read_all(log, topics.NOTIFICATIONS)
        deliveries = [d for d in map(decode_delivery, await _read_all(log, topics.DELIVERIES)) if d is not None]
    finally:
        await log.close()
    in_log = collections.Counter((r.header("event_id") or b"").decode() for r in inputs)
    accepted = {eid for agency in agencies.values() for eid in agency.accepted}
    not_once = {eid: in_log[eid] for eid in accepted if in_log[eid] != 1}
    unaccepted_in_log = [eid for eid in in_log if eid not in accepted]
    recorded = collections.Counter(json.loads(r.value)["notification_id"] for r in notes if r.value)
    missing_notes = [nid for nid in expected if recorded[nid] == 0]
    repeated = sum(c - 1 for c in recorded.values() if c > 1)
    delivered_at: dict[str, int] = {}
    for delivery in deliveries:
        if delivery.outcome == "delivered":
            ms = int(delivery.at.timestamp() * 1000)
            delivered_at[delivery.notification_id] = min(ms, delivered_at.get(delivery.notification_id, ms))
    arrived = [nid for nid in expected if receiver.arrivals.get(nid)]
    # Re-sent after its delivery was recorded (what must never happen), per id, the larger of two lower bounds:
    # attempts on the ledger that started (recorded time less duration, ms) after the id's first delivery was
    # recorded; arrivals whose webhook-timestamp (whole seconds) starts after it (an attempt whose dispatcher was
    # killed before recording it is on no ledger). Other arrivals after the record were sent before it: an earlier
    # attempt, or two dispatchers' first attempts at once in a rebalance; receivers dedupe those by webhook-id.
    after_recorded = late = 0
    for nid, times in receiver.arrivals.items():
        first = delivered_at.get(nid)
        if first is None:
            continue
        by_ledger = sum(
            1
            for d in deliveries
            if d.notification_id == nid and int(d.at.timestamp() * 1000) - (d.duration_ms or 0) > first
        )
        by_header = sum(1 for sent_s in receiver.sent[nid] if sent_s * 1000 > first)
        again = max(by_ledger, by_header)
        after_recorded += again
        late += max(0, sum(1 for t in times if t > first) - again)
    resent = sum(len(times) - 1 for times in receiver.arrivals.values())
    replay = await asyncio.create_subprocess_exec(
        str(ROOT / ".venv" / "bin" / "jigsaw"),
        "replay",
        "--kafka",
        bootstrap,
        "--topic-prefix",
        prefix,
        "--keys",
        str(tmp / "keys"),
        "--checkpoint-every",
        "50",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    replay_out, _ = await replay.communicate()
    print(f"chaos: {args.seconds:g} s at {args.rate:g} incidents/s, one process SIGKILLed every {args.kill_every:g} s")
    print(f"  killed and restarted: {len(fleet.kills)} ({', '.join(fleet.kills) or 'none'})")
    failures = collections.Counter[str]()
    for agency in agencies.values():
        failures.update(agency.failures)
    print(f"  posts: {sum(a.attempts for a in agencies.values())}, not answered 2xx and re-sent: {dict(failures)}")
    print(f"  accepted events: {len(accepted)}; in the log exactly once: {len(accepted) - len(not_once)}")
    print(f"  in the log but never acknowledged to the agency: {len(unaccepted_in_log)}")
    print(
        f"  notifications expected: {len(expected)}; recorded: {len(expected) - len(missing_notes)}; "
        f"records repeating an id: {repeated}"
    )
    print(
        f"  webhooks arrived: {len(arrived)} of {len(expected)}; sent again after the delivery was recorded: "
        f"{after_recorded}; sent before it but arriving after it: {late}; re-deliveries in all (same webhook-id): "
        f"{resent}"
    )
    for nid, times in receiver.arrivals.items():  # what the ledger says about each id that arrived again late
        if nid in delivered_at and any(t > delivered_at[nid] for t in times):
            print(f"    {nid}: arrived at {times} (ms), sent at {receiver.sent[nid]} (s); on the ledger:")
            for d in (d for d in deliveries if d.notification_id == nid):
                ms = int(d.at.timestamp() * 1000)
                print(f"      attempt {d.attempt} {d.outcome} at {ms} ms ({d.duration_ms} ms, {d.error or 'no error'})")
    print(f"  jigsaw replay --kafka: exit {replay.returncode}")
    if replay.returncode != 0:
        print("\n".join("    " + line for line in replay_out.decode().splitlines()[-30:]))
    lost = bool(not_once or missing_notes or len(arrived) < len(expected))
    duplicated = bool(repeated or after_recorded)
    print(
        f"  verdict: {'LOST ' if lost else ''}{'DUPLICATED ' if duplicated else ''}"
        f"{'OK' if not lost and not duplicated and replay.returncode == 0 else 'FAILED'}"
    )
    return not lost and not duplicated and replay.returncode == 0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def main_async(args: argparse.Namespace) -> int:
    prefix = f"chaos{uuid.uuid4().hex[:8]}."
    if args.bootstrap:
        return await run(args, args.bootstrap, prefix)
    async with own_broker() as bootstrap:
        return await run(args, bootstrap, prefix)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=None, help="an existing broker (default: start one of its own)")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of posting under fire (default 60)")
    parser.add_argument("--kill-every", type=float, default=10.0, help="seconds between kills (default 10)")
    parser.add_argument("--rate", type=float, default=10.0, help="incidents per second (default 10)")
    parser.add_argument("--settle", type=float, default=120.0, help="seconds to wait for the last webhooks")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory (process logs) for diagnosis")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
