"""The Store contract, continued: inbox listings are served by indexes, and a store that is down says so.

Plans are read with EXPLAIN on PostgreSQL and EXPLAIN QUERY PLAN on SQLite over a few thousand
synthetic notifications (a few for each child): no listing reads the whole table, and none sorts what an index can
give in order.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import urllib.parse
from pathlib import Path

import pytest

from broker.errors import ConfigError, StoreUnavailable
from broker.store import AcceptedId, Batch, InboxAck, InboxQuery, SqliteStore, Store
from broker.store.inbox_sql import listing_sql
from broker.store.model import encode_cursor, to_ms
from broker.store.sqlstore import SqlStore
from tests.contract.store_support import (
    T0,
    child,
    create_schema,
    drop_schema,
    note,
    with_search_path,
)

RECIPIENTS = [f"ORG-{i}" for i in range(4)]
QUERIES = {
    "newest": InboxQuery("ORG-1"),
    "next page": InboxQuery("ORG-1", after=encode_cursor(to_ms(T0 + dt.timedelta(minutes=3001)), "nid-3001")),
    "awaiting": InboxQuery("ORG-1", state="awaiting"),
    "overdue": InboxQuery("ORG-1", state="overdue", now=T0 + dt.timedelta(days=3)),
    "escalated": InboxQuery("ORG-1", state="escalated"),
    "acknowledged": InboxQuery("ORG-1", state="acknowledged"),
    "unread": InboxQuery("ORG-1", state="unread"),
    "priority": InboxQuery("ORG-1", priority="routine"),
    "child": InboxQuery("ORG-1", child=child(5)),
    "child, next page": InboxQuery(
        "ORG-1", child=child(5), after=encode_cursor(to_ms(T0 + dt.timedelta(minutes=3001)), "nid-3001")
    ),
}


async def _fill(store: Store, count: int = 8000) -> None:
    notes = [
        note(
            i,
            recipient=RECIPIENTS[i % len(RECIPIENTS)],
            priority="urgent" if i % 5 == 0 else "routine",
            kind="escalation" if i % 50 == 1 else "alert",
            follows=f"nid-{i - 4:04d}" if i % 50 == 1 else None,
            children=(child(i % 400),),
        )
        for i in range(count)
    ]
    await store.add_notifications(notes)
    acks = [InboxAck(RECIPIENTS[i % len(RECIPIENTS)], f"nid-{i:04d}", "A. Worker", T0) for i in range(0, count, 3)]
    await store.apply(Batch("inbox", acks=acks))


async def _plan(store: SqlStore, query: InboxQuery) -> str:
    sql, args = listing_sql(query)
    if store.dialect == "postgresql":
        rows = await store._reading(lambda conn: conn.fetch("EXPLAIN " + sql, *args))
        return "\n".join(str(r[0]) for r in rows)
    rows = await store._reading(lambda conn: conn.fetch("EXPLAIN QUERY PLAN " + sql, *args))
    return "\n".join(str(r[-1]) for r in rows)


async def test_every_inbox_listing_is_served_by_an_index(store: Store) -> None:
    """EXPLAIN shows each listing (plain, paged, by status, priority or child) reading an index, never the table."""
    assert isinstance(store, SqlStore)
    await _fill(store)
    await store._writing(lambda conn: conn.execute("ANALYZE"))

    for name, query in QUERIES.items():
        plan = await _plan(store, query)
        if store.dialect == "postgresql":
            assert "Seq Scan" not in plan, f"{name}: {plan}"
            assert "Index" in plan, f"{name}: {plan}"
        else:
            lines = plan.splitlines()
            assert all("USING" in line for line in lines if line.startswith(("SCAN", "SEARCH"))), f"{name}: {plan}"
            assert "TEMP B-TREE" not in plan, f"{name}: {plan}"
        page = await store.list_inbox(query)
        assert page.items, name


@pytest.mark.postgres
async def test_the_newest_page_is_an_ordered_index_range_on_postgres(postgres_dsn: str) -> None:
    """On PostgreSQL the plain and filtered pages are index scans in order: no sort, no bitmap of the inbox."""
    from broker.store.postgres import PostgresStore

    schema = await create_schema(postgres_dsn)
    store = PostgresStore(with_search_path(postgres_dsn, schema), max_size=2)
    try:
        await store.start()
        await _fill(store)
        await store._writing(lambda conn: conn.execute("ANALYZE"))
        for name in ("newest", "awaiting", "priority", "next page"):
            plan = await _plan(store, QUERIES[name])
            assert "Index Scan" in plan and "Sort" not in plan, f"{name}: {plan}"
    finally:
        await store.close()
        await drop_schema(postgres_dsn, schema)


async def test_a_store_that_cannot_be_reached_raises_store_unavailable(tmp_path: Path) -> None:
    """An unreachable PostgreSQL or an unopenable SQLite file is StoreUnavailable: retriable, 503."""
    from broker.store.postgres import PostgresStore

    (tmp_path / "a-file").write_text("")
    sqlite = SqliteStore(tmp_path / "a-file" / "store.db")
    with pytest.raises(StoreUnavailable) as caught:
        await sqlite.start()
    assert caught.value.retriable and caught.value.http_status == 503

    postgres = PostgresStore("postgresql://jigsaw:secret@127.0.0.1:1/none", connect_timeout=2)
    with pytest.raises(StoreUnavailable) as refused:
        await postgres.start()
    assert refused.value.code == "store_unavailable"
    assert "secret" not in refused.value.message
    with pytest.raises(StoreUnavailable):
        await postgres.accepted("evt-1")


@pytest.mark.postgres
async def test_a_connection_dropped_mid_query_is_retriable_and_the_next_call_reconnects(postgres_dsn: str) -> None:
    """A connection the server ends mid-query raises StoreUnavailable (retriable); the next call gets a new one."""
    import asyncpg

    from broker.store.postgres import PostgresStore

    schema = await create_schema(postgres_dsn)
    app = f"jigsaw-test-{schema}"
    store = PostgresStore(f"{with_search_path(postgres_dsn, schema)}&application_name={app}", min_size=1, max_size=1)
    try:
        await store.start()
        await store.claim(AcceptedId("evt-1", "d1", "ORG-P"))

        async def slow_read() -> None:
            async with store._read() as conn:
                await conn.fetchrow("SELECT pg_sleep(10)")

        reading = asyncio.create_task(slow_read())
        admin = await asyncpg.connect(postgres_dsn)
        try:
            ended = []
            while not ended:
                await asyncio.sleep(0.1)
                ended = await admin.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = $1 AND query LIKE '%pg_sleep%'",
                    app,
                )
        finally:
            await admin.close()
        with pytest.raises(StoreUnavailable) as caught:
            await reading
        assert caught.value.retriable

        row = await store.accepted("evt-1")
        assert row is not None and row.digest == "d1"
    finally:
        await store.close()
        await drop_schema(postgres_dsn, schema)


@pytest.mark.postgres
async def test_a_database_that_does_not_exist_is_a_config_error(postgres_dsn: str) -> None:
    """A DSN naming no database is a ConfigError (fix the settings), not a retriable outage."""
    from broker.store.postgres import PostgresStore

    parts = urllib.parse.urlsplit(postgres_dsn)
    store = PostgresStore(urllib.parse.urlunsplit(parts._replace(path="/no_such_database")))
    with pytest.raises(ConfigError, match="refused the DSN"):
        await store.start()
