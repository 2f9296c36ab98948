"""The store's settings (JIGSAW_STORE and friends), open_store, and the pure parts of broker/store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from broker.errors import ConfigError, InvalidRequest
from broker.settings import Settings
from broker.store import Batch, InboxQuery, SqliteStore, Store, open_store
from broker.store.conn import numbered
from broker.store.model import decode_cursor, encode_cursor, from_ms, to_ms
from broker.store.postgres import PostgresStore, redact_dsn


def test_the_default_store_is_sqlite_in_the_data_dir() -> None:
    """With no JIGSAW_STORE the store is SQLite at JIGSAW_DATA_DIR/store.db."""
    settings = Settings.from_env({"JIGSAW_DATA_DIR": "/srv/jigsaw"})

    store = open_store(settings)

    assert settings.store == "sqlite" and settings.store_path == Path("/srv/jigsaw/store.db")
    assert isinstance(store, SqliteStore) and store.path == Path("/srv/jigsaw/store.db")
    assert isinstance(store, Store)


def test_postgresql_reads_its_dsn_from_a_file(tmp_path: Path) -> None:
    """JIGSAW_STORE=postgresql takes the DSN from JIGSAW_STORE_DSN_FILE, never from a variable."""
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text("postgresql://jigsaw:s3cret@db.internal:5433/jigsaw\n")
    env = {"JIGSAW_STORE": "postgresql", "JIGSAW_STORE_DSN_FILE": str(dsn_file), "JIGSAW_STORE_POOL_SIZE": "4"}

    store = open_store(Settings.from_env(env))

    assert isinstance(store, PostgresStore) and isinstance(store, Store)
    assert store._where() == "postgresql://db.internal:5433/jigsaw"
    assert "s3cret" not in redact_dsn("postgresql://jigsaw:s3cret@db.internal:5433/jigsaw")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"JIGSAW_STORE": "mysql"}, "JIGSAW_STORE must be one of"),
        ({"JIGSAW_STORE": "postgresql"}, "needs JIGSAW_STORE_DSN_FILE"),
        ({"JIGSAW_STORE": "postgresql", "JIGSAW_STORE_DSN_FILE": "/no/such/file"}, "not a readable file"),
        ({"JIGSAW_STORE_POOL_SIZE": "0"}, "must be positive"),
    ],
)
def test_wrong_store_settings_are_refused(env: dict[str, str], message: str) -> None:
    """A store setting that cannot work is a ConfigError that says which variable and why."""
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_a_dsn_file_without_a_dsn_is_refused(tmp_path: Path) -> None:
    """A DSN file that holds something else is refused before any connection is tried."""
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text("db.internal:5432\n")
    settings = Settings.from_env({"JIGSAW_STORE": "postgresql", "JIGSAW_STORE_DSN_FILE": str(dsn_file)})

    with pytest.raises(ConfigError, match="postgresql:// DSN"):
        open_store(settings)


def test_cursors_round_trip_and_refuse_the_wrong_shape() -> None:
    """A cursor decodes to the key it encodes, and only for a listing of the same shape."""
    cursor = encode_cursor(1_709_283_600_000, "nid-1")

    assert decode_cursor(cursor, (int, str)) == (1_709_283_600_000, "nid-1")
    with pytest.raises(InvalidRequest):
        decode_cursor(cursor, (int, str, int, int))
    with pytest.raises(InvalidRequest):
        decode_cursor("%%%", (int, str))


def test_times_are_whole_milliseconds_and_never_naive() -> None:
    """Datetimes go in as UTC milliseconds and come back aware; a naive one is refused."""
    at = dt.datetime(2024, 3, 1, 9, 0, 0, 123000, tzinfo=dt.UTC)

    assert from_ms(to_ms(at)) == at
    assert to_ms(at) == 1_709_283_600_123
    assert to_ms(dt.datetime(2024, 3, 1, 10, 0, 0, 123999, tzinfo=dt.timezone(dt.timedelta(hours=1)))) == to_ms(at)
    assert all(
        from_ms(to_ms(at + dt.timedelta(milliseconds=n))) == at + dt.timedelta(milliseconds=n) for n in range(999)
    )
    with pytest.raises(ValueError):
        to_ms(dt.datetime(2024, 3, 1, 9, 0))


def test_queries_and_batches_check_what_they_are_given() -> None:
    """A listing query refuses unknown states, priorities and limits; a batch an unknown view."""
    for bad in ({"state": "lost"}, {"priority": "soon"}, {"limit": 0}, {"limit": 1001}):
        with pytest.raises(InvalidRequest):
            InboxQuery("ORG-A", **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Batch("everything")
    batch = Batch("inbox")
    batch.advance("t", 0, 5)
    batch.advance("t", 0, 3)
    assert batch.upto == {("t", 0): 5} and len(batch) == 0


def test_placeholders_are_numbered_for_postgresql() -> None:
    """The shared SQL's ? placeholders become $1, $2, ... in order."""
    assert numbered("SELECT ? WHERE a = ? AND b IN (?, ?)") == "SELECT $1 WHERE a = $2 AND b IN ($3, $4)"


async def test_sqlite_stores_opening_a_new_database_at_once_all_start(tmp_path: Path) -> None:
    """Four connections switching a new database to WAL at once: none fails with 'database is locked'."""
    import asyncio

    for round_ in range(100):  # the race lost about one round in thirty before the switch was retried
        path = tmp_path / f"round-{round_}" / "store.db"
        path.parent.mkdir()
        stores = [SqliteStore(path) for _ in range(4)]
        try:
            await asyncio.gather(*(store.start() for store in stores))
            assert {await store.schema_version() for store in stores} == {1}
        finally:
            for store in stores:
                await store.close()
