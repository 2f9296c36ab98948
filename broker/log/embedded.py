"""The embedded log: a durable single-node log in one SQLite file (WAL mode).

It is the default backend: what ``jigsaw demo``, ``jigsaw simulate`` and a
small partnership's single box run on. An append returns only after SQLite has
committed it with ``synchronous=FULL``, so a killed process loses at most the
append that had not yet returned. All SQLite work happens on one worker
thread so the event loop never blocks on a disk flush.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson

from broker.errors import LogUnavailable
from broker.log.base import Headers, Position, Record, partition_for
from broker.log.membership import SequentialWriter, SoloMember

__all__ = ["EmbeddedLog"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    name TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL,
    compacted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL,
    part INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    key BLOB,
    value BLOB,
    headers TEXT NOT NULL,
    ts INTEGER NOT NULL,
    PRIMARY KEY (topic, part, offset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS commits (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    part INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    PRIMARY KEY (grp, topic, part)
) WITHOUT ROWID;
"""


def _encode_headers(headers: Headers) -> str:
    return json.dumps([[k, v.hex()] for k, v in headers])


def _decode_headers(text: str, _hex: Callable[[str], bytes] = bytes.fromhex) -> Headers:
    return tuple([(k, _hex(v)) for k, v in orjson.loads(text)])  # every record read passes here: kept lean


class EmbeddedLog:
    """A log in one SQLite file, safe against a killed process."""

    name = "embedded"

    def __init__(self, path: Path | str, *, poll_interval: float = 0.05) -> None:
        self.path = Path(path)
        self._poll = poll_interval
        self._db: sqlite3.Connection | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._changed = asyncio.Event()

    # -- plumbing -------------------------------------------------------------

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None or self._pool is None:
            await self.start()
        assert self._db is not None and self._pool is not None
        db = self._db
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, db)
        except sqlite3.Error as exc:
            raise LogUnavailable(f"the embedded log at {self.path} failed: {exc}") from exc

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def start(self) -> None:
        if self._db is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="jigsaw-sqlite")

        def open_db() -> sqlite3.Connection:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=10000")
            db.executescript(_SCHEMA)
            return db

        try:
            self._db = await asyncio.get_running_loop().run_in_executor(self._pool, open_db)
        except sqlite3.Error as exc:
            raise LogUnavailable(f"cannot open the embedded log at {self.path}: {exc}") from exc

    async def close(self) -> None:
        if self._db is None or self._pool is None:
            return
        db, pool = self._db, self._pool
        self._db, self._pool = None, None
        await asyncio.get_running_loop().run_in_executor(pool, db.close)
        pool.shutdown(wait=True)

    # -- topics ---------------------------------------------------------------

    async def create_topic(self, topic: str, *, partitions: int = 1, compacted: bool = False) -> None:
        def create(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR IGNORE INTO topics(name, partitions, compacted) VALUES (?, ?, ?)",
                (topic, partitions, int(compacted)),
            )

        await self._run(create)

    async def partitions(self, topic: str) -> int:
        def count(db: sqlite3.Connection) -> int:
            row = db.execute("SELECT partitions FROM topics WHERE name = ?", (topic,)).fetchone()
            return int(row[0]) if row else 0

        return await self._run(count)

    # -- writing --------------------------------------------------------------

    async def append(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Headers = (),
        timestamp_ms: int | None = None,
        partition: int | None = None,
    ) -> Position:
        [position] = await self._append(topic, [(key, value, headers)], timestamp_ms, partition)
        return position

    async def append_many(
        self,
        topic: str,
        items: Sequence[tuple[bytes | None, bytes | None, Headers]],
        *,
        timestamp_ms: int | None = None,
    ) -> list[Position]:
        return await self._append(topic, list(items), timestamp_ms, None)

    async def _append(
        self,
        topic: str,
        items: list[tuple[bytes | None, bytes | None, Headers]],
        timestamp_ms: int | None,
        partition: int | None,
    ) -> list[Position]:
        ts = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)

        def write(db: sqlite3.Connection) -> list[Position]:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("INSERT OR IGNORE INTO topics(name, partitions) VALUES (?, 1)", (topic,))
                (parts,) = db.execute("SELECT partitions FROM topics WHERE name = ?", (topic,)).fetchone()
                positions = []
                ends: dict[int, int] = {}
                for key, value, headers in items:
                    part = partition if partition is not None else partition_for(key, parts)
                    if part not in ends:
                        row = db.execute(
                            "SELECT MAX(offset) FROM records WHERE topic = ? AND part = ?", (topic, part)
                        ).fetchone()
                        ends[part] = -1 if row[0] is None else int(row[0])
                    ends[part] += 1
                    db.execute(
                        "INSERT INTO records(topic, part, offset, key, value, headers, ts) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (topic, part, ends[part], key, value, _encode_headers(headers), ts),
                    )
                    positions.append(Position(topic, part, ends[part]))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return positions

        positions = await self._run(write)
        self._notify()
        return positions

    # -- reading --------------------------------------------------------------

    async def read(
        self, topic: str, offset: int, *, partition: int = 0, limit: int = 500, timeout: float = 0.0
    ) -> list[Record]:
        def fetch(db: sqlite3.Connection) -> list[Record]:
            rows = db.execute(
                "SELECT offset, key, value, headers, ts FROM records "
                "WHERE topic = ? AND part = ? AND offset >= ? ORDER BY offset LIMIT ?",
                (topic, partition, offset, limit),
            ).fetchall()
            return [Record(topic, partition, int(o), k, v, _decode_headers(h), int(ts)) for o, k, v, h, ts in rows]

        deadline = time.monotonic() + timeout
        while True:
            changed = self._changed
            records = await self._run(fetch)
            remaining = deadline - time.monotonic()
            if records or remaining <= 0:
                return records
            # Appends from this process wake us at once; other processes are polled.
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that races the wake-up.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, self._poll)):
                    await changed.wait()

    async def end_offset(self, topic: str, *, partition: int = 0) -> int:
        def end(db: sqlite3.Connection) -> int:
            row = db.execute(
                "SELECT MAX(offset) FROM records WHERE topic = ? AND part = ?", (topic, partition)
            ).fetchone()
            return 0 if row[0] is None else int(row[0]) + 1

        return await self._run(end)

    async def end_offsets(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        return {p: await self.end_offset(topic, partition=p) for p in partitions}

    async def commit(self, group: str, topic: str, offset: int, *, partition: int = 0) -> None:
        def store(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO commits(grp, topic, part, offset) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(grp, topic, part) DO UPDATE SET offset = excluded.offset",
                (group, topic, partition, offset),
            )

        await self._run(store)

    async def committed(self, group: str, topic: str, *, partition: int = 0) -> int | None:
        def load(db: sqlite3.Connection) -> int | None:
            row = db.execute(
                "SELECT offset FROM commits WHERE grp = ? AND topic = ? AND part = ?", (group, topic, partition)
            ).fetchone()
            return None if row is None else int(row[0])

        return await self._run(load)

    async def read_compacted(self, topic: str) -> dict[bytes, Record]:
        def load(db: sqlite3.Connection) -> dict[bytes, Record]:
            rows = db.execute(
                "SELECT part, offset, key, value, headers, ts FROM records "
                "WHERE topic = ? AND key IS NOT NULL ORDER BY part, offset",
                (topic,),
            ).fetchall()
            latest: dict[bytes, Record] = {}
            for part, offset, key, value, headers, ts in rows:
                if value is None:
                    latest.pop(key, None)
                else:
                    latest[key] = Record(topic, int(part), int(offset), key, value, _decode_headers(headers), ts)
            return latest

        return await self._run(load)

    async def status(self) -> dict[str, Any]:
        def count(db: sqlite3.Connection) -> int:
            return int(db.execute("SELECT COUNT(*) FROM topics").fetchone()[0])

        try:
            topics = await self._run(count)
        except LogUnavailable as exc:
            return {"backend": self.name, "ok": False, "path": str(self.path), "error": exc.message}
        return {"backend": self.name, "ok": True, "path": str(self.path), "topics": topics}

    def member(self, group: str, topic: str) -> SoloMember:
        """The one process there is holds every partition."""
        return SoloMember(self, group, topic)

    def writer(self, transactional_id: str) -> SequentialWriter:
        """Appends then commits: nothing else writes to this log."""
        return SequentialWriter(self, transactional_id)
