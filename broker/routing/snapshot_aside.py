"""Encoding a router snapshot beside the router, so a big state never holds the input up.

Encoding walks the whole routing state (about 0.4 s for 10,000 input records
here, tens of seconds for a big city) and needs the state to stand still while
it does. ``encode_aside`` forks: the child is a copy of the process as it stands
at that instant, encodes that copy and writes the bytes to a pipe, while the
router goes on routing in the parent. The child runs only the encoder (pure
Python over the copy; no log, store or thread of the parent's) and leaves with
``os._exit``. The pages the parent changes meanwhile are copied by the kernel:
while a snapshot is written, resident memory can grow by up to the size of the
state.

Where ``fork`` is missing or fails, the snapshot is encoded on a thread before
``encode_aside`` returns, and the caller must not change the state until then
(the router awaits it: routing pauses, as it did before).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from broker import heap
from broker.audit.state_snapshot import RouterSnapshot, SnapshotInvalid, encode_snapshot
from broker.logging import get_logger

__all__ = ["encode_aside"]

_log = get_logger("jigsaw.router")


async def encode_aside(snapshot: RouterSnapshot) -> asyncio.Future[bytes]:
    """Start encoding ``snapshot`` as it stands now; the future gives the bytes (or raises ``SnapshotInvalid``).

    When this returns, the state may change: the encoding works on a copy taken at the call.
    """
    fork = getattr(os, "fork", None)
    heap.settle()  # the copy's pages stay shared: no collection in either process walks the state now
    read_end, write_end = os.pipe()
    try:
        pid = fork() if fork is not None else -1
    except OSError as exc:
        _log.warning("router_snapshot_not_forked", error=str(exc))
        pid = -1
    if pid == 0:  # the child: encode the copy, hand the bytes over, and leave without running anything else
        code = 1
        try:
            with contextlib.suppress(ValueError):  # (only the main thread may; a loop elsewhere set none)
                signal.set_wakeup_fd(-1)  # a signal to the child must not wake the parent's event loop
                for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    signal.signal(signum, signal.SIG_DFL)
            os.close(read_end)
            with contextlib.suppress(OSError):
                os.nice(10)  # background work: the router and the other roles go first
            blob = encode_snapshot(snapshot)
            with os.fdopen(write_end, "wb") as out:
                out.write(blob)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    loop = asyncio.get_running_loop()
    if pid < 0:
        os.close(read_end)
        done: asyncio.Future[bytes] = loop.create_future()
        try:
            done.set_result(await asyncio.to_thread(encode_snapshot, snapshot))
        except SnapshotInvalid as exc:
            done.set_exception(exc)
        return done
    return loop.create_task(_collect(pid, read_end), name="jigsaw-router-snapshot")


def _read_all(fd: int) -> bytes:
    with os.fdopen(fd, "rb") as pipe:
        return pipe.read()


async def _collect(pid: int, read_end: int) -> bytes:
    """The child's bytes, once it has exited cleanly; a cancelled collection kills the child."""
    try:
        blob = await asyncio.to_thread(_read_all, read_end)
        _, status = await asyncio.to_thread(os.waitpid, pid, 0)
    except BaseException:
        with contextlib.suppress(ProcessLookupError, ChildProcessError, asyncio.CancelledError):
            os.kill(pid, signal.SIGKILL)
            await asyncio.shield(asyncio.to_thread(os.waitpid, pid, 0))  # reaped, never left a zombie
        raise
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SnapshotInvalid(f"the process encoding the snapshot ended with {code} (the state it could not write)")
    return blob
