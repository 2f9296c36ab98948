"""The embedded log's promise: a process killed mid-write loses at most the append it had not acknowledged."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from broker.log import EmbeddedLog

TOPIC = "crash.events"

# Appends forever (single records and small batches), printing each offset once append has returned.
WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from broker.log import EmbeddedLog

    async def main(path, topic):
        log = EmbeddedLog(path)
        await log.start()
        n = await log.end_offset(topic)
        while True:
            if n % 10 == 9:
                items = [(b"k%d" % (i % 7), b"record-%d" % i, (("n", b"%d" % i),)) for i in range(n, n + 5)]
                positions = await log.append_many(topic, items)
            else:
                headers = (("n", b"%d" % n),)
                positions = [await log.append(topic, b"record-%d" % n, key=b"k%d" % (n % 7), headers=headers)]
            for position in positions:
                print(position.offset, flush=True)
            n = positions[-1].offset + 1

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def _write_until_killed(path: Path, acks_wanted: int) -> list[int]:
    """Run the writer, SIGKILL it once it has acknowledged enough, and return every offset it acknowledged."""
    acked: list[int] = []
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), TOPIC],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        deadline = time.monotonic() + 60
        try:
            while len(acked) < acks_wanted and time.monotonic() < deadline:
                line = child.stdout.readline()
                if not line:
                    break
                acked.append(int(line))
        finally:
            os.kill(child.pid, signal.SIGKILL)  # mid-write: it never stops appending
            child.wait(timeout=30)
        # Lines printed (so acknowledged) before the kill may still sit in the pipe.
        acked += [int(line) for line in child.stdout.read().split()]
        stderr = child.stderr.read()
    assert child.returncode == -signal.SIGKILL, stderr
    assert len(acked) >= acks_wanted, f"the writer acknowledged only {len(acked)} appends: {stderr}"
    return acked


async def test_sigkill_mid_write_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """After kill -9 mid-write, every acknowledged append is there, in order, and the file is intact."""
    path = tmp_path / "log.db"
    acked: list[int] = []
    for _ in range(3):  # crash, recover and carry on writing, three times over
        acked += _write_until_killed(path, acks_wanted=150)

        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        log = EmbeddedLog(path)
        try:
            records = []
            while batch := await log.read(TOPIC, len(records), limit=1000):
                records += batch
            end = await log.end_offset(TOPIC)
        finally:
            await log.close()

        assert acked == sorted(acked) and len(set(acked)) == len(acked)
        assert [r.offset for r in records] == list(range(end))
        assert end > acked[-1]  # every acknowledged append survived
        assert end - (acked[-1] + 1) <= 5  # beyond it, at most the one unacknowledged append (a batch of 5)
        for record in records:
            assert record.value == b"record-%d" % record.offset
            assert record.key == b"k%d" % (record.offset % 7)
            assert record.headers == (("n", b"%d" % record.offset),)
        # The next writer continues after whatever landed, including an unacknowledged append.
        acked += list(range(acked[-1] + 1, end))
