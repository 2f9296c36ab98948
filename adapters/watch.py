"""Watch a folder that an agency's system drops export files into.

Every ``interval`` seconds the folder is listed; each export file (``.csv``,
``.json``, ``.jsonl``, ``.ndjson``, not hidden) whose last change is at least
``settle`` seconds old (so a file still being written is left alone) is
processed once, oldest first, and moved to ``done/`` when every row went, or
to ``failed/`` when a row was refused or the file could not be read, with a
JSON report beside it (``<name>.report.json``: counts and every refused row's
number and reason, never row contents). A file whose events could not be
delivered because the gateway was unreachable stays where it is and is tried
again at the next poll (re-sending is harmless: event ids are stable).

The loop stops when ``stop`` is set (``jigsaw adapter`` sets it on SIGINT and
SIGTERM; the file in hand is finished first) or after ``max_polls`` polls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from adapters.base import ExportUnreadable
from adapters.files import EXPORT_SUFFIXES
from adapters.publish import Report
from broker.logging import get_logger

__all__ = ["WatchResult", "pending_files", "watch_folder"]

_log = get_logger("jigsaw.adapter.watch")
_TRANSIENT = frozenset({"gateway_unavailable"})

Process = Callable[[Path], Awaitable[Report]]


@dataclasses.dataclass
class WatchResult:
    """What one run of the watch loop did."""

    polls: int = 0
    done: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)
    retried: list[str] = dataclasses.field(default_factory=list)


def pending_files(directory: Path, *, settle: float, now: float | None = None) -> list[Path]:
    """Export files in ``directory`` ready to process (unchanged for ``settle`` seconds), oldest first."""
    now = time.time() if now is None else now
    found: list[tuple[float, str, Path]] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith(".") or not name.lower().endswith(EXPORT_SUFFIXES) or not entry.is_file():
                continue
            changed = entry.stat().st_mtime
            if now - changed >= settle:
                found.append((changed, name, Path(entry.path)))
    return [path for _, _, path in sorted(found)]


def _destination(folder: Path, name: str) -> Path:
    folder.mkdir(exist_ok=True)
    target = folder / name
    if target.exists() or (folder / f"{name}.report.json").exists():
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        stem, dot, suffix = name.rpartition(".")
        target = folder / (f"{stem}.{stamp}{dot}{suffix}" if dot else f"{name}.{stamp}")
    return target


def _file_away(path: Path, folder: Path, report: dict[str, Any]) -> Path:
    """Move ``path`` into ``folder`` with its report beside it; the new path."""
    target = _destination(folder, path.name)
    report_path = target.with_name(f"{target.name}.report.json")
    tmp = report_path.with_name(f".{report_path.name}.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(path, target)
    os.replace(tmp, report_path)
    return target


def _transient(report: Report) -> bool:
    return bool(report.failed) and not report.refused and all(f.error in _TRANSIENT for f in report.failed)


async def _process_one(path: Path, process: Process, directory: Path, result: WatchResult) -> None:
    started = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    try:
        report = await process(path)
    except ExportUnreadable as exc:
        body = {"file": path.name, "error": exc.code, "message": exc.message, "processed_at": started}
        _file_away(path, directory / "failed", body)
        result.failed.append(path.name)
        _log.warning("export_unreadable", file=path.name, error=exc.code)
        return
    if _transient(report):
        result.retried.append(path.name)
        _log.warning("export_deferred", file=path.name, failed=len(report.failed))
        return
    body = {**report.to_json(), "file": path.name, "processed_at": started}
    folder = directory / ("done" if report.ok else "failed")
    _file_away(path, folder, body)
    (result.done if report.ok else result.failed).append(path.name)
    _log.info("export_filed", file=path.name, folder=folder.name, refused_rows=len(report.refused_rows))


async def watch_folder(
    directory: Path,
    process: Process,
    *,
    interval: float = 30.0,
    settle: float = 5.0,
    max_polls: int | None = None,
    stop: asyncio.Event | None = None,
) -> WatchResult:
    """Process export files dropped into ``directory`` until ``stop`` is set or ``max_polls`` polls are done.

    Args:
        directory: the drop folder (``done/`` and ``failed/`` are made inside it).
        process: sends one file and returns its report (``publish_file`` with a client).
        interval: seconds between polls.
        settle: how long a file must be unchanged before it is taken.
        max_polls: stop after this many polls (``1``: process what is there now and return).
        stop: set it to stop after the file in hand.
    """
    stop = stop or asyncio.Event()
    result = WatchResult()
    while not stop.is_set() and (max_polls is None or result.polls < max_polls):
        result.polls += 1
        for path in pending_files(directory, settle=settle):
            if stop.is_set():
                break
            await _process_one(path, process, directory, result)
        if max_polls is not None and result.polls >= max_polls:
            break
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass
    return result
