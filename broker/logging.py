"""structlog, configured once.

Console output on a terminal, JSON lines otherwise. Bind context
(``event_id``, ``source``, ``topic``, ``offset``, ``recipient``) and emit one
canonical line per unit of work. Never log payload contents: this is
safeguarding data.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

__all__ = ["configure_logging", "get_logger"]

_configured = False


def configure_logging(log_format: str = "auto", level: str = "info") -> None:
    """Configure structlog for the process; later calls are ignored."""
    global _configured
    if _configured:
        return
    _configured = True
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
