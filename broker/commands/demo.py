"""``jigsaw demo``: the review's three cases through a real Jigsaw on the embedded log, with no setup.

It makes a fresh data directory (a temporary one unless ``--dir``), keys and
credentials for every organisation in the cases, and starts the service:
gateway, router and dispatcher on the wall clock. Then it publishes each case
through the HTTP gateway as the agencies would (signed envelopes, ``occurred_at``
from the case, ``issued_at`` now; the steps the cases mean to be refused are
sent as written and refused): every step an agency's adapter can carry (police
incidents, GP registrations and coded entries, maternity bookings, births and
concerns, social care plans, strategy meetings, pre-birth assessments and
households) goes as one record of that agency's export through its adapter
(``adapters.from_scenario``), the rest with the client. It acknowledges what the cases acknowledge through
the inbox API, and prints organisation by organisation what each professional
received and why. The service then keeps running with the inbox API until
Ctrl-C, and the demo prints how to query it; ``--no-wait`` prints and exits.

Deadlines run on the live clock: a notification is sent now, so its
acknowledgement is due 24 hours (urgent) or 5 days (routine) from now, and its
escalation comes then if nobody acknowledges it. A challenge's ``respond_by``
is a date in the case, long past, so unanswered challenges escalate at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from aiohttp import web

import adapters
from adapters.from_scenario import ScenarioRecord, step_record
from broker.client import JigsawClient, build_envelope, default_lawful_basis
from broker.commands.demo_report import Published, how_to_query, report, summary, wait_until_quiet
from broker.delivery.signing import WebhookKey
from broker.envelope.keys import KeyStore, SigningKey, new_key
from broker.errors import Refusal
from broker.gateway.app import create_app
from broker.gateway.auth import add_credential
from broker.log.embedded import EmbeddedLog
from broker.logging import configure_logging
from broker.routing.model import notification_id
from broker.settings import Settings
from broker.simulate import Scenario, load_scenario, resolve_data
from broker.web.people import demo_users

__all__ = ["add_arguments", "find_cases", "publish_cases", "run"]

CASES = ("child-1.json", "child-2.json", "child-3.json")
SHARED_CASES = Path(__file__).resolve().parents[3] / "shared" / "scenarios"
PACKAGED_CASES = Path(__file__).resolve().parents[1] / "demo_data"
KEYS_VALID_FROM = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--dir``, ``--port``, ``--no-wait``, ``--keep`` and ``--cases``."""
    parser.add_argument("--dir", type=Path, default=None, help="data directory (new or empty; default: a temp dir)")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080; any free one if taken)")
    parser.add_argument("--no-wait", action="store_true", help="print what was received, then stop and exit")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory afterwards")
    parser.add_argument("--cases", type=Path, default=None, help="directory holding child-1.json .. child-3.json")


def find_cases(override: Path | None = None) -> list[Path]:
    """The three case files: ``--cases``, else ``../shared/scenarios``, else the copies shipped with Jigsaw."""
    for folder in (override, SHARED_CASES, PACKAGED_CASES):
        if folder is not None and all((folder / name).is_file() for name in CASES):
            return [folder / name for name in CASES]
    raise FileNotFoundError(f"no case files ({', '.join(CASES)}) in {override or SHARED_CASES} or {PACKAGED_CASES}")


@dataclasses.dataclass
class Setup:
    """Everything the demo made: where, who, with which keys and tokens."""

    directory: Path
    settings: Settings
    organisations: dict[str, Mapping[str, Any]]
    signing: dict[str, SigningKey]
    publisher_tokens: dict[str, str]
    token_files: dict[str, Path]  # recipient credential per organisation

    def recipient_token(self, org_id: str) -> str:
        return self.token_files[org_id].read_text(encoding="utf-8").strip()


def write_demo_users(path: Path, organisations: Mapping[str, Mapping[str, Any]]) -> Path:
    """The web pages' local sign-in users for these organisations (``broker.web.people.demo_users``)."""
    path.write_text(json.dumps({"users": demo_users(organisations)}, indent=2) + "\n", encoding="utf-8")
    return path


def prepare(directory: Path, cases: list[Scenario], port: int) -> Setup:
    """Keys, credentials (a token file per organisation), Jigsaw's webhook key and settings, under ``directory``."""
    organisations: dict[str, Mapping[str, Any]] = {}
    for case in cases:
        for org in case.organisations:
            organisations.setdefault(str(org["org_id"]), org)
    store = KeyStore(directory / "keys")
    credentials = directory / "credentials.json"
    tokens_dir = directory / "tokens"
    tokens_dir.mkdir(mode=0o700, parents=True)
    signing: dict[str, SigningKey] = {}
    publisher_tokens: dict[str, str] = {}
    token_files: dict[str, Path] = {}
    for org_id, org in sorted(organisations.items()):
        record, signing[org_id] = new_key(org_id, str(org["kind"]), valid_from=KEYS_VALID_FROM)
        store.save(record, signing[org_id])
        publisher_tokens[org_id] = add_credential(credentials, org_id, "publisher", "jigsaw demo")
        token_files[org_id] = tokens_dir / f"{org_id}.token"
        fd = os.open(token_files[org_id], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(add_credential(credentials, org_id, "recipient", "jigsaw demo") + "\n")
    webhook_key = directory / "webhook-signing-key"
    fd = os.open(webhook_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(WebhookKey.generate().secret_text() + "\n")
    settings = Settings(
        data_dir=directory,
        log_path=directory / "log.db",
        keys_dir=directory / "keys",
        http_port=port,
        credentials_file=credentials,
        signing_key_file=webhook_key,
        log_level="warning",
        web_users_file=write_demo_users(directory / "web-users.json", organisations),
        web_local_sign_in=True,
    )
    return Setup(directory, settings, organisations, signing, publisher_tokens, token_files)


async def publish_cases(
    base_url: str, cases: list[Scenario], setup: Setup, session: aiohttp.ClientSession
) -> Published:
    """Publish every case through the gateway as its agencies would, and acknowledge what the cases acknowledge.

    The one place the demo publishes: the partnership's directory entries first,
    then each case's steps in order, one at a time (routing depends on the order).
    An event step an agency's adapter can carry becomes one record of the
    agency's export, mapped, signed and checked by the adapter (a bad record is
    refused there, before it is sent) and sent with the source's publisher
    credential; its event id is the one the adapter gave the envelope it sent.
    Other event steps are signed envelopes sent with the client (``signed_by``
    signs with another organisation's key, ``corrupt`` alters a signed byte: both
    are refused, as the case intends); acknowledgement steps are ``POST /v1/inbox/{id}/ack``
    with the acknowledging organisation's recipient credential.
    """
    done = Published()
    clients = {
        org: JigsawClient(base_url, token, key=setup.signing[org], session=session)
        for org, token in setup.publisher_tokens.items()
    }
    partnership = next(o for o, e in setup.organisations.items() if e["kind"] == "partnership")
    first = min(_at(c.steps[0]) for c in cases) - dt.timedelta(days=1)
    for org_id, entry in setup.organisations.items():
        data = {k: entry.get(k) for k in ("org_id", "kind", "name", "area", "endpoint", "safeguarding_lead")}
        data["endpoint_internal"] = bool(entry.get("endpoint_internal"))
        result = await clients[partnership].publish("directory.organisation", data, occurred_at=first)
        if not result.accepted:
            raise RuntimeError(f"the directory entry for {org_id} was refused: {result.body}")
    sent: set[str] = set()
    for case in cases:
        ids: dict[str, str] = {}
        for handle, person in case.people.items():
            if person.get("nhs_number"):
                done.people[str(person["nhs_number"]).replace(" ", "")] = handle
        for step in case.steps:
            if "ack" in step:
                org = str(step["by"])
                nid = notification_id(ids[step["ack"]], org) if step["ack"] in ids else None
                if nid and await _acknowledge(base_url, session, setup.recipient_token(org), nid, org):
                    done.acknowledged.append((case.name, str(step["ack"]), org))
                continue
            ref, source = str(step["ref"]), str(step["source"])
            kind = str(setup.organisations[source]["kind"])
            data = resolve_data(step["data"], case.people, ids)
            record = step_record(step, data, record_id=f"{case.name}:{ref}")
            if record is not None and adapters.ADAPTERS[record.agency].org_kind == kind:
                through = await _through_adapter(record, clients[source], setup.signing[source], sent)
                if through is not None:
                    event_id, error = through
                    ids[ref] = event_id
                    sent.add(event_id)
                    done.events[event_id] = (case.name, ref)
                    done.adapted[record.agency] = done.adapted.get(record.agency, 0) + 1
                    if error is not None:
                        done.refused.append((case.name, ref, error))
                    continue
            event_id = ids[ref] = str(uuid.uuid4())
            done.events[event_id] = (case.name, ref)
            try:
                env = build_envelope(
                    str(step["type"]),
                    data,
                    source=source,
                    key=setup.signing[str(step.get("signed_by", source))],
                    occurred_at=_at(step),
                    event_id=event_id,
                    lawful_basis=step.get("lawful_basis") or default_lawful_basis(kind),
                    consent=step.get("consent") or "not_sought",
                )
            except Refusal as exc:  # data the schema refuses never leaves the agency's system
                done.refused.append((case.name, ref, exc.code))
                continue
            if step.get("corrupt"):  # one bit of the signed payload flipped after signing
                env = dataclasses.replace(env, payload=env.payload[:-1] + bytes([env.payload[-1] ^ 1]))
            result = await clients[source].send(env)
            if not result.accepted:
                done.refused.append((case.name, ref, result.error or str(result.status)))
    return done


async def _through_adapter(
    record: ScenarioRecord, client: JigsawClient, key: SigningKey, sent: set[str]
) -> tuple[str, str | None] | None:
    """Send one export record through its agency's adapter: the event id and the refusal code (None if accepted).

    The id is the adapter's own (from the agency's record), read off the envelope it
    prepared; a record the adapter refuses is not sent, and is known by the id its
    mapping gives. None when the adapter makes anything but one new event of it: the
    client sends the step instead.
    """
    adapter = adapters.ADAPTERS[record.agency]
    rows = adapters.rows_from_records([record.record])
    preparation = adapters.prepare(adapter, rows, key, now=dt.datetime.now(dt.UTC))
    if preparation.refused:
        return _intended_id(adapter, rows, key.org_id), preparation.refused[0].error
    if len(preparation.events) != 1 or preparation.events[0].envelope.event_id in sent:
        return None
    report = adapters.Report.of(adapter, key.org_id, "scenario step", preparation)
    await adapters.send_prepared(preparation, client, report, batch=1)
    problems = [*report.refused, *report.failed]
    return preparation.events[0].envelope.event_id, problems[0].error if problems else None


def _intended_id(adapter: adapters.Adapter, rows: list[Any], org_id: str) -> str:
    """The id the adapter gives a record it then refused (a fresh one if it cannot even map it)."""
    with contextlib.suppress(adapters.RowError):
        if len(rows) == 1 and isinstance(rows[0], adapters.Row):
            mapped = adapter.map_row(rows[0], org_id)
            if len(mapped) == 1:
                return adapters.event_id(org_id, mapped[0].record)
    return str(uuid.uuid4())


def _at(step: Mapping[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(str(step["at"]).replace("Z", "+00:00"))


async def _acknowledge(base_url: str, session: aiohttp.ClientSession, token: str, nid: str, org: str) -> bool:
    """Acknowledge once the router has sent the notification (within a few seconds); False if it never came."""
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(200):
        async with session.get(f"{base_url}/v1/inbox/{nid}", headers=headers) as response:
            if response.status == 200:
                break
        await asyncio.sleep(0.05)
    else:
        return False
    body = {"by": f"Duty professional, {org}"}
    async with session.post(f"{base_url}/v1/inbox/{nid}/ack", headers=headers, json=body) as response:
        return response.status in (200, 201)


async def demo(directory: Path, port: int, *, wait: bool, cases_dir: Path | None, out: TextIO) -> int:
    """Run the demo in ``directory`` (new or empty); the exit code."""
    cases = [load_scenario(path) for path in find_cases(cases_dir)]
    setup = prepare(directory, cases, port)
    log = EmbeddedLog(setup.settings.log_path)
    app = create_app(setup.settings, log)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
        except OSError:
            print(f"port {port} is taken: using a free one", file=out)
            await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, bound = runner.addresses[-1][:2]
        base_url = f"http://{host}:{bound}"
        print(f"Jigsaw is running at {base_url} on the embedded log in {directory}", file=out)
        async with aiohttp.ClientSession() as session:
            published = await publish_cases(base_url, cases, setup, session)
        await wait_until_quiet(log)
        width = shutil.get_terminal_size((120, 40)).columns
        table, notes, acks = await report(log, published, width=width)
        print(summary(published, notes, acks), file=out)
        print(table, file=out)
        print("", file=out)
        if wait:
            print(how_to_query(base_url, setup, notes, acks), file=out)
            print("\nPress Ctrl-C to stop.", file=out, flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await stop.wait()
        else:
            print("--no-wait: stopping. Run `jigsaw demo` without it to keep the inbox API up and query it.", file=out)
    finally:
        await runner.cleanup()
    return 0


def run(args: argparse.Namespace) -> int:
    """Make the data directory, run the demo, and clean up a temporary directory unless ``--keep``."""
    configure_logging("auto", "warning")
    made = args.dir is None
    directory = Path(tempfile.mkdtemp(prefix="jigsaw-demo-")) if made else args.dir
    if not made:
        if directory.exists() and any(directory.iterdir()):
            print(f"jigsaw demo: {directory} is not empty; give a new or empty directory", file=sys.stderr)
            return 2
        directory.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(demo(directory, args.port, wait=not args.no_wait, cases_dir=args.cases, out=sys.stdout))
    finally:
        if made and not args.keep:
            with contextlib.suppress(OSError):
                shutil.rmtree(directory)
