"""Which stretch of the log a replay checks: ``--from`` and ``--to`` (pure).

A bound is either a **time** (ISO 8601 with a zone, e.g. ``2022-01-02T00:00:00Z``,
or a date, meaning 00:00Z that day), compared with each record's log
timestamp (when Jigsaw accepted it), or a **position**: the offset of a record
on the input topic, written ``OFFSET``, ``input:OFFSET``, ``jigsaw.input:OFFSET``
or ``jigsaw.input:0:OFFSET`` (as findings print it). Both bounds are inclusive.

The routing state has to be the state as it stood at ``--from`` (who is whose
GP, child or carer comes from the whole history): the replay re-runs the
policy over everything before the window too, or starts from a router
snapshot; the window limits which events have their signatures checked and
which notifications and decisions are compared (those whose ``at`` falls inside
it). Every record is still checked against the signed tree heads, since
everything in a window hangs on them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

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
    """A stretch of the input topic, and the times it spans.

    An input is inside when its offset lies between ``first`` and ``last`` (position bounds) and its log
    timestamp between ``start`` and ``end`` (time bounds); outputs are compared when their ``at`` lies
    between ``start`` and ``end``.
    """

    first: int | None = None  # the first input offset inside (None: from the beginning)
    last: int | None = None  # ... and the last (None: to the end)
    start: dt.datetime | None = None  # outputs with at >= start are compared (None: from the beginning)
    end: dt.datetime | None = None  # ... and at <= end (None: to the end)

    @classmethod
    def everything(cls) -> Window:
        """The whole log."""
        return cls()

    @property
    def whole(self) -> bool:
        """True when nothing is left out."""
        return self.start is None and self.end is None and self.first is None and self.last is None

    def covers(self, record: Record) -> bool:
        """True when an input record lies inside."""
        if self.first is not None and record.offset < self.first:
            return False
        if self.last is not None and record.offset > self.last:
            return False
        return self.covers_time(_time(record))

    def past(self, record: Record) -> bool:
        """True when an input record lies after the end (nothing later can change an output due by then)."""
        if self.last is not None and record.offset > self.last:
            return True
        return self.end is not None and record.timestamp_ms > int(self.end.timestamp() * 1000)

    def covers_time(self, moment: dt.datetime) -> bool:
        """True when an output's time lies inside."""
        return (self.start is None or moment >= self.start) and (self.end is None or moment <= self.end)


def _time(record: Record) -> dt.datetime:
    return dt.datetime.fromtimestamp(record.timestamp_ms / 1000, dt.UTC)


def resolve_window(start: Bound | None, end: Bound | None, at: Callable[[Bound], Record | None]) -> Window:
    """The window two bounds give; ``at`` finds the input record a position bound names.

    Raises:
        ValueError: a position names no record, or the window ends before it starts.
    """
    first = last = None
    since = until = None
    for bound, is_start in ((start, True), (end, False)):
        if bound is None:
            continue
        moment = bound.time
        if moment is None:
            record = at(bound)
            if record is None:
                raise ValueError(f"there is no input record at {bound.text}")
            moment = _time(record)
            if is_start:
                first = record.offset
            else:
                last = record.offset
        if is_start:
            since = moment
        else:
            until = moment
    if since is not None and until is not None and until < since:
        raise ValueError(f"--to {end.text if end else ''} is before --from {start.text if start else ''}")
    return Window(first, last, since, until)
