"""Replay speed and memory: full verification of a large log on every core, next to the raw Ed25519 rate.

    .venv/bin/python bench/replay_speed.py [--events 100000,1000000] [--jobs N] [--dir DIR]

For each size, builds a log of synthetic families (every NHS number from the
999 range, with a valid Modulus 11 check digit; every name invented) by signing
each event as its agency would and submitting it through ``Intake`` (in batches of up to an hour) into an
embedded log, acknowledges some notifications, and runs the router over it with
the sealer publishing signed tree heads. Then, in a fresh process for each
size (so peak resident memory is that replay's alone), runs ``jigsaw replay``'s
work on it: stream the log, verify every signature on ``--jobs`` worker
processes, check every record against the signed tree heads and each head's
consistency with the one before, re-run the routing policy and compare every
notification and decision. Prints events/s, the single-core raw Ed25519 verify
rate measured in the same run and their ratio, peak RSS of each replay (main
process and largest worker) and the ratio of the largest to the smallest, and
for the largest log the size and time of one event's inclusion proof against
the newest published head, checked by the stand-alone verifier. It also
prints the CPU the whole machine spent during each replay, and the routing
re-run alone (decode and route, nothing else) with its peak memory.

``--floor`` also times the routing re-run alone while another process keeps the
other core verifying signatures: the two parts of a full replay no design can
skip or split, so a floor under any replay's time on this machine (with
``--memory``, under the ceiling too). ``--family-every`` sets the minutes
between families (default 7: a bigger log is a bigger city, about a year's
families in their story at once).

``--events 20000`` is a quick run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from replay_families import EVENTS_PER_FAMILY, FAMILY_EVERY, organisations, publisher
from replay_families import story as family_story

from broker import heap, topics
from broker.audit.checkpoint import PUBLIC_KEY_FILE, load_public_key, public_key_line
from broker.audit.collect import replay_log
from broker.audit.merkle_log import extend_tree, find_record, prove_record
from broker.audit.sealer import Sealer, last_seal
from broker.audit.spill import Spill
from broker.audit.tree_store import TreeStore
from broker.audit.workers import peak_rss_kb
from broker.client import build_envelope
from broker.envelope.keys import KeyRegistry, KeyStore, SigningKey, new_key
from broker.intake import Intake
from broker.log.embedded import EmbeddedLog
from broker.logging import configure_logging
from broker.routing.model import Ack, notification_id
from broker.routing.records import decode_ack, encode_ack
from broker.routing.service import RouterService
from broker.routing.state import RoutingState
from broker.schemas import default_catalogue
from broker.validation import event_of

ROOT = Path(__file__).resolve().parents[1]
BATCH, BATCH_SPAN = 500, dt.timedelta(hours=1)  # the log is built as agencies' batches of up to an hour


async def build_log(path: Path, events: int, every: float = FAMILY_EVERY) -> dict[str, Any]:
    """Write the synthetic log and its keys directory (``PATH.keys``), a family starting every ``every`` minutes;
    how long building took."""
    families = max(1, events // EVENTS_PER_FAMILY)
    orgs = organisations(families)
    signing: dict[str, SigningKey] = {}
    store = KeyStore(Path(f"{path}.keys"))
    records = []
    for org, kind in orgs.items():
        record, key = new_key(org, kind, valid_from=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        signing[org] = key
        records.append(record)
        store.save(record)
    registry = KeyRegistry(records)
    jigsaw_key = Ed25519PrivateKey.generate()
    (store.directory / PUBLIC_KEY_FILE).write_text(public_key_line(jigsaw_key) + "\n", encoding="utf-8")
    log = EmbeddedLog(path)
    await log.start()
    intake = Intake(log, lambda: registry, append_timeout=3600.0)  # a bench may be paused (SIGSTOP) to measure another
    await intake.start()
    catalogue = default_catalogue()
    hvs = [o for o, k in orgs.items() if k == "health_visiting"]
    story = family_story(families, orgs, every=every)
    story.sort(key=lambda s: s[0])
    started = time.perf_counter()
    accepted = 0
    acks: list[tuple[dt.datetime, str, str]] = []
    middle = ""
    batch: list[tuple[dt.datetime, str, dict[str, Any], Any]] = []

    async def submit(batch: list[tuple[dt.datetime, str, dict[str, Any], Any]]) -> None:
        # As an agency's batch: received together at the last one's time (each signed when it happened).
        nonlocal accepted, middle
        outcomes = await intake.submit_many([env for *_, env in batch], caller=None, now=batch[-1][0])
        for (at, event_type, data, env), outcome in zip(batch, outcomes, strict=True):
            if outcome.status != "accepted":
                raise SystemExit(f"{event_type} refused: {outcome.error and outcome.error.message}")
            accepted += 1
            if accepted == len(story) // 2:
                middle = env.event_id
            if event_type == "police.domestic_abuse_incident":  # the health visitor acknowledges the next morning
                hv = hvs[int(data["incident_ref"][1:]) % len(hvs)]
                acks.append((at + dt.timedelta(hours=10), env.event_id, hv))

    for at, event_type, data in story:
        source = publisher(event_type, orgs, data)
        env = build_envelope(
            event_type, data, source=source, key=signing[source], occurred_at=at, issued_at=at, catalogue=catalogue
        )
        if batch and (len(batch) >= BATCH or at - batch[0][0] > BATCH_SPAN):
            await submit(batch)
            batch = []
        batch.append((at, event_type, data, env))
    if batch:
        await submit(batch)
    intake_s = time.perf_counter() - started
    for at, event_id, hv in sorted(acks):
        key, value, headers = encode_ack(Ack(notification_id(event_id, hv), hv, f"{hv} duty worker", at))
        await log.append(topics.INPUT, value, key=key, headers=headers, timestamp_ms=int(at.timestamp() * 1000))
    end = story[-1][0] + dt.timedelta(days=10)
    started = time.perf_counter()
    sealer = Sealer(log, key=jigsaw_key)
    router = RouterService(log, sealer=sealer)
    await router.start()
    await router.run_until_idle(now=end)
    await sealer.seal(end)
    route_s = time.perf_counter() - started
    await log.close()
    return {
        "events": accepted,
        "acks": len(acks),
        "intake_s": intake_s,
        "route_s": route_s,
        "middle": middle,
        "family_every": every,
        "span_days": (story[-1][0] - story[0][0]).total_seconds() / 86400,
    }


def _signed(count: int) -> tuple[Ed25519PublicKey, list[tuple[bytes, bytes]]]:
    """A fresh key's public half and ``count`` distinct envelope-sized messages it signed, (signature, message)."""
    key = Ed25519PrivateKey.generate()
    return key.public_key(), [(key.sign(m), m) for m in (os.urandom(300) for _ in range(count))]


def raw_verify_rate(count: int = 20_000) -> float:
    """Ed25519 verifications per second on one core, of distinct envelope-sized messages (cryptography / OpenSSL)."""
    public, signed = _signed(count)
    started = time.perf_counter()
    for signature, message in signed:
        public.verify(signature, message)
    return count / (time.perf_counter() - started)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (every core, every process) since boot (/proc/stat)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


async def _replay(path: Path, jobs: int, memory: int = 0) -> dict[str, Any]:
    keys_dir = Path(f"{path}.keys")
    registry = KeyStore(keys_dir).load()
    key = load_public_key(keys_dir / PUBLIC_KEY_FILE)
    log = EmbeddedLog(path)
    peaks: list[int] = []
    report_workers = peaks
    spill = Spill(memory * 2**20, path.parent) if memory else None
    started, busy = time.perf_counter(), _machine_busy()
    await log.start()
    try:
        report = await replay_log(
            log, keys=registry, checkpoint_key=key, jobs=jobs, temp_dir=path.parent, peaks=peaks, spill=spill
        )
    finally:
        await log.close()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "ok": report.ok,
        "events": report.events,
        "heads": report.heads,
        "notifications": report.notifications,
        "decisions": report.decisions,
        "findings": [f.line() for f in report.errors[:10]],
        "rss_main_kb": peak_rss_kb(),
        "cpu_main_s": _cpu(),
        "cpu_machine_s": _machine_busy() - busy,
        "rss_worker_kb": report_workers[0] if report_workers else 0,
        "spilled_at_kb": (spill.spilled_at or 0) // 1024 if spill else 0,
        "loads": spill.loads if spill else 0,
        "evicted": spill.evicted if spill else 0,
        "writes": spill.writes if spill else 0,
        "file_mb": spill.file_bytes / 1e6 if spill else 0,
    }


async def _state_only(path: Path, memory: int = 0) -> dict[str, Any]:
    """Decode and route every input into a ``RoutingState``, nothing else: the routing re-run's own time and memory.

    With the replay's collector settings (``heap.BATCH_THRESHOLDS``, the state frozen after each batch), and with
    ``memory`` (MiB) the state spills past that ceiling as ``jigsaw replay --memory`` makes it.
    """
    log = EmbeddedLog(path)
    spill = Spill(memory * 2**20, path.parent) if memory else None
    started = time.perf_counter()
    await log.start()
    state, offset = RoutingState(), 0
    gc.set_threshold(*heap.BATCH_THRESHOLDS)
    try:
        while records := await log.read(topics.INPUT, offset, limit=2000):
            for r in records:
                if topics.is_ack(r):
                    state.apply_ack(decode_ack(r))
                elif r.value is not None:
                    state.apply_event(event_of(r.value), dt.datetime.fromtimestamp(r.timestamp_ms / 1000, dt.UTC))
            offset = records[-1].offset + 1
            if spill is not None:
                spill.check(state)
            gc.freeze()
    finally:
        await log.close()
        if spill is not None:
            spill.close()
    return {
        "rss_main_kb": peak_rss_kb(),
        "seconds": time.perf_counter() - started,
        "cpu_main_s": _cpu(),
        "spilled_at_kb": (spill.spilled_at or 0) // 1024 if spill else 0,
        "loads": spill.loads if spill else 0,
    }


def _verify_until_stopped() -> None:
    """Verify Ed25519 signatures on one core until SIGTERM; print how many (the other core of ``floor``)."""
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    public, signed = _signed(2000)
    done = 0
    print("ready", flush=True)
    while not stop:
        for signature, message in signed:
            public.verify(signature, message)
        done += len(signed)
    print(done, flush=True)


def floor(path: Path, memory: int = 0) -> dict[str, Any]:
    """The routing re-run alone (``_state_only``) while another process keeps the other core verifying signatures.

    The two parts of a full replay no design can avoid or split: the sequential routing re-run, and one Ed25519
    verification per event. Its time is a floor under any replay of the log on this machine.
    """
    busy = subprocess.Popen(
        [sys.executable, __file__, "--verify-until-stopped", str(path)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert busy.stdout is not None
        busy.stdout.readline()  # ready
        started = time.perf_counter()
        result = replay_in_child(path, 1, mode="--state-only", memory=memory)
        seconds = time.perf_counter() - started
    finally:
        busy.terminate()
    out, _ = busy.communicate(timeout=60)
    result["verified_beside"] = int(out.split()[-1]) / seconds if out.split() else 0
    return result


def replay_in_child(path: Path, jobs: int, *, mode: str = "--replay-only", memory: int = 0) -> dict[str, Any]:
    """Run the replay in a fresh interpreter, so its peak memory is its own."""
    done = subprocess.run(
        [sys.executable, __file__, mode, str(path), "--jobs", str(jobs), "--memory", str(memory)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise SystemExit(f"the replay failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def prove(path: Path, event_id: str) -> dict[str, Any]:
    """One event's inclusion proof against the newest published head, and the stand-alone verifier's verdict."""
    log = EmbeddedLog(path)
    await log.start()
    try:
        started = time.perf_counter()
        with TreeStore(path.parent / "input.tree") as store:
            await extend_tree(log, store, topics.INPUT)
            tree_s = time.perf_counter() - started
            started = time.perf_counter()
            record = await find_record(log, topics.INPUT, event_id)
            find_s = time.perf_counter() - started
            found = await last_seal(log)
            assert record is not None and found is not None
            started = time.perf_counter()
            doc = prove_record(store, record, found[0].head)
            prove_s = time.perf_counter() - started
    finally:
        await log.close()
    without_record = {k: v for k, v in doc.items() if k != "record"}
    return {
        "tree_size": doc["tree_head"]["tree_size"],
        "path": len(doc["inclusion_path"]),
        "bytes": len(json.dumps(doc)),
        "bytes_hash_only": len(json.dumps(without_record)),
        "tree_s": tree_s,
        "find_s": find_s,
        "prove_ms": prove_s * 1000,
        "doc": doc,
    }


def verify_standalone(path: Path, doc: dict[str, Any]) -> tuple[float, str]:
    """The stand-alone verifier (no Jigsaw imports, ``python -I``) on a proof file: seconds and verdict."""
    proof = path.parent / "proof.json"
    proof.write_text(json.dumps(doc), encoding="utf-8")
    key = Path(f"{path}.keys") / PUBLIC_KEY_FILE
    started = time.perf_counter()
    verdict = subprocess.run(
        [sys.executable, "-I", str(ROOT / "broker/audit/standalone_verify.py"), str(proof), "--key", str(key)],
        capture_output=True,
        text=True,
        check=False,
    )
    return time.perf_counter() - started, verdict.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="100000,1000000", help="comma-separated log sizes (default 100000,1000000)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="replay worker processes")
    shm = Path("/dev/shm")
    default_dir = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    parser.add_argument("--dir", default=default_dir, help="where the temporary logs go (default /dev/shm if usable)")
    parser.add_argument("--keep", action="store_true", help="keep the logs (in --dir) instead of deleting them")
    parser.add_argument(
        "--reuse", type=Path, help="a directory an earlier --keep run left: replay its logs again instead of building"
    )
    parser.add_argument(
        "--memory",
        type=int,
        default=0,
        metavar="MIB",
        help="also replay each log under this memory ceiling (jigsaw replay --memory): the state spills past it",
    )
    parser.add_argument(
        "--family-every",
        type=float,
        default=FAMILY_EVERY,
        metavar="MINUTES",
        help=f"a new family starts every MINUTES (default {FAMILY_EVERY:g}: a bigger log is a bigger city; slower: "
        "a longer log of about as many families at once)",
    )
    parser.add_argument("--replay-only", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--state-only", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--verify-until-stopped", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also time the routing re-run alone while the other core verifies signatures (with --memory: also "
        "under the ceiling): a floor under any replay's time on this machine",
    )
    args = parser.parse_args()
    configure_logging("json", "warning")
    if args.replay_only is not None:
        print(json.dumps(asyncio.run(_replay(args.replay_only, args.jobs, args.memory))))
        return
    if args.state_only is not None:
        print(json.dumps(asyncio.run(_state_only(args.state_only, args.memory))))
        return
    if args.verify_until_stopped is not None:
        _verify_until_stopped()
        return
    sizes = [int(n) for n in args.events.split(",")]
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores, --jobs {args.jobs}, "
        f"logs in {args.dir or tempfile.gettempdir()}",
        flush=True,
    )
    results = []
    with contextlib.ExitStack() as stack:
        tmp = (
            str(args.reuse)
            if args.reuse
            else tempfile.mkdtemp(prefix="jigsaw-replay-bench-", dir=args.dir)
            if args.keep
            else stack.enter_context(tempfile.TemporaryDirectory(prefix="jigsaw-replay-bench-", dir=args.dir))
        )
        print(f"logs in {tmp}", flush=True)
        for n in sizes:
            path = Path(tmp) / f"log-{n}" / "log.db"
            about = path.parent / "built.json"
            if args.reuse and about.is_file():
                built = json.loads(about.read_text(encoding="utf-8"))
            else:
                path.parent.mkdir()
                built = asyncio.run(build_log(path, n, args.family_every))
                about.write_text(json.dumps(built), encoding="utf-8")
            print(
                f"{built['events']:,} events, {built['acks']:,} acks: built through Intake in "
                f"{built['intake_s']:.0f} s, routed and sealed in {built['route_s']:.0f} s; a family every "
                f"{built.get('family_every', FAMILY_EVERY):g} min, {built.get('span_days', 0):,.0f} days; "
                f"{path.stat().st_size / 1e6:,.0f} MB",
                flush=True,
            )
            raw = raw_verify_rate()
            replayed = replay_in_child(path, args.jobs)
            raw = (raw + raw_verify_rate()) / 2  # before and after: the machine is shared
            if not replayed["ok"]:
                raise SystemExit("the synthetic log did not replay clean: " + "; ".join(replayed["findings"]))
            rate = built["events"] / replayed["seconds"]
            results.append((n, replayed))
            print(
                f"  replay, full verification: {replayed['seconds']:.1f} s, {rate:,.0f} events/s "
                f"({replayed['notifications']:,} notifications, {replayed['decisions']:,} decisions compared, "
                f"{replayed['heads']:,} tree heads); raw Ed25519 verify on one core {raw:,.0f}/s; "
                f"ratio {rate / raw:.2f} (goal 0.45)",
                flush=True,
            )
            if args.memory:
                spilled = replay_in_child(path, args.jobs, memory=args.memory)
                if not spilled["ok"]:
                    raise SystemExit("the spilled replay was not clean: " + "; ".join(spilled["findings"]))
                replayed["spilled"] = spilled
                print(
                    f"  the same replay with --memory {args.memory} MiB: {spilled['seconds']:.1f} s, "
                    f"{built['events'] / spilled['seconds']:,.0f} events/s, ratio "
                    f"{built['events'] / spilled['seconds'] / raw:.2f}; peak RSS main process "
                    f"{spilled['rss_main_kb'] / 1024:,.0f} MiB (state spilled at "
                    f"{spilled['spilled_at_kb'] / 1024:,.0f} MiB; none: 0); {spilled['loads']:,} rows read back "
                    f"from the file, {spilled['evicted']:,} keys moved out of memory, {spilled['writes']:,} rows "
                    f"written; file {spilled['file_mb']:,.0f} MB",
                    flush=True,
                )
            print(
                f"  CPU during the replay: main process {replayed['cpu_main_s']:.1f} s, the whole machine "
                f"{replayed['cpu_machine_s']:.1f} s of the {os.cpu_count() or 1} x {replayed['seconds']:.1f} s its "
                f"cores had ({replayed['cpu_machine_s'] / ((os.cpu_count() or 1) * replayed['seconds']):.0%} busy)",
                flush=True,
            )
            routed = replay_in_child(path, 1, mode="--state-only")
            alone = replayed["rss_state_kb"] = routed["rss_main_kb"]
            print(
                f"  the routing re-run alone (decode and route, no verification, one process): "
                f"{built['events'] / routed['seconds']:,.0f} events/s: the ceiling of a sequential re-run; CPU of "
                f"the main process: replay {replayed['cpu_main_s']:.1f} s, routing alone {routed['cpu_main_s']:.1f} s "
                "(on a shared machine wall time lags CPU time)",
                flush=True,
            )
            print(
                f"  peak RSS: main process {replayed['rss_main_kb'] / 1024:,.0f} MiB, "
                f"largest worker {replayed['rss_worker_kb'] / 1024:,.0f} MiB; the routing state alone (decode and "
                f"route every input, nothing else) {alone / 1024:,.0f} MiB, so the replay's own memory is "
                f"{(replayed['rss_main_kb'] - alone) / 1024:,.0f} MiB",
                flush=True,
            )
            if args.floor:
                for ceiling in (0, args.memory) if args.memory else (0,):
                    low = floor(path, ceiling)
                    under = f" under --memory {ceiling} MiB" if ceiling else ""
                    print(
                        f"  floor{under}: the routing re-run alone{under} while the other core verifies signatures: "
                        f"{low['seconds']:.1f} s, {built['events'] / low['seconds']:,.0f} events/s, ratio "
                        f"{built['events'] / low['seconds'] / raw:.2f}; the other core verified "
                        f"{low['verified_beside']:,.0f}/s meanwhile; peak RSS {low['rss_main_kb'] / 1024:,.0f} MiB"
                        + (
                            f" (state spilled at {low['spilled_at_kb'] / 1024:,.0f} MiB, {low['loads']:,} rows read "
                            "back)"
                            if ceiling
                            else ""
                        ),
                        flush=True,
                    )
            if n == max(sizes):
                proof = asyncio.run(prove(path, built["middle"]))
                proof["verify_s"], proof["verdict"] = verify_standalone(path, proof["doc"])
                print(
                    f"  inclusion proof of one event in {proof['tree_size']:,} records: {proof['path']} hashes, "
                    f"{proof['bytes']:,} bytes with the record ({proof['bytes_hash_only']:,} without); "
                    f"built in {proof['prove_ms']:.2f} ms from the tree file (tree built from the log in "
                    f"{proof['tree_s']:.1f} s, event found by scan in {proof['find_s']:.1f} s); stand-alone "
                    f"verifier {proof['verify_s']:.2f} s: {proof['verdict']}",
                    flush=True,
                )
    if len(results) > 1:
        small, large = results[0], results[-1]
        ratio = large[1]["rss_main_kb"] / small[1]["rss_main_kb"]
        own = (large[1]["rss_main_kb"] - large[1]["rss_state_kb"]) / max(
            1, small[1]["rss_main_kb"] - small[1]["rss_state_kb"]
        )
        state = large[1]["rss_state_kb"] / small[1]["rss_state_kb"]
        print(
            f"peak RSS {large[0]:,} vs {small[0]:,} events: {ratio:.2f}x (goal <= 1.5x); the routing state alone "
            f"{state:.2f}x; the replay's own memory beyond it {own:.2f}x"
        )
        if args.memory:
            spilled = large[1]["spilled"]["rss_main_kb"] / small[1]["spilled"]["rss_main_kb"]
            print(f"peak RSS with --memory {args.memory} MiB: {spilled:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()
