"""Which bytes of a log record are a Merkle leaf (pure).

A leaf is one record of an ordered log, encoded so that every field the log
keeps is covered and no two different records give the same bytes::

    leaf_data = F("jigsaw.leaf.v1")
              || F(topic, UTF-8)
              || F(u64 partition) || F(u64 offset) || F(i64 timestamp_ms)
              || O(key) || O(value)
              || F(u64 number of headers)
              || for each header, in order: F(name, UTF-8) || F(value)

    F(x) = u64 big-endian length of x || x
    O(x) = 0x00 when x is absent (None), else 0x01 || F(x)

Integers are 8 bytes big-endian (``timestamp_ms`` two's complement), so each
``F`` of an integer is ``00 00 00 00 00 00 00 08`` followed by the 8 bytes. The
topic is the logical name (``jigsaw.input``), without a deployment's
topic prefix. The leaf hash is then ``SHA-256(0x00 || leaf_data)`` (``merkle.leaf_hash``).
``broker/audit/proofs.md`` states the same for independent verifiers.
"""

from __future__ import annotations

import struct

from broker.audit.merkle import leaf_hash
from broker.log.base import Record

__all__ = ["LEAF_TAG", "record_leaf_data", "record_leaf_hash"]

LEAF_TAG = b"jigsaw.leaf.v1"
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")


def _field(data: bytes) -> bytes:
    return _U64.pack(len(data)) + data


def _optional(data: bytes | None) -> bytes:
    return b"\x00" if data is None else b"\x01" + _field(data)


def record_leaf_data(record: Record) -> bytes:
    """The leaf data of one log record (see the module docstring for the exact layout)."""
    parts = [
        _field(LEAF_TAG),
        _field(record.topic.encode("utf-8")),
        _field(_U64.pack(record.partition)),
        _field(_U64.pack(record.offset)),
        _field(_I64.pack(record.timestamp_ms)),
        _optional(record.key),
        _optional(record.value),
        _field(_U64.pack(len(record.headers))),
    ]
    for name, value in record.headers:
        parts.append(_field(name.encode("utf-8")))
        parts.append(_field(value))
    return b"".join(parts)


def record_leaf_hash(record: Record) -> bytes:
    """``SHA-256(0x00 || record_leaf_data(record))``."""
    return leaf_hash(record_leaf_data(record))
