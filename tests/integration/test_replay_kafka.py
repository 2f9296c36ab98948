"""Replay on Kafka matches replay on the embedded log for the same records, clean or tampered."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker import topics
from broker.audit.checkpoint import PUBLIC_KEY_FILE, load_public_key
from broker.audit.collect import replay_log
from broker.audit.report import Report
from broker.envelope.keys import KeyRegistry, KeyStore
from broker.log import EmbeddedLog, Log
from broker.log.kafka import KafkaLog
from broker.log.namespace import NamespacedLog
from tests.conftest import unique_name
from tests.integration.test_replay import jigsaw, simulate
from tests.shared import SCENARIOS, need_shared

pytestmark = [
    pytest.mark.kafka,
    need_shared(SCENARIOS),
]

ALL_TOPICS = (
    topics.INPUT,
    topics.NOTIFICATIONS,
    topics.DECISIONS,
    topics.TREE_HEADS,
    topics.REJECTED,
)


async def _copy(source: Log, target: Log) -> int:
    """Every record of every Jigsaw topic, same partition, key, value, headers and timestamp, in offset order."""
    copied = 0
    for topic in ALL_TOPICS:
        parts = await source.partitions(topic)
        if not parts:
            continue
        await target.create_topic(topic, partitions=parts)
        for partition in range(parts):
            for record in await source.read(topic, 0, partition=partition, limit=100_000):
                position = await target.append(
                    topic,
                    record.value,
                    key=record.key,
                    headers=record.headers,
                    timestamp_ms=record.timestamp_ms,
                    partition=partition,
                )
                assert position.offset == record.offset
                copied += 1
    return copied


async def _replay(log: Log, registry: KeyRegistry, key: Ed25519PublicKey) -> Report:
    await log.start()
    try:
        return await replay_log(log, keys=registry, checkpoint_key=key, jobs=2)
    finally:
        await log.close()


def _tamper(log: Path) -> None:
    """Alter one recorded notification's priority in the SQLite file."""
    with sqlite3.connect(log) as db:
        (value,) = db.execute(
            "SELECT value FROM records WHERE topic = ? AND offset = 2", (topics.NOTIFICATIONS,)
        ).fetchone()
        changed = value.replace(b'"priority":"urgent"', b'"priority":"routine"')
        assert changed != value
        db.execute("UPDATE records SET value = ? WHERE topic = ? AND offset = 2", (changed, topics.NOTIFICATIONS))


@pytest.mark.parametrize("tampered", [False, True], ids=["clean", "altered-notification"])
async def test_replay_on_kafka_matches_replay_on_the_embedded_log(
    kafka_bootstrap: str, tmp_path: Path, tampered: bool
) -> None:
    """The same records on Kafka and in SQLite give the same summary and the same findings, line for line."""
    path = tmp_path / "child-2.db"
    simulate("child-2", path)
    if tampered:
        _tamper(path)
    keys_dir = Path(f"{path}.keys")
    registry = KeyStore(keys_dir).load()
    key = load_public_key(keys_dir / PUBLIC_KEY_FILE)
    prefix = unique_name("replay") + "."
    embedded = EmbeddedLog(path)
    kafka = NamespacedLog(KafkaLog(kafka_bootstrap, client_id="jigsaw-replay-tests"), prefix)
    await embedded.start()
    await kafka.start()
    try:
        assert await _copy(embedded, kafka) > 50
    finally:
        await embedded.close()
        await kafka.close()
    on_sqlite = await _replay(EmbeddedLog(path), registry, key)
    on_kafka = await _replay(
        NamespacedLog(KafkaLog(kafka_bootstrap, client_id="jigsaw-replay-tests"), prefix), registry, key
    )
    assert on_kafka.summary() == on_sqlite.summary()
    assert [f.line() for f in on_kafka.findings] == [f.line() for f in on_sqlite.findings]
    assert on_sqlite.ok is (not tampered)
    assert on_sqlite.events > 20 and on_sqlite.notifications > 40
    run = jigsaw("replay", "--kafka", kafka_bootstrap, "--topic-prefix", prefix, "--keys", keys_dir)
    assert run.code == (1 if tampered else 0), run.out + run.err
    assert run.out.splitlines()[0] == on_sqlite.summary()[0]
    if not tampered:  # an event's inclusion proof from Kafka, against the head the sealer published, verifies
        with sqlite3.connect(path) as db:
            (headers,) = db.execute(
                "SELECT headers FROM records WHERE topic = ? AND offset = 3", (topics.INPUT,)
            ).fetchone()
        event_id = next(bytes.fromhex(v).decode() for k, v in json.loads(headers) if k == "event_id")
        proof = tmp_path / "proof.json"
        made = jigsaw("proof", event_id, "--kafka", kafka_bootstrap, "--topic-prefix", prefix, "--out", proof)
        assert made.code == 0, made.out + made.err
        assert json.loads(proof.read_text())["leaf_index"] == 3
        checked = jigsaw("proof", "--verify", proof, "--key", keys_dir / PUBLIC_KEY_FILE)
        assert checked.code == 0 and checked.out.startswith("OK"), checked.out
