"""Router failover on a real Kafka: from SIGKILL of the active router to the standby's first routed event.

Starts a gateway and two routers as separate ``jigsaw serve`` processes
(``JIGSAW_ROLES``) on a Kafka broker of the run's own (or ``--bootstrap``, under
a fresh topic prefix), publishes a GP registration and one police incident
(routed by the active router), then kills the active router with SIGKILL and at
once posts another incident. It prints how long until that incident's
notification is on the log, next to the group's session timeout (the time Kafka
takes to declare the dead router gone), and repeats ``--trials`` times.

Usage::

    .venv/bin/python bench/failover.py [--trials 3] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.latency import own_broker
from bench.scene import (
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
from broker.log.kafka import KafkaLog
from broker.log.kafka_group import GROUP_SETTINGS
from broker.log.namespace import NamespacedLog

ROOT = Path(__file__).resolve().parent.parent


async def _routed(log: Any, event_id: str) -> bool:
    for partition in range(await log.partitions(topics.NOTIFICATIONS)):
        offset = 0
        while batch := await log.read(topics.NOTIFICATIONS, offset, partition=partition, limit=5000):
            if any(json.loads(r.value)["event_id"] == event_id for r in batch if r.value):
                return True
            offset = batch[-1].offset + 1
    return False


def _active(logs: list[Path]) -> int | None:
    """The router whose log says it became active last."""
    latest: tuple[str, int] | None = None
    for index, path in enumerate(logs):
        for line in path.read_text(errors="replace").splitlines():
            if '"router_active"' in line:
                stamp = json.loads(line).get("timestamp", "")
                if latest is None or stamp > latest[0]:
                    latest = (stamp, index)
    return None if latest is None else latest[1]


async def run(args: argparse.Namespace, bootstrap: str) -> int:
    prefix = f"failover{uuid.uuid4().hex[:8]}."
    tmp = Path(tempfile.mkdtemp(prefix="jigsaw-failover-"))
    orgs = {"POLICE-F": "police", "GP-F": "gp_practice", "PARTNERSHIP-F": "partnership"}
    keys, tokens = organisations(tmp, orgs)
    key_file = jigsaw_key(tmp)
    env = {
        **os.environ,
        "JIGSAW_LOG_BACKEND": "kafka",
        "JIGSAW_KAFKA_BOOTSTRAP": bootstrap,
        "JIGSAW_KAFKA_TOPIC_PREFIX": prefix,
        "JIGSAW_DATA_DIR": str(tmp),
        "JIGSAW_CREDENTIALS_FILE": str(tmp / "credentials.json"),
        "JIGSAW_SIGNING_KEY_FILE": str(key_file),
        "JIGSAW_LOG_FORMAT": "json",
    }
    jigsaw = str(ROOT / ".venv" / "bin" / "jigsaw")
    gateway_port = free_port()
    processes: list[asyncio.subprocess.Process] = []
    router_logs = [tmp / "router-0.log", tmp / "router-1.log"]

    async def start(role: str, port: int, out: Path) -> asyncio.subprocess.Process:
        handle = out.open("ab")
        own = {**env, "JIGSAW_ROLES": role, "JIGSAW_HTTP_PORT": str(port)}
        return await asyncio.create_subprocess_exec(jigsaw, "serve", env=own, stdout=handle, stderr=handle)

    processes.append(await start("gateway", gateway_port, tmp / "gateway.log"))
    routers = [await start("router", free_port(), path) for path in router_logs]
    log = NamespacedLog(KafkaLog(bootstrap, client_id="jigsaw-failover"), prefix)
    await log.start()
    url = f"http://127.0.0.1:{gateway_port}"
    times: list[float] = []
    try:
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, url)
            clients = {o: JigsawClient(url, tokens[o], key=keys[o], session=session) for o in orgs}
            for org, kind in orgs.items():
                entry = directory_entry(org, kind, "failover")
                assert (await clients["PARTNERSHIP-F"].publish("directory.organisation", entry)).accepted
            person = victim(777)
            assert (await clients["GP-F"].publish("gp.registration", registration(person, "GP-F"))).accepted

            async def post_incident(ref: str) -> str:
                envelope = clients["POLICE-F"].build("police.domestic_abuse_incident", incident(ref, person))
                assert (await clients["POLICE-F"].send(envelope)).accepted
                return envelope.event_id

            async def wait_routed(event_id: str, limit: float = 120) -> float:
                started = time.monotonic()
                while time.monotonic() - started < limit:
                    if await _routed(log, event_id):
                        return time.monotonic() - started
                    await asyncio.sleep(0.1)
                raise RuntimeError(f"event {event_id} not routed within {limit:g} s")

            await wait_routed(await post_incident("F-warm"))
            for trial in range(args.trials):
                active = _active(router_logs)
                assert active is not None, "no router became active"
                routers[active].send_signal(signal.SIGKILL)
                await routers[active].wait()
                killed = time.monotonic()
                event_id = await post_incident(f"F-{trial}")
                await wait_routed(event_id)
                times.append(time.monotonic() - killed)
                routers[active] = await start("router", free_port(), router_logs[active])  # the new standby
                await asyncio.sleep(3)
    finally:
        await log.close()
        for process in [*processes, *routers]:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in [*processes, *routers]:
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    session_s = GROUP_SETTINGS["session_timeout_ms"] / 1000
    print(f"router failover on Kafka at {bootstrap}: SIGKILL of the active router -> the standby's first routed event")
    print(
        f"  trials: {', '.join(f'{t:.1f} s' for t in times)}   (baseline: group session timeout {session_s:g} s;"
        f" goal under {session_s + 5:g} s)"
    )
    return 0


async def main_async(args: argparse.Namespace) -> int:
    if args.bootstrap:
        return await run(args, args.bootstrap)
    async with own_broker() as bootstrap:
        return await run(args, bootstrap)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=None, help="an existing broker (default: start one of its own)")
    parser.add_argument("--trials", type=int, default=3, help="kills to measure (default 3)")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
