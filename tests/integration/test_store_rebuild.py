"""The store is a view of the log: deleted (SQLite) or dropped (PostgreSQL), it is rebuilt and answers the same."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from broker.log import EmbeddedLog
from broker.store import SqliteStore, Store
from tests.contract.store_support import create_schema, drop_schema, postgres_dsn, with_search_path
from tests.integration.delivery_service import Cast, Service, eventually, post_incident, publish_directory
from tests.integration.delivery_service import running_service as service_on

__all__ = ["postgres_dsn"]  # the fixture, for the PostgreSQL case


async def _answers(service: Service, cast: Cast) -> dict[str, Any]:
    """What the inbox API answers each organisation: lists (all, unacknowledged) and each notification."""
    out: dict[str, Any] = {}
    for org in (cast.hook, cast.boxed):
        for query in ("", "?unacknowledged=true", "?limit=1"):
            out[f"{org}{query}"] = await service.call(org, "GET", "/v1/inbox" + query)
        for note in await service.inbox(org):
            out[note["notification_id"]] = await service.call(org, "GET", f"/v1/inbox/{note['notification_id']}")
    return out


@contextlib.asynccontextmanager
async def _sqlite(tmp_path: Path) -> AsyncIterator[tuple[Callable[[], Store], Callable[[], Any]]]:
    def new() -> Store:
        return SqliteStore(tmp_path / "store.db")

    async def wipe() -> None:
        for path in tmp_path.glob("store.db*"):  # the file and its WAL
            path.unlink()

    yield new, wipe


@contextlib.asynccontextmanager
async def _postgres(dsn: str) -> AsyncIterator[tuple[Callable[[], Store], Callable[[], Any]]]:
    from broker.store.postgres import PostgresStore

    schema = await create_schema(dsn)

    def new() -> Store:
        return PostgresStore(with_search_path(dsn, schema), max_size=4)

    async def wipe() -> None:
        await drop_schema(dsn, schema)
        import asyncpg

        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"CREATE SCHEMA {schema}")
        finally:
            await conn.close()

    try:
        yield new, wipe
    finally:
        await drop_schema(dsn, schema)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_wiped_store_is_rebuilt_from_the_log(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Inboxes, acknowledgements and accepted ids answer the same after the store is wiped and the gateway restarts."""
    cast = Cast.fresh()
    log_path = tmp_path / "log.db"
    stores = _sqlite(tmp_path) if backend == "sqlite" else _postgres(request.getfixturevalue("postgres_dsn"))
    async with stores as (new_store, wipe):
        async with service_on(EmbeddedLog(log_path), tmp_path, cast.orgs(), store=new_store()) as service:
            await publish_directory(service, cast, {})
            event_id = await post_incident(service, cast)

            async def routed() -> bool:
                for org in (cast.hook, cast.boxed):
                    if not any(n["event_id"] == event_id for n in await service.inbox(org)):
                        return False
                return True

            await eventually(routed, what="both inboxes")
            [first] = await service.inbox(cast.hook)
            ack = await service.call(
                cast.hook, "POST", f"/v1/inbox/{first['notification_id']}/ack", json={"by": "Dr A"}
            )
            assert ack[0] == 201
            before = await _answers(service, cast)
        probe = new_store()
        await probe.start()
        accepted = await probe.accepted_many([event_id])
        await probe.close()

        await wipe()
        async with service_on(EmbeddedLog(log_path), tmp_path, cast.orgs(), roles=(), store=new_store()) as service:
            after = await _answers(service, cast)
            again = await service.call(cast.hook, "POST", f"/v1/inbox/{first['notification_id']}/ack", json={"by": "B"})
        probe = new_store()
        await probe.start()
        rebuilt = await probe.accepted_many([event_id])
        await probe.close()

    assert after == before
    assert before[f"{cast.hook}?unacknowledged=true"][1]["count"] == 0  # the ack is in the rebuilt view too
    assert again[0] == 200 and again[1]["status"] == "already_acknowledged" and again[1]["acknowledged"]["by"] == "Dr A"
    assert rebuilt == accepted and accepted[event_id].position is not None
