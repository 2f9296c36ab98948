"""Signature checks of a batch on worker processes, while the event loop decodes the rest.

An Ed25519 verify is most of what accepting an event costs, and the
``cryptography`` call releases the GIL only for the arithmetic: a thread
waiting to take the GIL back from a busy event loop waits a switch interval
per signature. So a gateway checks a batch's signatures on worker processes
(``verifier_worker``), each fed over its own socket by the event loop:

1. ``presign`` decodes each envelope of the batch and, where its key is
   registered to its source, sends (public key, signature, signed bytes) to
   the least-loaded worker in chunks, as it goes, so the workers start on the
   first chunk while the loop decodes the next;
2. the intake then runs every check in order as before (``validation.verify``),
   given each envelope decoded and its signature's answer (``Presigned``,
   from ``Presigning.get``, which waits for that envelope's chunk only, so the
   loop checks the first chunk while the workers check the next): the result,
   the refusal codes and their order are exactly as without workers.

A worker that dies, or a pool that is not running, costs nothing but speed:
those signatures are checked on the event loop, and the worker is started
again at the next batch (at most once every few seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import struct
import sys
import time
from asyncio.subprocess import Process
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from broker.codec import Limits
from broker.envelope.canonical import pre_auth_encoding
from broker.envelope.keys import KeyRegistry
from broker.envelope.model import Envelope, decode_envelope
from broker.envelope.signing import SIGNATURE_SIZE
from broker.errors import Refusal
from broker.logging import get_logger
from broker.schemas import Catalogue

__all__ = ["Presigned", "Presigning", "SignatureWorkers"]

_log = get_logger("jigsaw.intake")
_HEAD = struct.Struct(">II")
_LENGTH = struct.Struct(">I")
_CHUNK = 64  # signatures per request: small enough that the workers start early, big enough to be cheap
_RESTART_AFTER_S = 5.0
_ANSWER_WITHIN_S = 5.0  # a worker slower than this is killed and its signatures checked on the event loop
_WORKER = Path(__file__).with_name("verifier_worker.py")


@dataclasses.dataclass(frozen=True, slots=True)
class Presigned:
    """One envelope of a batch, decoded, and what a worker said of its signature under ``public_key``."""

    envelope: Envelope
    public_key: bytes | None = None  # the key the answer is for (None: not checked, the intake checks)
    valid: bool = False


class _Worker:
    def __init__(self, process: Process, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.process = process
        self.writer = writer
        self.waiting: deque[tuple[int, asyncio.Future[bytes]]] = deque()  # (items, answer) in the order sent
        self.load = 0
        self.task = asyncio.get_running_loop().create_task(self._answers(reader))

    async def _answers(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                head = await reader.readexactly(1)
                count, future = self.waiting[0]
                rest = await reader.readexactly(count - 1) if count > 1 else b""
                self.waiting.popleft()
                self.load -= count
                if not future.done():
                    future.set_result(head + rest)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, IndexError) as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        while self.waiting:
            _count, future = self.waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionError(f"signature worker gone: {type(exc).__name__}"))
                future.exception()  # a batch that gave up waiting is not told again, in the log
        self.load = 0

    @property
    def alive(self) -> bool:
        return not self.task.done() and self.process.returncode is None

    def send(self, items: list[bytes], count: int) -> asyncio.Future[bytes]:
        body = b"".join(items)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        if self.task.done():  # its answers will never be read: the caller checks these itself
            future.set_exception(ConnectionError("signature worker gone"))
            return future
        self.waiting.append((count, future))
        self.load += count
        self.writer.write(_HEAD.pack(count, len(body)) + body)
        return future

    async def close(self) -> None:
        self.writer.close()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
            await self.task
        self._fail(ConnectionError("closed"))
        try:
            async with asyncio.timeout(5):  # it ends when its socket closes
                await self.process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


class SignatureWorkers:
    """``count`` worker processes that check Ed25519 signatures for one intake (0: none, all inline)."""

    def __init__(self, count: int) -> None:
        self.count = max(0, count)
        self._workers: list[_Worker] = []
        self._started_at = -_RESTART_AFTER_S
        self._starting = asyncio.Lock()  # two batches at once start the missing workers once
        self.checked = 0  # signatures answered by workers
        self.inline = 0  # signatures a lost worker left to the event loop

    async def start(self) -> None:
        """Start the workers that are not running (at most once every few seconds)."""
        if len(self._workers) >= self.count and all(w.alive for w in self._workers):
            return
        async with self._starting:
            if time.monotonic() - self._started_at < _RESTART_AFTER_S:
                return
            self._started_at = time.monotonic()
            for worker in [w for w in self._workers if not w.alive]:
                self._workers.remove(worker)
                await worker.close()
                _log.warning("signature_worker_lost", exit_code=worker.process.returncode)
            while len(self._workers) < self.count:
                self._workers.append(await _spawn())

    async def close(self) -> None:
        """Stop every worker."""
        workers, self._workers = self._workers, []
        for worker in workers:
            await worker.close()

    async def presign(
        self, bodies: Sequence[bytes], keys: KeyRegistry, catalogue: Catalogue, limits: Limits
    ) -> Presigning:
        """Each body decoded, its signature sent to a worker (in chunks, as the loop decodes the next ones).

        ``get(i)`` gives body ``i`` with its worker's answer, waiting only for that body's chunk: the intake
        checks the first chunk's events while the workers check the later ones. Envelopes whose key is not
        registered to their source are decoded only: the intake refuses them.
        """
        await self.start()
        live = [w for w in self._workers if w.alive]
        batch = Presigning(self, len(bodies))
        indexes: list[int] = []
        publics: list[bytes] = []
        items: list[bytes] = []

        def flush() -> None:
            nonlocal indexes, publics, items
            if not indexes:
                return
            worker = min(live, key=lambda w: w.load) if live else None
            batch.add_chunk(indexes, publics, worker, worker.send(items, len(indexes)) if worker else None)
            indexes, publics, items = [], [], []

        for i, body in enumerate(bodies):
            try:
                env = decode_envelope(bytes(body), catalogue=catalogue, limits=limits)
            except Refusal:
                continue  # the intake refuses it, with the same code
            batch.out[i] = Presigned(env)
            key = keys.get(env.key_id)
            if key is None or key.org_id != env.source or len(env.signature) != SIGNATURE_SIZE:
                continue
            message = pre_auth_encoding(env)
            indexes.append(i)
            publics.append(key.public_key)
            items.append(key.public_key + env.signature + _LENGTH.pack(len(message)) + message)
            if len(indexes) >= _CHUNK:
                flush()
        flush()
        return batch


_Chunk = tuple[list[int], list[bytes], "_Worker | None", "asyncio.Future[bytes] | None"]


class Presigning:
    """A batch's envelopes as ``SignatureWorkers.presign`` decoded them, and its workers' answers as they come."""

    def __init__(self, workers: SignatureWorkers, size: int) -> None:
        self._workers = workers
        self.out: list[Presigned | None] = [None] * size
        self._chunk_of: list[int | None] = [None] * size
        self._chunks: list[_Chunk | None] = []  # None once its answers are in ``out``

    def add_chunk(
        self, indexes: list[int], publics: list[bytes], worker: _Worker | None, answer: asyncio.Future[bytes] | None
    ) -> None:
        for i in indexes:
            self._chunk_of[i] = len(self._chunks)
        self._chunks.append((indexes, publics, worker, answer))

    async def get(self, i: int) -> Presigned | None:
        """Body ``i`` decoded, with its worker's answer (None where it did not decode)."""
        number = self._chunk_of[i]
        if number is not None and (chunk := self._chunks[number]) is not None:
            self._chunks[number] = None
            await self._settle(*chunk)
        return self.out[i]

    async def _settle(
        self, indexes: list[int], publics: list[bytes], worker: _Worker | None, future: asyncio.Future[bytes] | None
    ) -> None:
        answers: bytes | None = None
        if worker is not None and future is not None:
            try:
                answers = await asyncio.wait_for(asyncio.shield(future), _ANSWER_WITHIN_S)
            except ConnectionError:
                pass
            except TimeoutError:  # stopped or stuck: it is replaced at the next batch
                _log.warning("signature_worker_stuck", pid=worker.process.pid, waited_s=_ANSWER_WITHIN_S)
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
        if answers is None:  # no worker, or it died: the intake checks these itself
            self._workers.inline += len(indexes)
            return
        self._workers.checked += len(indexes)
        for i, public, valid in zip(indexes, publics, answers, strict=True):
            found = self.out[i]
            assert found is not None
            self.out[i] = Presigned(found.envelope, public, valid == 1)


async def _spawn() -> _Worker:
    ours, theirs = socket.socketpair()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(_WORKER),  # run as a script: it imports only ``cryptography``
            str(theirs.fileno()),
            pass_fds=(theirs.fileno(),),
            stdin=asyncio.subprocess.DEVNULL,
        )
    finally:
        theirs.close()
    reader, writer = await asyncio.open_connection(sock=ours)
    _log.info("signature_worker_started", pid=process.pid)
    return _Worker(process, reader, writer)
