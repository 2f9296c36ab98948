"""``jigsaw simulate``: a scenario file through the real pipeline on a virtual clock.

Each step is encoded to Avro, put in an envelope signed with a key made for
its source, checked by the same intake code as a live submission, written to
the embedded log, and routed by the real router service. Output: one JSON
object per line for each notification, refusal and decision not to share, in
the order they happen (``scenarios.md``).

A scenario file that is itself wrong exits 2 with one line naming the step;
an event the pipeline refuses is a ``rejected`` line, not a broken scenario.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker import topics
from broker.audit.checkpoint import PUBLIC_KEY_FILE, public_key_line
from broker.audit.sealer import Sealer
from broker.client import build_envelope, default_lawful_basis
from broker.envelope.keys import KeyRecord, KeyRegistry, KeyStore, SigningKey, new_key
from broker.envelope.model import Envelope
from broker.errors import Refusal, ScenarioError
from broker.intake import Intake
from broker.log.embedded import EmbeddedLog
from broker.model import PERSON_FIELDS, PERSON_LIST_FIELDS
from broker.routing.model import Ack, Decision, Notification, iso, notification_id
from broker.routing.records import encode_ack
from broker.routing.service import RouterService

__all__ = ["Scenario", "load_scenario", "resolve_data", "run_scenario"]

_SIMULATOR_PARTNERSHIP = "SIMULATOR-PARTNERSHIP"
_KEYS_VALID_FROM = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    organisations: tuple[Mapping[str, Any], ...]
    people: Mapping[str, Mapping[str, Any]]
    steps: tuple[Mapping[str, Any], ...]
    run_until: dt.datetime | None


def _time(value: Any, where: str) -> dt.datetime:
    if not isinstance(value, str):
        raise ScenarioError(f"{where}: 'at' must be an ISO 8601 time, not {value!r}")
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ScenarioError(f"{where}: {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ScenarioError(f"{where}: {value!r} has no time zone; write it in UTC with a Z")
    return moment.astimezone(dt.UTC)


def load_scenario(path: Path) -> Scenario:
    """Read and check a scenario file.

    Raises:
        ScenarioError: the file is not valid JSON, names an unknown person, a source, signer or
            acknowledging organisation not in ``organisations``, refers to an unknown step, or has
            steps out of time order (the message names the step).
    """
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the scenario: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: a scenario is a JSON object")
    orgs = raw.get("organisations") or []
    people = raw.get("people") or {}
    steps = raw.get("steps")
    if not isinstance(orgs, list) or not all(isinstance(o, dict) and o.get("org_id") for o in orgs):
        raise ScenarioError("organisations: each must be an object with an org_id")
    for o in orgs:
        if o.get("kind") not in topics.ORG_KINDS:
            raise ScenarioError(f"organisation {o['org_id']}: unknown kind {o.get('kind')!r}")
    if not isinstance(people, dict) or not all(isinstance(p, dict) for p in people.values()):
        raise ScenarioError("people: must map each handle to a PersonRef object")
    if not isinstance(steps, list) or not steps:
        raise ScenarioError("steps: a scenario needs a list of steps")
    known_orgs = {o["org_id"] for o in orgs}
    refs: set[str] = set()
    last: dt.datetime | None = None
    for n, step in enumerate(steps, 1):
        where = f"step {n}" + (f" ({step.get('ref')})" if isinstance(step, dict) and step.get("ref") else "")
        if not isinstance(step, dict):
            raise ScenarioError(f"{where}: a step is a JSON object")
        at = _time(step.get("at"), where)
        if last is not None and at < last:
            raise ScenarioError(f"{where}: at {step['at']} is before the previous step; steps must be in time order")
        last = at
        if "ack" in step:
            if step["ack"] not in refs:
                raise ScenarioError(f"{where}: acknowledges {step['ack']!r}, which is not an earlier event step")
            if step.get("by") not in known_orgs:
                raise ScenarioError(f"{where}: 'by' names unknown organisation {step.get('by')!r}")
            continue
        ref = step.get("ref")
        if not isinstance(ref, str) or not ref or ref in refs:
            raise ScenarioError(f"{where}: each event step needs a unique 'ref'")
        for field in ("source", "signed_by"):
            if field in step and step[field] not in known_orgs:
                raise ScenarioError(f"{where}: {field} names unknown organisation {step[field]!r}")
        if "source" not in step or not isinstance(step.get("type"), str) or not isinstance(step.get("data"), dict):
            raise ScenarioError(f"{where}: an event step needs 'source', 'type' and a 'data' object")
        _check_refs(step["data"], people, refs, where)
        refs.add(ref)
    until = _time(raw["run_until"], "run_until") if raw.get("run_until") else None
    return Scenario(str(raw.get("name", Path(path).stem)), tuple(orgs), people, tuple(steps), until)


def _check_refs(data: Mapping[str, Any], people: Mapping[str, Any], refs: set[str], where: str) -> None:
    # An OrgId in the data that is not in the directory is not a broken scenario: the intake
    # refuses the event (unknown_organisation), as it would a live submission.
    def person(value: Any, field: str) -> None:
        if isinstance(value, str) and value not in people:
            raise ScenarioError(f"{where}: {field} names unknown person {value!r}")

    for field, value in data.items():
        if field in PERSON_FIELDS:
            person(value, field)
        elif field in PERSON_LIST_FIELDS and isinstance(value, list):
            for item in value:
                person(item, field)
        elif field == "members" and isinstance(value, list):
            for m in value:
                if isinstance(m, dict):
                    person(m.get("person"), "members.person")
        elif field == "original_event_id" and value not in refs:
            raise ScenarioError(f"{where}: original_event_id names {value!r}, which is not an earlier step")


def resolve_data(
    data: Mapping[str, Any], people: Mapping[str, Mapping[str, Any]], ids: Mapping[str, str]
) -> dict[str, Any]:
    """Scenario data to catalogue data: person handles to PersonRefs, step refs to event ids."""

    def person(value: Any) -> Any:
        return dict(people[value]) if isinstance(value, str) else value

    out: dict[str, Any] = {}
    for field, value in data.items():
        if field in PERSON_FIELDS:
            value = person(value)
        elif field in PERSON_LIST_FIELDS and isinstance(value, list):
            value = [person(v) for v in value]
        elif field == "members" and isinstance(value, list):
            value = [{**m, "person": person(m.get("person"))} if isinstance(m, dict) else m for m in value]
        elif field == "original_event_id":
            value = ids[value]
        out[field] = value
    return out


class _Printer:
    """Turns pipeline outputs into the scenario's JSON lines, naming events by ref and people by handle."""

    def __init__(self, scenario: Scenario, out: TextIO) -> None:
        self.out = out
        self.refs: dict[str, str] = {}
        self.names: dict[str, str] = {}
        for handle, ref in scenario.people.items():
            for field in ("nhs_number", "local_id"):
                if ref.get(field):
                    self.names[str(ref[field]).replace(" ", "")] = handle

    def text(self, text: str) -> str:
        """Event ids as step refs, people as handles."""
        for ident, ref in self.refs.items():
            text = text.replace(ident, ref)
        for label, handle in self.names.items():
            text = text.replace(f"({label})", f"({handle})")
        return text

    def line(self, obj: Mapping[str, Any]) -> None:
        self.out.write(json.dumps(obj) + "\n")

    def notification(self, n: Notification) -> None:
        line: dict[str, Any] = {
            "kind": n.kind,
            "event_ref": self.refs.get(n.event_id, n.event_id),
            "event_type": n.event_type,
            "recipient": n.recipient,
            "at": iso(n.at),
            "priority": n.priority,
            "flags": list(n.flags),
            "view": n.view,
            "reason": self.text(n.reason),
            "also_notified": list(n.also_notified),
            "ack_by": iso(n.ack_by),
        }
        if n.cause:
            line["cause"] = n.cause
        self.line(line)

    def decision(self, d: Decision) -> None:
        for w in d.withheld:
            line: dict[str, Any] = {
                "kind": "withheld",
                "event_ref": self.refs.get(d.event_id, d.event_id),
                "event_type": d.event_type,
                "rule": w.rule,
                "reason": self.text(w.reason),
            }
            if w.org:
                line["recipient"] = w.org
            self.line(line)

    def outputs(self, items: list[Notification | Decision]) -> None:
        for item in items:
            if isinstance(item, Notification):
                self.notification(item)
            else:
                self.decision(item)


def _corrupt(env: Envelope) -> Envelope:
    """Flip one bit of the last payload byte after signing: the signed bytes no longer match."""
    payload = bytearray(env.payload)
    payload[-1] ^= 0x01
    return dataclasses.replace(env, payload=bytes(payload))


async def run_scenario(scenario: Scenario, out: TextIO, *, keep_log: Path | None = None) -> int:
    """Run the scenario; returns the exit code (0)."""
    with tempfile.TemporaryDirectory(prefix="jigsaw-simulate-") as tmp:
        log_path = keep_log or Path(tmp) / "log.db"
        log = EmbeddedLog(log_path)
        await log.start()
        try:
            return await _run(scenario, out, log, keep_log)
        finally:
            await log.close()


async def _run(scenario: Scenario, out: TextIO, log: EmbeddedLog, keep_log: Path | None) -> int:
    orgs = {o["org_id"]: o for o in scenario.organisations}
    partnership = next((o for o, e in orgs.items() if e["kind"] == "partnership"), _SIMULATOR_PARTNERSHIP)
    signing: dict[str, SigningKey] = {}
    records: list[KeyRecord] = []
    for org_id in sorted({*orgs, partnership}):
        kind = orgs[org_id]["kind"] if org_id in orgs else "partnership"
        record, key = new_key(org_id, kind, valid_from=_KEYS_VALID_FROM)
        signing[org_id] = key
        records.append(record)
    registry = KeyRegistry(records)
    checkpoint_key = Ed25519PrivateKey.generate()  # Jigsaw's own key for this run: it signs the chain checkpoints
    if keep_log is not None:  # an auditor replaying the kept log needs the public keys
        store = KeyStore(Path(f"{keep_log}.keys"))
        for record in records:
            store.save(record)
        (store.directory / PUBLIC_KEY_FILE).write_text(public_key_line(checkpoint_key) + "\n", encoding="utf-8")
    intake = Intake(log, lambda: registry)
    await intake.start()
    sealer = Sealer(log, key=checkpoint_key)
    router = RouterService(log, sealer=sealer)
    await router.start()
    printer = _Printer(scenario, out)
    first = _time(scenario.steps[0]["at"], "step 1") - dt.timedelta(minutes=1)
    for entry in scenario.organisations:
        data = {k: entry.get(k) for k in ("org_id", "kind", "name", "area", "endpoint", "safeguarding_lead")}
        data["endpoint_internal"] = bool(entry.get("endpoint_internal"))
        env = build_envelope(
            "directory.organisation",
            data,
            source=partnership,
            key=signing[partnership],
            occurred_at=first,
            issued_at=first,
        )
        outcome = await intake.submit(env, caller=None, now=first)
        if outcome.error is not None:
            raise ScenarioError(f"organisation {entry['org_id']}: {outcome.error.code}: {outcome.error.message}")
    ids: dict[str, str] = {}
    at = first
    for step in scenario.steps:
        at = _time(step["at"], "step")
        # Each step is appended and routed before the next: the input topic's offset order is the step
        # order, and a replay applies exactly that order.
        printer.outputs(await router.run_until_idle(now=at - dt.timedelta(milliseconds=1)))
        if "ack" in step:
            nid = notification_id(ids[step["ack"]], step["by"]) if step["ack"] in ids else str(uuid.uuid4())
            ack_key, value, headers = encode_ack(Ack(nid, step["by"], f"{step['by']} (scenario)", at))
            await log.append(topics.INPUT, value, key=ack_key, headers=headers, timestamp_ms=int(at.timestamp() * 1000))
        else:
            await _submit(step, at, scenario, intake, signing, ids, printer)
        printer.outputs(await router.run_until_idle())
    if scenario.run_until is not None:
        printer.outputs(await router.run_until_idle(now=scenario.run_until))
    await sealer.seal(max(at, scenario.run_until or at))
    return 0


async def _submit(
    step: Mapping[str, Any],
    at: dt.datetime,
    scenario: Scenario,
    intake: Intake,
    signing: Mapping[str, SigningKey],
    ids: dict[str, str],
    printer: _Printer,
) -> None:
    ref = str(step["ref"])
    source = str(step["source"])
    event_id = str(uuid.uuid4())
    ids[ref] = event_id
    printer.refs[event_id] = ref
    kind = next(o["kind"] for o in scenario.organisations if o["org_id"] == source)
    try:
        env = build_envelope(
            str(step["type"]),
            resolve_data(step["data"], scenario.people, ids),
            source=source,
            key=signing[str(step.get("signed_by", source))],
            occurred_at=at,
            issued_at=at,
            event_id=event_id,
            lawful_basis=step.get("lawful_basis") or default_lawful_basis(kind),
            consent=step.get("consent") or "not_sought",
        )
    except Refusal as exc:  # the data does not fit the schema: refused as a live submission would be
        exc.evidence.setdefault("event_id", event_id)
        exc.evidence.setdefault("source", source)
        await intake.refuse(exc, caller=source, body=b"", now=at)
        printer.line({"kind": "rejected", "event_ref": ref, "error": exc.code, "message": printer.text(exc.message)})
        return
    if step.get("corrupt"):
        env = _corrupt(env)
    outcome = await intake.submit(env, caller=None, now=at)
    if outcome.error is not None:
        printer.line(
            {
                "kind": "rejected",
                "event_ref": ref,
                "error": outcome.error.code,
                "message": printer.text(outcome.error.message),
            }
        )
