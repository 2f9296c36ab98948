"""A Kafka outage under a running `jigsaw serve`: bounded 503s while it is down, everything routed once it is back.

The test runs a broker of its own (deploy/kafka/start.sh on free ports), stops it
with its data kept (stop.sh --keep-data) while a service runs on it, and starts the
same broker again (start.sh --resume). Nothing is restarted by hand.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.scene import directory_entry, incident, organisations, registration, victim, wait_healthy
from broker import topics
from broker.client import ENVELOPE_CONTENT_TYPE, JigsawClient
from broker.delivery import dispatcher as dispatcher_module
from broker.delivery.backoff import TESTING
from broker.delivery.dispatcher import Dispatcher
from broker.delivery.signing import WebhookKey
from broker.envelope.model import encode_envelope
from broker.log.kafka import KafkaLog
from broker.log.namespace import NamespacedLog

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Broker:
    """A broker of this test's own, that can be stopped with its data and started again."""

    def __init__(self, state: Path) -> None:
        self.port = _free_port()
        self.env = {
            **os.environ,
            "JIGSAW_KAFKA_STATE": str(state),
            "JIGSAW_KAFKA_PORT": str(self.port),
            "JIGSAW_KAFKA_CONTROLLER_PORT": str(_free_port()),
        }
        self.bootstrap = f"127.0.0.1:{self.port}"

    def run(self, script: str, *args: str) -> None:
        done = subprocess.run(
            ["bash", str(ROOT / "deploy" / "kafka" / script), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A fresh single-node broker (the jars deploy/kafka/fetch.sh cached), stopped and removed afterwards."""
    cache = Path(os.environ.get("JIGSAW_CACHE_DIR", Path.home() / ".cache" / "jigsaw"))
    if not any(cache.glob("kafka-*/.complete")):
        if os.environ.get("CI") == "true":
            pytest.fail("no Kafka jars: deploy/test.sh runs deploy/kafka/fetch.sh first")
        pytest.skip("no Kafka jars: run deploy/kafka/fetch.sh")
    own = Broker(tmp_path_factory.mktemp("kafka-outage"))
    own.run("start.sh")
    try:
        yield own
    finally:
        subprocess.run(["bash", str(ROOT / "deploy/kafka/stop.sh"), "--quiet"], env=own.env, timeout=120)


def _serve(env: dict[str, str], out: Any) -> subprocess.Popen[bytes]:
    """``jigsaw serve`` with every role, its log to ``out``."""
    return subprocess.Popen([sys.executable, "-m", "broker", "serve"], env=env, stderr=out, stdout=out)


async def _records(bootstrap: str, topic: str) -> list[object]:
    log = KafkaLog(bootstrap, client_id="outage-test")
    await log.start()
    try:
        out: list[object] = []
        for partition in range(await log.partitions(topic)):
            offset = 0
            while batch := await log.read(topic, offset, partition=partition, limit=1000):
                out += batch
                offset = batch[-1].offset + 1
        return out
    finally:
        await log.close()


async def test_a_stopped_broker_resumes_with_every_record(broker: Broker) -> None:
    """stop.sh --keep-data then start.sh --resume brings back the same broker with what it held."""
    log = KafkaLog(broker.bootstrap, client_id="outage-test")
    await log.start()
    await log.create_topic("resume.check")
    position = await log.append("resume.check", b"kept", key=b"k")
    await log.close()
    broker.run("stop.sh", "--keep-data")
    broker.run("start.sh", "--resume")
    log = KafkaLog(broker.bootstrap, client_id="outage-test")
    await log.start()
    try:
        [record] = await log.read("resume.check", position.offset, limit=10)
        assert record.value == b"kept"
    finally:
        await log.close()


async def test_a_dispatcher_restarting_while_kafka_is_down_closes_without_waiting_for_it(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dispatcher that closes (to start again) while the broker is down returns while it is still down: its last
    commit, which aiokafka lets wait for the group's coordinator until Kafka is back, is given up after a bound.
    (Without the bound the outage bench saw a dispatcher that never started again, and nothing more delivered.)"""
    monkeypatch.setattr(dispatcher_module, "_COMMIT_EVERY_S", 1e9)  # only closing commits: progress is owed
    monkeypatch.setattr(dispatcher_module, "_CLOSE_COMMIT_S", 2.0)
    monkeypatch.setattr(dispatcher_module, "_CLOSE_LEAVE_S", 5.0)
    log = NamespacedLog(KafkaLog(broker.bootstrap, client_id="outage-test"), f"close{uuid.uuid4().hex[:8]}.")
    await log.start()
    dispatcher = Dispatcher(log, WebhookKey.generate(), schedule=TESTING, partitions=2)
    closed_while_down = False
    try:
        await dispatcher.start()
        for partition in (0, 1):  # tombstones: read past, nothing to deliver
            await log.append(topics.NOTIFICATIONS, None, key=b"k", partition=partition)
        for _ in range(200):
            await dispatcher.step(wait=0.1)
            if dispatcher._positions == {0: 1, 1: 1}:
                break
        assert dispatcher._positions == {0: 1, 1: 1} and not any(dispatcher._committed.values())
        broker.run("stop.sh", "--keep-data")
        try:
            await asyncio.wait_for(dispatcher.close(grace=0.0), 60)  # old code: until the broker is back
            closed_while_down = True
        finally:
            broker.run("start.sh", "--resume")
    finally:
        await log.close()
    assert closed_while_down


async def test_an_outage_gets_bounded_503s_and_everything_is_routed_afterwards(broker: Broker, tmp_path: Path) -> None:
    """While Kafka is down a POST gets 503 log_unavailable with Retry-After within the append timeout plus a
    little; once it is back, re-sent events are accepted once and every accepted incident reaches the GP's
    inbox, with no process restarted by hand."""
    orgs = {"POLICE-OUT": "police", "GP-OUT": "gp_practice", "PARTNERSHIP-OUT": "partnership"}
    keys, tokens = organisations(tmp_path, orgs)
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("JIGSAW_")},
        "JIGSAW_LOG_BACKEND": "kafka",
        "JIGSAW_KAFKA_BOOTSTRAP": broker.bootstrap,
        "JIGSAW_DATA_DIR": str(tmp_path),
        "JIGSAW_CREDENTIALS_FILE": str(tmp_path / "credentials.json"),
        "JIGSAW_HTTP_PORT": str(port),
        "JIGSAW_APPEND_TIMEOUT": "3",
        "JIGSAW_LOG_FORMAT": "json",
    }
    stderr = (tmp_path / "serve.log").open("wb")
    proc = _serve(env, stderr)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            await wait_healthy(session, url)
            clients = {o: JigsawClient(url, tokens[o], key=keys[o], session=session) for o in orgs}
            for org, kind in orgs.items():
                entry = directory_entry(org, kind, "outage")
                assert (await clients["PARTNERSHIP-OUT"].publish("directory.organisation", entry)).accepted
            person = victim(4242)
            assert (await clients["GP-OUT"].publish("gp.registration", registration(person, "GP-OUT"))).accepted

            def post(i: int) -> Any:
                return clients["POLICE-OUT"].build("police.domestic_abuse_incident", incident(f"OUT-{i}", person))

            before = [post(i) for i in range(3)]
            for envelope in before:
                assert (await clients["POLICE-OUT"].send(envelope)).accepted  # type: ignore[arg-type]
            broker.run("stop.sh", "--keep-data")
            during = [post(i) for i in range(3, 6)]
            waits = []
            headers = {"Authorization": f"Bearer {tokens['POLICE-OUT']}", "Content-Type": ENVELOPE_CONTENT_TYPE}
            for envelope in during:
                started = time.monotonic()
                body = encode_envelope(envelope)  # type: ignore[arg-type]
                async with session.post(url + "/v1/events", data=body, headers=headers) as response:
                    waits.append(time.monotonic() - started)
                    answer = await response.json()
                    assert response.status == 503 and answer["error"] == "log_unavailable", answer
                    assert int(response.headers["Retry-After"]) > 0
            print(f"POST while Kafka is down: 503 after {', '.join(f'{w:.1f}' for w in waits)} s")
            assert max(waits) < 3 + 10  # the append timeout, and the rest of one request's work
            async with session.get(url + "/healthz") as response:
                assert response.status == 503
            broker.run("start.sh", "--resume")
            for envelope in during:  # the same bytes again, until accepted
                for _ in range(120):
                    result = await clients["POLICE-OUT"].send(envelope)  # type: ignore[arg-type]
                    if result.accepted:
                        break
                    await asyncio.sleep(0.5)
                assert result.accepted, result
            wanted = {e.event_id for e in [*before, *during]}  # type: ignore[attr-defined]
            for _ in range(240):
                notes = [json.loads(r.value) for r in await _records(broker.bootstrap, topics.NOTIFICATIONS)]  # type: ignore[attr-defined]
                routed = {n["event_id"] for n in notes if n["recipient"] == "GP-OUT"}
                if wanted <= routed:
                    break
                await asyncio.sleep(0.5)
            assert wanted <= routed, f"{len(wanted - routed)} accepted incidents never routed"
            inputs = [r for r in await _records(broker.bootstrap, topics.INPUT) if topics.is_event(r)]  # type: ignore[arg-type]
            ids = [r.header("event_id").decode() for r in inputs]  # type: ignore[attr-defined]
            assert all(ids.count(e) == 1 for e in wanted)
            assert proc.poll() is None, "jigsaw serve died during the outage"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        stderr.close()
