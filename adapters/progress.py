"""A one-line progress bar on standard error, for large files on a terminal only."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["MIN_EVENTS", "Progress"]

MIN_EVENTS = 200  # smaller files (rows or events) finish before a bar would help


class Progress:
    """Redraws ``label [#####.....] done/total events`` in place; silent unless the stream is a terminal.

    Args:
        total: how many rows or events there are.
        unit: what is counted (``events``, ``rows``).
        stream: where to draw (standard error).
        enabled: force on or off; by default on when the stream is a terminal and ``total >= MIN_EVENTS``.
    """

    def __init__(
        self,
        total: int,
        label: str,
        *,
        unit: str = "events",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        width: int = 30,
    ) -> None:
        self.total = total
        self.unit = unit
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.enabled = enabled if enabled is not None else (self.stream.isatty() and total >= MIN_EVENTS)
        self._drawn = 0.0
        self._done = 0

    def __call__(self, done: int) -> None:
        """Show ``done`` of ``total``; redraws at most ten times a second, and always at the end."""
        self._done = done
        if not self.enabled:
            return
        now = time.monotonic()
        if done < self.total and now - self._drawn < 0.1:
            return
        self._drawn = now
        filled = self.width * done // max(self.total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total} {self.unit}")
        self.stream.flush()

    def close(self) -> None:
        """End the line the bar was drawn on."""
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
