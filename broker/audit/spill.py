"""A routing state bigger than memory: its growing maps kept in a file, the recent part in memory.

The routing state holds every family the log names, so it grows with the log. A
replay of a national log cannot hold it all in memory; ``Spill`` bounds it.

- Until the process's peak resident memory reaches the ceiling, nothing
  changes: the state's maps are plain dicts, as fast as ever.
- When it does (``Spill.check``, called between inputs), every map that grows
  with the log (``GROWING``) is replaced by a ``SpillMap`` holding the same
  entries. A ``SpillMap`` keeps at most ``cap`` entries in memory, the most
  recently loaded or added, and the others pickled in a SQLite file of its own
  in a private temporary directory, deleted at ``close``.
- Each cap starts at 70 % of the entries the map held when the ceiling was
  reached, and drops by a sixth each time the process grows 5 % past the peak
  it had when the caps last dropped (the peak never falls, so only new growth
  lowers them), never below ``floor``.
- Entries leave memory only in ``check``, between inputs, so an entry a rule is
  changing in place (a list it appends to) is written out whole, after the
  change. The outputs are the same as with plain dicts: only where the
  entries live changes (``test_spill``).

Pickle is safe here: the file is written by this process alone, in a directory
only it can read, and nothing from outside is ever unpickled.
"""

from __future__ import annotations

import contextlib
import pickle
import shutil
import sqlite3
import tempfile
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from broker.audit.workers import peak_rss_kb

__all__ = ["GROWING", "Spill", "SpillMap", "SpillSet"]

_MISS = object()
_ABSENT = object()  # known not to be in the file (or deleted since): nothing to write back

# (owner, attribute, factory of a missing entry): the maps that grow with the log. The directory of
# organisations, the escalation heaps and what awaits an acknowledgement stay in memory: they grow with
# the partnership and with the next few days, not with the log.
GROWING: tuple[tuple[str, str, Callable[[], Any] | None], ...] = (
    ("graph", "_registrations", list),
    ("graph", "_compositions", list),
    ("graph", "_named_in_composition", set),
    ("graph", "_births", list),
    ("graph", "_births_by_parent", set),
    ("graph", "_births_by_booking", list),
    ("graph", "_pregnancies", None),
    ("graph", "_pregnancies_by_person", set),
    ("graph", "_slots", list),
    ("graph", "_csc_publisher", list),
    ("graph", "_assessments", list),
    ("graph", "_assessments_by_person", set),
    ("people", "_parent", None),
    ("people", "_members", None),
    ("people", "_dob", None),
    ("people", "_sensitive", None),
    ("items", "events", None),
    ("items", "seq", None),
    ("items", "_by_key", set),
    ("items", "_plans", None),
    ("items", "_item_of", None),
    ("items", "_plans_by_child", set),
    ("items", "_challenges", None),
    ("items", "_resolved", bool),
    ("state", "had", set),
    ("state", "item_had", set),
    ("state", "told", list),
    ("state", "_view_of", None),
    ("state", "_challenge_recipients", list),
    ("state", "_withheld_seen", bool),
)
_SETS = frozenset({"_resolved", "_withheld_seen"})  # sets in the state: a SpillSet holds them


def _owner(state: Any, name: str) -> Any:
    return {"state": state, "graph": state.graph, "people": state.graph.people, "items": state.items}[name]


class _Bloom:
    """Which keys may be in the file: never a false no, and about 1.4 % false yeses (two probes, 16 bits a key).

    Most reads of a spilled map are of keys it never held (a person with no registration yet), and this
    answers those without asking the file. Layers double in size as keys are added, so it needs no size
    up front; at 2 bytes a key it is a small fraction of the entries themselves.
    """

    def __init__(self) -> None:
        self._layers: list[tuple[bytearray, int]] = []
        self._room = 0

    def add(self, key: Hashable) -> None:
        if self.may_hold(key):
            return
        if self._room == 0:
            keys = 1 << (16 + len(self._layers))
            self._layers.append((bytearray(keys * 2), keys * 16 - 1))
            self._room = keys
        self._room -= 1
        bits, mask = self._layers[-1]
        h = hash(key)
        a, b = h & mask, (h >> 32) & mask
        bits[a >> 3] |= 1 << (a & 7)
        bits[b >> 3] |= 1 << (b & 7)

    def may_hold(self, key: Hashable) -> bool:
        h = hash(key)
        for bits, mask in self._layers:
            a, b = h & mask, (h >> 32) & mask
            if bits[a >> 3] >> (a & 7) & 1 and bits[b >> 3] >> (b & 7) & 1:
                return True
        return False


class SpillMap:
    """A dict whose entries past ``cap`` live in a SQLite table (the methods the routing state uses).

    With ``factory``, a missing entry read by ``m[key]`` is created, as in a ``defaultdict``.
    """

    def __init__(
        self, db: sqlite3.Connection, table: str, factory: Callable[[], Any] | None, mem: dict[Any, Any]
    ) -> None:
        self._db = db
        self._table = table
        self._factory = factory
        self._mem: dict[Any, Any] = dict(mem)
        self.cap = len(mem)
        self.loads = 0
        self._written = _Bloom()
        self._clean: set[Any] = set()  # loaded from the file and not handed out for changing since
        db.execute(f"CREATE TABLE {table} (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
        self._select = f"SELECT v FROM {table} WHERE k = ?"
        self._write = f"INSERT OR REPLACE INTO {table} (k, v) VALUES (?, ?)"
        self._delete = f"DELETE FROM {table} WHERE k = ?"

    @staticmethod
    def _key(key: Hashable) -> bytes:
        return key.encode() if isinstance(key, str) else pickle.dumps(key, protocol=5)

    def _load(self, key: Hashable) -> Any:
        if not self._written.may_hold(key):
            self._mem[key] = _ABSENT
            return _ABSENT
        self.loads += 1
        row = self._db.execute(self._select, (self._key(key),)).fetchone()
        value = _ABSENT if row is None else pickle.loads(row[0])
        self._mem[key] = value
        self._clean.add(key)
        return value

    def get(self, key: Hashable, default: Any = None) -> Any:
        value = self._mem.get(key, _MISS)
        if value is _MISS:
            value = self._load(key)
        return default if value is _ABSENT else value

    def __getitem__(self, key: Hashable) -> Any:
        value = self._mem.get(key, _MISS)
        if value is _MISS:
            value = self._load(key)
        self._clean.discard(key)  # the routing state changes entries in place only after reading them so
        if value is _ABSENT:
            if self._factory is None:
                raise KeyError(key)
            value = self._mem[key] = self._factory()
        return value

    def __setitem__(self, key: Hashable, value: Any) -> None:
        self._clean.discard(key)
        self._mem[key] = value

    def __contains__(self, key: Hashable) -> bool:
        return self.get(key, _MISS) is not _MISS

    def setdefault(self, key: Hashable, default: Any) -> Any:
        value = self.get(key, _MISS)
        self._clean.discard(key)
        if value is _MISS:
            value = self._mem[key] = default
        return value

    def pop(self, key: Hashable, default: Any = _MISS) -> Any:
        value = self.get(key, _MISS)
        if value is _MISS:
            if default is _MISS:
                raise KeyError(key)
            return default
        self._mem[key] = _ABSENT
        if self._written.may_hold(key):
            self._db.execute(self._delete, (self._key(key),))
        return value

    def __delitem__(self, key: Hashable) -> None:
        self.pop(key)

    def evict(self) -> int:
        """Write the oldest entries out until at most 90 % of ``cap`` stay (once past 110 %); how many."""
        if len(self._mem) <= self.cap * 1.1:
            return 0
        keys = list(islice(self._mem, len(self._mem) - int(self.cap * 0.9)))
        mem, clean = self._mem, self._clean
        changed = [k for k in keys if mem[k] is not _ABSENT and k not in clean]
        self._db.executemany(self._write, [(self._key(k), pickle.dumps(mem[k], protocol=5)) for k in changed])
        for k in changed:
            self._written.add(k)
        for k in keys:
            del mem[k]
            clean.discard(k)
        return len(keys)

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Every entry, from the file and memory (for a snapshot; loads everything)."""
        for k, v in self._db.execute(f"SELECT k, v FROM {self._table}"):
            key = k.decode() if isinstance(k, bytes) and not k.startswith(b"\x80") else pickle.loads(k)
            if key not in self._mem:
                yield key, pickle.loads(v)
        for key, value in self._mem.items():
            if value is not _ABSENT:
                yield key, value


class SpillSet(SpillMap):
    """A set (of hashable keys) held as a ``SpillMap`` of ``True``."""

    def add(self, key: Hashable) -> None:
        self._clean.discard(key)
        self._mem[key] = True

    def __contains__(self, key: Hashable) -> bool:
        return self.get(key, False) is True


class Spill:
    """Keeps a routing state's growing maps within a memory ceiling (see the module's docstring).

    Args:
        limit: the process's peak resident memory, in bytes, past which the maps spill.
        temp_dir: where the file goes (default: the system's temporary directory).
        floor: the least entries a map keeps in memory.
    """

    def __init__(self, limit: int, temp_dir: Path | None = None, *, floor: int = 1024) -> None:
        self.limit = limit
        self.floor = floor
        self._temp_dir = temp_dir
        self._dir: Path | None = None
        self._db: sqlite3.Connection | None = None
        self._maps: list[SpillMap] = []
        self._peak = 0
        self.spilled_at: int | None = None  # the peak when the maps first spilled
        self.evicted = 0
        self.file_bytes = 0  # the file's size when it was closed
        self._loads = 0

    @property
    def loads(self) -> int:
        """Entries read back from the file so far."""
        return self._loads + sum(m.loads for m in self._maps)

    def check(self, state: Any) -> None:
        """Between inputs: spill the state once the ceiling is reached, and keep each map within its cap."""
        peak = peak_rss_kb() * 1024
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
        for m in self._maps:
            self.evicted += m.evict()
        self._db.execute("COMMIT")

    def _set_caps(self, share: float) -> None:
        for m in self._maps:
            m.cap = max(self.floor, int(min(m.cap, len(m._mem)) * share))

    def _start(self, state: Any) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="jigsaw-state-", dir=self._temp_dir))
        db = self._db = sqlite3.connect(self._dir / "state.db", isolation_level=None)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -16384", "temp_store = FILE"):
            db.execute(f"PRAGMA {pragma}")
        for n, (owner, attr, factory) in enumerate(GROWING):
            obj = _owner(state, owner)
            plain = getattr(obj, attr)
            if attr in _SETS:
                spilled: SpillMap = SpillSet(db, f"m{n}", None, dict.fromkeys(plain, True))
            else:
                spilled = SpillMap(db, f"m{n}", factory, plain)
            setattr(obj, attr, spilled)
            self._maps.append(spilled)

    def restore(self, state: Any) -> None:
        """Put plain dicts and sets back (every entry in memory again), as a snapshot needs them."""
        if self._db is None:
            return
        for owner, attr, factory in GROWING:
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
        """Delete the file (what is in memory stays usable only if ``restore`` put it back first)."""
        if self._db is not None:
            with contextlib.suppress(OSError):
                self.file_bytes = (self._dir / "state.db").stat().st_size if self._dir else 0
            self._db.close()
            self._db = None
        self._loads = self.loads
        self._maps = []
        if self._dir is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self._dir)
            self._dir = None
