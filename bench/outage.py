"""A Kafka outage under load: what the POSTs get while the broker is down, and that everything is routed after.

Starts a broker of its own (deploy/kafka/start.sh on free ports) and ``jigsaw
serve`` as three processes (gateway, router, dispatcher) on it, with a webhook
receiver for the GP practice. An agency posts police incidents at a steady rate
and re-sends, with the same bytes, whatever was not answered 2xx. After
``--before`` seconds the broker is stopped with its data kept (stop.sh
--keep-data) for ``--down`` seconds, then started again (start.sh --resume).
Nothing is restarted by hand. It prints what the POSTs got during the outage
and how long each waited, the log lines the service wrote per second while the
broker was down, and whether every accepted event was routed and delivered.

Usage::

    .venv/bin/python bench/outage.py [--down 120] [--rate 10]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.chaos import Agency, Receiver
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
from broker.routing.model import notification_id

ROOT = Path(__file__).resolve().parent.parent


def _kafka(script: str, env: dict[str, str], *args: str) -> None:
    done = subprocess.run(["bash", str(ROOT / "deploy/kafka" / script), *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed: {done.stdout}{done.stderr}")


def _lines(paths: list[Path]) -> int:
    return sum(p.read_bytes().count(b"\n") for p in paths if p.exists())


async def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="jigsaw-outage-"))
    port = free_port()
    kafka_env = {
        **os.environ,
        "JIGSAW_KAFKA_STATE": str(tmp / "kafka"),
        "JIGSAW_KAFKA_PORT": str(port),
        "JIGSAW_KAFKA_CONTROLLER_PORT": str(free_port()),
    }
    _kafka("start.sh", kafka_env)
    bootstrap = f"127.0.0.1:{port}"
    orgs = {"POLICE-O": "police", "GP-O": "gp_practice", "PARTNERSHIP-O": "partnership"}
    keys, tokens = organisations(tmp, orgs)
    key_file = jigsaw_key(tmp)
    env = {
        **os.environ,
        "JIGSAW_LOG_BACKEND": "kafka",
        "JIGSAW_KAFKA_BOOTSTRAP": bootstrap,
        "JIGSAW_DATA_DIR": str(tmp),
        "JIGSAW_CREDENTIALS_FILE": str(tmp / "credentials.json"),
        "JIGSAW_SIGNING_KEY_FILE": str(key_file),
        "JIGSAW_LOG_FORMAT": "json",
        "JIGSAW_WEBHOOK_RETRY_SCHEDULE": "testing",
    }
    receiver = Receiver()
    await receiver.start()
    jigsaw = str(ROOT / ".venv" / "bin" / "jigsaw")
    logs = [tmp / f"{role}.log" for role in ("gateway", "router", "dispatcher")]
    gateway_port = free_port()
    processes = []
    for role, path in zip(("gateway", "router", "dispatcher"), logs, strict=True):
        out = path.open("ab")
        own = {
            **env,
            "JIGSAW_ROLES": role,
            "JIGSAW_HTTP_PORT": str(gateway_port if role == "gateway" else free_port()),
        }
        processes.append(await asyncio.create_subprocess_exec(jigsaw, "serve", env=own, stdout=out, stderr=out))
    url = f"http://127.0.0.1:{gateway_port}"
    outage: dict[str, Any] = {}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            await wait_healthy(session, url)
            agencies = {o: Agency(session, [url], tokens[o], keys[o]) for o in orgs}
            for org, kind in orgs.items():
                entry = directory_entry(org, kind, "outage", endpoint=receiver.url if org == "GP-O" else None)
                partnership = agencies["PARTNERSHIP-O"]
                await partnership.until_accepted(partnership.clients[0].build("directory.organisation", entry))
            person = victim(31337)
            await agencies["GP-O"].until_accepted(
                agencies["GP-O"].clients[0].build("gp.registration", registration(person, "GP-O"))
            )
            police = agencies["POLICE-O"]
            answers: list[tuple[float, float, int]] = []  # (sent at, seconds waited, status)
            original_send = police.clients[0].send

            async def timed_send(envelope: Any) -> Any:
                started = time.monotonic()
                try:
                    result = await original_send(envelope)
                except Exception:
                    answers.append((started, time.monotonic() - started, 0))
                    raise
                answers.append((started, time.monotonic() - started, result.status))
                return result

            police.clients[0].send = timed_send  # type: ignore[method-assign]
            sent: list[str] = []
            started = time.monotonic()
            down_at = up_at = None
            lines_at_down = lines_at_up = 0
            total = args.before + args.down + args.after
            index = 0
            tasks: set[asyncio.Task[bool]] = set()
            while time.monotonic() - started < total:
                now = time.monotonic() - started
                if down_at is None and now >= args.before:
                    lines_at_down = _lines(logs)
                    _kafka("stop.sh", kafka_env, "--keep-data")
                    down_at = time.monotonic()
                if down_at is not None and up_at is None and now >= args.before + args.down:
                    lines_at_up = _lines(logs)
                    _kafka("start.sh", kafka_env, "--resume")
                    up_at = time.monotonic()
                envelope = police.clients[0].build("police.domestic_abuse_incident", incident(f"O-{index}", person))
                sent.append(envelope.event_id)
                task = asyncio.create_task(police.send(envelope))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                if index % max(1, int(args.rate)) == 0 and police.owed and up_at is not None:
                    await police.resend_owed()
                index += 1
                await asyncio.sleep(max(0.0, started + index / args.rate - time.monotonic()))
            if tasks:
                await asyncio.gather(*tasks)
            for _ in range(240):
                if not police.owed:
                    break
                await police.resend_owed()
                await asyncio.sleep(0.5)
            expected = {notification_id(e, "GP-O") for e in sent if e in police.accepted}
            for _ in range(480):
                if expected <= set(receiver.arrivals):
                    break
                await asyncio.sleep(0.5)
            assert down_at is not None and up_at is not None
            during = [a for a in answers if down_at <= a[0] < up_at]
            outage = {
                "sent": len(sent),
                "accepted": len(police.accepted),
                "never_accepted": len(police.owed),
                "delivered": len(expected & set(receiver.arrivals)),
                "expected": len(expected),
                "during": collections.Counter(status for _, _, status in during),
                "waits": sorted(w for _, w, _ in during),
                "lines_per_s": (lines_at_up - lines_at_down) / (up_at - down_at),
                "alive": all(p.returncode is None for p in processes),
            }
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
        await receiver.stop()
        _kafka("stop.sh", kafka_env, "--quiet")
        if args.keep:
            print(f"kept: {tmp} (the three processes' logs: gateway.log, router.log, dispatcher.log)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    waits = outage["waits"] or [0.0]
    print(f"Kafka down {args.down:g} s under {args.rate:g} incidents/s (gateway, router, dispatcher as 3 processes)")
    print(
        f"  POSTs while down: {sum(outage['during'].values())}, answered {dict(outage['during'])} "
        f"(0: no answer); waited median {statistics.median(waits):.1f} s, max {max(waits):.1f} s"
    )
    print(f"  log lines written per second while the broker was down (3 processes): {outage['lines_per_s']:.1f}")
    print(
        f"  incidents sent {outage['sent']}, accepted {outage['accepted']} (re-sent until accepted; "
        f"never accepted: {outage['never_accepted']}); webhooks delivered {outage['delivered']} of "
        f"{outage['expected']}; processes restarted by hand: 0; all still running: {outage['alive']}"
    )
    ok = outage["delivered"] == outage["expected"] and not outage["never_accepted"] and outage["alive"]
    print(f"  verdict: {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--down", type=float, default=120.0, help="seconds the broker is down (default 120)")
    parser.add_argument("--before", type=float, default=15.0, help="seconds of load before the outage")
    parser.add_argument("--after", type=float, default=15.0, help="seconds of load after the broker is back")
    parser.add_argument("--rate", type=float, default=10.0, help="incidents per second (default 10)")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory and its logs")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
