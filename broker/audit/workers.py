"""Signature and schema verification spread over worker processes, results in log order.

Checking an event as the intake did (``verify.check_event``: canonical bytes,
schema, the publisher's key as the registry stood, the Ed25519 signature,
permission, headers and key) depends only on the record and the key registry,
so it runs in ``jobs`` worker processes (with the record's Merkle leaf hash), a chunk of records at a time. The one
exception is a retraction, whose permission depends on who published the event
it retracts: the worker leaves it to the main process, which checks it in log
order (``CHECK_IN_ORDER``). The routing re-run stays sequential in the main
process and consumes the results in order.

With ``jobs`` 1 (or 0) everything runs in the calling process.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import resource
from collections import deque
from collections.abc import Iterator, Sequence

from broker.audit.findings import Finding
from broker.audit.merkle_leaf import record_leaf_hash
from broker.audit.verify import check_event
from broker.envelope.keys import KeyRegistry
from broker.errors import SchemaInvalid
from broker.log.base import Headers, Record
from broker.model import Event
from broker.schemas import Catalogue, default_catalogue
from broker.validation import event_of

__all__ = ["CHECK_IN_ORDER", "Checked", "Verifier", "check_record", "peak_rss_kb"]

CHECK_IN_ORDER = "check_in_order"  # the main process must check this record (a retraction)
RETRACTION = b"record.retracted"
WORKER_NICENESS = 10

# (the record's leaf hash, (event or None, findings) or CHECK_IN_ORDER), for each record sent
Checked = tuple[bytes, tuple[Event | None, list[Finding]] | str]

_keys: KeyRegistry | None = None
_catalogue: Catalogue | None = None


def _init(keys: KeyRegistry) -> None:
    global _keys, _catalogue
    _keys, _catalogue = keys, default_catalogue()
    # The routing re-run in the main process is sequential and sets the pace: the workers yield the CPU to it.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)


def _no_publisher(_event_id: str) -> str | None:
    return None


def check_record(record: Record, full: bool, keys: KeyRegistry, catalogue: Catalogue) -> Checked:
    """Check one events record (``full``: verify as accepted; else decode only), and hash its Merkle leaf."""
    return record_leaf_hash(record), _check(record, full, keys, catalogue)


def _check(
    record: Record, full: bool, keys: KeyRegistry, catalogue: Catalogue
) -> tuple[Event | None, list[Finding]] | str:
    assert record.value is not None
    rank = 2 * record.offset + 1
    if full:
        if record.header("event_type") == RETRACTION:
            return CHECK_IN_ORDER
        return check_event(record, rank, keys=keys, publisher_of=_no_publisher, catalogue=catalogue)
    try:
        return event_of(record.value, catalogue=catalogue), []
    except SchemaInvalid as exc:
        finding = Finding(
            "schema_invalid",
            f"the event does not decode: {exc.message}",
            record.topic,
            record.partition,
            record.offset,
            order=rank,
        )
        return None, [finding]


def peak_rss_kb() -> int:
    """This process's own peak resident memory (KiB): VmHWM, which starts afresh at exec.

    ``getrusage``'s ``ru_maxrss`` is not used: on Linux it keeps the parent's peak across fork and exec.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# A record as a plain tuple (Record's fields in order): pickled several times faster than the frozen dataclass.
_Sent = tuple[str, int, int, bytes | None, bytes | None, Headers, int, bool]


def _check_chunk(chunk: list[_Sent]) -> list[Checked]:
    assert _keys is not None and _catalogue is not None
    return [check_record(Record(*fields[:7]), fields[7], _keys, _catalogue) for fields in chunk]


class Verifier:
    """Checks batches of events records on ``jobs`` processes; ``results`` yields them in the order sent.

    Args:
        keys: the key registry.
        jobs: worker processes (1 or less: check in this process).
        chunk: records sent to a worker at a time.
        ahead: batches submitted before their results are asked for (keeps the workers busy while the
            main process routes, and bounds memory).
    """

    def __init__(self, keys: KeyRegistry, *, jobs: int, chunk: int = 250, ahead: int = 2) -> None:
        self.jobs = max(1, jobs)
        self._keys = keys
        self._catalogue = default_catalogue()
        self._chunk = chunk
        self.ahead = ahead
        self._pool: cf.ProcessPoolExecutor | None = None
        if self.jobs > 1:
            context = multiprocessing.get_context("forkserver")  # never fork a process that runs threads
            self._pool = cf.ProcessPoolExecutor(self.jobs, mp_context=context, initializer=_init, initargs=(keys,))
        self._queue: deque[list[cf.Future[list[Checked]]]] = deque()

    def submit(self, batch: Sequence[tuple[Record, bool]]) -> None:
        """Queue a batch of (events record, full check?) for checking."""
        items = list(batch)
        if self._pool is None:
            done: cf.Future[list[Checked]] = cf.Future()
            done.set_result([check_record(r, full, self._keys, self._catalogue) for r, full in items])
            self._queue.append([done])
            return
        sent: list[_Sent] = [
            (r.topic, r.partition, r.offset, r.key, r.value, r.headers, r.timestamp_ms, full) for r, full in items
        ]
        futures = [
            self._pool.submit(_check_chunk, sent[i : i + self._chunk]) for i in range(0, len(sent), self._chunk)
        ]
        self._queue.append(futures)

    @property
    def queued(self) -> int:
        """Batches submitted whose results were not taken yet."""
        return len(self._queue)

    def results(self) -> Iterator[Checked]:
        """The results of the oldest queued batch, in order."""
        for future in self._queue.popleft():
            yield from future.result()

    def worker_peak_kb(self) -> int:
        """The largest peak resident memory (KiB) of the workers (of this process with none)."""
        if self._pool is None:
            return peak_rss_kb()
        return max(f.result() for f in [self._pool.submit(peak_rss_kb) for _ in range(4 * self.jobs)])

    def close(self) -> None:
        """Stop the workers (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
