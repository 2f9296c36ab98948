"""``jigsaw replay``: verify a log and re-run the routing policy over it; write a child's chronology.

    jigsaw replay --log FILE [--keys DIR] [--from BOUND] [--to BOUND] [--jobs N] [--memory MIB]
    jigsaw replay --kafka BOOTSTRAP --keys DIR [--topic-prefix P] [--from BOUND] [--to BOUND] [--jobs N]
    jigsaw replay --log FILE --chronology NHS_NUMBER [--format json|csv|html] [--out FILE]
    jigsaw replay --log FILE --save-snapshot STATE.json      (later:)  jigsaw replay --log FILE --resume STATE.json

Streams the log, holding the routing state and a few batches (``audit.collect.replay_log``), verifying
signatures on ``--jobs`` worker processes; past ``--memory`` the routing state's growing
part is kept in a temporary file (``audit.spill``). Prints a summary and one line per
finding; exits 0 only when every signature verifies, every record is the one
Jigsaw's signed tree heads list (and every head is consistent with the one
before), and the re-run policy gives exactly the notifications and decision
records on the log, else 1, naming the first bad event by id and position.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import sys
from pathlib import Path
from typing import TextIO

from broker.audit.checkpoint import PUBLIC_KEY_FILE, load_public_key
from broker.audit.chronology import build_chronology, to_csv, to_json
from broker.audit.chronology_html import to_html
from broker.audit.collect import replay_log
from broker.audit.report import Report
from broker.audit.spill import Spill
from broker.audit.state_snapshot import RouterSnapshot, SnapshotInvalid, decode_snapshot
from broker.audit.verify import parse_recorded, record_time
from broker.audit.window import parse_bound
from broker.envelope.keys import KeyStore
from broker.errors import ConfigError
from broker.log.base import Log
from broker.logging import configure_logging
from broker.nhs import is_valid_nhs_number, normalise_nhs_number
from broker.progress import Progress
from broker.routing.model import Decision, Notification
from broker.settings import Settings

__all__ = ["add_arguments", "run"]

_RANGE_HELP = (
    "a time (ISO 8601 with a zone, e.g. 2022-01-02T00:00:00Z, or a date: 00:00Z that day) compared with "
    "when Jigsaw accepted each record, or a position TOPIC:OFFSET or TOPIC:PARTITION:OFFSET of an events or "
    "acks record (TOPIC: a kind such as police, a full topic name, or acks); inclusive"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "What is checked: every event's signature against the key registry as it stood when the event\n"
        "was accepted (a key revoked later still verifies what it signed before); every input record\n"
        "against the leaf hashes Jigsaw's signed tree heads list, and each head's consistency with the\n"
        "one before (RFC 9162); and the routing policy, re-run over the events and acknowledgements in\n"
        "the router's order, against the notifications and decision records on the log. --from/--to\n"
        "choose which events are verified and which notifications and decisions (by their time) are\n"
        "compared; the routing state is rebuilt from the start of the log, so it is the state as it\n"
        "stood at --from, and every record is still checked against the tree heads.\n\n"
        "Jigsaw's public key: jigsaw simulate --keep-log writes it to FILE.keys/jigsaw-checkpoint.pub; a\n"
        "running gateway publishes it at GET /v1/webhook-key (save its public_key line to a file).\n\n"
        "Exit status: 0 when everything verifies and matches; 1 otherwise (the first bad event is named)."
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--log", type=Path, metavar="FILE", help="an embedded log (SQLite file)")
    where.add_argument("--kafka", metavar="BOOTSTRAP", help="a Kafka cluster, e.g. 127.0.0.1:19092")
    parser.add_argument("--topic-prefix", default="", metavar="P", help="topic prefix of the deployment on Kafka")
    parser.add_argument(
        "--keys", type=Path, metavar="DIR", help="the key registry directory (default: FILE.keys, else JIGSAW_KEYS_DIR)"
    )
    parser.add_argument(
        "--checkpoint-key",
        type=Path,
        metavar="FILE",
        help=f"Jigsaw's public key, whpk_... or PEM (default: DIR/{PUBLIC_KEY_FILE})",
    )
    parser.add_argument(
        "--checkpoint-every", type=int, metavar="N", help="the sealer's tree head interval (JIGSAW_CHECKPOINT_EVERY)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="worker processes verifying signatures (default: the core count; 1: none)",
    )
    parser.add_argument(
        "--memory",
        type=int,
        default=default_memory_mib(),
        metavar="MIB",
        help="memory ceiling: past it the routing state's growing part is kept in a temporary file (in TMPDIR), "
        "the recently used part in memory (default: half the machine's or container's memory; 0: no ceiling)",
    )
    parser.add_argument("--from", dest="start", metavar="BOUND", help="start of the stretch to check: " + _RANGE_HELP)
    parser.add_argument("--to", dest="end", metavar="BOUND", help="end of the stretch to check (same forms)")
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="SNAPSHOT",
        help="start from a router snapshot (jigsaw.router-snapshot.v2 JSON): check and re-run only the tail after it",
    )
    parser.add_argument(
        "--save-snapshot",
        type=Path,
        metavar="FILE",
        help="write the routing state after the last input here (the whole state, in memory: past --memory too)",
    )
    parser.add_argument("--chronology", metavar="NHS_NUMBER", help="also write this child's chronology")
    parser.add_argument("--format", choices=("json", "csv", "html"), default="json", help="chronology format")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write the chronology here (default: stdout)")


_CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def default_memory_mib() -> int:
    """Half the memory this process may use, in MiB: the machine's, or its container's limit if lower (0: unknown)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 0
    for limit in _CGROUP_LIMITS:
        with contextlib.suppress(OSError, ValueError):
            total = min(total, int(limit.read_text(encoding="ascii").strip()))  # "max" (no limit) is a ValueError
    return int(total // 2**21)


def _open(args: argparse.Namespace, settings: Settings) -> Log:
    if args.log is not None:
        if not args.log.is_file():
            raise ConfigError(f"--log {args.log}: no such file")
        from broker.log.embedded import EmbeddedLog

        log: Log = EmbeddedLog(args.log)
    else:
        from broker.log.kafka import KafkaLog
        from broker.log.kafka_security import KafkaSecurity

        # TLS and SASL as JIGSAW_KAFKA_SECURITY_PROTOCOL and its companions say, for the --kafka cluster.
        security = KafkaSecurity.from_settings(settings)
        log = KafkaLog(args.kafka, client_id="jigsaw-replay", security=security)
    if args.topic_prefix:
        from broker.log.namespace import NamespacedLog

        log = NamespacedLog(log, args.topic_prefix)
    return log


async def _replay(log: Log, **options: object) -> Report:
    await log.start()
    bar: Progress | None = None

    def total(n: int) -> None:
        nonlocal bar
        bar = Progress("replay", n, unit="inputs", minimum=5000)

    def progress(n: int) -> None:
        if bar is not None:
            bar.advance(n)

    try:
        return await replay_log(log, progress=progress, total=total, **options)  # type: ignore[arg-type]
    finally:
        if bar is not None:
            bar.close()
        await log.close()


def _load_snapshot(path: Path) -> RouterSnapshot:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the router snapshot {path}: {exc}") from exc
    try:
        return decode_snapshot(data)
    except SnapshotInvalid as exc:
        raise ConfigError(f"--resume {path}: {exc.message}") from exc


def _integrity_sentence(report: Report) -> str:
    if report.ok:
        return (
            f"Verified: {report.verified} events' signatures and {report.heads} signed tree heads "
            "check out, and the routing policy re-run over the log gives exactly the "
            "notifications and decisions on record."
        )
    return (
        f"NOT verified: the replay found {len(report.errors)} problem(s) with the log; run jigsaw replay for "
        "the details before relying on this chronology."
    )


def _write_chronology(args: argparse.Namespace, report: Report, out: TextIO) -> None:
    nhs = normalise_nhs_number(args.chronology)
    if not is_valid_nhs_number(nhs):
        raise ConfigError(f"--chronology {args.chronology!r} is not a valid NHS number")
    recorded_notes = parse_recorded(report.notification_records, "notification_id")
    notes = [Notification.from_dict(r.body) for r in recorded_notes if r.body is not None]
    recorded_decisions = parse_recorded(report.decision_records, "decision_id")
    decisions = [Decision.from_dict(r.body) for r in recorded_decisions if r.body is not None]
    events = [(record_time(r), e) for r, e in report.decoded]
    chronology = build_chronology(
        nhs,
        events,
        notes,
        decisions,
        report.acks_seen,
        integrity=_integrity_sentence(report),
        generated_at=dt.datetime.now(dt.UTC),
    )
    text = {"json": to_json, "csv": to_csv}.get(args.format)
    body = text(chronology) if text else to_html(chronology, verified=report.ok)
    if args.out is not None:
        args.out.write_text(body, encoding="utf-8")
        print(f"chronology of {nhs}: {len(chronology.entries)} entries written to {args.out}", file=out)
    else:
        sys.stdout.write(body)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_format, "warning")
    try:
        start = parse_bound(args.start) if args.start else None
        end = parse_bound(args.end) if args.end else None
    except ValueError as exc:
        raise ConfigError(f"--from/--to: {exc}") from None
    keys_dir = args.keys or (Path(f"{args.log}.keys") if args.log is not None else settings.keys_dir)
    if not keys_dir.is_dir():
        raise ConfigError(f"the key registry directory {keys_dir} does not exist (give --keys DIR)")
    registry = KeyStore(keys_dir).load()
    key_file = args.checkpoint_key or keys_dir / PUBLIC_KEY_FILE
    checkpoint_key = load_public_key(key_file) if args.checkpoint_key or key_file.is_file() else None
    report = asyncio.run(
        _replay(
            _open(args, settings),
            keys=registry,
            checkpoint_key=checkpoint_key,
            start=start,
            end=end,
            every=args.checkpoint_every or settings.checkpoint_every,
            jobs=args.jobs,
            keep=bool(args.chronology),
            resume=_load_snapshot(args.resume) if args.resume else None,
            save=args.save_snapshot is not None,
            spill=Spill(args.memory * 2**20) if args.memory > 0 else None,
        )
    )
    if args.save_snapshot is not None and report.snapshot is not None:
        args.save_snapshot.write_bytes(report.snapshot)
    # With a chronology on standard output, the verdict goes to standard error.
    out = sys.stderr if args.chronology and args.out is None else sys.stdout
    for line in report.summary():
        print(line, file=out)
    for finding in report.findings:
        print(finding.line(), file=out)
    if args.chronology:
        _write_chronology(args, report, out)
    return 0 if report.ok else 1
