"""The one progress display: a bar on a terminal for long runs, nothing otherwise."""

from __future__ import annotations

import io

from broker.progress import MIN_TOTAL, Progress


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_advance_counts_increments_and_the_bar_ends_its_line() -> None:
    """The replay's way (n more done) reaches the total, with the unit, and close() ends the line."""
    stream = Terminal()
    with Progress("replay", 10_000, unit="inputs", stream=stream, interval=0.0) as bar:
        for _ in range(10_000):
            bar.advance()
    assert bar.done == 10_000
    text = stream.getvalue()
    assert "replay: 100%" in text and "10000/10000" in text and "inputs" in text and text.endswith("\n")


def test_reach_takes_the_count_so_far_and_never_goes_back() -> None:
    """The adapters' way (done so far) shows that count; an older count does not move the bar back."""
    stream = Terminal()
    with Progress("export.csv: checking", MIN_TOTAL, unit="rows", stream=stream, interval=0.0) as bar:
        bar.reach(MIN_TOTAL // 2)
        assert bar.done == MIN_TOTAL // 2
        bar.reach(MIN_TOTAL // 4)
        assert bar.done == MIN_TOTAL // 2
        bar.reach(MIN_TOTAL)
    text = stream.getvalue()
    assert text.startswith("\rexport.csv: checking:") and f"{MIN_TOTAL}/{MIN_TOTAL}" in text


def test_nothing_is_drawn_for_short_runs_or_when_not_a_terminal() -> None:
    """Below the minimum on a terminal, or any run written to a pipe or log, draws nothing but still counts."""
    short, piped = Terminal(), io.StringIO()
    for stream, total, minimum in ((short, MIN_TOTAL - 1, MIN_TOTAL), (piped, 100_000, 5000)):
        with Progress("x", total, stream=stream, minimum=minimum) as bar:
            bar.reach(total)
        assert not bar.enabled and bar.done == total
    assert short.getvalue() == piped.getvalue() == ""
