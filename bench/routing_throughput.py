"""Routing throughput and memory for a synthetic city (issue: the family graph and routing policy).

Measures, in one process:
- baseline: the same events applied to the family graph alone (no policy, no notifications);
- routing: the full routing state machine (graph, policy, once only, late binding, history
  sweeps, escalations), events per second and notifications per second;
- memory: the resident memory the routing state added (RSS after minus before) and the peak RSS.
Then, for a slice of the city, the router service end to end over the embedded log (events
already accepted into the log, notifications and decisions written back).

Usage: python bench/routing_throughput.py [FAMILIES] [--service-families N]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from city import city_events, directory_events

from broker.routing.graph import FamilyGraph
from broker.routing.model import Notification
from broker.routing.state import RoutingState


def baseline(events: list) -> float:  # type: ignore[type-arg]
    graph = FamilyGraph()
    start = time.perf_counter()
    for seq, e in enumerate(events):
        graph.apply(e, seq)
    return len(events) / (time.perf_counter() - start)


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def routing(events: list) -> tuple[float, int, float]:  # type: ignore[type-arg]
    """Events per second through the routing state machine, notifications, and resident memory it added."""
    before = _rss_mib()
    state = RoutingState()
    notes = 0
    start = time.perf_counter()
    for e in events:
        notes += sum(isinstance(o, Notification) for o in state.apply_event(e, e.occurred_at))
    notes += sum(isinstance(o, Notification) for o in state.advance(events[-1].occurred_at))
    elapsed = time.perf_counter() - start
    return len(events) / elapsed, notes, _rss_mib() - before


async def service(families: int) -> tuple[int, float, int]:
    """Events accepted into an embedded log (bypassing HTTP), then routed by the router service."""
    from broker import topics
    from broker.client import build_envelope
    from broker.envelope.keys import new_key
    from broker.log import EmbeddedLog
    from broker.routing.service import RouterService
    from broker.validation import subject_key

    kinds = {"GP": "gp_practice", "HV": "health_visiting", "SCHOOL": "school", "CSC": "childrens_social_care",
             "POLICE": "police", "MIDWIFERY": "midwifery", "MARAC": "marac", "PARTNERSHIP": "partnership",
             "ADULTS": "adult_services"}
    keys: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        log = EmbeddedLog(Path(tmp) / "log.db")
        await log.start()
        events = directory_events(families) + list(city_events(families, seed=11))
        for e in events:
            kind = kinds[e.source.split("-")[0]]
            if e.source not in keys:
                keys[e.source] = new_key(e.source, kind, valid_from=e.occurred_at.replace(year=2000))[1]
            from broker.codec import jsonable

            env = build_envelope(e.event_type, jsonable(dict(e.data)), source=e.source, key=keys[e.source],  # type: ignore[arg-type]
                                 occurred_at=e.occurred_at, issued_at=e.occurred_at, event_id=e.event_id)
            from broker.envelope.model import encode_envelope

            headers = ((topics.RECORD_HEADER, topics.EVENT), ("event_type", e.event_type.encode()),
                       ("event_id", e.event_id.encode()), ("source", e.source.encode()),
                       (topics.SOURCE_KIND_HEADER, kind.encode()))
            await log.append(topics.INPUT, encode_envelope(env), key=subject_key(e).encode(), headers=headers,
                             timestamp_ms=int(e.occurred_at.timestamp() * 1000))
        router = RouterService(log)
        await router.start()
        start = time.perf_counter()
        out = await router.run_until_idle()
        elapsed = time.perf_counter() - start
        await log.close()
        return len(events), len(events) / elapsed, sum(isinstance(o, Notification) for o in out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("families", nargs="?", type=int, default=100_000)
    parser.add_argument("--service-families", type=int, default=2_000)
    args = parser.parse_args()
    from broker.logging import configure_logging

    configure_logging("json", "warning")
    t0 = time.perf_counter()
    events = directory_events(args.families) + list(city_events(args.families))
    print(f"city: {args.families:,} families, {len(events):,} events (generated in {time.perf_counter() - t0:.1f} s)")
    rate = baseline(events)
    print(f"baseline (family graph only):      {rate:12,.0f} events/s")
    rate, notes, traced = routing(events)
    print(f"routing state machine (all rules): {rate:12,.0f} events/s, {notes:,} notifications")
    print(f"router state (resident memory it added): {traced:6,.0f} MiB")
    print(f"process peak RSS:                  {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:12,.0f} MiB")
    if args.service_families:
        count, rate, notes = asyncio.run(service(args.service_families))
        print(f"router service on the embedded log ({args.service_families:,} families, {count:,} events): "
              f"{rate:,.0f} events/s, {notes:,} notifications written")


if __name__ == "__main__":
    main()
