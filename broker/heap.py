"""Short collector pauses in long-running processes: ``configure`` and ``settle``.

CPython's full collection walks every object the collector tracks. Measured on
the latency bench's broker (135,000 input records routed), full collections
stopped the router for up to 1.1 s as its state grew, and stopped the gateway
and the dispatcher for 30-100 ms every half second: most of the latency's
worst percentile. ``gc.freeze`` moves every object alive now to a permanent
generation that collections skip; objects made later are collected as usual,
and a frozen object is still freed when its last reference goes.

``settle`` is called where what is alive is long-lived: once a process has
started (modules, settings, caches, the views it caught up), by the router once
it has caught up with the log, and before it forks a snapshot copy (which also
spares the copy's memory pages the collector's writes). Each call first
collects the young generations, so short-lived garbage is not frozen with the
rest. It is never called on a timer while requests are in flight: a reference
cycle frozen while alive would not be reclaimed when it later became garbage.

``configure`` makes young collections rarer (every 20,000 net allocations, not
700): a request's short-lived objects then mostly die before a collection and
are never promoted. With the default thresholds the gateway promoted enough to
run a full collection about every 0.4 s at 200 events/s, 30-90 ms each
(its bounded caches of recent events, tens of thousands of objects, are walked
by each); with these, a few in a minute.
"""

from __future__ import annotations

import gc

__all__ = ["BATCH_THRESHOLDS", "THRESHOLDS", "configure", "settle"]

THRESHOLDS = (20_000, 20, 50)  # gc.set_threshold: young, middle, and middle collections per full one
# For work done in large batches (an audit's replay sets them while it runs): a batch's records, results
# and outputs mostly die before a young collection runs. The 100,000-event replay took 9 % less time than
# with CPython's default (700), the million-event one 1 % less (the routing state's own memory traffic
# dominates there); neither's peak memory changed.
BATCH_THRESHOLDS = (200_000, 20, 50)


def configure() -> None:
    """Set the collector's thresholds for a long-running service (``THRESHOLDS``)."""
    gc.set_threshold(*THRESHOLDS)


def settle() -> None:
    """Collect the young generations, then freeze everything left.

    Never a full collection: on a router restored from a big city's snapshot one would stop the
    process for seconds, long enough for the group to take the input partition away.
    """
    gc.collect(1)
    gc.freeze()
