"""The store in one SQLite file (WAL mode): the embedded default, for one machine.

Two connections, each on its own worker thread so the event loop never
blocks on the disk: one writes (a write transaction holds it, and SQLite's
``BEGIN IMMEDIATE`` takes the file's write lock, so writers in other
processes on the same machine wait their turn), one reads (WAL: readers see
the last commit and never wait for a writer). A transaction, or a read, runs
whole on its connection's thread: one hop from the event loop, not one per
statement (a hop costs more than a small statement). Commits use WAL with
``synchronous=NORMAL``: a killed process loses nothing, and a power cut can lose
only the last commits, which the log (the record the views are materialised
from) gives back when the views catch up at the next start; two fsyncs per
submission would otherwise bound the gateway's rate. A throwaway store
(``durable=False``) does not sync at all.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from broker.errors import StoreUnavailable
from broker.store.conn import Conn, Row
from broker.store.sqlstore import SqlStore

__all__ = ["SqliteStore"]

T = TypeVar("T")
BUSY_TIMEOUT_MS = 30_000


def _wal(db: sqlite3.Connection) -> None:
    """Switch to WAL, retrying while another connection holds the lock: the busy handler does not cover this
    switch, so processes opening a new database at once saw ``database is locked``."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(pause)  # on the store's own thread
            pause = min(pause * 2, 0.1)


class _Thread:
    """One SQLite connection, used only on its own thread."""

    def __init__(self, path: Path, name: str, *, durable: bool = True) -> None:
        self.path = path
        self.durable = durable
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"jigsaw-store-{name}")
        self.db: sqlite3.Connection | None = None

    def _open(self) -> None:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _wal(db)
        db.execute("PRAGMA synchronous=NORMAL" if self.durable else "PRAGMA synchronous=OFF")
        db.execute("PRAGMA foreign_keys=ON")
        self.db = db

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            if self.db is None:
                self._open()
            assert self.db is not None
            return fn(self.db)

        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, run)
        except sqlite3.OperationalError as exc:  # locked, busy, disk I/O, cannot open
            raise StoreUnavailable(f"the store at {self.path} failed: {exc}") from exc

    async def close(self) -> None:
        def shut() -> None:
            if self.db is not None:
                self.db.close()
                self.db = None

        await asyncio.get_running_loop().run_in_executor(self.pool, shut)
        self.pool.shutdown(wait=True)


def _rollback(db: sqlite3.Connection) -> None:
    if db.in_transaction:
        db.execute("ROLLBACK")


class _Here:
    """``Conn`` on the store's own thread: each call runs at once, so a whole body runs in one hop there."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    async def execute(self, sql: str, *args: Any) -> int:
        return self._db.execute(sql, args).rowcount

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._db.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return self._db.execute(sql, args).fetchall()

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = self._db.execute(sql, args).fetchone()
        return row


def _at_once(body: Callable[[Conn], Awaitable[T]], db: sqlite3.Connection) -> T:
    """Run ``body`` on ``_Here(db)`` to its end: it never waits, so one ``send`` finishes it."""
    coro = body(_Here(db))
    try:
        coro.send(None)  # type: ignore[attr-defined]
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()  # type: ignore[attr-defined]
    raise RuntimeError("a store body waited for something other than SQLite")


def _transaction(body: Callable[[Conn], Awaitable[T]], db: sqlite3.Connection) -> T:
    db.execute("BEGIN IMMEDIATE")
    try:
        out = _at_once(body, db)
        db.execute("COMMIT")
    except BaseException:
        _rollback(db)
        raise
    return out


class SqliteStore(SqlStore):
    """The serving views in one SQLite file."""

    name = "sqlite"
    dialect = "sqlite"

    def __init__(self, path: Path | str, *, durable: bool = True) -> None:
        """A store in the file at ``path``.

        Args:
            path: the database file (created, with its directory, at ``start``).
            durable: False skips the fsync at each commit, for a throwaway store (the simulator's,
                a test's) that is rebuilt from the log anyway.
        """
        self.path = Path(path)
        self._durable = durable
        self._writer: _Thread | None = None
        self._reader: _Thread | None = None

    def _where(self) -> str:
        return str(self.path)

    def _lock(self, key: str) -> str | None:
        return None  # BEGIN IMMEDIATE holds the file's only write lock

    async def start(self) -> None:
        if self._writer is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the store's directory {self.path.parent}: {exc}") from exc
        self._writer = _Thread(self.path, "write", durable=self._durable)
        self._reader = _Thread(self.path, "read", durable=self._durable)
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        writer, reader = self._writer, self._reader
        self._writer = self._reader = None
        for thread in (writer, reader):
            if thread is not None:
                await thread.close()

    def _threads(self) -> tuple[_Thread, _Thread]:
        if self._writer is None or self._reader is None:
            raise StoreUnavailable(f"the store at {self.path} is not open (call start first)")
        return self._writer, self._reader

    async def _writing(self, body: Callable[[Conn], Awaitable[T]]) -> T:
        """The whole transaction in one hop to the writer's thread (a hop costs more than a statement); the
        thread runs one at a time, so transactions on the writer connection never interleave."""
        writer, _ = self._threads()
        return await writer.call(functools.partial(_transaction, body))

    async def _reading(self, body: Callable[[Conn], Awaitable[T]]) -> T:
        _, reader = self._threads()
        return await reader.call(functools.partial(_at_once, body))
