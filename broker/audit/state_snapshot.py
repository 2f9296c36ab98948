"""A router snapshot: the routing state as versioned JSON, with the input offset it reflects (pure).

A replay can start from a snapshot instead of from the first record: it loads
the state, checks the tail against the signed tree heads and re-runs the policy
over it only. A snapshot may come from anyone (another auditor, a router), so
it is never unpickled: it is JSON, and the decoder builds only the routing
classes it knows, by setting their fields; nothing in the file names code to
run. Format (``jigsaw.router-snapshot.v1``)::

    {"format": "jigsaw.router-snapshot.v1",
     "input_offset": n,          the state reflects input records 0 .. n-1
     "at_ms": t,                 the log timestamp of record n-1 (the time the state stood at)
     "tree_head": {"tree_size", "root_hash"} or null,   the newest verified head when it was written
     "state": value}

where a value is a JSON scalar, a list (a Python list), or an object with a
``$`` tag: ``t`` tuple, ``s`` set, ``f`` frozenset, ``d`` dict (``i``: [[key,
value], ...]), ``dd`` defaultdict (``k``: list, set or dict), ``dt``
datetime (ISO 8601), ``da`` date, ``td`` timedelta (seconds), ``b`` bytes
(base64), ``o`` an instance of an allowed class (``c``: ``module:Class``,
``n``: its number, ``a``: its attributes), ``r`` a second reference to
instance ``n`` (shared objects stay shared). A snapshot that does not decode,
names a class outside ``broker.routing`` and ``broker.model``, or has another
format raises ``SnapshotInvalid``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import importlib
import json
from collections import defaultdict
from typing import Any, ClassVar

from broker.errors import JigsawError
from broker.routing.state import RoutingState

__all__ = ["FORMAT", "RouterSnapshot", "SnapshotInvalid", "decode_snapshot", "encode_snapshot"]

FORMAT = "jigsaw.router-snapshot.v1"
_MODULES = ("broker.routing.", "broker.model")
_FACTORIES: dict[str, type] = {"list": list, "set": set, "dict": dict}


class SnapshotInvalid(JigsawError, ValueError):
    """A router snapshot does not decode; ``message`` says why."""

    code: ClassVar[str] = "snapshot_invalid"


@dataclasses.dataclass(slots=True)
class RouterSnapshot:
    """The routing state after input records ``0 .. input_offset - 1``."""

    state: RoutingState
    input_offset: int
    at_ms: int
    tree_size: int | None = None
    root_hash: bytes | None = None


def _attrs(obj: object) -> dict[str, Any]:
    if hasattr(obj, "__dict__"):
        return dict(vars(obj))
    names = [n for cls in type(obj).__mro__ for n in getattr(cls, "__slots__", ())]
    return {n: getattr(obj, n) for n in names if n != "__weakref__" and hasattr(obj, n)}


class _Encoder:
    def __init__(self) -> None:
        self.seen: dict[int, int] = {}
        self.keep: list[object] = []  # ids stay valid while encoding

    def value(self, v: Any) -> Any:
        if v is None or isinstance(v, bool | int | str):
            return v
        if isinstance(v, float):
            return {"$": "fl", "v": repr(v)}
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, tuple):
            return {"$": "t", "i": [self.value(x) for x in v]}
        if isinstance(v, frozenset):
            return {"$": "f", "i": [self.value(x) for x in v]}
        if isinstance(v, set):
            return {"$": "s", "i": [self.value(x) for x in v]}
        if isinstance(v, defaultdict):
            kind = next((k for k, f in _FACTORIES.items() if v.default_factory is f), None)
            if kind is None:
                raise SnapshotInvalid(f"a defaultdict of {v.default_factory!r} cannot be written")
            return {"$": "dd", "k": kind, "i": [[self.value(k), self.value(x)] for k, x in v.items()]}
        if isinstance(v, dict):
            return {"$": "d", "i": [[self.value(k), self.value(x)] for k, x in v.items()]}
        if isinstance(v, dt.datetime):
            return {"$": "dt", "v": v.isoformat()}
        if isinstance(v, dt.date):
            return {"$": "da", "v": v.isoformat()}
        if isinstance(v, dt.timedelta):
            return {"$": "td", "v": v.total_seconds()}
        if isinstance(v, bytes):
            return {"$": "b", "v": base64.b64encode(v).decode("ascii")}
        return self.instance(v)

    def instance(self, v: object) -> Any:
        cls = type(v)
        if not cls.__module__.startswith(_MODULES):
            raise SnapshotInvalid(f"{cls.__module__}.{cls.__qualname__} is not part of the routing state")
        number = self.seen.get(id(v))
        if number is not None:
            return {"$": "r", "n": number}
        number = self.seen[id(v)] = len(self.seen)
        self.keep.append(v)
        attrs = {name: self.value(x) for name, x in _attrs(v).items()}
        return {"$": "o", "c": f"{cls.__module__}:{cls.__qualname__}", "n": number, "a": attrs}


class _Decoder:
    def __init__(self) -> None:
        self.made: dict[int, object] = {}

    def value(self, v: Any) -> Any:
        if v is None or isinstance(v, bool | int | str):
            return v
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if not isinstance(v, dict):
            raise SnapshotInvalid(f"unexpected JSON value {type(v).__name__}")
        tag = v.get("$")
        if tag == "t":
            return tuple(self.value(x) for x in v["i"])
        if tag == "s":
            return {self.value(x) for x in v["i"]}
        if tag == "f":
            return frozenset(self.value(x) for x in v["i"])
        if tag == "d":
            return {self.value(k): self.value(x) for k, x in v["i"]}
        if tag == "dd":
            out: defaultdict[Any, Any] = defaultdict(_FACTORIES[v["k"]])
            out.update((self.value(k), self.value(x)) for k, x in v["i"])
            return out
        if tag == "dt":
            return dt.datetime.fromisoformat(v["v"])
        if tag == "da":
            return dt.date.fromisoformat(v["v"])
        if tag == "td":
            return dt.timedelta(seconds=float(v["v"]))
        if tag == "fl":
            return float(v["v"])
        if tag == "b":
            return base64.b64decode(v["v"], validate=True)
        if tag == "r":
            return self.made[int(v["n"])]
        if tag == "o":
            return self.instance(v)
        raise SnapshotInvalid(f"unknown tag {tag!r}")

    def instance(self, v: dict[str, Any]) -> object:
        module, _, name = str(v["c"]).partition(":")
        if not module.startswith(_MODULES) or "." in name or not name.isidentifier():
            raise SnapshotInvalid(f"{v['c']!r} is not a routing state class")
        cls = getattr(importlib.import_module(module), name, None)
        if not isinstance(cls, type) or cls.__module__ != module:
            raise SnapshotInvalid(f"{v['c']!r} is not a routing state class")
        obj: object = object.__new__(cls)
        self.made[int(v["n"])] = obj
        for attr, raw in v["a"].items():
            existing = getattr(cls, attr, None) if isinstance(attr, str) else None
            if (
                not isinstance(attr, str)
                or attr.startswith("__")
                or callable(existing)
                or isinstance(existing, property)
            ):
                raise SnapshotInvalid(f"attribute {attr!r} of {v['c']} cannot be set")
            object.__setattr__(obj, attr, self.value(raw))
        return obj


def encode_snapshot(snapshot: RouterSnapshot) -> bytes:
    """The snapshot as UTF-8 JSON.

    Raises:
        SnapshotInvalid: the state holds something the format cannot write.
    """
    doc = {
        "format": FORMAT,
        "input_offset": snapshot.input_offset,
        "at_ms": snapshot.at_ms,
        "tree_head": None
        if snapshot.tree_size is None or snapshot.root_hash is None
        else {"tree_size": snapshot.tree_size, "root_hash": snapshot.root_hash.hex()},
        "state": _Encoder().value(snapshot.state),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def decode_snapshot(data: bytes) -> RouterSnapshot:
    """A snapshot written by ``encode_snapshot``.

    Raises:
        SnapshotInvalid: it does not decode, has another format, or names a class outside the routing state.
    """
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise SnapshotInvalid(f"not a {FORMAT} document")
        state = _Decoder().value(doc["state"])
        if not isinstance(state, RoutingState):
            raise SnapshotInvalid("the snapshot holds no routing state")
        head = doc.get("tree_head")
        offset, at_ms = doc["input_offset"], doc["at_ms"]
        if type(offset) is not int or offset < 0 or type(at_ms) is not int:
            raise SnapshotInvalid("input_offset and at_ms must be whole numbers")
        return RouterSnapshot(
            state,
            offset,
            at_ms,
            int(head["tree_size"]) if head else None,
            bytes.fromhex(str(head["root_hash"])) if head else None,
        )
    except SnapshotInvalid:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, ImportError) as exc:
        raise SnapshotInvalid(f"malformed router snapshot: {exc}") from exc
