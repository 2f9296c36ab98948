"""Reading untrusted Avro in one bounded pass (``broker.codec``'s ``decode`` and ``check_bounds``).

A reader compiled once per schema walks the bytes field by field, checking
each length, count and index against what remains and against the limits
before it takes anything, and builds the value as it goes: the same value
fastavro's ``schemaless_reader`` gives (records as dicts in field order,
enums as their symbols, ``date`` and ``timestamp-millis`` as ``datetime.date``
and UTC ``datetime``), in one pass instead of a check and then a decode.

A schema with a logical type other than those two (``faithful`` False) is
still checked by the walk, but decoded by fastavro, as is any read that
resolves one schema to another.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from broker._codec_record import length_misfit, record_reader, shape
from broker.errors import SchemaInvalid

if TYPE_CHECKING:
    from broker.codec import Limits

__all__ = ["Cursor", "Plan", "plan_for"]

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_FLOAT = struct.Struct("<f")
_DOUBLE = struct.Struct("<d")
_LOGICAL = {("int", "date"), ("long", "timestamp-millis")}  # the logical types read here as fastavro does


class Cursor:
    """A position in untrusted bytes, with what the message may still declare.

    Bytes that fit the schema but hold no value (invalid UTF-8, a date out of range) do not stop the walk:
    the first is kept in ``undecodable``, and only a message that fits everywhere is refused for it.
    """

    __slots__ = ("buf", "depth", "end", "items", "limits", "pos", "undecodable")

    def __init__(self, buf: bytes, limits: Limits) -> None:
        self.buf = buf
        self.undecodable: ValueError | OverflowError | None = None
        self.pos = 0
        self.end = len(buf)
        self.items = limits.max_items
        self.depth = 0
        self.limits = limits

    def long(self, where: str) -> int:
        buf, pos, end = self.buf, self.pos, self.end
        if pos < end and buf[pos] < 0x80:  # one byte: most lengths, indexes and small numbers
            raw = buf[pos]
            self.pos = pos + 1
            return (raw >> 1) ^ -(raw & 1)
        raw = shift = 0
        while True:
            if pos >= end:
                raise SchemaInvalid(f"{where}: the data ends inside a number")
            byte = buf[pos]
            pos += 1
            raw |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift >= 70:
                raise SchemaInvalid(f"{where}: a number is longer than 10 bytes")
        self.pos = pos
        return (raw >> 1) ^ -(raw & 1)

    def take(self, n: int, where: str) -> bytes:
        """The next ``n`` bytes."""
        pos = self.pos
        if n > self.end - pos:
            raise SchemaInvalid(f"{where}: needs {n} bytes but only {self.end - pos} remain")
        self.pos = pos + n
        return self.buf[pos : pos + n]


_Read = Callable[[Cursor], Any]
_Plans = dict[str, tuple[_Read, int]]


class Plan:
    """A schema's compiled reader, and whether its values are fastavro's (``faithful``)."""

    __slots__ = ("faithful", "read")

    def __init__(self, read: _Read, faithful: bool) -> None:
        self.read = read
        self.faithful = faithful


def _label(path: str) -> str:
    return f"field {path!r}" if path else "the record"


def _compile(node: Any, named: Mapping[str, Any], path: str, plans: _Plans) -> tuple[_Read, int]:
    """A reader for one schema node and the smallest size its encoding can have."""
    compiled = _compile_node(node, named, path, plans)
    if isinstance(node, dict) and isinstance(node.get("name"), str) and node["name"] in named:
        plans.setdefault(node["name"], compiled)  # later references by name reuse it
    return compiled


def _union(branches: list[_Read], where: str) -> _Read:
    count = len(branches)

    def union(cur: Cursor) -> Any:
        index = cur.long(where)
        if not 0 <= index < count:
            raise SchemaInvalid(f"{where}: union branch {index} does not exist")
        return branches[index](cur)

    if count != 2:
        return union
    null, other = branches

    def pair(cur: Cursor) -> Any:  # ["null", T] and the like: the branch index is one byte, 0 or 2
        pos = cur.pos
        if pos < cur.end:
            byte = cur.buf[pos]
            if byte == 0:
                cur.pos = pos + 1
                return null(cur)
            if byte == 2:
                cur.pos = pos + 1
                return other(cur)
        return union(cur)

    return pair


def _sized(is_string: bool, where: str) -> _Read:
    def sized(cur: Cursor) -> Any:
        buf, pos = cur.buf, cur.pos
        if pos < cur.end and buf[pos] < 0x80:  # a length under 64, read here
            n = (buf[pos] >> 1) ^ -(buf[pos] & 1)
            pos += 1
        else:
            n = cur.long(where)
            pos = cur.pos
        limit = cur.limits.max_string if is_string else cur.limits.max_bytes
        if n < 0 or n > limit or n > cur.end - pos:
            raise length_misfit(where, n, limit, cur.end - pos)
        cur.pos = pos + n
        raw = buf[pos : pos + n]
        if not is_string:
            return raw
        try:
            return raw.decode()
        except UnicodeDecodeError as exc:
            cur.undecodable = cur.undecodable or exc
            return None

    return sized


def _number(kind: str, logical: object, where: str) -> _Read:
    is_int = kind == "int"
    convert: Callable[[int], Any] | None = None
    if (kind, logical) == ("int", "date"):
        convert = lambda days: dt.date.fromordinal(days + _EPOCH_DAY)  # noqa: E731
    elif (kind, logical) == ("long", "timestamp-millis"):
        convert = lambda millis: _EPOCH + dt.timedelta(microseconds=millis * 1000)  # noqa: E731

    def number(cur: Cursor) -> Any:
        value = cur.long(where)
        if is_int and not _INT_MIN <= value <= _INT_MAX:
            raise SchemaInvalid(f"{where}: {value} does not fit in an Avro int")
        if convert is None:
            return value
        try:
            return convert(value)
        except (ValueError, OverflowError) as exc:
            cur.undecodable = cur.undecodable or exc
            return None

    return number


def _compile_node(node: Any, named: Mapping[str, Any], path: str, plans: _Plans) -> tuple[_Read, int]:
    where = _label(path)
    if isinstance(node, list):
        return _union([_compile(b, named, path, plans)[0] for b in node], where), 1
    if isinstance(node, str):
        if node in plans:
            return plans[node]
        if node in named:
            return _named(node, named, plans), 0
        node = {"type": node}
    kind = node["type"]
    if isinstance(kind, (dict, list)) or kind in named:
        return _compile(kind, named, path, plans)
    if kind == "null":
        return (lambda cur: None), 0
    if kind == "boolean":

        def boolean(cur: Cursor) -> bool:
            if cur.pos >= cur.end or cur.buf[cur.pos] > 1:
                raise SchemaInvalid(f"{where}: not a boolean")
            cur.pos += 1
            return cur.buf[cur.pos - 1] == 1

        return boolean, 1
    if kind in ("int", "long"):
        return _number(kind, node.get("logicalType"), where), 1
    if kind in ("float", "double"):
        size, unpack = (4, _FLOAT.unpack) if kind == "float" else (8, _DOUBLE.unpack)
        return (lambda cur: unpack(cur.take(size, where))[0]), size
    if kind in ("string", "bytes"):
        return _sized(kind == "string", where), 1
    if kind == "fixed":
        size = int(node["size"])
        return (lambda cur: cur.take(size, where)), size
    if kind == "enum":
        symbols = [str(symbol) for symbol in node["symbols"]]

        def enum(cur: Cursor) -> str:
            index = cur.long(where)
            if not 0 <= index < len(symbols):
                raise SchemaInvalid(f"{where}: enum index {index} does not exist")
            return symbols[index]

        return enum, 1
    if kind in ("array", "map"):
        item, item_min = _compile(node["items" if kind == "array" else "values"], named, path + "[]", plans)
        key: _Read | None = _compile("string", named, path + "{}", plans)[0] if kind == "map" else None
        item_min += 1 if key else 0
        return _blocks(item, key, item_min, where), 1
    if kind in ("record", "error"):
        fields: list[tuple[str, str | None, str, _Read]] = []
        smallest = 0
        for fld in node["fields"]:
            at = f"{path}.{fld['name']}" if path else fld["name"]
            read, size = _compile(fld["type"], named, at, plans)
            fields.append((fld["name"], shape(fld["type"], named), _label(at), read))
            smallest += size
        return record_reader(fields, where), smallest
    raise SchemaInvalid(f"{where}: unsupported schema type {kind!r}")


def _named(name: str, named: Mapping[str, Any], plans: _Plans) -> _Read:
    # A reference before its definition ends (a type that refers to itself): looked up when called.
    def deferred(cur: Cursor) -> Any:
        if name not in plans:
            _compile(named[name], named, "", plans)
        return plans[name][0](cur)

    return deferred


def _blocks(item: _Read, key: _Read | None, item_min: int, where: str) -> _Read:
    def blocks(cur: Cursor) -> Any:
        out: Any = {} if key is not None else []
        while True:
            count = cur.long(where)
            if count == 0:
                return out
            if count < 0:
                count = -count
                size = cur.long(where)
                if size < 0 or size > cur.end - cur.pos:
                    raise SchemaInvalid(f"{where}: a block declares {size} bytes but {cur.end - cur.pos} remain")
            if count > cur.items:
                raise SchemaInvalid(
                    f"{where}: declares {count} items, over the limit of {cur.limits.max_items} per message"
                )
            if count * item_min > cur.end - cur.pos:
                raise SchemaInvalid(f"{where}: declares {count} items but only {cur.end - cur.pos} bytes remain")
            cur.items -= count
            if key is None:
                out.extend(item(cur) for _ in range(count))
            else:
                for _ in range(count):
                    name = key(cur)
                    out[name] = item(cur)

    return blocks


def _faithful(node: Any) -> bool:
    """True when every logical type in the schema is one this module reads as fastavro does."""
    if isinstance(node, list):
        return all(_faithful(item) for item in node)
    if not isinstance(node, dict):
        return True
    logical = node.get("logicalType")
    if logical is not None and (node.get("type"), logical) not in _LOGICAL:
        return False
    return all(_faithful(value) for value in node.values())


# By the parsed schema's identity (kept alive by the entry, so its id is not reused while it is here): not by
# the Parsing Canonical Form, which leaves logical types out, and two schemas differing only in those read
# different values.
_PLANS: dict[int, tuple[Any, Plan]] = {}
_MAX_PLANS = 4096


def plan_for(parsed: Any) -> Plan:
    """The compiled reader of a schema in fastavro's parsed form (compiled once per schema object)."""
    found = _PLANS.get(id(parsed))
    if found is not None and found[0] is parsed:
        return found[1]
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    named = parsed.get("__named_schemas", {}) if isinstance(parsed, dict) else {}
    plan = Plan(_compile(parsed, named, "", {})[0], _faithful(parsed))
    _PLANS[id(parsed)] = (parsed, plan)
    return plan
