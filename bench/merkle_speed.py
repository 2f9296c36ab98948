"""Merkle tree file speed and size (issue 13: proofs over a national log in bounded memory).

Measures, in one process:
- baseline: raw SHA-256 of 65-byte inputs (one interior node), hashes per second on one core;
- leaf hashing: ``record_leaf_hash`` of log records with a 1 KiB value, records per second;
- append: the leaf hashes of N such records into a fresh tree file in batches (fsync after each), leaves per second,
  the same as a fraction of the raw hash rate, the file's size, and the resident memory it added;
- reopen, a root of the full tree and of a random smaller size;
- inclusion proofs of random leaves against the full tree (and consistency proofs between random
  sizes): time to build, time to verify, hashes and bytes per proof, and the size of a proof file.

Usage: python bench/merkle_speed.py [--leaves N] [--batch B] [--dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.audit.merkle import verify_consistency, verify_inclusion
from broker.audit.merkle_leaf import record_leaf_hash
from broker.audit.merkle_proof import inclusion_proof, verify_proof
from broker.audit.sth import SignedTreeHead, sign_tree_head
from broker.audit.tree_store import TreeStore
from broker.log.base import Record


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def raw_hash_rate(count: int = 500_000) -> float:
    data = b"\x01" + bytes(64)
    sha = hashlib.sha256
    start = time.perf_counter()
    for _ in range(count):
        sha(data).digest()
    return count / (time.perf_counter() - start)


_VALUE = bytes(1024)  # one shared value: the records are built to be hashed, not kept


def _record(i: int) -> Record:
    headers = (("event_type", b"DomesticAbuseIncident"), ("event_id", f"{i:036d}".encode()), ("source", b"police"))
    return Record("jigsaw.input", 0, i, b"child-%d" % i, _VALUE, headers, 1_700_000_000_000 + i)


def leaf_rate(count: int = 100_000) -> float:
    records = [_record(i) for i in range(count)]  # built first: the rate is of hashing alone
    start = time.perf_counter()
    for r in records:
        record_leaf_hash(r)
    return count / (time.perf_counter() - start)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000, help="leaves per append (one fsync each)")
    parser.add_argument("--proofs", type=int, default=1000, help="random proofs to time")
    parser.add_argument("--dir", type=Path, default=None, help="where the tree file goes (default: a temp dir)")
    args = parser.parse_args()
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="merkle-bench-"))
    path = workdir / "bench.tree"
    path.unlink(missing_ok=True)
    rng = random.Random(13)

    base = raw_hash_rate()
    print(f"baseline: raw SHA-256 (65-byte input, one core): {base:,.0f} hashes/s")
    print(f"leaf hashing: record_leaf_hash, 1 KiB values: {leaf_rate():,.0f} records/s")

    rss_before = _rss_mib()
    appended = 0.0
    with TreeStore(path) as store:
        for start in range(0, args.leaves, args.batch):
            batch = [record_leaf_hash(_record(i)) for i in range(start, min(args.leaves, start + args.batch))]
            t0 = time.perf_counter()
            store.append_many(batch)
            appended += time.perf_counter() - t0
    rss_added = _rss_mib() - rss_before
    rate = args.leaves / appended
    size = path.stat().st_size
    print(
        f"append: {args.leaves:,} leaves in {appended:.2f} s = {rate:,.0f} leaves/s "
        f"({rate / base:.2f} of the raw hash rate; batches of {args.batch:,}, fsync each)"
    )
    print(f"file: {size:,} bytes = {size / 2**20:.1f} MiB, {size / args.leaves:.1f} bytes/leaf")
    print(f"memory: resident memory added by the append {rss_added:.1f} MiB, peak RSS {_peak_mib():.1f} MiB")

    t0 = time.perf_counter()
    store = TreeStore(path)
    print(f"reopen (with tail check): {_ms(time.perf_counter() - t0)}")
    t0 = time.perf_counter()
    root = store.root()
    print(f"root of {store.size:,} leaves: {_ms(time.perf_counter() - t0)}")
    smaller = rng.randrange(1, store.size)
    t0 = time.perf_counter()
    store.root(smaller)
    print(f"root of the first {smaller:,} leaves: {_ms(time.perf_counter() - t0)}")

    build, check, lengths = [], [], []
    for _ in range(args.proofs):
        index = rng.randrange(store.size)
        t0 = time.perf_counter()
        path_hashes = store.inclusion_proof(index, store.size)
        build.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        verify_inclusion(store.leaf(index), index, store.size, path_hashes, root)
        check.append(time.perf_counter() - t0)
        lengths.append(len(path_hashes))
    print(
        f"inclusion proof in {store.size:,} leaves: build {_ms(statistics.mean(build))} mean, "
        f"{_ms(max(build))} max; verify {_ms(statistics.mean(check))} mean; "
        f"{max(lengths)} hashes = {32 * max(lengths)} bytes"
    )
    key = Ed25519PrivateKey.generate()
    head = sign_tree_head(SignedTreeHead(store.size, root, 1_700_000_000_000), key)
    index = rng.randrange(store.size)
    t0 = time.perf_counter()
    doc = inclusion_proof(store.node, index, head, record=_record(index), public_key=key.public_key())
    built = time.perf_counter() - t0
    text = json.dumps(doc, indent=2)
    t0 = time.perf_counter()
    verify_proof(json.loads(text), key.public_key())
    print(
        f"proof file for leaf {index:,} with its record (1 KiB value): {len(text):,} bytes, "
        f"{len(text) - len(json.dumps(doc['record']))} without the record; "
        f"built in {_ms(built)}, parsed and verified (signature included) in {_ms(time.perf_counter() - t0)}"
    )

    build, check = [], []
    for _ in range(args.proofs):
        second = rng.randrange(2, store.size + 1)
        first = rng.randrange(1, second)
        t0 = time.perf_counter()
        path_hashes = store.consistency_proof(first, second)
        build.append(time.perf_counter() - t0)
        r1, r2 = store.root(first), store.root(second)
        t0 = time.perf_counter()
        verify_consistency(first, second, r1, r2, path_hashes)
        check.append(time.perf_counter() - t0)
    print(
        f"consistency proof between random sizes: build {_ms(statistics.mean(build))} mean, "
        f"verify {_ms(statistics.mean(check))} mean"
    )
    store.close()
    if args.dir is None:
        path.unlink()
        workdir.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
