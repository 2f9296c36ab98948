"""Replay speed: events per second with full verification, next to the raw Ed25519 verify rate.

    .venv/bin/python bench/replay_speed.py [--events 100000] [--dir DIR]

Builds a log of synthetic families (every NHS number from the 999 range, with a
valid Modulus 11 check digit; every name invented) by signing each event as its
agency would and submitting it through ``Intake`` into an embedded log in a
temporary directory (hash chain and signed checkpoints included), acknowledges
some notifications, runs the router over it, then times:

- ``jigsaw replay``'s work on that log: read it, verify every signature against
  the key registry as it stood, check the hash chain and checkpoints, re-run the
  routing policy and compare every notification and decision;
- the same verification without the routing re-run (signatures and chain only);
- raw Ed25519 verification of envelope-sized messages with ``cryptography``.

All in one process, one after the other, so the figures are comparable.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker import topics
from broker.audit.collect import read_snapshot
from broker.audit.integrity import check_integrity
from broker.audit.replay import replay
from broker.audit.verify import check_event
from broker.client import build_envelope
from broker.envelope.keys import KeyRegistry, SigningKey, new_key
from broker.intake import Intake
from broker.log.embedded import EmbeddedLog
from broker.logging import configure_logging
from broker.nhs import synthetic_nhs_numbers
from broker.routing.model import Ack, notification_id
from broker.routing.records import encode_ack
from broker.routing.service import RouterService
from broker.schemas import default_catalogue

START = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
EVENTS_PER_FAMILY = 9
AREA = "benchton"


def _orgs(families: int) -> dict[str, str]:
    practices = max(4, families // 200)
    orgs = {f"GP-Z{i:05d}": "gp_practice" for i in range(practices)}
    orgs |= {f"HV-{i:03d}": "health_visiting" for i in range(max(2, practices // 8))}
    orgs |= {
        "CSC-BENCH": "childrens_social_care",
        "POLICE-BENCH": "police",
        "MIDWIFERY-BENCH": "midwifery",
        "MARAC-BENCH": "marac",
        "PARTNERSHIP-BENCH": "partnership",
    }
    return orgs


def _family(
    i: int, numbers: Iterator[str], gps: list[str], hvs: list[str]
) -> list[tuple[dt.datetime, str, dict[str, Any]]]:
    """One family's story: (time, event type, data), about nine events over a year."""
    base = START + dt.timedelta(minutes=7 * i)
    mother = {"nhs_number": next(numbers), "name": f"Mother {i}", "date_of_birth": "1993-04-02"}
    father = {"nhs_number": next(numbers), "name": f"Father {i}", "date_of_birth": "1990-09-17"}
    born = (base + dt.timedelta(days=200)).date()
    child = {"nhs_number": next(numbers), "name": f"Child {i}", "date_of_birth": born.isoformat()}
    gp, hv, ref = gps[i % len(gps)], hvs[i % len(hvs)], f"B{i:07d}"

    def at(days: float) -> dt.datetime:
        return base + dt.timedelta(days=days)

    return [
        (
            at(0),
            "gp.registration",
            {"person": mother, "practice": gp, "status": "registered", "effective_date": "2015-01-01"},
        ),
        (
            at(0.01),
            "gp.registration",
            {
                "person": father,
                "practice": gps[(i + 1) % len(gps)],
                "status": "registered",
                "effective_date": "2016-01-01",
            },
        ),
        (
            at(20),
            "gp.safeguarding_information",
            {"person": father, "category": "substance_misuse", "summary": "Synthetic."},
        ),
        (
            at(30),
            "midwifery.pregnancy_booked",
            {
                "booking_ref": ref,
                "mother": mother,
                "expected_father": father,
                "expected_date": born.isoformat(),
                "midwifery_service": "MIDWIFERY-BENCH",
            },
        ),
        (
            at(200),
            "midwifery.birth_notified",
            {
                "booking_ref": ref,
                "child": child,
                "mother": mother,
                "father": father,
                "born_on": born.isoformat(),
                "health_visiting": hv,
            },
        ),
        (
            at(207),
            "gp.registration",
            {"person": child, "practice": gp, "status": "registered", "effective_date": born.isoformat()},
        ),
        (
            at(230),
            "csc.household_composition",
            {
                "child": child,
                "members": [
                    {"person": mother, "relationship": "mother", "lives_with_child": True},
                    {"person": father, "relationship": "father", "lives_with_child": True},
                ],
                "school": None,
                "health_visiting": hv,
            },
        ),
        (
            at(260),
            "police.domestic_abuse_incident",
            {
                "incident_ref": f"I{i:07d}",
                "victim": mother,
                "perpetrator": father,
                "children_present": [child],
                "children_in_household": [child],
                "risk_level": "medium",
                "marac_referral": False,
                "summary": "Synthetic incident.",
            },
        ),
        (
            at(280),
            "csc.child_in_need_plan",
            {
                "plan_ref": f"P{i:07d}",
                "child": child,
                "status": "started",
                "summary": "Synthetic plan.",
                "next_review": None,
            },
        ),
    ]


def _publisher(event_type: str, orgs: dict[str, str], data: dict[str, Any]) -> str:
    prefix = event_type.split(".", 1)[0]
    if prefix == "gp":
        return str(data.get("practice") or next(o for o, k in orgs.items() if k == "gp_practice"))
    return {
        "midwifery": "MIDWIFERY-BENCH",
        "csc": "CSC-BENCH",
        "police": "POLICE-BENCH",
        "directory": "PARTNERSHIP-BENCH",
    }[prefix]


async def build_log(path: Path, events: int) -> dict[str, Any]:
    """Write the synthetic log; returns what the replay needs and how long building took."""
    families = max(1, events // EVENTS_PER_FAMILY)
    orgs = _orgs(families)
    signing: dict[str, SigningKey] = {}
    records = []
    for org, kind in orgs.items():
        record, key = new_key(org, kind, valid_from=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        signing[org] = key
        records.append(record)
    registry = KeyRegistry(records)
    jigsaw_key = Ed25519PrivateKey.generate()
    log = EmbeddedLog(path)
    await log.start()
    intake = Intake(log, lambda: registry, checkpoint_key=jigsaw_key)
    await intake.start()
    catalogue = default_catalogue()
    gps = [o for o, k in orgs.items() if k == "gp_practice"]
    hvs = [o for o, k in orgs.items() if k == "health_visiting"]
    first = START - dt.timedelta(days=1)
    story: list[tuple[dt.datetime, str, dict[str, Any]]] = [
        (
            first,
            "directory.organisation",
            {"org_id": o, "kind": k, "name": o, "area": AREA, "endpoint": None, "safeguarding_lead": "Lead"},
        )
        for o, k in orgs.items()
    ]
    numbers = synthetic_nhs_numbers()
    for i in range(families):
        story += _family(i, numbers, gps, hvs)
    story.sort(key=lambda s: s[0])
    started = time.perf_counter()
    accepted = 0
    acks: list[tuple[dt.datetime, str, str]] = []
    for at, event_type, data in story:
        source = _publisher(event_type, orgs, data)
        env = build_envelope(
            event_type, data, source=source, key=signing[source], occurred_at=at, issued_at=at, catalogue=catalogue
        )
        outcome = await intake.submit(env, caller=None, now=at)
        if outcome.status != "accepted":
            raise SystemExit(f"{event_type} refused: {outcome.error and outcome.error.message}")
        accepted += 1
        if event_type == "police.domestic_abuse_incident":  # the health visitor acknowledges the next morning
            hv = hvs[int(data["incident_ref"][1:]) % len(hvs)]
            acks.append((at + dt.timedelta(hours=10), env.event_id, hv))
    intake_s = time.perf_counter() - started
    for at, event_id, hv in sorted(acks):
        key, value, headers = encode_ack(Ack(notification_id(event_id, hv), hv, f"{hv} duty worker", at))
        await log.append(topics.INPUT, value, key=key, headers=headers, timestamp_ms=int(at.timestamp() * 1000))
    end = story[-1][0] + dt.timedelta(days=10)
    started = time.perf_counter()
    router = RouterService(log)
    await router.start()
    await router.run_until_idle(now=end)
    route_s = time.perf_counter() - started
    await intake.seal(end)
    await log.close()
    return {
        "registry": registry,
        "key": jigsaw_key.public_key(),
        "events": accepted,
        "acks": len(acks),
        "intake_s": intake_s,
        "route_s": route_s,
    }


def raw_verify_rate(count: int = 20_000) -> float:
    """Ed25519 verifications per second of distinct envelope-sized messages (cryptography / OpenSSL)."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    messages = [os.urandom(300) for _ in range(count)]
    signed = [(key.sign(m), m) for m in messages]
    started = time.perf_counter()
    for signature, message in signed:
        public.verify(signature, message)
    return count / (time.perf_counter() - started)


async def measure(path: Path, built: dict[str, Any]) -> dict[str, float]:
    log = EmbeddedLog(path)
    await log.start()
    started = time.perf_counter()
    snapshot = await read_snapshot(log)
    read_s = time.perf_counter() - started
    await log.close()
    started = time.perf_counter()
    report = replay(snapshot, keys=built["registry"], checkpoint_key=built["key"])
    replay_s = time.perf_counter() - started
    if not report.ok:
        for line in report.summary() + [f.line() for f in report.findings[:20]]:
            print(line)
        raise SystemExit("the synthetic log did not replay clean")
    catalogue = default_catalogue()
    started = time.perf_counter()
    order = {(r.topic, r.partition, r.offset): i for i, r in enumerate(snapshot.inputs)}
    check_integrity(snapshot, built["key"], every=100, order=order)
    publishers: dict[str, str] = {}
    for i, record in enumerate(snapshot.inputs):
        if topics.is_ack(record) or record.value is None:
            continue
        event, found = check_event(record, i, keys=built["registry"], publisher_of=publishers.get, catalogue=catalogue)
        assert event is not None and not found
        publishers[event.event_id] = event.source
    verify_s = time.perf_counter() - started
    return {
        "read_s": read_s,
        "replay_s": replay_s,
        "verify_s": verify_s,
        "notifications": report.notifications,
        "decisions": report.decisions,
        "checkpoints": report.checkpoints,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="how many agency events (default 100000)")
    shm = Path("/dev/shm")
    default_dir = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    parser.add_argument("--dir", default=default_dir, help="where the temporary log goes (default /dev/shm if usable)")
    args = parser.parse_args()
    configure_logging("json", "warning")
    with tempfile.TemporaryDirectory(prefix="jigsaw-replay-bench-", dir=args.dir) as tmp:
        path = Path(tmp) / "log.db"
        built = asyncio.run(build_log(path, args.events))
        size = path.stat().st_size
        figures = asyncio.run(measure(path, built))
    raw = raw_verify_rate()
    events = built["events"]
    full_s = figures["read_s"] + figures["replay_s"]
    print(f"python {platform.python_version()} on {platform.machine()}, log in {args.dir or tempfile.gettempdir()}")
    print(
        f"log: {events:,} events, {built['acks']:,} acks, {figures['notifications']:,} notifications and "
        f"{figures['decisions']:,} decisions compared, {figures['checkpoints']:,} signed checkpoints, "
        f"{size / 1e6:.0f} MB"
    )
    print(
        f"built through Intake in {built['intake_s']:.1f} s ({events / built['intake_s']:,.0f} events/s); "
        f"routed in {built['route_s']:.1f} s ({events / built['route_s']:,.0f} events/s)"
    )
    print(
        f"replay, full verification: read {figures['read_s']:.1f} s + verify and re-route {figures['replay_s']:.1f} s"
        f" = {full_s:.1f} s: {events / full_s:,.0f} events/s"
    )
    print(f"signatures and chain only (no routing re-run): {events / figures['verify_s']:,.0f} events/s")
    print(f"raw Ed25519 verify (cryptography, 300-byte messages): {raw:,.0f} verifies/s")


if __name__ == "__main__":
    main()
