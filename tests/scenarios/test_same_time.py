"""Steps at the same time keep their order, in the simulator and in the auditor's replay of its log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent / "data"


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broker", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def test_same_time_steps_on_different_topics_are_routed_in_step_order_and_replay_clean(tmp_path: Path) -> None:
    """A booking and an incident stamped alike: the incident sees the pregnancy booked just before it,
    whatever the topics' order, and replaying the kept log reproduces exactly that."""
    scenario = json.loads((HERE / "family-a.json").read_text())
    steps = scenario["steps"]
    booking = next(s for s in steps if s.get("ref") == "booking")
    incident = next(s for s in steps if s.get("ref") == "incident")
    incident["at"] = booking["at"]  # police's topic sorts before midwifery's: only the step order can win
    steps.remove(incident)
    steps.insert(steps.index(booking) + 1, incident)
    path = tmp_path / "same-time.json"
    path.write_text(json.dumps(scenario))
    log = tmp_path / "same-time.db"
    sim = _run("simulate", path, "--keep-log", log)
    assert sim.returncode == 0, sim.stderr
    lines = [json.loads(line) for line in sim.stdout.splitlines()]
    assert any(
        o["kind"] == "alert" and o["event_ref"] == "incident" and o["recipient"] == "MIDWIFERY-LTH" for o in lines
    ), "the incident was routed before the booking made the pregnancy active"
    replay = _run("replay", "--log", log)
    assert replay.returncode == 0, replay.stdout + replay.stderr
