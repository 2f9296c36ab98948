"""A real gateway on 127.0.0.1 over a real log, for the integration tests.

``running_gateway`` starts ``create_app`` with an ``AppRunner`` on an
ephemeral TCP port, sample keys on disk (``KeyStore``), and a publisher
credential for each sample organisation. ``Marks`` snapshots the end of every
events topic and the rejection topic so a test sees only what it caused, even
on a Kafka broker shared with other tests.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from broker import topics
from broker.client import JigsawClient, build_envelope
from broker.envelope import Envelope, KeyStore
from broker.envelope.batch import BATCH_CONTENT_TYPE, ENVELOPE_CONTENT_TYPE
from broker.envelope.testing import SAMPLE_ORGS, SampleKeys, make_keys, publisher_for, sample_data, sample_directory
from broker.gateway.app import create_app
from broker.gateway.auth import Credentials
from broker.gateway.keys import CLOCK
from broker.log import EmbeddedLog, Log, Record
from broker.log.namespace import NamespacedLog
from broker.routing.records import encode_output
from broker.settings import Settings
from tests.integration.delivery_support import synthetic_notification

WATCHED = (topics.INPUT, topics.REJECTED)
MAX_BODY = 64 * 1024
ADMIN_TOKEN = "token-admin"  # the partnership's admin credential (not in Gateway.tokens: it publishes nothing)


def open_backend_log(backend: str, tmp_path: Path, bootstrap: str | None) -> Log:
    """A fresh (unstarted) log object on the named backend's storage."""
    if backend == "embedded":
        return EmbeddedLog(tmp_path / "log.db")
    from broker.log.kafka import KafkaLog

    assert bootstrap is not None
    # A private corner of the shared broker (one per test: its tmp_path), so no other test's records land
    # in this test's topics, while a restarted gateway in the same test finds its own.
    prefix = "gw" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:12] + "."
    return NamespacedLog(KafkaLog(bootstrap, client_id="jigsaw-gateway-tests"), prefix)


@dataclasses.dataclass
class Marks:
    """Where every watched topic partition ended when a test began."""

    ends: dict[tuple[str, int], int]


@dataclasses.dataclass
class Gateway:
    """A running gateway and what a test needs to talk to it and inspect its log."""

    base_url: str
    app: web.Application
    log: Log
    keys: SampleKeys
    store: KeyStore
    tokens: dict[str, str]
    session: aiohttp.ClientSession

    def client(self, org_id: str, *, key_org: str | None = None) -> JigsawClient:
        """A client signed in as ``org_id`` (signing with ``key_org``'s key if given)."""
        return JigsawClient(
            self.base_url, self.tokens[org_id], key=self.keys.signing[key_org or org_id], session=self.session
        )

    def build(
        self,
        event_type: str = "police.domestic_abuse_incident",
        data: dict[str, Any] | None = None,
        *,
        source: str | None = None,
        signed_by: str | None = None,
        **options: Any,
    ) -> Envelope:
        """A signed envelope issued now (by the source's own key unless ``signed_by``)."""
        source = source or publisher_for(event_type)
        now = dt.datetime.now(dt.UTC)
        return build_envelope(
            event_type,
            data if data is not None else sample_data(event_type),
            source=source,
            key=self.keys.signing[signed_by or source],
            occurred_at=options.pop("occurred_at", now - dt.timedelta(hours=1)),
            issued_at=options.pop("issued_at", now),
            **options,
        )

    async def post(
        self,
        body: bytes | AsyncIterable[bytes],
        *,
        org: str | None = "POLICE-WYP",
        path: str = "/v1/events",
        content_type: str | None = None,
        token: str | None = None,
    ) -> tuple[int, Any]:
        """POST raw bytes (or a chunked stream) and return ``(status, json)``."""
        headers = {"Content-Type": content_type or (BATCH_CONTENT_TYPE if "batch" in path else ENVELOPE_CONTENT_TYPE)}
        if token is not None or org is not None:
            headers["Authorization"] = f"Bearer {token or self.tokens[org or '']}"
        async with self.session.post(self.base_url + path, data=body, headers=headers) as response:
            return response.status, await response.json(content_type=None)

    async def notify(self, recipient: str) -> str:
        """Append one notification for ``recipient`` to the notifications topic, as the router would; its id."""
        note = synthetic_notification(recipient)
        key, value, headers = encode_output(note)
        await self.log.append(topics.NOTIFICATIONS, value, key=key, headers=headers)
        return note.notification_id

    async def mark(self) -> Marks:
        """Snapshot the end offset of every watched topic partition."""
        ends: dict[tuple[str, int], int] = {}
        for topic in WATCHED:
            for partition in range(max(1, await self.log.partitions(topic))):
                ends[(topic, partition)] = await self.log.end_offset(topic, partition=partition)
        return Marks(ends)

    async def since(self, marks: Marks) -> tuple[list[Record], list[dict[str, Any]]]:
        """Event records and rejection records appended after ``marks``."""
        events: list[Record] = []
        rejections: list[dict[str, Any]] = []
        for (topic, partition), start in marks.ends.items():
            end = await self.log.end_offset(topic, partition=partition)
            offset = start
            while offset < end:
                batch = await self.log.read(topic, offset, partition=partition, limit=1000, timeout=5.0)
                if not batch:
                    break
                for record in batch:
                    if topic == topics.REJECTED:
                        assert record.value is not None
                        rejections.append(json.loads(record.value))
                    else:
                        events.append(record)
                offset = batch[-1].offset + 1
        return events, rejections

    async def assert_refused(self, marks: Marks, code: str, event_ids: Iterable[str | None] = ()) -> None:
        """Nothing reached an events topic since ``marks``; a rejection with ``code`` was recorded for each id."""
        events, rejections = await self.since(marks)
        assert events == [], f"refused submissions reached an events topic: {events}"
        codes = [r.get("error") for r in rejections]
        assert code in codes, f"no {code} rejection recorded; got {codes}"
        for event_id in event_ids:
            assert any(r.get("event_id") == event_id and r.get("error") == code for r in rejections), event_id
        for record in rejections:  # never payload contents: only what was refused and why
            assert set(record) <= {
                "event_id",
                "source",
                "event_type",
                "caller",
                "error",
                "code",
                "message",
                "received_at",
                "body_sha256",
                "body_bytes",
                "body_size",
                "client",
            }, record


@contextlib.asynccontextmanager
async def running_gateway(
    backend: str,
    tmp_path: Path,
    bootstrap: str | None = None,
    *,
    keys: SampleKeys | None = None,
    **settings_changes: Any,
) -> AsyncIterator[Gateway]:
    """A gateway on 127.0.0.1 (ephemeral port) over ``backend``'s storage under ``tmp_path`` (settings changed)."""
    keys = keys or make_keys()
    store = KeyStore(tmp_path / "keys", recheck_seconds=0)
    for record in keys.records.values():
        if store.load().get(record.key_id) is None:
            store.save(record)
    tokens = {org_id: f"token-{org_id.lower()}" for org_id in SAMPLE_ORGS}
    tokens["RECIPIENT"] = "token-recipient"
    credentials = Credentials.from_tokens(
        [(token, org_id, "publisher") for org_id, token in tokens.items() if org_id != "RECIPIENT"]
        + [("token-recipient", "HV-BRADFORD-NORTH", "recipient")]
        + [(ADMIN_TOKEN, "PARTNERSHIP-BRADFORD", "admin")]
    )
    settings = Settings(
        data_dir=tmp_path, keys_dir=tmp_path / "keys", max_body_bytes=MAX_BODY, max_batch=50, **settings_changes
    )
    log = open_backend_log(backend, tmp_path, bootstrap)
    app = create_app(settings, log, keys=store, credentials=credentials, roles=())
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as session:
            gateway = Gateway(f"http://{host}:{port}", app, log, keys, store, tokens, session)
            # The partnership lists the sample organisations first: events naming others are refused.
            directory = sample_directory(keys, at=app[CLOCK]())
            for result in await gateway.client("PARTNERSHIP-BRADFORD").send_batch(directory):
                assert result.status in (200, 202), result.body
            yield gateway
    finally:
        await runner.cleanup()
