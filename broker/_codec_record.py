"""The one-pass reader's records, as one generated function each (``_codec_read``).

A record read field by field through closures costs a call or two per field;
most of a payload's fields are strings, plain or optional (``["null",
"string"]``), and those are read inline here, by straight-line code generated
once per record schema, with the same checks in the same order and the same
messages as the closures (``_codec_read._sized`` and ``_union``). Every other
field is read by its closure. The generated source holds no text from the
schema but field names, as Python literals (``repr``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from broker.errors import SchemaInvalid

__all__ = ["length_misfit", "record_reader", "shape"]

_Read = Callable[[Any], Any]


def shape(node: Any, named: Mapping[str, Any]) -> str | None:
    """``"string"``, ``"optional"`` (``["null", "string"]``), or None: read by the field's closure."""
    if isinstance(node, list):
        return "optional" if len(node) == 2 and node[0] == "null" and shape(node[1], named) == "string" else None
    if node == "string" and "string" not in named:
        return "string"
    if isinstance(node, dict) and node.get("type") == "string" and set(node) <= {"type"}:
        return "string"
    return None


def length_misfit(where: str, n: int, limit: int, remain: int) -> SchemaInvalid:
    """The refusal of a string or bytes length that is negative, over ``limit`` or past the ``remain``ing bytes."""
    if n < 0:
        return SchemaInvalid(f"{where}: negative length {n}")
    if n > limit:
        return SchemaInvalid(f"{where}: length {n} is over the limit of {limit} bytes")
    return SchemaInvalid(f"{where}: needs {n} bytes but only {remain} remain")


def _string(i: int, indent: str) -> list[str]:
    """Lines reading the string of field ``i`` at ``pos`` into ``v{i}``."""
    lines = [
        "if pos < end and buf[pos] < 0x80:",
        "    n = (buf[pos] >> 1) ^ -(buf[pos] & 1)",
        "    pos += 1",
        "else:",
        "    cur.pos = pos",
        f"    n = cur.long(w{i})",
        "    pos = cur.pos",
        "if n < 0 or n > max_string or n > end - pos:",
        f"    raise misfit(w{i}, n, max_string, end - pos)",
        "cur.pos = pos + n",
        "try:",
        f"    v{i} = buf[pos : pos + n].decode()",
        "except UnicodeDecodeError as exc:",
        "    cur.undecodable = cur.undecodable or exc",
        f"    v{i} = None",
    ]
    return [indent + line for line in lines]


def record_reader(fields: Sequence[tuple[str, str | None, str, _Read]], where: str) -> _Read:
    """A reader of one record: ``fields`` as (name, shape, label for messages, the field's closure)."""
    lines = [
        "def record(cur):",
        "    depth = cur.depth + 1",
        "    cur.depth = depth",
        "    if depth > cur.limits.max_depth:",
        "        raise SchemaInvalid(f'{where}: records nest deeper than {cur.limits.max_depth}')",
        "    buf, end, max_string = cur.buf, cur.end, cur.limits.max_string",
    ]
    namespace: dict[str, Any] = {"SchemaInvalid": SchemaInvalid, "misfit": length_misfit, "where": where}
    for i, (_name, kind, label, read) in enumerate(fields):
        namespace[f"w{i}"], namespace[f"r{i}"] = label, read
        if kind == "string":
            lines += ["    pos = cur.pos", *_string(i, "    ")]
        elif kind == "optional":
            lines += [
                "    pos = cur.pos",
                "    if pos < end and buf[pos] == 0:",
                "        cur.pos = pos + 1",
                f"        v{i} = None",
                "    elif pos < end and buf[pos] == 2:",
                "        pos += 1",
                *_string(i, "        "),
                "    else:",
                f"        v{i} = r{i}(cur)",
            ]
        else:
            lines.append(f"    v{i} = r{i}(cur)")
    lines.append("    cur.depth = depth - 1")
    items = ", ".join(f"{name!r}: v{i}" for i, (name, *_rest) in enumerate(fields))
    lines.append(f"    return {{{items}}}")
    exec("\n".join(lines), namespace)  # the source holds field names only, as literals
    reader: _Read = namespace["record"]
    return reader
