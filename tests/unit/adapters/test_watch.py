"""Watch mode: each dropped file processed once and filed in done/ or failed/ with a report beside it."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from adapters.base import ExportUnreadable
from adapters.prepare import RowRefusal
from adapters.publish import Report
from adapters.watch import pending_files, watch_folder


def _report(path: Path, *, refused: int = 0, failed: str | None = None) -> Report:
    report = Report("police", "POLICE-WYP", str(path), rows=2, events=2, accepted=2 - refused)
    report.refused = [RowRefusal(3, "invalid_nhs_number", "bad number")] * refused
    if failed:
        report.accepted = 0
        report.failed = [RowRefusal(2, failed, "down"), RowRefusal(3, failed, "down")]
    return report


def _drop(folder: Path, name: str, age: float = 60.0) -> Path:
    path = folder / name
    path.write_text("incident_ref\nI-1\n", encoding="utf-8")
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


async def test_files_are_filed_in_done_or_failed_with_a_report(tmp_path: Path) -> None:
    """A clean file goes to done/, one with a refused row or unreadable to failed/, each with a JSON report."""
    _drop(tmp_path, "a-good.csv", age=90)
    _drop(tmp_path, "b-refused.csv", age=80)
    _drop(tmp_path, "c-broken.json", age=70)
    seen: list[str] = []

    async def process(path: Path) -> Report:
        seen.append(path.name)
        if "broken" in path.name:
            raise ExportUnreadable(f"{path}: not valid JSON")
        return _report(path, refused=1 if "refused" in path.name else 0)

    result = await watch_folder(tmp_path, process, interval=0.01, settle=1.0, max_polls=2)
    assert seen == ["a-good.csv", "b-refused.csv", "c-broken.json"]  # oldest first, each once
    assert (result.polls, result.done, result.failed) == (2, ["a-good.csv"], ["b-refused.csv", "c-broken.json"])
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == []
    good = json.loads((tmp_path / "done" / "a-good.csv.report.json").read_text())
    assert good["accepted"] == 2 and good["refused"] == []
    bad = json.loads((tmp_path / "failed" / "b-refused.csv.report.json").read_text())
    assert bad["refused"] == [{"row": 3, "error": "invalid_nhs_number", "message": "bad number"}]
    broken = json.loads((tmp_path / "failed" / "c-broken.json.report.json").read_text())
    assert broken["error"] == "export_unreadable"


async def test_a_file_still_being_written_or_hidden_is_left_alone(tmp_path: Path) -> None:
    """Files changed within the settle time, hidden files, reports and other suffixes are not taken."""
    _drop(tmp_path, "fresh.csv", age=0)
    _drop(tmp_path, ".partial.csv")
    _drop(tmp_path, "notes.txt")
    ready = _drop(tmp_path, "ready.jsonl")
    assert pending_files(tmp_path, settle=5.0) == [ready]


async def test_an_unreachable_gateway_leaves_the_file_for_the_next_poll(tmp_path: Path) -> None:
    """When nothing could be delivered, the file stays and is tried again; then filed once it goes."""
    _drop(tmp_path, "export.csv")
    answers = [_report(tmp_path, failed="gateway_unavailable"), _report(tmp_path)]

    async def process(path: Path) -> Report:
        return answers.pop(0)

    result = await watch_folder(tmp_path, process, interval=0.01, settle=0.0, max_polls=3)
    assert result.retried == ["export.csv"] and result.done == ["export.csv"]
    assert (tmp_path / "done" / "export.csv").exists()


async def test_a_second_file_with_the_same_name_does_not_overwrite_the_first(tmp_path: Path) -> None:
    """A later drop of the same name is filed beside the first under a time-stamped name."""

    async def process(path: Path) -> Report:
        return _report(path)

    for _ in range(2):
        _drop(tmp_path, "daily.csv")
        await watch_folder(tmp_path, process, settle=0.0, max_polls=1)
    names = sorted(p.name for p in (tmp_path / "done").iterdir())
    assert len(names) == 4 and "daily.csv" in names and "daily.csv.report.json" in names


async def test_setting_stop_ends_the_loop_between_polls(tmp_path: Path) -> None:
    """The loop waits on the stop event between polls and returns promptly once it is set."""
    stop = asyncio.Event()

    async def process(path: Path) -> Report:
        return _report(path)

    task = asyncio.create_task(watch_folder(tmp_path, process, interval=30.0, stop=stop))
    await asyncio.sleep(0.05)
    stop.set()
    result = await asyncio.wait_for(task, timeout=2.0)
    assert result.polls == 1
