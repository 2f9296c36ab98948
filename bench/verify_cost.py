"""CPU cost of the submission check per event, next to the raw Ed25519 verify it cannot avoid.

    .venv/bin/python bench/verify_cost.py [--events 3000] [--rounds 5] [--profile]

Builds ``--events`` signed envelopes of the synthetic families of ``bench/replay_families.py``
(directory entries, GP registrations, safeguarding notes, pregnancies, births, households,
domestic abuse incidents, plans; every NHS number from the 999 range, every name invented),
each signed by its publisher's key as ``bench/replay_speed.py`` does, plus a few challenges and
retractions, and encodes them to their canonical Avro bytes. Then measures, in CPU time of this
process (``time.process_time``), best of ``--rounds``:

- raw: ``Ed25519PublicKey.verify`` of the same signatures over the same (precomputed) signed bytes;
- verify: ``validation.verify`` of each envelope's bytes, with the directory (as the intake calls it);
- event_of: decoding each envelope's bytes into its ``Event`` (what readers of the log do).

Prints microseconds per event for each, verify's ratio to raw and what verify costs beyond the
signature. ``--profile`` also prints the top of a cProfile of one ``verify`` round. Prints
figures only; it never asserts a time.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import itertools
import pstats
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from replay_families import EVENTS_PER_FAMILY, organisations, publisher
from replay_families import story as family_story

from broker.client import build_envelope
from broker.envelope.canonical import pre_auth_encoding
from broker.envelope.keys import KeyRegistry, SigningKey, new_key
from broker.envelope.model import Envelope, encode_envelope
from broker.nhs import synthetic_nhs_numbers
from broker.schemas import default_catalogue
from broker.validation import event_of, verify


def build(events: int) -> tuple[list[Envelope], KeyRegistry, dict[str, str]]:
    """About ``events`` signed envelopes of several types, their key registry and the directory."""
    families = max(1, events // EVENTS_PER_FAMILY)
    orgs = organisations(families)
    signing: dict[str, SigningKey] = {}
    records = []
    for org, kind in orgs.items():
        record, key = new_key(org, kind, valid_from=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        signing[org] = key
        records.append(record)
    story = family_story(families, orgs)
    catalogue = default_catalogue()
    envelopes = []
    for at, event_type, data in story[:events]:
        source = publisher(event_type, orgs, data)
        envelopes.append(
            build_envelope(
                event_type, data, source=source, key=signing[source], occurred_at=at, issued_at=at, catalogue=catalogue
            )
        )
    # A few of the types no family publishes: challenges (any kind) and retractions (by the original's publisher).
    numbers = itertools.islice(synthetic_nhs_numbers(), 3 * families, None)  # past the families' own numbers
    for n, original in enumerate(envelopes[len(orgs) :: 50]):
        at = original.issued_at + dt.timedelta(hours=1)
        child = {"nhs_number": next(numbers), "name": f"Challenged {n}", "date_of_birth": "2019-05-06"}
        challenge = {
            "challenge_ref": f"C{n:06d}",
            "child": child,
            "directed_to": "CSC-BENCH",
            "level": 2,
            "summary": "Synthetic challenge.\nSecond line.",
            "respond_by": (at + dt.timedelta(days=5)).date().isoformat(),
        }
        retraction = {"original_event_id": original.event_id, "reason": "Entered on the wrong record."}
        for event_type, data, source in (
            ("challenge.raised", challenge, "POLICE-BENCH"),
            ("record.retracted", retraction, original.source),
        ):
            envelopes.append(
                build_envelope(
                    event_type,
                    data,
                    source=source,
                    key=signing[source],
                    occurred_at=at,
                    issued_at=at,
                    event_id=str(uuid.UUID(int=n + 1)),
                    catalogue=catalogue,
                )
            )
    return envelopes, KeyRegistry(records), orgs


def best(rounds: int, run: Callable[[], None]) -> float:
    """The least CPU seconds of ``rounds`` runs."""
    times = []
    for _ in range(rounds):
        started = time.process_time()
        run()
        times.append(time.process_time() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile of one verify round")
    args = parser.parse_args()

    envelopes, keys, orgs = build(args.events)
    catalogue = default_catalogue()
    blobs = [encode_envelope(env, catalogue) for env in envelopes]
    publishers = {env.event_id: env.source for env in envelopes}
    signed = []
    for env in envelopes:
        record = keys.get(env.key_id)
        assert record is not None
        signed.append((Ed25519PublicKey.from_public_bytes(record.public_key), env.signature, pre_auth_encoding(env)))
    nows = [env.issued_at + dt.timedelta(seconds=2) for env in envelopes]
    n = len(blobs)
    types = sorted({env.event_type for env in envelopes})

    def raw() -> None:
        for public, signature, message in signed:
            public.verify(signature, message)

    def verify_all() -> None:
        for blob, now in zip(blobs, nows, strict=True):
            verify(blob, keys=keys, now=now, publisher_of=publishers.get, org_kind=orgs.get, catalogue=catalogue)

    def decode_all() -> None:
        for blob in blobs:
            event_of(blob, catalogue=catalogue)

    verify_all()  # warm: schemas' bounds checkers, key objects
    decode_all()
    raw_s = best(args.rounds, raw)
    verify_s = best(args.rounds, verify_all)
    decode_s = best(args.rounds, decode_all)
    per = 1e6 / n
    print(f"{n} envelopes of {len(types)} event types, {sum(map(len, blobs)) / n:.0f} bytes on average")
    print(f"  raw Ed25519 verify     {raw_s * per:7.1f} µs/event")
    print(f"  validation.verify      {verify_s * per:7.1f} µs/event  ({verify_s / raw_s:.2f}x raw)")
    print(f"    beyond the signature {(verify_s - raw_s) * per:7.1f} µs/event")
    print(f"  event_of (decode only) {decode_s * per:7.1f} µs/event")
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(verify_all)
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())


if __name__ == "__main__":
    main()
