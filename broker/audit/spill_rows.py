"""How ``audit.spill`` writes the routing state's rows: keys, pickled rows, and which keys the file may hold.

A row is pickled with a dispatch table that writes each of the state's dataclasses as its class and
field values; a key is written so that equal keys give equal bytes; a layered Bloom filter remembers
which keys were ever written. Only this process reads what it wrote (see ``audit.spill``).
"""

from __future__ import annotations

import ast
import copyreg
import dataclasses
import io
import operator
import pickle
from collections.abc import Callable, Hashable
from typing import Any

from broker.model import Event
from broker.routing.facts import Assessment, Birth, Composition, Pregnancy, Registration, Slot
from broker.routing.items import Item
from broker.routing.model import Notification

__all__ = ["Bloom", "dumps", "file_key", "from_file_key"]


def _fields_reducer(cls: type) -> Callable[[Any], tuple[type, tuple[Any, ...]]]:
    """Pickle a dataclass as its class and field values: its ``__init__`` rebuilds it.

    A slots dataclass's own pickling looks up its fields for every object: a quarter to a third slower.
    """
    names = [f.name for f in dataclasses.fields(cls)]
    assert all(f.init for f in dataclasses.fields(cls)), cls
    values = operator.attrgetter(*names)
    return lambda obj: (cls, values(obj))


_DISPATCH: dict[type, Callable[[Any], Any]] = dict(copyreg.dispatch_table)
for _cls in (Event, Notification, Item, Registration, Composition, Birth, Pregnancy, Slot, Assessment):
    _DISPATCH[_cls] = _fields_reducer(_cls)


def dumps(value: Any) -> bytes:
    """A row pickled, the state's dataclasses written as their class and field values (``_fields_reducer``)."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=5)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(value)
    return buffer.getvalue()


def file_key(key: Hashable) -> bytes:
    """A key's bytes in the file: a string as UTF-8, a tuple of strings and None as its repr after 0x80.

    Not a pickle: equal tuples must give equal bytes, and a pickle depends on which strings are the same object.
    """
    return key.encode() if isinstance(key, str) else b"\x80" + repr(key).encode()


def from_file_key(blob: bytes) -> Hashable:
    # UTF-8 never starts with 0x80.
    return ast.literal_eval(blob[1:].decode()) if blob.startswith(b"\x80") else blob.decode()


class Bloom:
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
