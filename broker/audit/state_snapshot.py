"""A router snapshot: the routing state as versioned JSON, with the input offset it reflects (pure).

A replay can start from a snapshot instead of from the first record: it loads
the state, checks the tail against the signed tree heads and re-runs the policy
over it only; a router on a machine with no files starts from the newest one
in the store. A snapshot may come from anyone (another auditor, a router), so
it is never unpickled: it is JSON, and the decoder builds only the routing
classes it knows, by setting their fields; nothing in the file names code to
run. Format (``jigsaw.router-snapshot.v2``)::

    {"format": "jigsaw.router-snapshot.v2",
     "input_offset": n,          the state reflects input records 0 .. n-1
     "at_ms": t,                 the log timestamp of record n-1 (the time the state stood at)
     "tree_head": {"tree_size", "root_hash"} or null,   the newest verified head when it was written
     "outputs": {topic: [end offset of partition 0, 1, ...]} or null,
                                 where the router's output topics ended when it was written (null: unknown)
     "escalations": [id, ...],   escalations already written that the state has not raised yet
     "shapes": [["module:Class", [attribute, ...]], ...],
     "state": value}

A value is a list whose first item, a small number, says what it holds, or any
other JSON value, which stands for itself (the encoder writes strings, whole
numbers, booleans and null so): ``[0, x...]`` list, ``[1, x...]``
tuple, ``[2, x...]`` set, ``[3, x...]`` frozenset (set items sorted, so a
state encodes the same whatever the hash seed), ``[4, k, v, k, v...]`` dict,
``[5, "list"|"set"|"dict", k, v...]`` defaultdict, ``[6, iso]`` datetime, ``[7,
iso]`` date, ``[8, seconds]`` timedelta, ``[9, base64]`` bytes, ``[10,
repr]`` float, ``[11, n]`` a second reference to the n-th instance (shared
objects stay shared), ``[12, s, a...]`` an instance of shape ``s`` (its class
and attribute names, listed once in ``shapes``) with its attributes in that
order. Instances are numbered in the order they first appear. Positional lists
keep the document small and quick to parse: a big city's state is millions of
values. A snapshot that does not decode, names a class outside
``broker.routing`` and ``broker.model``, or has another format (v1 included:
the next snapshot replaces it) raises ``SnapshotInvalid``.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import gc
import importlib
import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, ClassVar

from broker.errors import JigsawError
from broker.routing.state import RoutingState

__all__ = ["FORMAT", "RouterSnapshot", "SnapshotInvalid", "decode_snapshot", "encode_snapshot"]

FORMAT = "jigsaw.router-snapshot.v2"
_MODULES = ("broker.routing.", "broker.model")
_FACTORIES: dict[str, type] = {"list": list, "set": set, "dict": dict}
_LIST, _TUPLE, _SET, _FROZENSET, _DICT, _DEFAULTDICT, _DATETIME, _DATE, _TIMEDELTA, _BYTES, _FLOAT, _REF, _OBJECT = (
    range(13)
)


class SnapshotInvalid(JigsawError, ValueError):
    """A router snapshot does not decode; ``message`` says why."""

    code: ClassVar[str] = "snapshot_invalid"


@dataclasses.dataclass(slots=True)
class RouterSnapshot:
    """The routing state after input records ``0 .. input_offset - 1``.

    ``outputs`` (the end offsets of each output topic's partitions when it was
    taken) and ``escalations`` (escalations already written that the state has not
    raised yet) let a router that starts from it look only at what was written
    since; ``outputs`` is None when unknown (a replay's snapshot).
    """

    state: RoutingState
    input_offset: int
    at_ms: int
    tree_size: int | None = None
    root_hash: bytes | None = None
    outputs: dict[str, list[int]] | None = None
    escalations: tuple[str, ...] = ()


def _attrs(obj: object) -> dict[str, Any]:
    if hasattr(obj, "__dict__"):
        return dict(vars(obj))
    names = [n for cls in type(obj).__mro__ for n in getattr(cls, "__slots__", ())]
    return {n: getattr(obj, n) for n in names if n != "__weakref__" and hasattr(obj, n)}


def _sorted(items: set[Any] | frozenset[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:  # mixed types (None beside strings): any fixed order will do
        return sorted(items, key=repr)


class _Encoder:
    def __init__(self) -> None:
        self.seen: dict[int, int] = {}
        self.keep: list[object] = []  # ids stay valid while encoding
        self.shapes: dict[tuple[type, tuple[str, ...]], int] = {}

    def value(self, v: Any) -> Any:
        if v is None or isinstance(v, bool | int | str):
            return v
        if isinstance(v, list):
            return [_LIST, *map(self.value, v)]
        if isinstance(v, tuple):
            return [_TUPLE, *map(self.value, v)]
        if isinstance(v, frozenset):
            return [_FROZENSET, *map(self.value, _sorted(v))]
        if isinstance(v, set):
            return [_SET, *map(self.value, _sorted(v))]
        if isinstance(v, defaultdict):
            kind = next((k for k, f in _FACTORIES.items() if v.default_factory is f), None)
            if kind is None:
                raise SnapshotInvalid(f"a defaultdict of {v.default_factory!r} cannot be written")
            return [_DEFAULTDICT, kind, *self.pairs(v)]
        if isinstance(v, dict):
            return [_DICT, *self.pairs(v)]
        if isinstance(v, dt.datetime):
            return [_DATETIME, v.isoformat()]
        if isinstance(v, dt.date):
            return [_DATE, v.isoformat()]
        if isinstance(v, dt.timedelta):
            return [_TIMEDELTA, v.total_seconds()]
        if isinstance(v, bytes):
            return [_BYTES, base64.b64encode(v).decode("ascii")]
        if isinstance(v, float):
            return [_FLOAT, repr(v)]
        return self.instance(v)

    def pairs(self, d: dict[Any, Any]) -> list[Any]:
        out: list[Any] = []
        for k, x in d.items():
            out.append(self.value(k))
            out.append(self.value(x))
        return out

    def instance(self, v: object) -> Any:
        cls = type(v)
        if not cls.__module__.startswith(_MODULES):
            raise SnapshotInvalid(f"{cls.__module__}.{cls.__qualname__} is not part of the routing state")
        number = self.seen.get(id(v))
        if number is not None:
            return [_REF, number]
        self.seen[id(v)] = len(self.seen)
        self.keep.append(v)
        attrs = _attrs(v)
        shape = self.shapes.setdefault((cls, tuple(attrs)), len(self.shapes))
        return [_OBJECT, shape, *map(self.value, attrs.values())]

    def shape_table(self) -> list[Any]:
        return [[f"{cls.__module__}:{cls.__qualname__}", list(names)] for cls, names in self.shapes]


def _shape(entry: Any) -> tuple[type, tuple[str, ...]]:
    """A class and the attribute names a snapshot may set on it, checked once per shape."""
    path, names = entry
    module, _, name = str(path).partition(":")
    if not module.startswith(_MODULES) or "." in name or not name.isidentifier():
        raise SnapshotInvalid(f"{path!r} is not a routing state class")
    cls = getattr(importlib.import_module(module), name, None)
    if not isinstance(cls, type) or cls.__module__ != module:
        raise SnapshotInvalid(f"{path!r} is not a routing state class")
    for attr in names:
        existing = getattr(cls, attr, None) if isinstance(attr, str) else None
        if not isinstance(attr, str) or attr.startswith("__") or callable(existing) or isinstance(existing, property):
            raise SnapshotInvalid(f"attribute {attr!r} of {path} cannot be set")
    return cls, tuple(names)


class _Decoder:
    def __init__(self, shapes: list[Any]) -> None:
        self.made: list[object] = []
        self.shapes = [_shape(entry) for entry in shapes]

    def value(self, v: Any) -> Any:
        # Only lists are tagged; any other JSON value stands for itself (plain data, nothing to run).
        if v.__class__ is not list:
            return v
        tag, value = v[0], self.value
        if tag == _OBJECT:
            cls, names = self.shapes[v[1]]
            if len(v) != len(names) + 2:
                raise SnapshotInvalid(f"an instance of {cls.__qualname__} with {len(v) - 2} of {len(names)} values")
            obj: object = object.__new__(cls)
            self.made.append(obj)
            for attr, x in zip(names, v[2:], strict=True):
                object.__setattr__(obj, attr, x if x.__class__ is not list else value(x))
            return obj
        if tag == _REF:
            return self.made[v[1]]
        if tag == _LIST:
            return [x if x.__class__ is not list else value(x) for x in v[1:]]
        if tag == _TUPLE:
            return tuple([x if x.__class__ is not list else value(x) for x in v[1:]])
        if tag == _DICT:
            return self.pairs(v, 1, {})
        if tag == _DATETIME:
            return dt.datetime.fromisoformat(v[1])
        if tag == _SET:
            return {x if x.__class__ is not list else value(x) for x in v[1:]}
        if tag == _FROZENSET:
            return frozenset([x if x.__class__ is not list else value(x) for x in v[1:]])
        if tag == _DEFAULTDICT:
            return self.pairs(v, 2, defaultdict(_FACTORIES[v[1]]))
        if tag == _DATE:
            return dt.date.fromisoformat(v[1])
        if tag == _TIMEDELTA:
            return dt.timedelta(seconds=float(v[1]))
        if tag == _BYTES:
            return base64.b64decode(v[1], validate=True)
        if tag == _FLOAT:
            return float(v[1])
        raise SnapshotInvalid(f"unknown tag {tag!r}")

    def pairs(self, v: list[Any], start: int, out: dict[Any, Any]) -> dict[Any, Any]:
        if (len(v) - start) % 2:
            raise SnapshotInvalid("a dict with a key and no value")
        value = self.value
        for i in range(start, len(v), 2):
            k, x = v[i], v[i + 1]
            v[i] = v[i + 1] = None  # the parsed JSON goes as the state grows: its memory is reused at once
            out[k if k.__class__ is not list else value(k)] = x if x.__class__ is not list else value(x)
        return out


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic collector paused: it would walk the millions of new objects again and again (3x slower).

    Nothing else runs meanwhile (encoding and decoding never await), and nothing made here is garbage.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def encode_snapshot(snapshot: RouterSnapshot) -> bytes:
    """The snapshot as UTF-8 JSON.

    Raises:
        SnapshotInvalid: the state holds something the format cannot write.
    """
    encoder = _Encoder()
    with _no_gc():
        state = encoder.value(snapshot.state)
    doc = {
        "format": FORMAT,
        "input_offset": snapshot.input_offset,
        "at_ms": snapshot.at_ms,
        "tree_head": None
        if snapshot.tree_size is None or snapshot.root_hash is None
        else {"tree_size": snapshot.tree_size, "root_hash": snapshot.root_hash.hex()},
        "outputs": snapshot.outputs,
        "escalations": sorted(snapshot.escalations),
        "shapes": encoder.shape_table(),
        "state": state,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def decode_snapshot(data: bytes) -> RouterSnapshot:
    """A snapshot written by ``encode_snapshot``.

    Raises:
        SnapshotInvalid: it does not decode, has another format, or names a class outside the routing state.
    """
    try:
        with _no_gc():
            return _decode(data)
    except SnapshotInvalid:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError, ImportError) as exc:
        raise SnapshotInvalid(f"malformed router snapshot: {exc}") from exc


def _decode(data: bytes) -> RouterSnapshot:
    doc = json.loads(data)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else None
        raise SnapshotInvalid(f"not a {FORMAT} document" + (f" (it is {found!r})" if found else ""))
    state = _Decoder(doc["shapes"]).value(doc["state"])
    if not isinstance(state, RoutingState):
        raise SnapshotInvalid("the snapshot holds no routing state")
    head = doc.get("tree_head")
    offset, at_ms = doc["input_offset"], doc["at_ms"]
    if type(offset) is not int or offset < 0 or type(at_ms) is not int:
        raise SnapshotInvalid("input_offset and at_ms must be whole numbers")
    outputs = doc["outputs"]
    if outputs is not None:
        outputs = {str(topic): [int(o) for o in ends] for topic, ends in outputs.items()}
    return RouterSnapshot(
        state,
        offset,
        at_ms,
        int(head["tree_size"]) if head else None,
        bytes.fromhex(str(head["root_hash"])) if head else None,
        outputs,
        tuple(str(i) for i in doc["escalations"]),
    )
