"""Fixtures for the store contract suite: a PostgreSQL server, one store per backend, synthetic rows.

Where the PostgreSQL tests get their server, in this order:

1. ``JIGSAW_TEST_POSTGRES_DSN``: a server already running (``deploy/test.sh`` starts one with
   ``deploy/postgres/start.sh``);
2. a throwaway cluster this session starts with ``deploy/postgres/start.sh`` when the server
   is installed (``initdb``), stopped at the end;
3. otherwise the tests marked ``postgres`` skip with a message saying how to get a server,
   except in CI (``CI=true``), where they fail.

Each test gets a schema of its own on the shared server (the DSN's ``search_path``), so tests
never see each other's rows; the schema is dropped afterwards.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from broker.nhs import synthetic_nhs_numbers
from broker.store import InboxNotification, SqliteStore, Store

ROOT = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)
NO_SERVER = (
    "no PostgreSQL server for the tests marked 'postgres': run `bash deploy/test.sh`, or "
    "`deploy/postgres/start.sh` and set JIGSAW_TEST_POSTGRES_DSN to the DSN it prints, or install the "
    "distribution's postgresql package so these tests can start a throwaway cluster"
)
_CHILDREN = list(itertools.islice(synthetic_nhs_numbers(), 500))


def child(n: int) -> str:
    """The n-th synthetic NHS number (999 range, valid check digit)."""
    return _CHILDREN[n]


def note(
    n: int,
    *,
    recipient: str = "ORG-A",
    at: dt.datetime | None = None,
    kind: str = "alert",
    priority: str = "urgent",
    children: tuple[str, ...] = (),
    follows: str | None = None,
    ack_hours: float | None = 24,
) -> InboxNotification:
    """A synthetic inbox row: notification ``nid-{n:04d}``, sent ``n`` minutes after T0 unless told."""
    created = at or T0 + dt.timedelta(minutes=n)
    requires_ack = kind in ("alert", "catch_up", "history", "pre_birth_alert")
    return InboxNotification(
        notification_id=f"nid-{n:04d}",
        recipient=recipient,
        event_id=f"evt-{n:04d}",
        kind=kind,
        priority=priority,
        created_at=created,
        ack_by=created + dt.timedelta(hours=ack_hours) if requires_ack and ack_hours is not None else None,
        requires_ack=requires_ack,
        children=children,
        record=f'{{"notification_id": "nid-{n:04d}"}}'.encode(),
        follows=follows,
    )


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _server_installed() -> bool:
    return shutil.which("initdb") is not None or bool(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """The DSN of a real PostgreSQL server for this test session."""
    dsn = os.environ.get("JIGSAW_TEST_POSTGRES_DSN", "").strip()
    if dsn:
        yield dsn
        return
    if _server_installed():
        with tempfile.TemporaryDirectory(prefix="jigsaw-pgstate-") as state:
            env = {**os.environ, "JIGSAW_POSTGRES_STATE": state}
            started = subprocess.run(
                [str(ROOT / "deploy/postgres/start.sh")], env=env, capture_output=True, text=True, timeout=180
            )
            if started.returncode != 0:
                pytest.fail(f"deploy/postgres/start.sh failed:\n{started.stderr}", pytrace=False)
            try:
                yield started.stdout.strip().splitlines()[-1]
            finally:
                subprocess.run([str(ROOT / "deploy/postgres/stop.sh"), "--quiet"], env=env, timeout=60, check=False)
        return
    if _in_ci():
        pytest.fail(f"CI=true and {NO_SERVER}", pytrace=False)
    pytest.skip(NO_SERVER)


def with_search_path(dsn: str, schema: str) -> str:
    """The DSN with ``search_path`` set (asyncpg passes unknown DSN parameters on as server settings)."""
    parts = urllib.parse.urlsplit(dsn)
    query = urllib.parse.parse_qsl(parts.query)
    query = [(k, v) for k, v in query if k != "search_path"] + [("search_path", schema)]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


async def create_schema(dsn: str) -> str:
    import asyncpg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
    finally:
        await conn.close()
    return schema


async def drop_schema(dsn: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await conn.close()


@dataclasses.dataclass
class StoreBackend:
    """One backend under test, able to open more stores on the same database (another process's view)."""

    name: str
    target: str  # the SQLite file or the PostgreSQL DSN, for other processes to open
    _factory: Callable[[], Store]
    opened: list[Store] = dataclasses.field(default_factory=list)

    def new(self) -> Store:
        """A store object on this backend's database, not yet started."""
        store = self._factory()
        self.opened.append(store)
        return store

    async def open(self) -> Store:
        """A started store on this backend's database."""
        store = self.new()
        await store.start()
        return store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreBackend]:
    """Each store backend in turn: SQLite (a file in tmp_path) and PostgreSQL (a schema of its own)."""
    path = tmp_path / "store.db"
    dsn = ""
    if request.param == "sqlite":

        def factory() -> Store:
            return SqliteStore(path)

    else:
        from broker.store.postgres import PostgresStore

        server: str = request.getfixturevalue("postgres_dsn")
        schema = await create_schema(server)
        dsn = with_search_path(server, schema)

        def factory() -> Store:
            return PostgresStore(dsn, max_size=4)

    backend = StoreBackend(request.param, str(path) if request.param == "sqlite" else dsn, factory)
    yield backend
    for store in reversed(backend.opened):
        await store.close()
    if request.param == "postgres":
        await drop_schema(server, schema)


@pytest.fixture
async def store(store_backend: StoreBackend) -> Store:
    """A started store on each backend; closed after the test."""
    return await store_backend.open()
