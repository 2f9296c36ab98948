"""Scenario files run through ``jigsaw simulate``'s pipeline and checked against their expectations.

Runs the project's own scenarios (tests/scenarios/data), and the shared ones: the review's
three cases and the rules of the spec's next version (``../shared/scenarios`` and its ``next/``;
skipped when ../shared is missing, except under CI=true, where that fails the run).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from broker.simulate import load_scenario, run_scenario
from tests.shared import SCENARIOS, need_shared

HERE = Path(__file__).parent / "data"
SHARED = [
    pytest.param(
        p, marks=need_shared(SCENARIOS), id=f"shared/{p.relative_to(SCENARIOS)}".removesuffix(".expected.json")
    )
    for p in sorted(SCENARIOS.glob("*.expected.json")) + sorted(SCENARIOS.glob("next/*.expected.json"))
] or [pytest.param(SCENARIOS / "(missing)", marks=need_shared(SCENARIOS), id="shared")]
EXPECTED = [pytest.param(p, id=p.name.removesuffix(".expected.json")) for p in sorted(HERE.glob("*.expected.json"))]
NOTIFICATION_KINDS = {"alert", "catch_up", "history", "pre_birth_alert", "escalation", "retraction"}


async def _simulate(scenario: Path) -> list[dict[str, Any]]:
    out = io.StringIO()
    assert await run_scenario(load_scenario(scenario), out) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _matches(line: dict[str, Any], want: dict[str, Any]) -> list[str]:
    bad = []
    if "flags" in want and sorted(line["flags"]) != sorted(want["flags"]):
        bad.append(f"flags {line['flags']} != {want['flags']}")
    for key in ("view", "priority", "cause"):
        if key in want and line.get(key) != want[key]:
            bad.append(f"{key} {line.get(key)!r} != {want[key]!r}")
    missing = set(want.get("also_notified_includes", [])) - set(line["also_notified"])
    if missing:
        bad.append(f"also_notified lacks {sorted(missing)}")
    leaked = [m for m in want.get("must_not_mention", []) if m in json.dumps(line)]
    if leaked:
        bad.append(f"mentions {leaked}")
    return bad


@pytest.mark.parametrize("expected", EXPECTED + SHARED)
async def test_scenario_meets_its_expectations(expected: Path) -> None:
    """Every expected notification is sent as described, nothing forbidden is, refusals are refused."""
    spec = json.loads(expected.read_text())
    lines = await _simulate(expected.parent / spec["scenario"])
    notes = [o for o in lines if o["kind"] in NOTIFICATION_KINDS]
    problems = []
    for want in spec.get("expect", []):
        kind = want.get("kind", "alert")
        hits = [
            o
            for o in notes
            if (o["event_ref"], o["recipient"], o["kind"]) == (want["event_ref"], want["recipient"], kind)
            and ("cause" not in want or o.get("cause") == want["cause"])
        ]
        if not hits:
            problems.append(f"missing {kind} of {want['event_ref']} to {want['recipient']}")
        elif all(_matches(o, want) for o in hits):
            problems.append(f"{kind} of {want['event_ref']} to {want['recipient']}: {_matches(hits[0], want)}")
    for no in spec.get("forbid", []):
        if any(
            o["event_ref"] == no["event_ref"]
            and o["recipient"] == no["recipient"]
            and ("kind" not in no or o["kind"] == no["kind"])
            for o in notes
        ):
            problems.append(f"forbidden {no}")
    for rej in spec.get("rejected", []):
        hits = [o for o in lines if o["kind"] == "rejected" and o["event_ref"] == rej["event_ref"]]
        if not hits or ("error" in rej and hits[0]["error"] != rej["error"]):
            problems.append(f"not rejected as expected: {rej} (got {hits})")
    for w in spec.get("withheld", []):
        if not any(
            o["kind"] == "withheld"
            and (o["event_ref"], o["rule"], o.get("recipient")) == (w["event_ref"], w["rule"], w.get("recipient"))
            for o in lines
        ):
            problems.append(f"no withheld line {w}")
    once = [(o["event_ref"], o["recipient"]) for o in notes if o["kind"] not in ("escalation", "retraction")]
    assert len(once) == len(set(once)), "an organisation got the same event twice"
    assert not problems, "\n".join(problems)


async def test_simulate_is_deterministic_apart_from_event_ids() -> None:
    """The same scenario twice gives the same lines (event ids are fresh, refs are not)."""
    scenario = HERE / "family-a.json"
    assert await _simulate(scenario) == await _simulate(scenario)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda s: s.__setitem__("steps", list(reversed(s["steps"]))), "time order"),
        (lambda s: s["steps"][0]["data"].__setitem__("person", "nobody"), "unknown person 'nobody'"),
        (lambda s: s["steps"][0].__setitem__("source", "GP-NOWHERE"), "unknown organisation 'GP-NOWHERE'"),
        (lambda s: s["steps"].append({"at": "2024-01-01T00:00:00Z", "ack": "nope", "by": "CSC-LEEDS"}), "'nope'"),
    ],
)
def test_a_broken_scenario_exits_2_naming_the_step(tmp_path: Path, mutate: Any, needle: str) -> None:
    """A scenario that is itself wrong exits 2 with one line on standard error naming what is wrong."""
    scenario = json.loads((HERE / "family-a.json").read_text())
    mutate(scenario)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(scenario))
    proc = subprocess.run(
        [sys.executable, "-m", "broker", "simulate", str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""


def test_bad_json_exits_2(tmp_path: Path) -> None:
    """A file that is not JSON is a broken scenario, not a crash."""
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    proc = subprocess.run(
        [sys.executable, "-m", "broker", "simulate", str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr


@pytest.mark.parametrize(
    "scenario", sorted(p for p in HERE.glob("*.json") if not p.name.endswith(".expected.json")), ids=lambda p: p.stem
)
def test_a_simulated_log_replays_clean(tmp_path: Path, scenario: Path) -> None:
    """simulate --keep-log, then replay: every signature, the chain and every routing decision verify."""
    log = tmp_path / "kept.db"
    sim = subprocess.run(
        [sys.executable, "-m", "broker", "simulate", str(scenario), "--keep-log", str(log)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert sim.returncode == 0, sim.stderr
    replay = subprocess.run(
        [sys.executable, "-m", "broker", "replay", "--log", str(log)], capture_output=True, text=True, timeout=300
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "everything verifies and matches" in replay.stdout
