"""A small partnership on a running service, for the benches and fault tests that drive real processes.

Organisations with signing keys and API credentials, Jigsaw's own key, waiting
for a service to answer ``/healthz``, the partnership's directory entries, a
synthetic victim registered at a GP practice, and police incidents about her.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import itertools
import json
import os
import socket
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from broker.audit.checkpoint import PUBLIC_KEY_FILE, public_key_line
from broker.delivery.signing import WebhookKey
from broker.envelope.keys import KeyStore, SigningKey, new_key
from broker.gateway.auth import add_credential
from broker.nhs import synthetic_nhs_number, synthetic_nhs_numbers
from broker.routing.model import Notification
from broker.store import Batch, InboxAck, InboxNotification, Store
from broker.store.sqlstore import SqlStore

__all__ = [
    "Receiver",
    "cpu_seconds",
    "directory_entry",
    "free_port",
    "incident",
    "jigsaw_key",
    "organisations",
    "registration",
    "victim",
    "wait_healthy",
]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process has used so far (Linux ``/proc``), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def organisations(directory: Path, kinds: Mapping[str, str]) -> tuple[dict[str, SigningKey], dict[str, str]]:
    """Signing keys (public halves in ``directory/keys``) and publisher tokens (``directory/credentials.json``)."""
    store = KeyStore(directory / "keys")
    keys: dict[str, SigningKey] = {}
    tokens: dict[str, str] = {}
    for org, kind in kinds.items():
        record, keys[org] = new_key(org, kind, valid_from=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        store.save(record)
        tokens[org] = add_credential(directory / "credentials.json", org, "publisher", "bench")
    return keys, tokens


def jigsaw_key(directory: Path) -> Path:
    """Jigsaw's own signing key (0600) at ``directory/jigsaw.key``, its public half beside the agency keys."""
    key = WebhookKey.generate()
    path = directory / "jigsaw.key"
    path.write_text(key.secret_text())
    path.chmod(0o600)
    (directory / "keys").mkdir(exist_ok=True)
    (directory / "keys" / PUBLIC_KEY_FILE).write_text(public_key_line(key.private_key) + "\n")
    return path


async def wait_healthy(session: aiohttp.ClientSession, url: str, *, seconds: float = 60) -> None:
    """Until ``url/healthz`` answers 200."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(f"{url}/healthz") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy in {seconds:g} s")


def directory_entry(org: str, kind: str, area: str, *, endpoint: str | None = None) -> dict[str, Any]:
    """An organisation's directory entry; a webhook ``endpoint`` on this machine is marked internal."""
    return {
        "org_id": org,
        "kind": kind,
        "name": f"Bench {org}",
        "area": area,
        "endpoint": endpoint,
        "endpoint_internal": endpoint is not None,
        "safeguarding_lead": "Bench lead",
    }


def victim(index: int) -> dict[str, Any]:
    """A synthetic adult (999-range NHS number)."""
    return {"nhs_number": synthetic_nhs_number(index), "name": f"Victim {index}", "date_of_birth": "1990-01-01"}


def registration(person: Mapping[str, Any], practice: str) -> dict[str, Any]:
    """``gp.registration`` data: the person registered at the practice."""
    return {"person": dict(person), "practice": practice, "status": "registered", "effective_date": "2015-01-01"}


def incident(ref: str, person: Mapping[str, Any]) -> dict[str, Any]:
    """``police.domestic_abuse_incident`` data about one victim, no children."""
    return {
        "incident_ref": ref,
        "victim": dict(person),
        "perpetrator": None,
        "children_present": [],
        "children_in_household": [],
        "risk_level": "medium",
        "marac_referral": False,
        "summary": "Synthetic incident for a bench.",
    }


class Receiver:
    """A GP practice's webhook endpoint on this machine: notes every arrival of every ``webhook-id``."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[int]] = collections.defaultdict(list)  # webhook-id -> arrival times (ms)
        self.sent: dict[str, list[int]] = collections.defaultdict(list)  # webhook-id -> each one's webhook-timestamp
        self.events: dict[str, str] = {}  # webhook-id -> event id
        self.arrived: dict[str, float] = {}  # event id -> when its first webhook arrived (perf_counter)
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _hook(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        now = time.perf_counter()
        webhook_id = request.headers.get("webhook-id", "")
        self.arrivals[webhook_id].append(int(time.time() * 1000))
        self.sent[webhook_id].append(int(request.headers.get("webhook-timestamp", "0")))  # when it was sent (s)
        self.events[webhook_id] = str(body.get("event_id"))
        self.arrived.setdefault(str(body.get("event_id")), now)
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


INBOX_T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def inbox_notifications(org: str, count: int, others: int) -> list[Notification]:
    """``count`` alerts to ``org`` and ``others`` to nine other practices, a minute apart (every fifth urgent)."""
    children = list(itertools.islice(synthetic_nhs_numbers(), 2000))
    out = []
    for i in range(count + others):
        urgent = i % 5 == 0
        at = INBOX_T0 + dt.timedelta(minutes=i)
        child = children[i % len(children)]
        out.append(
            Notification(
                notification_id=str(uuid.UUID(int=i)),
                kind="alert",
                event_id=str(uuid.UUID(int=10**9 + i)),
                event_type="police.domestic_abuse_incident",
                recipient=org if i < count else f"GP-OTHER-{i % 9}",
                at=at,
                priority="urgent" if urgent else "routine",
                flags=(),
                view="full",
                reason=f"registered GP ({org}) of child ({child})",
                also_notified=(),
                ack_by=at + dt.timedelta(hours=24 if urgent else 120),
                rule="R1",
                content={"data": {"child": {"nhs_number": child}}},
            )
        )
    return out


def inbox_child(note: Notification) -> str:
    """The child an ``inbox_notifications`` notification is about."""
    return str(note.content["data"]["child"]["nhs_number"])


async def fill_inbox(store: Store, notes: list[Notification]) -> None:
    """Put the notifications in the store's inboxes, acknowledge every third, and bring statistics up to date."""
    rows = [
        InboxNotification.of(n, children=(inbox_child(n),), record=json.dumps(n.to_dict(), sort_keys=True).encode())
        for n in notes
    ]
    for i in range(0, len(rows), 1000):
        await store.add_notifications(rows[i : i + 1000])
    acks = [InboxAck(n.recipient, n.notification_id, "A. Worker", n.at + dt.timedelta(hours=1)) for n in notes[::3]]
    await store.apply(Batch("inbox", acks=acks))
    assert isinstance(store, SqlStore)
    async with store._read() as conn:
        # Fresh statistics, and on PostgreSQL the visibility map that index-only counts need (autovacuum's job
        # in service; a bulk fill outruns it).
        await conn.execute("VACUUM ANALYZE" if store.dialect == "postgresql" else "ANALYZE")
