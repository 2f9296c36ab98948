"""The live router's view of the log: nothing newer than the horizon, and no waiting at the end."""

from __future__ import annotations

from broker.delivery.horizon import HorizonLog
from broker.log import MemoryLog
from broker.log.scan import read_available


async def _log_with(stamps: list[int]) -> MemoryLog:
    log = MemoryLog()
    await log.start()
    await log.create_topic("t")
    for ms in stamps:
        await log.append("t", b"x", timestamp_ms=ms)
    return log


async def test_reads_stop_before_the_first_record_past_the_horizon() -> None:
    """Records stamped after the horizon are held back, and so is everything after them (offsets stay contiguous)."""
    view = HorizonLog(await _log_with([100, 200, 300, 150]))
    view.horizon_ms = 250
    assert [r.offset for r in await view.read("t", 0)] == [0, 1]
    view.horizon_ms = None
    assert [r.offset for r in await view.read("t", 0)] == [0, 1, 2, 3]


async def test_writes_pass_through() -> None:
    """Appends and commits go to the wrapped log unchanged."""
    inner = await _log_with([])
    view = HorizonLog(inner)
    await view.append("t", b"y", timestamp_ms=5)
    await view.commit("g", "t", 1)
    assert await inner.end_offset("t") == 1 and await inner.committed("g", "t") == 1


async def test_read_available_returns_at_once_at_the_end() -> None:
    """At the end of a partition there is nothing to read and no wait; before it, the records."""
    log = await _log_with([1, 2])
    assert await read_available(log, "t", 2) == []
    assert [r.offset for r in await read_available(log, "t", 1)] == [1]
