"""Back-to-back Kafka transactions as the router writes them: Jigsaw's quick retry against aiokafka's own wait.

The router commits every batch (its notifications, decisions and its input
offset) in one transaction. Kafka's coordinator answers ``EndTxn`` before it
has written the commit markers and refuses the next transaction's first
partitions with ``CONCURRENT_TRANSACTIONS`` until it has (KAFKA-5477);
aiokafka then waits 20 ms before asking again. ``kafka_safety.TXN_RETRY_S``
asks again after 2 ms. This bench runs the same writes through
``KafkaLog.writer`` with each setting in turn, in alternating rounds, and
prints the time each transaction took, how many times the first partitions were
asked for, the requests sent per transaction, and (with ``--kafka-pid-file``)
the broker's CPU per transaction (which, with ``--gap-ms``, includes the
broker's idle work during the pauses).

``--offsets`` compares instead, both with the 2 ms retry, transactions that
commit the input offset (``AddOffsetsToTxn`` and ``TxnOffsetCommit``, and commit
markers on ``__consumer_offsets``) with transactions that do not: the router
commits it at most every 0.5 s (``routing.service.COMMIT_EVERY_S``).

    .venv/bin/python bench/transactions.py --bootstrap 127.0.0.1:9092 [--kafka-pid-file STATE/kafka.pid] [--offsets]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiokafka import conn as aiokafka_conn
from aiokafka.producer import sender as aiokafka_sender

from bench.scene import cpu_seconds
from broker.log.kafka import KafkaLog
from broker.log.kafka_safety import TXN_RETRY_S

AIOKAFKA_WAIT_S = 0.02  # aiokafka's BACKOFF_OVERRIDE as shipped
_requests: collections.Counter[str] = collections.Counter()


def _count_requests() -> None:
    """Count the requests every aiokafka connection sends, by type."""
    send = aiokafka_conn.AIOKafkaConnection.send

    def counted(self: Any, request: Any, expect_response: bool = True) -> Any:
        _requests[type(request).__name__] += 1
        return send(self, request, expect_response)

    aiokafka_conn.AIOKafkaConnection.send = counted  # type: ignore[method-assign]


async def _round(
    writer: Any, topic: str, group: str, count: int, start: int, pid: int | None, gap: float = 0.0, offsets: bool = True
) -> dict[str, float]:
    _requests.clear()
    cpu, took = (cpu_seconds(pid) if pid else 0.0), 0.0
    for i in range(start, start + count):
        item = (b"family-%d" % (i % 7), b"x" * 600, (("kind", b"notification"),))
        began = time.perf_counter()
        await writer.write([(topic, [item], None)], {(topic, 0): i + 1} if offsets else {}, group)
        took += time.perf_counter() - began
        if gap:
            await asyncio.sleep(gap)
    return {
        "ms": took * 1000 / count,
        "add_partitions": _requests["AddPartitionsToTxnRequest"] / count,
        "requests": sum(_requests.values()) / count,
        "broker_ms": (cpu_seconds(pid) - cpu) * 1000 / count if pid else float("nan"),
    }


async def main(args: argparse.Namespace) -> int:
    _count_requests()
    pid = int(Path(args.kafka_pid_file).read_text()) if args.kafka_pid_file else None
    run = uuid.uuid4().hex[:8]
    topic, group = f"bench.txn.{run}", f"bench-txn-{run}"
    log = KafkaLog(args.bootstrap, client_id="jigsaw-bench-transactions")
    await log.start()
    await log.create_topic(topic)
    writer = log.writer(f"bench-txn-{run}")
    await writer.start()
    settings = (
        (("input offset committed", TXN_RETRY_S, True), ("no input offset", TXN_RETRY_S, False))
        if args.offsets
        else (("aiokafka 20 ms retry", AIOKAFKA_WAIT_S, True), ("jigsaw 2 ms retry", TXN_RETRY_S, True))
    )
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in settings}
    try:
        await _round(writer, topic, group, 50, 0, None)  # warm-up: connections, coordinator, JIT
        done = 50
        for _ in range(args.rounds):
            for name, wait, offsets in settings:
                aiokafka_sender.BACKOFF_OVERRIDE = wait
                results[name].append(
                    await _round(writer, topic, group, args.transactions, done, pid, args.gap_ms / 1000, offsets)
                )
                done += args.transactions
    finally:
        await writer.close()
        await log.close()
    spacing = f"{args.gap_ms:g} ms apart" if args.gap_ms else "back to back"
    print(f"transactions {spacing} (1 record each), {args.rounds} rounds of {args.transactions}")
    for name, rounds in results.items():
        ms = statistics.median(r["ms"] for r in rounds)
        asks = statistics.median(r["add_partitions"] for r in rounds)
        sent = statistics.median(r["requests"] for r in rounds)
        broker = statistics.median(r["broker_ms"] for r in rounds)
        cpu = f", broker CPU {broker:.2f} ms" if pid else ""
        print(
            f"  {name}: {ms:.1f} ms per transaction, {sent:.1f} requests, first partitions asked {asks:.2f} times{cpu}"
        )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="a running broker")
    parser.add_argument("--kafka-pid-file", help="the broker's pid file, to report its CPU per transaction")
    parser.add_argument("--transactions", type=int, default=200, help="transactions per round (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each setting, alternating (default 3)")
    parser.add_argument("--gap-ms", type=float, default=0.0, help="pause between transactions (default 0: none)")
    parser.add_argument("--offsets", action="store_true", help="with and without the input offset, not the retries")
    sys.exit(asyncio.run(main(parser.parse_args())))
