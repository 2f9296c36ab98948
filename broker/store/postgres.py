"""The store in PostgreSQL (asyncpg): serving views shared by many machines.

Why asyncpg rather than psycopg 3: it is asyncio-native with its own
connection pool (psycopg needs the separate ``psycopg_pool`` for that), speaks
the binary protocol and caches prepared statements per connection, so the hot
reads (an inbox page, an id lookup) are one round trip with no re-planning;
``executemany`` pipelines a materialiser's batch. psycopg's strengths (sync
and async in one API, server-side cursors, COPY helpers) are not what the
serving views need.

Writers that must not interleave (two processes migrating at start, two
materialisers of one view) take a transaction-scoped advisory lock keyed by
schema and purpose; it is released at commit or rollback, and a crashed
holder's lock goes with its connection.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from broker.errors import ConfigError, StoreUnavailable
from broker.store.conn import Conn, Row, numbered
from broker.store.sqlstore import SqlStore

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresStore", "redact_dsn"]

T = TypeVar("T")

# SQLSTATE classes that say "the database, not the request": connection (08), resources (53),
# operator intervention and shutdowns (57), system errors (58), and transaction rollbacks such as
# serialisation failures and deadlocks (40). Trying again later may work.
_RETRIABLE_CLASSES = ("08", "40", "53", "57", "58")


def redact_dsn(dsn: str) -> str:
    """``host:port/database`` of a DSN, for messages and health reports: never the user's password."""
    try:
        parts = urllib.parse.urlsplit(dsn)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
    except ValueError:
        return "postgresql (unparseable DSN)"
    return f"postgresql://{host}:{port}{parts.path or '/'}"


def _unavailable(exc: BaseException, where: str) -> StoreUnavailable | None:
    """The retriable error for a connection-level failure, or None for anything else (a bug to surface)."""
    import asyncpg

    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(exc, asyncpg.PostgresError) and isinstance(sqlstate, str):
        if not sqlstate.startswith(_RETRIABLE_CLASSES):
            return None
    elif not isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError):
        return None
    return StoreUnavailable(f"the store at {where} is unavailable: {type(exc).__name__}: {exc}")


class _Conn:
    """``Conn`` over one asyncpg connection."""

    def __init__(self, conn: asyncpg.pool.PoolConnectionProxy[Any]) -> None:
        self._c = conn

    async def execute(self, sql: str, *args: Any) -> int:
        status: str = await self._c.execute(numbered(sql), *args)
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            await self._c.executemany(numbered(sql), rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return list(await self._c.fetch(numbered(sql), *args))

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = await self._c.fetchrow(numbered(sql), *args)
        return row


class PostgresStore(SqlStore):
    """The serving views in a PostgreSQL database, through a connection pool."""

    name = "postgresql"
    dialect = "postgresql"

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
        command_timeout: float = 30.0,
    ) -> None:
        self._dsn = dsn
        self._min, self._max = min_size, max_size
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool[Any] | None = None

    def _where(self) -> str:
        return redact_dsn(self._dsn)

    def _lock(self, key: str) -> str | None:
        # The key is ours (a fixed purpose or a checked view name), never caller text.
        assert key.replace(":", "").replace("_", "").isalnum(), key
        return f"SELECT pg_advisory_xact_lock(hashtext('jigsaw.store:' || current_schema() || ':{key}'))"

    async def start(self) -> None:
        if self._pool is not None:
            return
        import asyncpg

        try:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=self._min,
                max_size=self._max,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
            )
        except Exception as exc:
            sqlstate = str(getattr(exc, "sqlstate", ""))
            if sqlstate.startswith(("28", "3D")):  # credentials refused, no such database: trying again will not help
                raise ConfigError(
                    f"the store at {self._where()} refused the DSN in JIGSAW_STORE_DSN_FILE: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            error = _unavailable(exc, self._where())
            if error is None:
                error = StoreUnavailable(f"cannot open the store at {self._where()}: {type(exc).__name__}: {exc}")
            raise error from exc
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _pool_or_fail(self) -> asyncpg.Pool[Any]:
        if self._pool is None:
            raise StoreUnavailable(f"the store at {self._where()} is not open (call start first)")
        return self._pool

    async def _writing(self, body: Callable[[Conn], Awaitable[T]]) -> T:
        async with self._write() as conn:
            return await body(conn)

    async def _reading(self, body: Callable[[Conn], Awaitable[T]]) -> T:
        async with self._read() as conn:
            return await body(conn)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[_Conn]:
        pool = self._pool_or_fail()
        try:
            async with pool.acquire(timeout=self._connect_timeout) as conn, conn.transaction():
                yield _Conn(conn)
        except Exception as exc:
            error = _unavailable(exc, self._where())
            if error is None:
                raise
            raise error from exc

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[_Conn]:
        pool = self._pool_or_fail()
        try:
            async with pool.acquire(timeout=self._connect_timeout) as conn:
                yield _Conn(conn)
        except Exception as exc:
            error = _unavailable(exc, self._where())
            if error is None:
                raise
            raise error from exc
