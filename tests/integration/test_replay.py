"""jigsaw replay over logs kept by jigsaw simulate: clean logs replay clean; tampering is detected and named."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.client import build_envelope
from broker.envelope.keys import new_key
from broker.envelope.model import decode_envelope, encode_envelope
from broker.envelope.testing import sample_data
from tests.shared import ROOT, SCENARIOS, need_shared

PUBLIC = ["child-1", "child-2", "child-3"]
CHILD_1 = "9993571431"  # child1 in child-1.json
POLICE = "jigsaw.input"  # the one input topic; the police events are picked out by their source_kind header

pytestmark = need_shared(SCENARIOS)


@dataclasses.dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def findings(self, code: str) -> list[str]:
        return [line for line in self.out.splitlines() if line.startswith("ERROR ") and f" {code} " in line]


def jigsaw(*args: str | Path) -> Run:
    """Run the jigsaw command in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-m", "broker", *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    return Run(done.returncode, done.stdout, done.stderr)


def simulate(scenario: str, log: Path) -> None:
    """jigsaw simulate SCENARIO --keep-log LOG (exit 0 expected)."""
    run = jigsaw("simulate", SCENARIOS / f"{scenario}.json", "--keep-log", log)
    assert run.code == 0, run.err


def copy_log(source: Path, target: Path) -> Path:
    """A copy of a kept log and its keys directory."""
    shutil.copy(source, target)
    shutil.copytree(Path(f"{source}.keys"), Path(f"{target}.keys"))
    return target


def rows(log: Path, topic: str) -> list[tuple[int, bytes, str, int]]:
    """(offset, value, headers JSON, timestamp) of a topic's records (of the input topic: police events only)."""
    with sqlite3.connect(log) as db:
        found = db.execute("SELECT offset, value, headers, ts FROM records WHERE topic = ? ORDER BY offset", (topic,))
        return [row for row in found if topic != POLICE or ["source_kind", b"police".hex()] in json.loads(row[2])]


def event_id(headers: str) -> str:
    return next(bytes.fromhex(v).decode() for k, v in json.loads(headers) if k == "event_id")


def execute(log: Path, sql: str, *params: object) -> None:
    with sqlite3.connect(log) as db:
        db.execute(sql, params)


def flip_last_byte(log: Path) -> None:
    """Flip every bit of the last byte of the second police event's record."""
    offset, value, _, _ = rows(log, POLICE)[1]
    tampered = value[:-1] + bytes([value[-1] ^ 0xFF])
    execute(log, "UPDATE records SET value = ? WHERE topic = ? AND offset = ?", tampered, POLICE, offset)


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Each public scenario simulated once, its log kept."""
    base = tmp_path_factory.mktemp("kept")
    logs = {}
    for name in PUBLIC:
        simulate(name, base / f"{name}.db")
        logs[name] = base / f"{name}.db"
    yield logs


@pytest.fixture
def child1(kept: dict[str, Path], tmp_path: Path) -> Path:
    """A private copy of child-1's kept log, to tamper with."""
    return copy_log(kept["child-1"], tmp_path / "child-1.db")


@pytest.mark.parametrize("name", PUBLIC)
def test_a_clean_simulated_log_replays_clean(kept: dict[str, Path], name: str) -> None:
    """simulate --keep-log then replay --log exits 0 with no findings, for every public scenario."""
    run = jigsaw("replay", "--log", kept[name])
    assert run.code == 0, run.out + run.err
    assert "OK: everything verifies and matches" in run.out
    assert "ERROR" not in run.out


def test_altering_one_payload_byte_is_detected_and_the_event_named(child1: Path) -> None:
    """A flipped byte inside an event's payload fails its signature and its signed leaf, both at that record."""
    offset, value, headers, _ = rows(child1, POLICE)[1]
    payload = decode_envelope(value).payload
    at = value.index(payload) + len(payload) // 2
    tampered = value[:at] + bytes([value[at] ^ 0x01]) + value[at + 1 :]
    execute(child1, "UPDATE records SET value = ? WHERE topic = ? AND offset = ?", tampered, POLICE, offset)
    run = jigsaw("replay", "--log", child1)
    eid = event_id(headers)
    assert run.code == 1
    assert any(f"{POLICE}:0:{offset} event {eid}" in line for line in run.findings("signature_invalid"))
    assert any(f"{POLICE}:0:{offset} event {eid}" in line for line in run.findings("record_altered"))
    assert f"first bad: {eid} at {POLICE}:0:{offset}" in run.out


def test_deleting_an_event_is_detected_and_named(child1: Path) -> None:
    """A removed event leaves an offset its signed leaf names, and its notifications no longer follow."""
    offset, _, headers, _ = rows(child1, POLICE)[0]
    execute(child1, "DELETE FROM records WHERE topic = ? AND offset = ?", POLICE, offset)
    run = jigsaw("replay", "--log", child1)
    assert run.code == 1
    assert any(f"{POLICE}:0:{offset}" in line for line in run.findings("record_missing"))
    assert not run.findings("record_altered")  # the records around it are untouched
    assert any(f"event {event_id(headers)}" in line for line in run.findings("unexpected_notification"))


def test_reordering_two_events_is_detected_and_both_named(child1: Path) -> None:
    """Swapping two events: neither is the record the signed tree head lists at its offset."""
    (a, _, ha, _), (b, _, hb, _) = rows(child1, POLICE)[:2]
    execute(child1, "UPDATE records SET offset = -1 WHERE topic = ? AND offset = ?", POLICE, a)
    execute(child1, "UPDATE records SET offset = ? WHERE topic = ? AND offset = ?", a, POLICE, b)
    execute(child1, "UPDATE records SET offset = ? WHERE topic = ? AND offset = -1", b, POLICE)
    run = jigsaw("replay", "--log", child1)
    assert run.code == 1
    broken = run.findings("record_altered")
    assert any(f"{POLICE}:0:{a} event {event_id(hb)}" in line for line in broken)
    assert any(f"{POLICE}:0:{b} event {event_id(ha)}" in line for line in broken)


def test_inserting_a_forged_event_is_detected_and_named(child1: Path) -> None:
    """An event signed with a key the registry does not hold, slipped onto the end of the log, is refused by name."""
    with sqlite3.connect(child1) as db:
        last, ts = db.execute("SELECT MAX(offset), MAX(ts) FROM records WHERE topic = ?", (POLICE,)).fetchone()
    _, forger = new_key("POLICE-WYP", "police", valid_from=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    at = dt.datetime.fromtimestamp(ts / 1000, dt.UTC) + dt.timedelta(hours=1)
    env = build_envelope(
        "police.domestic_abuse_incident",
        sample_data("police.domestic_abuse_incident", 7),
        source="POLICE-WYP",
        key=forger,
        occurred_at=at,
        issued_at=at,
    )
    value = encode_envelope(env)
    headers = [
        ("record", b"event"),
        ("event_type", env.event_type.encode()),
        ("event_id", env.event_id.encode()),
        ("source", b"POLICE-WYP"),
        ("source_kind", b"police"),
    ]
    key = sample_data("police.domestic_abuse_incident", 7)["victim"]["nhs_number"].encode()
    execute(
        child1,
        "INSERT INTO records(topic, part, offset, key, value, headers, ts) VALUES (?, 0, ?, ?, ?, ?, ?)",
        POLICE,
        last + 1,
        key,
        value,
        json.dumps([[k, v.hex()] for k, v in headers]),
        int(at.timestamp() * 1000),
    )
    run = jigsaw("replay", "--log", child1)
    assert run.code == 1
    assert any(f"{POLICE}:0:{last + 1} event {env.event_id}" in line for line in run.findings("unknown_key"))


def test_altering_a_recorded_notification_is_detected_and_named(child1: Path) -> None:
    """A notification whose stored content differs from what the policy gives is named, with the fields."""
    offset, value, _, _ = rows(child1, "jigsaw.notifications")[3]
    body = json.loads(value)
    body["priority"] = "routine" if body["priority"] == "urgent" else "urgent"
    changed = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    execute(child1, "UPDATE records SET value = ? WHERE topic = 'jigsaw.notifications' AND offset = ?", changed, offset)
    run = jigsaw("replay", "--log", child1)
    assert run.code == 1
    [line] = run.findings("altered_notification")
    assert f"jigsaw.notifications:0:{offset} event {body['event_id']}" in line and "priority" in line


def test_a_notification_record_that_no_longer_decodes_is_named(child1: Path) -> None:
    """Garbage in place of a recorded notification is named at its position."""
    offset = rows(child1, "jigsaw.notifications")[5][0]
    execute(child1, "UPDATE records SET value = ? WHERE topic = 'jigsaw.notifications' AND offset = ?", b"{", offset)
    run = jigsaw("replay", "--log", child1)
    assert run.code == 1
    [line] = run.findings("altered_notification")
    assert f"jigsaw.notifications:0:{offset} " in line and "does not decode" in line


def test_cutting_the_last_notifications_off_is_detected(child1: Path) -> None:
    """The final tree head recorded where the notifications ended, so a shortened topic is named."""
    last = rows(child1, "jigsaw.notifications")[-1][0]
    execute(child1, "DELETE FROM records WHERE topic = 'jigsaw.notifications' AND offset = ?", last)
    run = jigsaw("replay", "--log", child1)
    assert run.code == 1
    assert any(f"jigsaw.notifications:0:{last}" in line for line in run.findings("log_truncated"))


def test_events_the_router_has_not_reached_are_verified_but_owe_nothing(child1: Path) -> None:
    """Inputs after the router's committed position may lack notifications; those on the log are still compared."""
    last = rows(child1, POLICE)[-1][0]
    execute(child1, "UPDATE commits SET offset = ? WHERE topic = ?", last, POLICE)
    run = jigsaw("replay", "--log", child1)
    assert run.code == 0, run.out
    assert "NOTE not_yet_routed" in run.out
    offset, value, _, _ = rows(child1, "jigsaw.notifications")[-6]
    body = json.loads(value)
    body["reason"] += " (edited)"
    changed = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    execute(child1, "UPDATE records SET value = ? WHERE topic = 'jigsaw.notifications' AND offset = ?", changed, offset)
    assert jigsaw("replay", "--log", child1).findings("altered_notification")


def test_without_jigsaws_public_key_the_log_does_not_verify(child1: Path) -> None:
    """The tree heads cannot be trusted without the key that signed them."""
    Path(f"{child1}.keys/jigsaw-checkpoint.pub").unlink()
    run = jigsaw("replay", "--log", child1)
    assert run.code == 1 and run.findings("checkpoint_key_missing")


def _revoke(log: Path, org: str, at: str) -> None:
    for path in Path(f"{log}.keys").glob(f"{org}.*.json"):
        record = json.loads(path.read_text())
        record["revoked_at"] = at
        path.write_text(json.dumps(record))


def test_a_key_revoked_later_still_verifies_what_it_signed_before(child1: Path) -> None:
    """The registry is consulted as it stood when each event was accepted."""
    _revoke(child1, "POLICE-WYP", "2030-01-01T00:00:00Z")
    assert jigsaw("replay", "--log", child1).code == 0


def test_an_event_signed_after_its_key_was_revoked_is_named(child1: Path) -> None:
    """A key revoked before an event's issued_at does not verify it."""
    _revoke(child1, "POLICE-WYP", "2021-01-01T00:00:00Z")
    run = jigsaw("replay", "--log", child1)
    (first, _, _, _), (offset, _, headers, _) = rows(child1, POLICE)[:2]
    assert run.code == 1
    assert any(f"{POLICE}:0:{offset} event {event_id(headers)}" in line for line in run.findings("key_revoked"))
    assert not any(f"{POLICE}:0:{first} " in line for line in run.findings("key_revoked"))


def test_a_window_verifies_only_its_stretch(child1: Path) -> None:
    """With --from/--to only the events inside are checked; a bad byte outside is still caught by the tree heads."""
    offset, value, headers, _ = rows(child1, POLICE)[0]
    payload = decode_envelope(value).payload
    at = value.index(payload) + 2
    tampered = value[:at] + bytes([value[at] ^ 0x01]) + value[at + 1 :]
    execute(child1, "UPDATE records SET value = ? WHERE topic = ? AND offset = ?", tampered, POLICE, offset)
    run = jigsaw("replay", "--log", child1, "--from", "2021-05-01", "--to", "2021-12-31T00:00:00Z")
    assert "from 2021-05-01T00:00:00Z to 2021-12-31T00:00:00Z" in run.out
    assert not run.findings("signature_invalid")
    assert any(f"event {event_id(headers)}" in line for line in run.findings("record_altered"))
    clean = jigsaw("replay", "--log", child1, "--from", f"{POLICE}:0:{offset + 1}", "--to", "2022-01-01")
    assert "events checked" in clean.out


def test_a_bad_range_is_a_usage_error(kept: dict[str, Path]) -> None:
    """--from that is neither a time nor a position is refused with the forms it takes."""
    run = jigsaw("replay", "--log", kept["child-1"], "--from", "tuesday")
    assert run.code == 1 and "neither a time" in run.err


@pytest.mark.parametrize("fmt", ["json", "csv", "html"])
def test_the_chronology_tells_the_childs_story(kept: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    """--chronology writes the child's events, who was told, acknowledgements and decisions not to share."""
    out = tmp_path / f"chronology.{fmt}"
    run = jigsaw("replay", "--log", kept["child-1"], "--chronology", CHILD_1, "--format", fmt, "--out", out)
    assert run.code == 0, run.out + run.err
    text = out.read_text()
    assert "HV-BRADFORD-NORTH" in text and "police.domestic_abuse_incident" in text
    assert "midwifery.pregnancy_booked" in text  # the pregnancy the child was born from
    if fmt == "json":
        doc = json.loads(text)
        whats = {e["what"] for e in doc["entries"]}
        assert {"event", "notification", "acknowledgement"} <= whats
        assert doc["integrity"].startswith("Verified")
    if fmt == "html":
        assert text.startswith("<!DOCTYPE html>") and "<script" not in text
    assert "summary" not in text.lower() or fmt == "html"  # free-text summaries are never copied in


def test_the_chronology_on_standard_output_keeps_the_verdict_on_standard_error(kept: dict[str, Path]) -> None:
    """Piping the chronology gives only the chronology on stdout."""
    run = jigsaw("replay", "--log", kept["child-1"], "--chronology", CHILD_1)
    assert run.code == 0
    assert json.loads(run.out)["nhs_number"] == CHILD_1
    assert "OK: everything verifies and matches" in run.err


def test_one_process_and_every_core_give_the_same_verdict_line_for_line(child1: Path) -> None:
    """--jobs 1 and --jobs 2 print the same summary and findings, on a clean and on a tampered log."""
    assert jigsaw("replay", "--log", child1, "--jobs", "1").out == jigsaw("replay", "--log", child1, "--jobs", "2").out
    flip_last_byte(child1)
    one, two = jigsaw("replay", "--log", child1, "--jobs", "1"), jigsaw("replay", "--log", child1, "--jobs", "2")
    assert one.code == two.code == 1 and one.out == two.out


def test_a_memory_ceiling_gives_the_same_verdict_line_for_line(child1: Path) -> None:
    """--memory 1 spills the routing state after the first batch: the same summary and findings, clean or tampered."""
    assert jigsaw("replay", "--log", child1, "--memory", "1").out == jigsaw("replay", "--log", child1).out
    flip_last_byte(child1)
    spilled = jigsaw("replay", "--log", child1, "--memory", "1", "--jobs", "1")
    plain = jigsaw("replay", "--log", child1)
    assert spilled.code == plain.code == 1 and spilled.out == plain.out


def test_a_saved_snapshot_resumes_the_replay_at_its_offset(child1: Path, tmp_path: Path) -> None:
    """--save-snapshot writes the routing state as JSON; --resume starts from it and checks only what follows."""
    state = tmp_path / "state.json"
    assert jigsaw("replay", "--log", child1, "--save-snapshot", state).code == 0
    assert json.loads(state.read_text())["format"] == "jigsaw.router-snapshot.v2"
    run = jigsaw("replay", "--log", child1, "--resume", state)
    assert run.code == 0, run.out
    assert "resumed at input offset" in run.out
    state.write_text('{"format": "jigsaw.router-snapshot.v2", "shapes": [["os:system", []]], "state": [12, 0]}')
    refused = jigsaw("replay", "--log", child1, "--resume", state)
    assert refused.code != 0 and "routing state class" in refused.err
