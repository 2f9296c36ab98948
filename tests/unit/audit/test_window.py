"""--from and --to: times or positions, resolved over the router's merged inputs."""

from __future__ import annotations

import datetime as dt

import pytest

from broker.audit.window import Bound, Window, parse_bound, resolve_window
from broker.log.base import Record

T0 = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)


def _ms(hours: int) -> int:
    return int((T0 + dt.timedelta(hours=hours)).timestamp() * 1000)


INPUTS = [
    Record("jigsaw.input", 0, 0, None, b"", (), _ms(0)),
    Record("jigsaw.input", 0, 1, None, b"", (), _ms(1)),
    Record("jigsaw.input", 0, 2, None, b"", (), _ms(2)),
    Record("jigsaw.input", 0, 3, None, b"", (), _ms(3)),
]


def test_a_time_with_a_zone_is_a_time_bound() -> None:
    """ISO 8601 times (Z or an offset) are read as times in UTC."""
    assert parse_bound("2022-01-01T01:00:00Z").time == T0 + dt.timedelta(hours=1)
    assert parse_bound("2022-01-01T02:00:00+01:00").time == T0 + dt.timedelta(hours=1)


def test_a_date_means_midnight_utc() -> None:
    """A bare date is 00:00Z that day."""
    assert parse_bound("2022-01-01").time == T0


@pytest.mark.parametrize(
    ("text", "topic", "partition", "offset"),
    [
        ("1", "jigsaw.input", 0, 1),
        ("input:1", "jigsaw.input", 0, 1),
        ("jigsaw.input:7", "jigsaw.input", 0, 7),
        ("input:3", "jigsaw.input", 0, 3),
    ],
)
def test_positions_name_a_topic_optional_partition_and_offset(
    text: str, topic: str, partition: int, offset: int
) -> None:
    """An offset on the input topic, bare or after input: or jigsaw.input:."""
    bound = parse_bound(text)
    assert (bound.topic, bound.partition, bound.offset, bound.time) == (topic, partition, offset, None)


@pytest.mark.parametrize("text", ["2022-01-01T00:00:00", "nowhere:3", "input:x", "police:1", "yesterday"])
def test_anything_else_is_refused_with_the_forms_it_takes(text: str) -> None:
    """A naive time, an unknown topic or a non-number is a ValueError that says what is expected."""
    with pytest.raises(ValueError):
        parse_bound(text)


def _at(bound: Bound) -> Record | None:
    return next((r for r in INPUTS if r.offset == bound.offset), None)


def test_time_bounds_select_inputs_and_outputs_inclusively() -> None:
    """Both ends are inclusive, for the inputs verified and the outputs compared."""
    window = resolve_window(parse_bound("2022-01-01T01:00:00Z"), parse_bound("2022-01-01T02:00:00Z"), _at)
    assert [r.offset for r in INPUTS if window.covers(r)] == [1, 2]
    assert window.past(INPUTS[3]) and not window.past(INPUTS[2])
    assert window.covers_time(T0 + dt.timedelta(hours=2)) and not window.covers_time(T0 + dt.timedelta(hours=3))


def test_position_bounds_resolve_to_their_record_and_its_time() -> None:
    """A position selects from (or to) that record, and its timestamp bounds the outputs."""
    window = resolve_window(parse_bound("input:1"), parse_bound("3"), _at)
    assert (window.first, window.last) == (1, 3)
    assert [r.offset for r in INPUTS if window.covers(r)] == [1, 2, 3]
    assert window.start == T0 + dt.timedelta(hours=1) and window.end == T0 + dt.timedelta(hours=3)


def test_a_position_with_no_record_or_a_backwards_window_is_refused() -> None:
    """The auditor hears which bound is wrong."""
    with pytest.raises(ValueError, match="input:9"):
        resolve_window(parse_bound("input:9"), None, _at)
    with pytest.raises(ValueError, match="before"):
        resolve_window(parse_bound("2022-01-02"), parse_bound("2022-01-01"), _at)


def test_the_whole_log_window_covers_everything() -> None:
    """Without bounds every input and every time is inside."""
    window = Window.everything()
    assert window.whole and all(window.covers(r) for r in INPUTS) and window.covers_time(T0)
    assert not any(window.past(r) for r in INPUTS)
