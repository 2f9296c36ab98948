"""``jigsaw adapter``: turn an agency's export file into signed events and send them to the gateway.

    jigsaw adapter AGENCY FILE --gateway URL --key KEYFILE --token-file F [--batch N]
    jigsaw adapter AGENCY FILE --key KEYFILE --dry-run
    jigsaw adapter AGENCY --watch DIR --gateway URL --key KEYFILE --token-file F [--interval S] [--once]

AGENCY is ``police``, ``gp``, ``midwifery`` or ``csc``; the formats are in
``adapters/README.md``. Every row is mapped, signed with KEYFILE (a private key
from ``jigsaw keys new``) and checked with the gateway's own validation;
refused rows are reported with their number and reason and the others go.

Standard output is JSON lines: with ``--dry-run`` one ``event`` line per event
that would be sent; a ``refused`` line per refused row, a ``failed`` line per
event the gateway could not be asked about, and a ``summary`` line. Exit code:
0 when no row was refused and nothing failed, 1 otherwise, 2 for a usage error
(a missing or unreadable file, key or token).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

from adapters import ADAPTERS
from adapters.base import Adapter, ExportUnreadable
from adapters.files import read_export
from adapters.prepare import Preparation, check_key, prepare
from adapters.publish import Report, publish_file, send_prepared
from adapters.watch import watch_folder
from broker.client import JigsawClient
from broker.codec import jsonable
from broker.envelope.keys import SigningKey, load_signing_key
from broker.errors import ConfigError
from broker.logging import configure_logging
from broker.progress import Progress
from broker.validation import event_of

__all__ = ["add_arguments", "run"]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``adapter`` arguments."""
    parser.add_argument("agency", choices=sorted(ADAPTERS), help="whose export it is")
    parser.add_argument("file", nargs="?", type=Path, help="the export file (CSV, JSON or JSON Lines)")
    parser.add_argument("--gateway", metavar="URL", help="the gateway's base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--key", metavar="KEYFILE", type=Path, required=True, help="the agency's private key file")
    parser.add_argument("--token-file", metavar="F", type=Path, help="a file holding the agency's bearer token")
    parser.add_argument("--dry-run", action="store_true", help="print the events that would be sent; send nothing")
    parser.add_argument("--batch", metavar="N", type=_positive, default=100, help="events per request (default 100)")
    parser.add_argument("--watch", metavar="DIR", type=Path, help="process export files dropped into DIR")
    parser.add_argument(
        "--interval", metavar="S", type=_seconds, default=30.0, help="seconds between polls of DIR (30)"
    )
    parser.add_argument(
        "--settle", metavar="S", type=_seconds, default=5.0, help="seconds a file must be unchanged (5)"
    )
    parser.add_argument("--once", action="store_true", help="with --watch: process what is there and stop")
    parser.add_argument("--max-polls", metavar="N", type=_positive, help="with --watch: stop after this many polls")


def _usage(args: argparse.Namespace) -> str | None:
    """What is wrong with the combination of arguments, or None."""
    if (args.file is None) == (args.watch is None):
        return "give either FILE or --watch DIR"
    if args.watch is not None and args.dry_run:
        return "--dry-run takes a FILE, not --watch"
    if (args.once or args.max_polls) and args.watch is None:
        return "--once and --max-polls go with --watch"
    if not args.dry_run and (not args.gateway or args.token_file is None):
        return "sending needs --gateway URL and --token-file F (or use --dry-run)"
    return None


def _token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the token file {path}: {exc.strerror}") from exc
    if not token:
        raise ConfigError(f"the token file {path} is empty")
    return token


def _line(out: TextIO, obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj) + "\n")


def _print_report(report: Report, out: TextIO) -> None:
    for refusal in report.refused:
        _line(out, {"kind": "refused", **refusal.to_json()})
    for failure in report.failed:
        _line(out, {"kind": "failed", **failure.to_json()})
    _line(out, {"kind": "summary", **report.summary()})


def _print_events(preparation: Preparation, out: TextIO) -> None:
    for prepared in preparation.events:
        env = prepared.envelope
        _line(
            out,
            {
                "kind": "event",
                "row": prepared.row,
                "record": prepared.record.ref,
                "event_id": env.event_id,
                "event_type": env.event_type,
                "source": env.source,
                "occurred_at": jsonable(env.occurred_at),
                "consent": env.consent,
                "data": jsonable(event_of(env).data),
            },
        )


def _human(report: Report) -> str:
    s = report.summary()
    if report.dry_run:
        done = f"{s['would_send']} events would be sent"
    else:
        done = f"{s['accepted']} accepted, {s['already_sent']} already sent, {s['failed']} failed"
    return f"{report.name}: {s['rows']} rows, {done}, {s['refused_rows']} rows refused"


def _prepare(adapter: Adapter, path: Path, key: SigningKey) -> Preparation:
    """Read, map, sign and check the file, with a progress bar for a large one on a terminal."""
    items = read_export(path)
    with Progress(f"{path.name}: checking", len(items), unit="rows") as progress:
        return prepare(adapter, items, key, now=dt.datetime.now(dt.UTC), progress=progress.reach)


async def _send_file(adapter: Adapter, path: Path, key: SigningKey, args: argparse.Namespace, token: str) -> Report:
    preparation = _prepare(adapter, path, key)
    report = Report.of(adapter, key.org_id, str(path), preparation)
    with Progress(f"{path.name}: sending", len(preparation.events)) as progress:
        async with JigsawClient(args.gateway, token, key=key) as client:
            await send_prepared(preparation, client, report, batch=args.batch, progress=progress.reach)
    return report


async def _watch(adapter: Adapter, key: SigningKey, args: argparse.Namespace, token: str) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (RuntimeError, ValueError, NotImplementedError):  # not the main thread, or no signals here
            continue
        handled.append(signum)
    try:
        async with JigsawClient(args.gateway, token, key=key) as client:

            async def process(path: Path) -> Report:
                report = await publish_file(adapter, path, client, batch=args.batch)
                print(_human(report), file=sys.stderr)
                return report

            result = await watch_folder(
                args.watch,
                process,
                interval=args.interval,
                settle=args.settle,
                max_polls=1 if args.once else args.max_polls,
                stop=stop,
            )
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
    _line(
        sys.stdout,
        {
            "kind": "watch",
            "polls": result.polls,
            "done": result.done,
            "failed": result.failed,
            "retried": result.retried,
        },
    )
    return 1 if result.failed else 0


def run(args: argparse.Namespace) -> int:
    """Run the adapter; the exit code."""
    configure_logging("json", "warning")
    problem = _usage(args)
    if problem is not None:
        print(f"jigsaw adapter: {problem}", file=sys.stderr)
        return 2
    adapter = ADAPTERS[args.agency]
    try:
        key = load_signing_key(args.key)
        check_key(adapter, key)
        token = "" if args.dry_run else _token(args.token_file)
        if args.watch is not None:
            if not args.watch.is_dir():
                raise ConfigError(f"--watch {args.watch} is not a folder")
            return asyncio.run(_watch(adapter, key, args, token))
        if args.dry_run:
            preparation = _prepare(adapter, args.file, key)
            _print_events(preparation, sys.stdout)
            report = Report.of(adapter, key.org_id, str(args.file), preparation, dry_run=True)
        else:
            report = asyncio.run(_send_file(adapter, args.file, key, args, token))
    except (ConfigError, ExportUnreadable) as exc:
        print(f"jigsaw adapter: {exc.message}", file=sys.stderr)
        return 2
    _print_report(report, sys.stdout)
    print(_human(report), file=sys.stderr)
    return 0 if report.ok else 1
