"""The hash chain: each record's value depends on everything before it, and ChainCheck names where it breaks."""

from __future__ import annotations

import dataclasses

import pytest

from broker.audit.chain import CHAIN_HEADER, GENESIS, ChainCheck, canonical_record, next_link, record_link
from broker.log.base import Record

TOPIC = "jigsaw.events.police"


def _chain(values: list[bytes]) -> list[Record]:
    """Records as the intake writes them: each carries its chain value."""
    out, prev = [], GENESIS
    for offset, value in enumerate(values):
        headers = (("event_id", f"e{offset}".encode()),)
        link = next_link(prev, offset, b"key", value, headers, 1000 + offset)
        out.append(Record(TOPIC, 0, offset, b"key", value, (*headers, (CHAIN_HEADER, link)), 1000 + offset))
        prev = link
    return out


def _check(records: list[Record], sealed: dict[int, bytes] | None = None) -> ChainCheck:
    check = ChainCheck(sealed)
    for record in records:
        check.feed(record)
    check.finish()
    return check


def _codes(check: ChainCheck) -> list[tuple[str, int]]:
    return [(b.code, b.offset) for b in check.breaks]


def test_the_chain_value_covers_offset_key_value_headers_and_timestamp() -> None:
    """Changing any covered field of a record changes its chain value."""
    base = next_link(GENESIS, 0, b"k", b"v", (("a", b"1"),), 5)
    variants = [
        next_link(GENESIS, 1, b"k", b"v", (("a", b"1"),), 5),
        next_link(GENESIS, 0, b"K", b"v", (("a", b"1"),), 5),
        next_link(GENESIS, 0, b"k", b"V", (("a", b"1"),), 5),
        next_link(GENESIS, 0, b"k", b"v", (("a", b"2"),), 5),
        next_link(GENESIS, 0, b"k", b"v", (("a", b"1"),), 6),
        next_link(b"\x01" * 32, 0, b"k", b"v", (("a", b"1"),), 5),
        next_link(GENESIS, 0, None, b"v", (("a", b"1"),), 5),
    ]
    assert len(base) == 32
    assert base not in variants
    assert len(set(variants)) == len(variants)


def test_the_chain_header_itself_is_not_covered() -> None:
    """A record's own chain header is left out of its canonical bytes (it could not contain itself)."""
    plain = canonical_record(0, b"k", b"v", (("a", b"1"),), 5)
    assert canonical_record(0, b"k", b"v", (("a", b"1"), (CHAIN_HEADER, b"x" * 32)), 5) == plain


def test_a_missing_key_differs_from_an_empty_one() -> None:
    """None and b"" encode differently, so a key cannot silently vanish."""
    assert canonical_record(0, None, b"v", (), 0) != canonical_record(0, b"", b"v", (), 0)


def test_an_untouched_partition_has_no_breaks_and_matches_its_checkpoints() -> None:
    """A clean partition checks clean, and every checkpoint over it matches."""
    records = _chain([b"a", b"b", b"c", b"d"])
    sealed = {1: records[1].header(CHAIN_HEADER), 3: records[3].header(CHAIN_HEADER)}
    check = _check(records, sealed)  # type: ignore[arg-type]
    assert check.breaks == []
    assert check.last_sealed == 3 and check.unsealed == 0
    assert record_link(records[0].header(CHAIN_HEADER) or b"", records[1]) == records[1].header(CHAIN_HEADER)


def test_an_altered_value_is_named_at_its_offset() -> None:
    """Changing one record's bytes breaks the chain at that record and no other."""
    records = _chain([b"a", b"b", b"c"])
    records[1] = dataclasses.replace(records[1], value=b"B")
    assert _codes(_check(records)) == [("chain_broken", 1)]


def test_a_removed_record_is_named_as_missing_and_its_successor_breaks() -> None:
    """Deleting a record leaves an offset gap and the next record no longer chains."""
    records = _chain([b"a", b"b", b"c"])
    del records[1]
    assert _codes(_check(records)) == [("record_missing", 1), ("chain_broken", 2)]


def test_two_swapped_records_are_both_named() -> None:
    """Reordering two records (with their headers) breaks the chain at both, and at the one after them."""
    records = _chain([b"a", b"b", b"c", b"d"])
    one, two = records[1], records[2]
    records[1] = dataclasses.replace(two, offset=1)
    records[2] = dataclasses.replace(one, offset=2)
    assert _codes(_check(records)) == [("chain_broken", 1), ("chain_broken", 2), ("chain_broken", 3)]


def test_an_inserted_record_without_a_chain_value_is_named() -> None:
    """A record the intake did not write carries no chain value."""
    records = _chain([b"a", b"b"])
    records.append(Record(TOPIC, 0, 2, b"key", b"forged", (), 2000))
    assert _codes(_check(records)) == [("chain_header_missing", 2)]


def test_a_recomputed_chain_still_fails_the_signed_checkpoint() -> None:
    """Someone who alters a record and recomputes every chain value after it is caught by the checkpoint."""
    original = _chain([b"a", b"b", b"c"])
    sealed = {2: original[2].header(CHAIN_HEADER) or b""}
    forged = _chain([b"a", b"X", b"c"])
    check = _check(forged, sealed)
    assert _codes(check) == [("checkpoint_mismatch", 2)]


def test_a_checkpoint_beyond_the_end_means_records_were_cut_off() -> None:
    """Removing the last records of a partition is caught by a checkpoint that covered them."""
    records = _chain([b"a", b"b", b"c"])
    sealed = {2: records[2].header(CHAIN_HEADER) or b""}
    assert _codes(_check(records[:2], sealed)) == [("log_truncated", 2)]


def test_each_break_is_reported_once_not_cascaded() -> None:
    """After a break the check carries on from the stored value, so later clean records stay clean."""
    records = _chain([b"a", b"b", b"c", b"d", b"e"])
    records[1] = dataclasses.replace(records[1], value=b"B")
    records[3] = dataclasses.replace(records[3], timestamp_ms=1)
    assert _codes(_check(records)) == [("chain_broken", 1), ("chain_broken", 3)]


@pytest.mark.parametrize("count", [0, 1, 5])
def test_records_after_the_last_checkpoint_are_counted_as_unsealed(count: int) -> None:
    """``unsealed`` says how many records no checkpoint covers yet."""
    records = _chain([b"x"] * (2 + count))
    check = _check(records, {1: records[1].header(CHAIN_HEADER) or b""})
    assert check.unsealed == count
