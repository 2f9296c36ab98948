"""What the replay must remember without holding it in memory: a temporary SQLite index.

A replay of a national log cannot keep every notification, decision and event
id in lists. ``OutputIndex`` keeps them in a SQLite file in a temporary
directory (deleted on ``close``): the notifications and decision records on the
log (by id, with where they are and the SHA-256 of their bytes), which of them the re-run
policy gave (``matched``), and every accepted event's
id, position and publisher (for duplicates, retractions and naming findings).
Lookups go a batch at a time, so the replay's resident memory stays that of the
routing state and one batch.
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from broker.audit.verify import Recorded
from broker.log.base import Record

__all__ = ["EventRow", "OutputIndex", "RecordedRow"]

_CHUNK = 500  # host parameters per IN (...) query

EventRow = tuple[str, int, int, int, str]  # (event id, offset, rank, timestamp ms, source)
# (rowid, topic, partition, offset, at ms, SHA-256 of the value, the value when kept)
RecordedRow = tuple[int, str, int, int, int, bytes | None, bytes | None]

_SCHEMA = """
CREATE TABLE recorded(what TEXT, ident TEXT, topic TEXT, part INTEGER, off INTEGER, at_ms INTEGER,
                      digest BLOB, value BLOB, matched INTEGER NOT NULL DEFAULT 0);
CREATE TABLE events(event_id TEXT PRIMARY KEY, off INTEGER, rank INTEGER, ts INTEGER, source TEXT) WITHOUT ROWID;
"""


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


class OutputIndex:
    """The replay's temporary index (one SQLite file, private to the replay)."""

    def __init__(self, directory: Path | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="jigsaw-replay-", dir=directory)
        self._db = sqlite3.connect(Path(self._dir.name) / "index.db", isolation_level=None)
        self._db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-8000;")
        self._db.executescript(_SCHEMA)
        self._db.execute("BEGIN")

    # -- the records on the log -------------------------------------------------

    def add_recorded(self, what: str, items: Iterable[Recorded], *, values: bool = False) -> None:
        """Index notification (``what="notification"``) or decision records that have an id.

        Each is kept as its SHA-256 (the bytes stay on the log; a record whose digest differs from what
        the policy gives is read back from there), and with its bytes too when ``values``.
        """
        self._db.executemany(
            "INSERT INTO recorded(what, ident, topic, part, off, at_ms, digest, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    what,
                    r.ident,
                    r.record.topic,
                    r.record.partition,
                    r.record.offset,
                    r.record.timestamp_ms,
                    None if r.record.value is None else hashlib.sha256(r.record.value).digest(),
                    r.record.value if values else None,
                )
                for r in items
                if r.ident is not None
            ),
        )

    def seal_recorded(self) -> None:
        """Build the id index once every record is in."""
        self._db.execute("CREATE INDEX recorded_ident ON recorded(what, ident)")

    def repeated(self, what: str) -> Iterator[tuple[str, list[RecordedRow]]]:
        """Each id that is on the log more than once, with its rows, first first."""
        ids = [
            row[0]
            for row in self._db.execute(
                "SELECT ident FROM recorded WHERE what = ? GROUP BY ident HAVING COUNT(*) > 1", (what,)
            )
        ]
        for ident in ids:
            yield (
                ident,
                list(
                    self._db.execute(
                        "SELECT rowid, topic, part, off, at_ms, digest, value FROM recorded "
                        "WHERE what = ? AND ident = ? ORDER BY rowid",
                        (what, ident),
                    )
                ),
            )

    def retire(self, rowids: Iterable[int]) -> None:
        """Mark rows as accounted for (a repeat of an earlier row, or one the policy gave)."""
        rows = [str(int(r)) for r in rowids]
        for part in _chunks(rows):
            self._db.execute(f"UPDATE recorded SET matched = 1 WHERE rowid IN ({','.join(part)})")

    def latest(self) -> int | None:
        """The latest ``at`` (ms) of any notification or decision on the log."""
        row = self._db.execute("SELECT MAX(at_ms) FROM recorded").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def lookup(self, what: str, idents: Sequence[str]) -> dict[str, tuple[RecordedRow, bool]]:
        """The first record on the log of each id (those it holds), and whether it is already accounted for."""
        found: dict[str, tuple[RecordedRow, bool]] = {}
        for part in _chunks(idents):
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT ident, matched, rowid, topic, part, off, at_ms, digest, value FROM recorded "
                f"WHERE what = ? AND ident IN ({marks}) ORDER BY rowid DESC",
                (what, *part),
            )
            for ident, matched, *rest in rows:
                found[ident] = (tuple(rest), bool(matched))  # type: ignore[assignment]  # the first row wins (DESC)
        return found

    def unmatched(self, what: str) -> Iterator[tuple[str, RecordedRow]]:
        """Every record on the log the policy did not give, in log order."""
        rows = self._db.execute(
            "SELECT ident, rowid, topic, part, off, at_ms, digest, value FROM recorded WHERE what = ? AND matched = 0 "
            "ORDER BY part, off",
            (what,),
        )
        for ident, *rest in rows:
            yield ident, tuple(rest)  # type: ignore[misc]

    def recorded(self, what: str) -> Iterator[Record]:
        """Every record of one kind, in log order (for a chronology: indexed with ``values``)."""
        for topic, part, off, at_ms, value, ident in self._db.execute(
            "SELECT topic, part, off, at_ms, value, ident FROM recorded WHERE what = ? ORDER BY part, off", (what,)
        ):
            yield Record(topic, part, off, None, value, ((f"{what}_id", ident.encode()),), at_ms)

    # -- accepted events --------------------------------------------------------

    def events(self, event_ids: Sequence[str]) -> dict[str, EventRow]:
        """The indexed events among ``event_ids``."""
        found: dict[str, EventRow] = {}
        for part in _chunks(event_ids):
            marks = ",".join("?" * len(part))
            for row in self._db.execute(
                f"SELECT event_id, off, rank, ts, source FROM events WHERE event_id IN ({marks})",
                tuple(part),
            ):
                found[row[0]] = row
        return found

    def add_events(self, rows: Iterable[EventRow]) -> None:
        """Index accepted events (the first of each id wins)."""
        self._db.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?)", rows)

    def place(self, at_ms: int) -> int:
        """The sort rank just before the first event at or after a time (to sort findings about lost events)."""
        row = self._db.execute("SELECT MIN(rank) FROM events WHERE ts >= ?", (at_ms,)).fetchone()
        return int(row[0]) - 1 if row and row[0] is not None else 1 << 62

    def close(self) -> None:
        """Delete the index (idempotent)."""
        try:
            self._db.close()
        finally:
            self._dir.cleanup()
