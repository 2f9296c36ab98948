"""The hash chain over the input topic (pure).

Every record of ``jigsaw.input`` has a chain value::

    chain(-1) = 32 zero bytes
    chain(n)  = SHA-256(chain(n-1) || canonical(record n))

where ``canonical`` covers the record's offset, key, value, headers (in order)
and timestamp, each length-prefixed. The sealer (``sealer.py``) computes it
after the append, in the log's order, and signed checkpoints
(``checkpoint.py``) carry the value of every record they cover. Altering,
removing, reordering or inserting a record changes the chain from that record
on, and no one can quietly recompute it.

``ChainCheck`` walks the partition in offset order and says where it breaks.
Each record is checked against its predecessor's *signed* value, so every
altered record is named on its own (rather than everything after the first);
the true chain, recomputed from the last signed checkpoint, is what each
checkpoint is compared with. Records after the last checkpoint are not yet
sealed: nothing signed says what they should be.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from collections.abc import Mapping

from broker.log.base import Headers, Record

__all__ = ["GENESIS", "Break", "ChainCheck", "canonical_record", "next_link", "record_link"]

GENESIS = bytes(32)
_TAG = b"jigsaw.chain.v1"
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")
_ABSENT = _U64.pack(2**64 - 1)  # marks a missing key or value (distinct from an empty one)


def _field(raw: bytes | None) -> bytes:
    return _ABSENT if raw is None else _U64.pack(len(raw)) + raw


def canonical_record(offset: int, key: bytes | None, value: bytes | None, headers: Headers, timestamp_ms: int) -> bytes:
    """The bytes of one record that the chain covers."""
    kept = list(headers)
    parts = [_field(_TAG), _U64.pack(offset), _field(key), _field(value), _U64.pack(len(kept))]
    for name, raw in kept:
        parts += [_field(name.encode("utf-8")), _field(raw)]
    parts.append(_I64.pack(timestamp_ms))
    return b"".join(parts)


def next_link(
    prev: bytes, offset: int, key: bytes | None, value: bytes | None, headers: Headers, timestamp_ms: int
) -> bytes:
    """The chain value of a record that follows a record whose chain value is ``prev``."""
    return hashlib.sha256(prev + canonical_record(offset, key, value, headers, timestamp_ms)).digest()


def record_link(prev: bytes, record: Record) -> bytes:
    """``next_link`` for a record read back from the log."""
    return next_link(prev, record.offset, record.key, record.value, record.headers, record.timestamp_ms)


@dataclasses.dataclass(frozen=True, slots=True)
class Break:
    """One place where a partition's chain does not hold."""

    code: str  # record_missing, record_unsealed, chain_broken, checkpoint_mismatch, log_truncated
    offset: int
    message: str


class ChainCheck:
    """Walks one partition's records in offset order, from offset 0, and says where the chain breaks.

    Args:
        sealed: offset -> chain value, from the checkpoints whose signatures verified (the last record each covers).
        links: offset -> chain value of every record those checkpoints cover.
    """

    def __init__(self, sealed: Mapping[int, bytes] | None = None, links: Mapping[int, bytes] | None = None) -> None:
        self.sealed = dict(sealed or {})
        self.links = dict(links or {})
        self._covered = max(self.sealed, default=-1)  # the last offset any signed checkpoint covers
        self.expected = 0
        self.true_link = GENESIS  # recomputed from the last signed checkpoint: what the next one must match
        self._stored_prev = GENESIS
        self.breaks: list[Break] = []
        self.last_sealed = -1  # the last offset a matching checkpoint covers
        self._span_broken = False  # a record-level break since the last checkpoint (it already names the record)

    def feed(self, record: Record) -> None:
        """Check one record (records must come in offset order)."""
        before = len(self.breaks)
        if record.offset > self.expected:
            missing = record.offset - self.expected
            span = str(self.expected) if missing == 1 else f"{self.expected} to {record.offset - 1}"
            self.breaks.append(
                Break("record_missing", self.expected, f"offset {span} is missing: {missing} record(s) removed")
            )
        self.expected = record.offset + 1
        self.true_link = record_link(self.true_link, record)
        stored = self.links.get(record.offset)
        local = record_link(self._stored_prev, record)
        if stored is None:
            if record.offset <= self._covered:
                self.breaks.append(
                    Break(
                        "record_unsealed",
                        record.offset,
                        "no signed checkpoint lists this record although later ones are sealed: it was inserted",
                    )
                )
            self._stored_prev = local
        elif stored != local:
            self.breaks.append(
                Break(
                    "chain_broken",
                    record.offset,
                    "the record does not chain onto the one before it: it was altered, moved or inserted, "
                    "or the record before it was removed",
                )
            )
            self._stored_prev = stored
        else:
            self._stored_prev = stored
        self._span_broken = self._span_broken or len(self.breaks) > before
        signed = self.sealed.get(record.offset)
        if signed is not None:
            if signed != self.true_link and not self._span_broken:
                self.breaks.append(
                    Break(
                        "checkpoint_mismatch",
                        record.offset,
                        f"the signed checkpoint at offset {record.offset} does not match the records: something "
                        f"after offset {self.last_sealed} up to {record.offset} was altered, removed, reordered "
                        "or inserted",
                    )
                )
            self.true_link = signed  # the signed value is the truth from here on
            self.last_sealed = record.offset
            self._span_broken = False

    def finish(self) -> None:
        """After the last record: a checkpoint beyond it means records were cut off the end."""
        beyond = [offset for offset in self.sealed if offset >= self.expected]
        if beyond:
            self.breaks.append(
                Break(
                    "log_truncated",
                    self.expected,
                    f"a signed checkpoint covers offset {max(beyond)} but the partition ends at offset "
                    f"{self.expected - 1}: records were removed from its end",
                )
            )

    @property
    def unsealed(self) -> int:
        """How many records after the last matching checkpoint no signature covers yet."""
        return self.expected - 1 - self.last_sealed
