"""``broker.heap``: long-lived objects frozen out of full collections, short-lived garbage collected first."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from broker import heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    gc.disable()  # no collection between making the garbage and settling
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        gc.enable()


def test_settle_collects_young_garbage_then_freezes_what_is_alive(collector: None) -> None:
    kept, dropped = _Node(), _Node()
    alive, gone = weakref.ref(kept), weakref.ref(dropped)
    del dropped
    gc.unfreeze()

    heap.settle()

    assert gone() is None  # collected, not frozen with the rest
    assert alive() is kept
    assert gc.get_freeze_count() > 0
    assert kept not in gc.get_objects(generation=2)  # frozen: full collections skip it


def test_configure_makes_young_collections_rarer(collector: None) -> None:
    heap.configure()
    assert gc.get_threshold() == heap.THRESHOLDS
    assert heap.THRESHOLDS[0] > 700  # CPython's default


def test_batch_work_makes_young_collections_rarer_still() -> None:
    """A replay's batches leave most of their objects dead before a young collection (``heap.BATCH_THRESHOLDS``)."""
    assert heap.BATCH_THRESHOLDS[0] > heap.THRESHOLDS[0]
    assert heap.BATCH_THRESHOLDS[1:] == heap.THRESHOLDS[1:]
