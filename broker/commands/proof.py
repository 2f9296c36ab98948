"""``jigsaw proof``: prove that a record is in the log, or check a proof file.

    jigsaw proof EVENT_ID (--log FILE | --kafka BOOTSTRAP [--topic-prefix P]) [--head STH_FILE] [--tree FILE]
    jigsaw proof --notification NOTIFICATION_ID (--log FILE | --kafka BOOTSTRAP) [--out FILE]
    jigsaw proof --since OLD_HEAD_FILE (--log FILE | --kafka BOOTSTRAP) [--out FILE]
    jigsaw proof --verify FILE [--key KEY_FILE]

With an event id, finds the accepted event on the input topic, brings a
Merkle tree of that topic up to date from the log (``--tree``, default
``FILE.merkle/<topic>.<partition>.tree`` beside an embedded log, else a
temporary file), checks it against the newest signed tree head the sealer
published on ``jigsaw.tree-heads`` (or the head in ``--head``) and prints the
inclusion proof as JSON against that head. An event newer than the newest head
is refused (wait for the next head).

With ``--since``, prints a consistency proof (RFC 9162) from an older signed
tree head (a head's JSON, or a proof file holding one) to the newest published
head: the log it described is an unchanged prefix of today's.

With ``--notification``, the proof is of a notification record in the tree over
its notifications partition (same format); the sealer publishes no heads of
that tree, so the head is signed now with Jigsaw's key
(``JIGSAW_SIGNING_KEY_FILE``, else the key in the data directory).

With ``--verify``, prints ``OK: <what the proof shows>`` and exits 0, or
``FAILED: <reason>`` and exits 1. Jigsaw's public key comes from ``--key``
(``whpk_...`` or PEM), else ``JIGSAW_KEYS_DIR/jigsaw-checkpoint.pub`` when it
exists, else the proof file itself (and the output says so: compare it with the
key Jigsaw publishes). The format is in ``broker/audit/proofs.md``;
``broker/audit/standalone_verify.py`` checks the same files with no Jigsaw installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from broker import topics
from broker.audit.checkpoint import PUBLIC_KEY_FILE, load_public_key
from broker.audit.merkle import ProofInvalid
from broker.audit.merkle_log import extend_tree, find_record, prove_record
from broker.audit.merkle_proof import consistency_proof, verify_proof
from broker.audit.sealer import last_seal
from broker.audit.sth import SignedTreeHead, sign_tree_head
from broker.audit.tree_store import TreeStore
from broker.errors import ConfigError, NotFound
from broker.log.base import Log, Record
from broker.settings import Settings

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``proof`` arguments."""
    parser.add_argument("event_id", nargs="?", metavar="EVENT_ID", help="the accepted event to prove")
    parser.add_argument("--verify", type=Path, metavar="FILE", help="check this proof JSON file instead")
    parser.add_argument(
        "--key",
        type=Path,
        metavar="FILE",
        help=f"Jigsaw's public key, whpk_... or PEM (default: JIGSAW_KEYS_DIR/{PUBLIC_KEY_FILE}, else the proof's own)",
    )
    parser.add_argument("--log", type=Path, metavar="FILE", help="the embedded log (SQLite file) holding the event")
    parser.add_argument("--kafka", metavar="BOOTSTRAP", help="a Kafka cluster holding the event")
    parser.add_argument("--topic-prefix", default="", metavar="P", help="topic prefix of the deployment on Kafka")
    parser.add_argument("--notification", metavar="ID", help="prove this notification record instead of an event")
    parser.add_argument(
        "--since",
        type=Path,
        metavar="HEAD_FILE",
        help="prove instead that the log only grew from this older signed tree head (or proof file) to the newest",
    )
    parser.add_argument("--tree", type=Path, metavar="FILE", help="the tree file (default: FILE.merkle/...)")
    parser.add_argument("--head", type=Path, metavar="FILE", help="a signed tree head (JSON) to prove against")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write the proof here (default: stdout)")


def _public_key(args: argparse.Namespace, settings: Settings) -> Ed25519PublicKey | None:
    if args.key is not None:
        return load_public_key(args.key)
    default = settings.keys_dir / PUBLIC_KEY_FILE
    return load_public_key(default) if default.is_file() else None


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    try:
        doc = json.loads(args.verify.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"cannot read the proof file {args.verify}: {exc}") from exc
    if not isinstance(doc, dict):
        print("FAILED: the proof file is not a JSON object")
        return 1
    try:
        print("OK: " + verify_proof(doc, _public_key(args, settings)))
    except ProofInvalid as exc:
        print(f"FAILED: {exc.message}")
        return 1
    return 0


def _signing_key(settings: Settings) -> Ed25519PrivateKey:
    from broker.delivery.signing import load_webhook_key

    path = settings.signing_key_file or settings.data_dir / "webhook-signing-key"
    if not path.is_file():
        raise ConfigError("no signing key to sign a tree head: set JIGSAW_SIGNING_KEY_FILE, or pass --head")
    return load_webhook_key(path).private_key


def _own_public_key(settings: Settings) -> Ed25519PublicKey | None:
    """Jigsaw's public key from its signing key, when this machine holds it (to check and name the head)."""
    try:
        return _signing_key(settings).public_key()
    except ConfigError:
        return None


def _head(path: Path) -> SignedTreeHead:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"cannot read the tree head {path}: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("tree_head"), dict):
        data = data["tree_head"]  # a proof file's head will do
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds no signed tree head")
    return SignedTreeHead.from_json(data)


async def _locate(log: Log, ident: str, *, notification: bool) -> Record:
    topic, header = (topics.NOTIFICATIONS, "notification_id") if notification else (topics.INPUT, "event_id")
    for partition in range(await log.partitions(topic)):
        record = await find_record(log, topic, ident, header=header, partition=partition)
        if record is not None:
            return record
    raise NotFound(f"no {'notification' if notification else 'accepted event'} {ident} in {topic}")


def _open_log(args: argparse.Namespace, settings: Settings) -> Log:
    if args.kafka is not None:
        from broker.log.kafka import KafkaLog
        from broker.log.kafka_security import KafkaSecurity

        # The cluster's TLS and SASL settings come from the same JIGSAW_KAFKA_* variables as the service's.
        log: Log = KafkaLog(args.kafka, client_id="jigsaw-proof", security=KafkaSecurity.from_settings(settings))
    else:
        from broker.log.embedded import EmbeddedLog

        if args.log is None or not args.log.is_file():
            raise ConfigError("name the log holding the record with --log FILE or --kafka BOOTSTRAP")
        log = EmbeddedLog(args.log)
    if args.topic_prefix:
        from broker.log.namespace import NamespacedLog

        log = NamespacedLog(log, args.topic_prefix)
    return log


async def _published_head(log: Log) -> SignedTreeHead:
    found = await last_seal(log)
    if found is None:
        raise NotFound("the sealer has published no tree head yet (jigsaw.tree-heads is empty): try again later")
    return found[0].head


def _tree_path(args: argparse.Namespace, name: str, stack: contextlib.ExitStack) -> Path:
    if args.tree is not None:
        return Path(args.tree)
    if args.log is not None and args.kafka is None:
        return Path(args.log).with_name(args.log.name + ".merkle") / name
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="jigsaw-proof-"))) / name


def _matches(store: TreeStore, head: SignedTreeHead) -> None:
    if head.tree_size > store.size or store.root(head.tree_size) != head.root_hash:
        raise ProofInvalid(f"the log does not match the signed tree head of size {head.tree_size}: run jigsaw replay")


async def _prove(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    log = _open_log(args, settings)
    await log.start()
    try:
        if args.since is not None:
            record = None
            topic, partition = topics.INPUT, 0
        else:
            record = await _locate(log, args.notification or args.event_id, notification=bool(args.notification))
            topic, partition = record.topic, record.partition
        with contextlib.ExitStack() as stack:
            path = _tree_path(args, f"{topic}.{partition}.tree", stack)
            path.parent.mkdir(parents=True, exist_ok=True)
            store = stack.enter_context(TreeStore(path))
            await extend_tree(log, store, topic, partition=partition)
            public: Ed25519PublicKey | None = None
            if args.head is not None:
                head = _head(args.head)
            elif not args.notification:
                head = await _published_head(log)
                public = _public_key(args, settings) or _own_public_key(settings)
            else:
                key = _signing_key(settings)
                head = sign_tree_head(SignedTreeHead(store.size, store.root(), int(time.time() * 1000)), key)
                public = key.public_key()
            if record is None:  # --since: the log only grew from an older head to this one
                older = _head(args.since)
                _matches(store, older)
                _matches(store, head)
                return consistency_proof(store.node, older, head, public_key=public)
            if head.tree_size <= store.size:
                _matches(store, head)
            return prove_record(store, record, head, public_key=public)
    finally:
        await log.close()


def run(args: argparse.Namespace) -> int:
    """Prove an event or check a proof file; the exit code."""
    settings = Settings.from_env(dict(os.environ))
    if args.verify is not None:
        if args.event_id is not None:
            raise ConfigError("give an EVENT_ID to prove or --verify FILE, not both")
        return _verify(args, settings)
    if (args.event_id is not None) + (args.notification is not None) + (args.since is not None) != 1:
        raise ConfigError("give one of EVENT_ID, --notification ID or --since HEAD_FILE to prove, or --verify FILE")
    text = json.dumps(asyncio.run(_prove(args, settings)), indent=2) + "\n"
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
