"""The few things the shared SQL needs from a database connection.

Statements use ``?`` placeholders; the PostgreSQL connection rewrites them to
``$1, $2, ...`` (``numbered``). Rows come back as sequences, indexed by column
position.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["Conn", "Row", "numbered"]

Row = Sequence[Any]


class Conn(Protocol):
    """One connection, inside a transaction when writing."""

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; how many rows it changed."""

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per row of arguments."""

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """Every row a query returns."""

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        """The first row a query returns, or None."""


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (the shared SQL has no ``?`` in literals)."""
    out: list[str] = []
    n = 0
    for ch in sql:
        if ch == "?":
            n += 1
            out.append(f"${n}")
        else:
            out.append(ch)
    return "".join(out)
