"""A routing state bigger than memory: its growing maps kept in a file, the recent part in memory.

The routing state holds every family the log names, so it grows with the log. A
replay of a national log cannot hold it all in memory; ``Spill`` bounds it.

- Until the process's peak resident memory reaches the ceiling, nothing
  changes: the state's maps are plain dicts, as fast as ever.
- When it does (``Spill.check``, called between inputs), every map that grows
  with the log (``GROWING``) is replaced by a ``SpillMap`` holding the same
  entries. Maps keyed alike (by person, by event id...) share a table of a
  SQLite file in the temporary directory, unlinked as soon as it is open: one row a
  key, so one read brings back everything known under it. Memory keeps at most
  ``cap`` keys of each table, those that came into memory last; the rest are in
  the file. A Bloom filter of the keys ever written answers most reads of keys
  the file has never held without asking it.
- Each cap starts at 70 % of the keys the table held when the ceiling was
  reached, and drops by a sixth each time the process grows 5 % past the peak
  it had when the caps last dropped (the peak never falls, so only new growth
  lowers them), never below ``floor``.
- Keys leave memory only in ``check``, between inputs, so an entry a rule is
  changing in place (a list it appends to) is written out whole, after the
  change; a key only read since it was loaded is not written again. The
  outputs are the same as with plain dicts: only where the entries live
  changes (``test_spill``).

Pickle is safe here: the file is written by this process alone, has no name
once open (it was made in a directory only this user can read), and nothing from
outside is ever unpickled.
"""

from __future__ import annotations

import contextlib
import pickle
import sqlite3
import tempfile
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from broker.audit.spill_rows import Bloom, dumps, file_key, from_file_key
from broker.audit.workers import peak_rss_kb
from broker.errors import StoreUnavailable

__all__ = ["GROWING", "Spill", "SpillMap", "SpillSet"]

_MISS = object()
_ABSENT = object()  # known not to be in the file (or deleted since): nothing to write back

# (owner, attribute, factory of a missing entry, table): the maps that grow with the log. Maps keyed
# alike share a table, one row a key: a person's registrations, births, households, pregnancies, items
# and identity come back from the file in one read. The directory of organisations, the escalation heaps
# and what awaits an acknowledgement stay in memory: they grow with the partnership and the next few
# days, not with the log.
GROWING: tuple[tuple[str, str, Callable[[], Any] | None, str], ...] = (
    ("graph", "_registrations", list, "person"),
    ("graph", "_compositions", list, "person"),
    ("graph", "_named_in_composition", set, "person"),
    ("graph", "_births", list, "person"),
    ("graph", "_births_by_parent", set, "person"),
    ("graph", "_pregnancies_by_person", set, "person"),
    ("graph", "_csc_publisher", list, "person"),
    ("graph", "_assessments", list, "person"),
    ("graph", "_assessments_by_person", set, "person"),
    ("people", "_parent", None, "person"),
    ("people", "_members", None, "person"),
    ("people", "_dob", None, "person"),
    ("people", "_sensitive", None, "person"),
    ("items", "_by_key", set, "person"),
    ("items", "_plans_by_child", set, "person"),
    ("graph", "_slots", list, "slot"),
    ("graph", "_births_by_booking", list, "booking"),
    ("graph", "_pregnancies", None, "booking"),
    ("items", "events", None, "event"),
    ("items", "seq", None, "event"),
    ("items", "_item_of", None, "event"),
    ("state", "had", set, "event"),
    ("state", "told", list, "event"),
    ("state", "_challenge_recipients", list, "event"),
    ("items", "_plans", None, "item"),
    ("state", "item_had", set, "item"),
    ("state", "_view_of", None, "notification"),
    ("items", "_challenges", None, "challenge"),
    ("items", "_resolved", None, "challenge"),
    ("state", "_withheld_seen", None, "withheld"),
)
_SETS = frozenset({"_resolved", "_withheld_seen"})  # sets in the state: a SpillSet holds them


def _owner(state: Any, name: str) -> Any:
    return {"state": state, "graph": state.graph, "people": state.graph.people, "items": state.items}[name]


class _Table:
    """One SQLite table for the maps that share a key: a row a key, ``{map number: value}`` pickled.

    ``keys`` are the keys in memory, oldest first. A map holding a key in memory holds its current
    value (or ``_ABSENT``); a map not holding a key that is in ``keys`` has its value in the row still.
    """

    def __init__(self, db: sqlite3.Connection, name: str) -> None:
        self._db = db
        self.maps: list[SpillMap] = []
        self.keys: dict[Any, None] = {}
        self.clean: set[Any] = set()  # keys in memory as the file has them (nothing to write)
        self.cap = 0
        self.loads = 0
        self.writes = 0
        self._written = Bloom()
        db.execute(f"CREATE TABLE {name} (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
        self._select = f"SELECT v FROM {name} WHERE k = ?"
        self._write = f"INSERT OR REPLACE INTO {name} (k, v) VALUES (?, ?)"
        self._delete = f"DELETE FROM {name} WHERE k = ?"
        self._all = f"SELECT k, v FROM {name}"

    def _row(self, key: Hashable) -> dict[int, Any] | None:
        if not self._written.may_hold(key):
            return None
        self.loads += 1
        found = self._db.execute(self._select, (file_key(key),)).fetchone()
        return pickle.loads(found[0]) if found else None

    def load(self, key: Hashable, into: SpillMap) -> Any:
        """Bring ``key`` into memory for ``into`` (and, from the same row, every map of the table lacking it)."""
        fresh = key not in self.keys
        if fresh:
            self.keys[key] = None
            self.clean.add(key)
        row = self._row(key)
        if row is None:
            into._mem[key] = _ABSENT
        else:
            for n, m in enumerate(self.maps):
                if key not in m._mem:
                    m._mem[key] = row.get(n, _ABSENT)
        return into._mem[key]

    def evict(self) -> int:
        """Write the oldest keys out until at most 90 % of ``cap`` stay (once past 110 %); how many."""
        if len(self.keys) <= self.cap * 1.1:
            return 0
        keys = list(islice(self.keys, len(self.keys) - int(self.cap * 0.9)))
        rows, gone = [], []
        for key in keys:
            del self.keys[key]
            values = [m._mem.pop(key, _MISS) for m in self.maps]
            if key in self.clean:
                self.clean.discard(key)
                continue
            if any(v is _MISS for v in values):
                old = self._row(key) or {}
                values = [old.get(n, _ABSENT) if v is _MISS else v for n, v in enumerate(values)]
            row = {n: v for n, v in enumerate(values) if v is not _ABSENT}
            if row:
                rows.append((file_key(key), dumps(row)))
                self._written.add(key)
            elif self._written.may_hold(key):
                gone.append((file_key(key),))
        self._db.executemany(self._write, rows)
        self._db.executemany(self._delete, gone)
        self.writes += len(rows)
        return len(keys)

    def rows(self) -> Iterator[tuple[Hashable, dict[int, Any]]]:
        for k, v in self._db.execute(self._all):
            yield from_file_key(k), pickle.loads(v)


class SpillMap:
    """One map of a ``_Table``, with the methods of a dict the routing state uses.

    With ``factory``, a missing entry read by ``m[key]`` is created, as in a ``defaultdict``. The routing
    state changes an entry in place only after reading it with ``m[key]`` (or ``setdefault``), never
    after ``get``: an entry read only with ``get`` is not written out again.
    """

    def __init__(self, table: _Table, factory: Callable[[], Any] | None, mem: dict[Any, Any]) -> None:
        self._table = table
        self._n = len(table.maps)
        self._factory = factory
        self._mem: dict[Any, Any] = dict(mem)
        table.maps.append(self)
        table.keys.update(dict.fromkeys(mem))

    def get(self, key: Hashable, default: Any = None) -> Any:
        value = self._mem.get(key, _MISS)
        if value is _MISS:
            value = self._table.load(key, self)
        return default if value is _ABSENT else value

    def __getitem__(self, key: Hashable) -> Any:
        value = self._mem.get(key, _MISS)
        if value is _MISS:
            value = self._table.load(key, self)
        self._table.clean.discard(key)
        if value is _ABSENT:
            if self._factory is None:
                raise KeyError(key)
            value = self._mem[key] = self._factory()
        return value

    def __setitem__(self, key: Hashable, value: Any) -> None:
        if key not in self._mem:
            self._table.load(key, self)
        self._table.clean.discard(key)
        self._mem[key] = value

    def __contains__(self, key: Hashable) -> bool:
        return self.get(key, _MISS) is not _MISS

    def setdefault(self, key: Hashable, default: Any) -> Any:
        value = self.get(key, _MISS)
        self._table.clean.discard(key)
        if value is _MISS:
            value = self._mem[key] = default
        return value

    def pop(self, key: Hashable, default: Any = _MISS) -> Any:
        value = self.get(key, _MISS)
        if value is _MISS:
            if default is _MISS:
                raise KeyError(key)
            return default
        self._table.clean.discard(key)
        self._mem[key] = _ABSENT
        return value

    def __delitem__(self, key: Hashable) -> None:
        self.pop(key)

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Every entry, from the file and memory (for a snapshot: reads everything)."""
        for key, row in self._table.rows():
            if key not in self._mem and self._n in row:
                yield key, row[self._n]
        for key, value in self._mem.items():
            if value is not _ABSENT:
                yield key, value


class SpillSet(SpillMap):
    """A set (of hashable keys) held as a ``SpillMap`` of ``True``."""

    def add(self, key: Hashable) -> None:
        self[key] = True

    def __contains__(self, key: Hashable) -> bool:
        return self.get(key, False) is True


class Spill:
    """Keeps a routing state's growing maps within a memory ceiling (see the module's docstring).

    Args:
        limit: the process's peak resident memory, in bytes, past which the maps spill.
        temp_dir: where the file goes (default: the system's temporary directory).
        floor: the least keys a table keeps in memory.
    """

    def __init__(self, limit: int, temp_dir: Path | None = None, *, floor: int = 1024) -> None:
        self.limit = limit
        self.floor = floor
        self._temp_dir = temp_dir
        self._db: sqlite3.Connection | None = None
        self._tables: dict[str, _Table] = {}
        self._peak = 0
        self.spilled_at: int | None = None  # the peak when the maps first spilled
        self.evicted = 0
        self.file_bytes = 0  # the file's size when it was closed
        self._loads = self._writes = 0

    @property
    def loads(self) -> int:
        """Rows read back from the file so far."""
        return self._loads + sum(t.loads for t in self._tables.values())

    @property
    def writes(self) -> int:
        """Rows written to the file so far."""
        return self._writes + sum(t.writes for t in self._tables.values())

    def check(self, state: Any) -> None:
        """Between inputs: spill the state once the ceiling is reached, and keep each table within its cap.

        Raises:
            StoreUnavailable: the file could not be written (a full disk, most likely).
        """
        peak = peak_rss_kb() * 1024
        try:
            if self._db is None:
                if peak < self.limit:
                    return
                self._start(state)
                self._set_caps(0.7)
                self.spilled_at = self._peak = peak
            elif peak > max(self._peak, self.limit) * 1.05:
                self._set_caps(5 / 6)
                self._peak = peak
            assert self._db is not None
            self._db.execute("BEGIN")
            for table in self._tables.values():
                self.evicted += table.evict()
            self._db.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            where = self._temp_dir or tempfile.gettempdir()
            raise StoreUnavailable(
                f"the routing state's temporary file in {where} could not be written ({exc}): free space there "
                "(the system's temporary directory, TMPDIR) or give the replay more --memory"
            ) from exc

    def _set_caps(self, share: float) -> None:
        for table in self._tables.values():
            table.cap = max(self.floor, int(min(table.cap or len(table.keys), len(table.keys)) * share))

    def _start(self, state: Any) -> None:
        folder = Path(tempfile.mkdtemp(prefix="jigsaw-state-", dir=self._temp_dir))
        path = folder / "state.db"
        try:
            db = self._db = sqlite3.connect(path, isolation_level=None)
            for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -16384", "temp_store = FILE"):
                db.execute(f"PRAGMA {pragma}")
            for owner, attr, factory, name in GROWING:
                if name not in self._tables:
                    self._tables[name] = _Table(db, name)
                table = self._tables[name]
                obj = _owner(state, owner)
                plain = getattr(obj, attr)
                if attr in _SETS:
                    spilled: SpillMap = SpillSet(table, None, dict.fromkeys(plain, True))
                else:
                    spilled = SpillMap(table, factory, plain)
                setattr(obj, attr, spilled)
        finally:
            # Open, the file needs no name (there is no journal to name after it): unnamed, the system frees
            # its space when the connection closes or the process ends, however it ends (SIGKILL included).
            path.unlink(missing_ok=True)
            folder.rmdir()

    def restore(self, state: Any) -> None:
        """Put plain dicts and sets back (every entry in memory again), as a snapshot needs them."""
        if self._db is None:
            return
        for owner, attr, factory, _ in GROWING:
            obj = _owner(state, owner)
            spilled = getattr(obj, attr)
            if attr in _SETS:
                setattr(obj, attr, {k for k, _ in spilled.items()})
            elif factory is None:
                setattr(obj, attr, dict(spilled.items()))
            else:
                setattr(obj, attr, defaultdict(factory, spilled.items()))
        self.close()

    def close(self) -> None:
        """Close and so free the file (what is in memory stays usable only if ``restore`` put it back first)."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                pages, size = (self._db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "page_size"))
                self.file_bytes = pages * size
            self._db.close()
            self._db = None
        self._loads, self._writes = self.loads, self.writes
        self._tables = {}
