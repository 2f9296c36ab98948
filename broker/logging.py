"""structlog, configured once.

Console output on a terminal, JSON lines otherwise. Bind context
(``event_id``, ``source``, ``topic``, ``offset``, ``recipient``) and emit one
canonical line per unit of work. Never log payload contents: this is
safeguarding data.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import structlog

__all__ = ["RateLimitFilter", "configure_logging", "get_logger"]

_configured = False


class RateLimitFilter(logging.Filter):
    """Lets one record per logger and message template through every ``every`` seconds.

    aiokafka logs every failed reconnect of every client it holds, about 17,000
    lines a second while a broker refuses connections; this keeps the first of
    each kind and, with the next one let through, how many were held back.
    """

    def __init__(self, every: float = 10.0, clock: Any = None) -> None:
        super().__init__()
        self.every = every
        self._clock = clock or time.monotonic
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.every:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        if len(self._last) > 1000:  # bounded: forget the oldest kinds
            self._last.clear()
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {self.every:g} s not logged)"
        return True


def _quiet_client_libraries(level: str) -> None:
    """Client libraries' own (stdlib) logs: warnings and worse, rate-limited, on standard error."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RateLimitFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("aiokafka", "kafka", "asyncpg"):
        library = logging.getLogger(name)
        library.handlers = [handler]
        library.propagate = False
        library.setLevel(max(logging.WARNING, logging.getLevelNamesMapping()[level.upper()]))


def configure_logging(log_format: str = "auto", level: str = "info") -> None:
    """Configure structlog for the process; later calls are ignored."""
    global _configured
    if _configured:
        return
    _configured = True
    _quiet_client_libraries(level)
    use_console = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    renderer: Any = structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str, **context: Any) -> Any:
    """A lazy logger for one module: it takes the configuration in force when it first logs."""
    return structlog.get_logger(component=name, **context)


# Until configure_logging runs, log to standard error: standard output may carry data (simulate).
structlog.configure(
    logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
)
