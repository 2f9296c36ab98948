"""Which stretch of the log a replay checks: ``--from`` and ``--to`` (pure).

A bound is either a **time** (ISO 8601 with a zone, e.g. ``2022-01-02T00:00:00Z``,
or a date, meaning 00:00Z that day), compared with each record's log
timestamp (when Jigsaw accepted it), or a **position**: the offset of a record
on the input topic, written ``OFFSET``, ``input:OFFSET``, ``jigsaw.input:OFFSET``
or ``jigsaw.input:0:OFFSET`` (as findings print it). Both bounds are inclusive.

The routing state always has to be rebuilt from the start of the log (who is
whose GP, child or carer comes from the whole history), so the replay reads
everything before the window too; the window limits which events have their
signatures checked and which notifications and decisions are compared (those
whose ``at`` falls inside it). The hash chain and checkpoints are always
checked from the first record, since everything in a window hangs on them.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
from collections.abc import Sequence

from broker import topics
from broker.log.base import Record

__all__ = ["Bound", "Window", "parse_bound", "resolve_window"]


@dataclasses.dataclass(frozen=True, slots=True)
class Bound:
    """One end of a window: a time, or the position of one record."""

    text: str
    time: dt.datetime | None = None
    topic: str | None = None
    partition: int = 0
    offset: int = 0


def _topic(name: str) -> str:
    if name in ("input", topics.INPUT):
        return topics.INPUT
    raise ValueError(f"{name!r} is not the input topic ({topics.INPUT})")


def parse_bound(text: str) -> Bound:
    """A ``--from``/``--to`` value.

    Raises:
        ValueError: neither a time with a zone nor an input-topic position.
    """
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return Bound(text, time=dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC))
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is not None:
        if moment.tzinfo is None:
            raise ValueError(f"{text!r} has no time zone: write it in UTC with a Z")
        return Bound(text, time=moment.astimezone(dt.UTC))
    try:
        if text.isdigit():
            return Bound(text, topic=topics.INPUT, offset=int(text))
        name, _, offset = text.rpartition(":")
        if name.endswith(":0"):  # TOPIC:PARTITION:OFFSET, as findings print positions (one partition)
            name = name[:-2]
        return Bound(text, topic=_topic(name), offset=int(offset))
    except ValueError as exc:
        raise ValueError(
            f"{text!r} is neither a time (2022-01-02T00:00:00Z) nor a position on the input topic (12, input:12, "
            f"jigsaw.input:12): {exc}"
        ) from None


@dataclasses.dataclass(frozen=True, slots=True)
class Window:
    """A stretch of the router's merged inputs, and the times it spans."""

    first: int  # merge-order index of the first input inside
    last: int  # ... and of the last (first > last: nothing inside)
    start: dt.datetime | None  # outputs with at >= start are compared (None: from the beginning)
    end: dt.datetime | None  # ... and at <= end (None: to the end)

    @classmethod
    def everything(cls, count: int) -> Window:
        return cls(0, count - 1, None, None)

    @property
    def whole(self) -> bool:
        return self.start is None and self.end is None

    def covers(self, index: int) -> bool:
        return self.first <= index <= self.last

    def covers_time(self, moment: dt.datetime) -> bool:
        return (self.start is None or moment >= self.start) and (self.end is None or moment <= self.end)


def _time(record: Record) -> dt.datetime:
    return dt.datetime.fromtimestamp(record.timestamp_ms / 1000, dt.UTC)


def _index_of(bound: Bound, inputs: Sequence[Record]) -> int:
    for i, record in enumerate(inputs):
        if (record.topic, record.partition, record.offset) == (bound.topic, bound.partition, bound.offset):
            return i
    raise ValueError(f"there is no input record at {bound.text}")


def resolve_window(start: Bound | None, end: Bound | None, inputs: Sequence[Record]) -> Window:
    """The window two bounds give over the merged inputs.

    Raises:
        ValueError: a position names no record, or the window ends before it starts.
    """
    stamps = [r.timestamp_ms for r in inputs]
    first, last = 0, len(inputs) - 1
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    if start is not None:
        if start.time is not None:
            since = start.time
            first = bisect.bisect_left(stamps, int(since.timestamp() * 1000))
        else:
            first = _index_of(start, inputs)
            since = _time(inputs[first])
    if end is not None:
        if end.time is not None:
            until = end.time
            last = bisect.bisect_right(stamps, int(until.timestamp() * 1000)) - 1
        else:
            last = _index_of(end, inputs)
            until = _time(inputs[last])
    if since is not None and until is not None and until < since:
        raise ValueError(f"--to {end.text if end else ''} is before --from {start.text if start else ''}")
    return Window(first, last, since, until)
