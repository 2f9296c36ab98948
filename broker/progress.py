"""The one progress display: a tqdm bar on standard error, for long runs on a terminal only.

``jigsaw adapter`` (rows checked, events sent) and ``jigsaw replay`` (inputs
verified) both use it. Work reports progress in one of two ways, and the bar
takes either: ``advance(n)`` when ``n`` more are done (the replay), ``reach(done)``
when ``done`` are done so far (the adapters).
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO

from tqdm import tqdm

__all__ = ["MIN_TOTAL", "Progress"]

MIN_TOTAL = 200  # smaller runs finish before a bar would help


class Progress:
    """A bar counting ``total`` units; silent unless ``stream`` is a terminal and ``total >= minimum``.

    Args:
        label: what is being done (``export.csv: sending``, ``replay``).
        total: how many units there are.
        unit: what is counted (``events``, ``rows``, ``inputs``).
        stream: where to draw (default standard error).
        minimum: the smallest total worth a bar.
        interval: the least time between redraws, in seconds.
    """

    def __init__(
        self,
        label: str,
        total: int,
        *,
        unit: str = "events",
        stream: TextIO | None = None,
        minimum: int = MIN_TOTAL,
        interval: float = 0.1,
    ) -> None:
        stream = stream if stream is not None else sys.stderr
        self.enabled = total >= minimum and stream.isatty()
        self._done = 0  # counted here too: a disabled tqdm bar counts nothing
        self._bar = tqdm(
            total=total,
            desc=label,
            unit=f" {unit}",
            file=stream,
            disable=not self.enabled,
            mininterval=interval,
            ascii=True,
            dynamic_ncols=True,
        )

    @property
    def done(self) -> int:
        """How many units are done."""
        return self._done

    def advance(self, n: int = 1) -> None:
        """``n`` more units are done."""
        self._done += n
        self._bar.update(n)

    def reach(self, done: int) -> None:
        """``done`` units are done so far (never goes back)."""
        if done > self._done:
            self.advance(done - self._done)

    def close(self) -> None:
        """Draw the final count and end the bar's line (if a bar was shown)."""
        self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
