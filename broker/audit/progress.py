"""A progress bar on standard error, shown only on a terminal and only for long replays."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Counts work done out of ``total`` and redraws a one-line bar at most every ``interval`` seconds.

    Silent unless ``stream`` is a terminal and ``total`` is at least ``minimum`` (short replays need no bar).
    """

    def __init__(
        self,
        label: str,
        total: int,
        *,
        stream: TextIO | None = None,
        minimum: int = 5000,
        interval: float = 0.2,
        width: int = 30,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self.total = max(total, 1)
        self.done = 0
        self.enabled = total >= minimum and self.stream.isatty()
        self._interval = interval
        self._width = width
        self._started = time.monotonic()
        self._drawn = 0.0

    def __call__(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._drawn >= self._interval or self.done >= self.total:
            self._drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        share = min(self.done / self.total, 1.0)
        filled = int(share * self._width)
        rate = self.done / max(now - self._started, 1e-9)
        bar = "#" * filled + "-" * (self._width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {self.done:,}/{self.total:,} {share:4.0%} {rate:,.0f}/s ")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line (if one was drawn)."""
        if self.enabled and self._drawn:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
