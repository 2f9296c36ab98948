"""The progress bar: drawn on a terminal for large files only."""

from __future__ import annotations

import io

from adapters.progress import MIN_EVENTS, Progress


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_the_bar_is_drawn_in_place_on_a_terminal_and_ends_its_line() -> None:
    """On a terminal with many events the bar redraws with carriage returns and finishes at the total."""
    stream = Terminal()
    progress = Progress(MIN_EVENTS, "export.csv", stream=stream, width=10)
    progress(MIN_EVENTS // 2)
    progress(MIN_EVENTS)
    progress.close()
    text = stream.getvalue()
    assert text.startswith("\rexport.csv [#####.....] 100/200 events")
    assert text.endswith(f"\rexport.csv [##########] {MIN_EVENTS}/{MIN_EVENTS} events\n")


def test_no_bar_for_small_files_or_when_not_a_terminal() -> None:
    """A small file on a terminal, or any file written to a pipe or log, draws nothing."""
    small, piped = Terminal(), io.StringIO()
    for stream, total in ((small, MIN_EVENTS - 1), (piped, 10 * MIN_EVENTS)):
        progress = Progress(total, "x", stream=stream)
        progress(total)
        progress.close()
    assert small.getvalue() == piped.getvalue() == ""
