"""The hash chain: each record's value depends on everything before it, and ChainCheck names where it breaks."""

from __future__ import annotations

import dataclasses

import pytest

from broker.audit.chain import GENESIS, ChainCheck, canonical_record, next_link, record_link
from broker.log.base import Record

TOPIC = "jigsaw.input"


def _chain(values: list[bytes]) -> tuple[list[Record], dict[int, bytes]]:
    """Records as the intake writes them, and the chain value of each as the sealer's checkpoints list them."""
    out, links, prev = [], {}, GENESIS
    for offset, value in enumerate(values):
        headers = (("event_id", f"e{offset}".encode()),)
        link = next_link(prev, offset, b"key", value, headers, 1000 + offset)
        out.append(Record(TOPIC, 0, offset, b"key", value, headers, 1000 + offset))
        links[offset] = link
        prev = link
    return out, links


def _check(
    records: list[Record], links: dict[int, bytes], sealed: dict[int, bytes] | None = None
) -> ChainCheck:
    if sealed is None and links:
        sealed = {max(links): links[max(links)]}
    check = ChainCheck(sealed, links)
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


def test_a_missing_key_differs_from_an_empty_one() -> None:
    """None and b"" encode differently, so a key cannot silently vanish."""
    assert canonical_record(0, None, b"v", (), 0) != canonical_record(0, b"", b"v", (), 0)


def test_an_untouched_partition_has_no_breaks_and_matches_its_checkpoints() -> None:
    """A clean partition checks clean, and every checkpoint over it matches."""
    records, links = _chain([b"a", b"b", b"c", b"d"])
    check = _check(records, links, {1: links[1], 3: links[3]})
    assert check.breaks == []
    assert check.last_sealed == 3 and check.unsealed == 0
    assert record_link(links[0], records[1]) == links[1]


def test_an_altered_value_is_named_at_its_offset() -> None:
    """Changing one record's bytes breaks the chain at that record and no other."""
    records, links = _chain([b"a", b"b", b"c"])
    records[1] = dataclasses.replace(records[1], value=b"B")
    assert _codes(_check(records, links)) == [("chain_broken", 1)]


def test_a_removed_record_is_named_as_missing_and_its_successor_breaks() -> None:
    """Deleting a record leaves an offset gap and the next record no longer chains."""
    records, links = _chain([b"a", b"b", b"c"])
    del records[1]
    assert _codes(_check(records, links)) == [("record_missing", 1), ("chain_broken", 2)]


def test_two_swapped_records_are_both_named() -> None:
    """Reordering two records breaks the chain at both; the one after them still chains onto the signed value."""
    records, links = _chain([b"a", b"b", b"c", b"d"])
    one, two = records[1], records[2]
    records[1] = dataclasses.replace(two, offset=1)
    records[2] = dataclasses.replace(one, offset=2)
    assert _codes(_check(records, links)) == [("chain_broken", 1), ("chain_broken", 2)]


def test_an_inserted_record_is_named() -> None:
    """A record slipped in among sealed ones does not match the chain value the checkpoint lists there."""
    records, links = _chain([b"a", b"b", b"c"])
    forged = Record(TOPIC, 0, 1, b"key", b"forged", (), 2000)
    shifted = [records[0], forged, *(dataclasses.replace(r, offset=r.offset + 1) for r in records[1:])]
    codes = _codes(_check(shifted, links))
    assert codes[0] == ("chain_broken", 1)


def test_a_record_missing_from_a_checkpoint_that_covers_it_is_named() -> None:
    """A record the checkpoints skip although later records are sealed was not there when they were signed."""
    records, links = _chain([b"a", b"b", b"c"])
    del links[1]
    assert ("record_unsealed", 1) in _codes(_check(records, links, {2: links[2]}))


def test_a_chain_recomputed_over_an_altered_record_fails_the_signed_checkpoint() -> None:
    """Without per-record values, the chain recomputed from the records no longer meets the signed value."""
    _, original = _chain([b"a", b"b", b"c"])
    forged, _ = _chain([b"a", b"X", b"c"])
    check = ChainCheck({2: original[2]}, {2: original[2]})
    for record in forged:
        check.feed(record)
    assert ("checkpoint_mismatch", 2) in _codes(check) or ("chain_broken", 2) in _codes(check)


def test_a_checkpoint_beyond_the_end_means_records_were_cut_off() -> None:
    """Removing the last records of a partition is caught by a checkpoint that covered them."""
    records, links = _chain([b"a", b"b", b"c"])
    assert _codes(_check(records[:2], links, {2: links[2]})) == [("log_truncated", 2)]


def test_each_break_is_reported_once_not_cascaded() -> None:
    """After a break the check carries on from the signed value, so later clean records stay clean."""
    records, links = _chain([b"a", b"b", b"c", b"d", b"e"])
    records[1] = dataclasses.replace(records[1], value=b"B")
    records[3] = dataclasses.replace(records[3], timestamp_ms=1)
    assert _codes(_check(records, links)) == [("chain_broken", 1), ("chain_broken", 3)]


@pytest.mark.parametrize("count", [0, 1, 5])
def test_records_after_the_last_checkpoint_are_counted_as_unsealed(count: int) -> None:
    """``unsealed`` says how many records no checkpoint covers yet."""
    records, links = _chain([b"x"] * (2 + count))
    check = _check(records, {0: links[0], 1: links[1]}, {1: links[1]})
    assert check.unsealed == count
