"""The replay's progress bar: drawn on a terminal for long replays, silent otherwise."""

from __future__ import annotations

import io

from broker.audit.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_long_replay_on_a_terminal_draws_a_bar_and_ends_its_line() -> None:
    """Counts are shown with the share done, and close() ends the line."""
    out = _Terminal()
    bar = Progress("replay", 10_000, stream=out, interval=0.0)
    for _ in range(10_000):
        bar()
    bar.close()
    text = out.getvalue()
    assert "10,000/10,000" in text and "100%" in text and text.endswith("\n")


def test_nothing_is_drawn_when_not_a_terminal_or_the_replay_is_short() -> None:
    """Piped output and short replays get no bar."""
    piped = io.StringIO()
    Progress("replay", 100_000, stream=piped)(100_000)
    short = _Terminal()
    bar = Progress("replay", 10, stream=short)
    bar(10)
    bar.close()
    assert piped.getvalue() == "" and short.getvalue() == ""
