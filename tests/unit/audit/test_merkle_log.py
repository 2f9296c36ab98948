"""The tree of a log partition: extended from the embedded log, records found by event id, ``jigsaw proof EVENT_ID``."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import broker.audit.standalone_verify as standalone
from broker.audit.checkpoint import public_key_line
from broker.audit.merkle import MemoryTree, ProofInvalid
from broker.audit.merkle_leaf import record_leaf_hash
from broker.audit.merkle_log import extend_tree, find_record, prove_record
from broker.audit.sealer import Sealer
from broker.audit.sth import SignedTreeHead, sign_tree_head
from broker.audit.tree_store import TreeStore
from broker.cli import main
from broker.log import EmbeddedLog, MemoryLog

TOPIC = "jigsaw.input"
SEED = bytes(range(32))
KEY = Ed25519PrivateKey.from_private_bytes(SEED)


async def _fill(log: EmbeddedLog | MemoryLog, start: int, count: int) -> None:
    await log.create_topic(TOPIC)
    for i in range(start, start + count):
        headers = (("event_id", f"event-{i}".encode()), ("source", b"police-1"))
        await log.append(TOPIC, f"envelope {i}".encode(), key=b"child-1", headers=headers, timestamp_ms=1_000 + i)


async def test_the_tree_follows_the_log_and_proves_a_found_record(tmp_path: Path) -> None:
    """Extended twice as the log grows, the tree equals one built from all records, and proves a record."""
    log = MemoryLog()
    await _fill(log, 0, 30)
    with TreeStore(tmp_path / "tree") as store:
        assert await extend_tree(log, store, TOPIC, limit=7) == 30
        await _fill(log, 30, 12)
        assert await extend_tree(log, store, TOPIC) == 42
        records = await log.read(TOPIC, 0, limit=100)
        assert store.root() == MemoryTree(record_leaf_hash(r) for r in records).root()
        record = await find_record(log, TOPIC, "event-17")
        assert record is not None and record.offset == 17
        assert await find_record(log, TOPIC, "event-99") is None
        head = sign_tree_head(SignedTreeHead(40, store.root(40), 5), KEY)
        doc = prove_record(store, record, head, public_key=KEY.public_key())
        assert standalone.check(doc, public_key_line(KEY)).startswith("record jigsaw.input:17")
        late = await find_record(log, TOPIC, "event-41")
        assert late is not None
        with pytest.raises(ProofInvalid, match="next head"):
            prove_record(store, late, head)


def test_jigsaw_proof_event_id_on_an_embedded_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command proves an event against the newest head the sealer published, or a head given."""

    async def build(sealed: bool) -> None:
        log = EmbeddedLog(tmp_path / "log.db")
        await log.start()
        try:
            await _fill(log, 0, 25)
            if sealed:
                sealer = Sealer(log, key=KEY, every=10)
                await sealer.start()
                for record in await log.read(TOPIC, 0, limit=100):
                    sealer.observe(record)
                    if sealer.due():
                        await sealer.seal(dt.datetime.now(dt.UTC))
                await sealer.seal(dt.datetime.now(dt.UTC))
        finally:
            await log.close()

    asyncio.run(build(sealed=False))
    capsys.readouterr()
    assert main(["proof", "event-9", "--log", str(tmp_path / "log.db")]) == 1
    assert "no tree head" in capsys.readouterr().err
    (tmp_path / "log.db").unlink()
    asyncio.run(build(sealed=True))
    key_file = tmp_path / "signing-key"
    key_file.write_text("whsk_" + base64.b64encode(SEED).decode() + "\n")
    key_file.chmod(0o600)
    monkeypatch.setenv("JIGSAW_SIGNING_KEY_FILE", str(key_file))
    monkeypatch.setenv("JIGSAW_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "proof.json"
    assert main(["proof", "event-9", "--log", str(tmp_path / "log.db"), "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert (doc["leaf_index"], doc["tree_head"]["tree_size"]) == (9, 25)
    assert (tmp_path / "log.db.merkle" / f"{TOPIC}.0.tree").is_file()
    result = subprocess.run(
        [sys.executable, "-I", standalone.__file__, str(out), "--key", public_key_line(KEY)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
    capsys.readouterr()
    assert main(["proof", "event-3", "--log", str(tmp_path / "log.db"), "--head", str(out)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["tree_head"] == doc["tree_head"] and "public_key" not in again
    assert main(["proof", "--verify", str(out)]) == 0
    assert main(["proof", "event-404", "--log", str(tmp_path / "log.db")]) == 1
    assert "not_found" in capsys.readouterr().err
    monkeypatch.delenv("JIGSAW_SIGNING_KEY_FILE")  # an event's proof needs no private key: the head is published
    assert main(["proof", "event-3", "--log", str(tmp_path / "log.db")]) == 0


def test_jigsaw_proof_since_an_older_head_shows_the_log_only_grew(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--since gives an RFC 9162 consistency proof from a saved head to the newest published one, and it verifies."""

    async def grow(first: int, count: int) -> None:
        log = EmbeddedLog(tmp_path / "log.db")
        await log.start()
        try:
            await _fill(log, first, count)
            sealer = Sealer(log, key=KEY, every=1000)
            await sealer.start()
            for record in await log.read(TOPIC, 0, limit=1000):
                sealer.observe(record)
            await sealer.seal(dt.datetime.now(dt.UTC))
        finally:
            await log.close()

    asyncio.run(grow(0, 7))
    old = tmp_path / "old.json"
    assert main(["proof", "event-2", "--log", str(tmp_path / "log.db"), "--out", str(old)]) == 0
    asyncio.run(grow(7, 6))
    grown = tmp_path / "grown.json"
    assert main(["proof", "--since", str(old), "--log", str(tmp_path / "log.db"), "--out", str(grown)]) == 0
    doc = json.loads(grown.read_text())
    assert (doc["type"], doc["first"]["tree_size"], doc["second"]["tree_size"]) == ("consistency", 7, 13)
    capsys.readouterr()
    key = tmp_path / "jigsaw.pub"
    key.write_text(public_key_line(KEY) + "\n")
    assert main(["proof", "--verify", str(grown), "--key", str(key)]) == 0
    assert capsys.readouterr().out.startswith("OK")
