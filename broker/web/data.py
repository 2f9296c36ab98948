"""What the web pages read and write, behind one small interface (``WebData``).

The pages never touch the log or the store directly: they ask a ``WebData``.
``StoreWebData`` answers from the services the gateway already runs (the
inbox in the store, kept up with the log by the follower of
``broker.delivery.inbox``; the chronology of ``broker.audit.api``; the
directory), so the pages see exactly what the JSON API sees, acknowledge
through the same path (the store decides the first, then the log), and every
read is recorded on ``jigsaw.access`` the same way, with the person as well as
the organisation.

An inbox page is read a page at a time (``read_inbox_page``: one indexed
``Store.list_inbox`` query for the rows, ``count_inbox`` for the filter
labels, ``count_listing`` only when a priority or child filter needs its own
total), never the whole inbox. The admin page's delivery status comes from the
store's delivery ledger, which a ``DeliveriesFollower`` keeps up with the
deliveries topic; keys and credentials are issued and revoked through the same
functions as ``jigsaw keys``, and the gateway is told to re-read them at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from broker import topics
from broker.audit.api import AuditService
from broker.audit.chronology import Chronology
from broker.callers import Caller
from broker.client import build_envelope
from broker.delivery.directory import DirectoryFollower, Entry
from broker.delivery.inbox import InboxService
from broker.delivery.inboxes import ack_of, notification_of
from broker.envelope.keys import KeyRecord, KeyStore, SigningKey, load_signing_key, new_key
from broker.envelope.model import Envelope, encode_envelope
from broker.errors import ConfigError, NotPermitted
from broker.gateway.auth import add_credential, hash_token, list_credentials, revoke_credential
from broker.log.base import Log
from broker.routing.model import Ack, Notification
from broker.store import OrgDeliveryStatus, Store
from broker.store.follow import DeliveriesFollower
from broker.web.listing import PAGE_SIZE, Filters, Page, item_of, known_total, page_of, store_query
from broker.web.people import Person

__all__ = ["Acknowledged", "StoreWebData", "WebData", "caller_of", "names_of", "read_inbox_page"]


@dataclasses.dataclass(frozen=True, slots=True)
class Acknowledged:
    """What acknowledging came to: the acknowledgement that counts, and whether it was this one."""

    ack: Ack
    new: bool


class WebData(Protocol):
    """Everything the pages need, for one organisation at a time."""

    async def inbox_page(self, org_id: str, filters: Filters, now: dt.datetime) -> Page:
        """The page of the organisation's inbox the filters ask for, newest first."""
        ...

    async def notification(self, org_id: str, notification_id: str) -> tuple[Notification, Ack | None] | None:
        """One of the organisation's notifications with its acknowledgement; None for anything else."""
        ...

    async def acknowledge(self, person: Person, notification_id: str, note: str, now: dt.datetime) -> Acknowledged:
        """Acknowledge one of the person's organisation's notifications (the first acknowledgement counts)."""
        ...

    async def record_access(self, person: Person, action: str, ids: list[str], **detail: Any) -> None:
        """Who read what, when: ids only, never content."""
        ...

    async def chronology(self, person: Person, nhs_number: str) -> tuple[Chronology, set[str]] | None:
        """The child's chronology and the ids of retracted events; None when the person may not read it."""
        ...

    async def directory(self) -> list[Entry]:
        """The partnership's organisations."""
        ...

    async def inbox_size(self, org_id: str) -> int:
        """How many notifications the organisation has had (the live update compares this)."""
        ...

    def can_publish(self, org_id: str, now: dt.datetime) -> bool:
        """Whether Jigsaw holds a live signing key of this organisation (to raise challenges from the pages)."""
        ...

    async def raise_challenge(self, person: Person, data: Mapping[str, Any], now: dt.datetime) -> str:
        """Publish a ``challenge.raised`` event as the person's organisation; its event id.

        Raises:
            Refusal: the event was refused (the reason is on ``jigsaw.rejected`` too).
            NotPermitted: Jigsaw holds no signing key of the organisation.
        """
        ...

    async def delivery_status(self, org_ids: Sequence[str]) -> dict[str, OrgDeliveryStatus]:
        """How delivery to each organisation is going, from the store's delivery ledger (the admin page)."""
        ...

    def keys(self) -> list[KeyRecord]:
        """Every agency signing key in the registry."""
        ...

    def revoke_key(self, key_id: str, now: dt.datetime) -> None:
        """Revoke a signing key from ``now`` (raises ConfigError for an unknown or revoked key)."""
        ...

    def issue_key(self, org_id: str, kind: str, now: dt.datetime) -> tuple[KeyRecord, bytes]:
        """A new signing key valid from ``now``, saved as ``jigsaw keys new`` does; its record and private file.

        Raises:
            ConfigError: the org id or kind is not acceptable, or there is no key registry.
        """
        ...

    def credentials(self) -> list[dict[str, str]]:
        """Every API credential: id (12 hex digits of its hash), organisation, role, label (never the hashes)."""
        ...

    def issue_credential(self, org_id: str, role: str, label: str) -> tuple[str, str]:
        """A new API credential in force at once; (its id, the token: shown once, never kept).

        Raises:
            ConfigError: the role is unknown, the org id is not acceptable, or there is no credentials file.
        """
        ...

    def revoke_credential(self, credential_id: str) -> dict[str, str]:
        """Remove an API credential, at once; what was removed (ConfigError for an unknown id)."""
        ...


def caller_of(person: Person) -> Caller:
    """The organisation and credential role the API services check, for a person."""
    return Caller(person.org_id, person.api_role)


_ORG_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # the rule ``broker.envelope.keys.new_key`` applies

Submit = Callable[[Envelope, str, dt.datetime], Awaitable[Any]]  # (envelope, caller org, now) -> intake Outcome


class StoreWebData:
    """``WebData`` over the gateway's inbox (in the store) and chronology services (and its intake, for challenges)."""

    def __init__(
        self,
        inbox: InboxService,
        audit: AuditService,
        log: Log,
        *,
        keys: KeyStore | None = None,
        submit: Submit | None = None,
        credentials_file: Path | None = None,
        reload_credentials: Callable[[], object] = lambda: None,
    ) -> None:
        self.inbox = inbox
        self.audit = audit
        self.log = log
        self.keys_store = keys
        self.submit = submit
        self.credentials_file = credentials_file
        self.reload_credentials = reload_credentials  # the gateway's credentials re-read now, not in a few seconds
        self._directory = DirectoryFollower(log)
        self._directory_lock = asyncio.Lock()
        self._deliveries = DeliveriesFollower(log, inbox.store)
        self._deliveries_topic = False

    @classmethod
    def for_gateway(cls, app: web.Application) -> StoreWebData:
        """Over the services a gateway app (``broker.gateway.app.create_app``) has mounted."""
        from broker.audit.api import AUDIT
        from broker.delivery.inbox import INBOX
        from broker.gateway.keys import CREDENTIALS, INTAKE, KEYS, LOG, SETTINGS

        async def submit(envelope: Envelope, caller: str, now: dt.datetime) -> Any:
            return await app[INTAKE].submit(encode_envelope(envelope), caller=caller, now=now)

        return cls(
            app[INBOX],
            app[AUDIT],
            app[LOG],
            keys=app[KEYS],
            submit=submit,
            credentials_file=app[SETTINGS].credentials_file,
            reload_credentials=getattr(app[CREDENTIALS], "reload", lambda: None),
        )

    async def inbox_page(self, org_id: str, filters: Filters, now: dt.datetime) -> Page:
        await self.inbox.follower.refresh()
        return await read_inbox_page(self.inbox.store, org_id, filters, now)

    async def notification(self, org_id: str, notification_id: str) -> tuple[Notification, Ack | None] | None:
        await self.inbox.follower.refresh()
        item = await self.inbox.store.notification(org_id, notification_id)
        return None if item is None else (notification_of(item), ack_of(item))

    async def acknowledge(self, person: Person, notification_id: str, note: str, now: dt.datetime) -> Acknowledged:
        await self.inbox.follower.refresh()
        item = await self.inbox.store.notification(person.org_id, notification_id)
        if item is None:
            raise KeyError(notification_id)
        outcome = await self.inbox.acknowledge(item, person.name, now, note)  # the same path as the API
        if outcome.ack is None:
            raise KeyError(notification_id)
        ack = Ack(notification_id, person.org_id, outcome.ack.by, outcome.ack.at, outcome.ack.note)
        return Acknowledged(ack, outcome.status == "acknowledged")

    async def record_access(self, person: Person, action: str, ids: list[str], **detail: Any) -> None:
        await self.inbox.record_access(
            caller_of(person),
            action,
            ids,
            person={"subject": person.subject, "name": person.name, "role": person.role, "via": person.via},
            channel="web",
            **detail,
        )

    async def chronology(self, person: Person, nhs_number: str) -> tuple[Chronology, set[str]] | None:
        chronology = await self.audit.chronology(nhs_number, caller_of(person))
        if chronology is None:
            return None
        return chronology, await self._retracted({e.event_id for e in chronology.entries})

    async def _retracted(self, among: set[str]) -> set[str]:
        # The chronology index files a retraction, as an event, under the id it retracts (no log scan).
        out: set[str] = set()
        for event_id in sorted(among):
            page = await self.audit.store.chronology("event:" + event_id, limit=1000)
            if any(ref.kind == "event" for ref in page.items):
                out.add(event_id)
        return out

    async def directory(self) -> list[Entry]:
        async with self._directory_lock:
            await self._directory.refresh()
        return self._directory.directory.entries()

    async def inbox_size(self, org_id: str) -> int:
        await self.inbox.follower.refresh()
        return (await self.inbox.store.count_inbox(org_id, now=dt.datetime.now(dt.UTC))).total

    def _signing_key(self, org_id: str, now: dt.datetime) -> SigningKey | None:
        if self.keys_store is None or self.submit is None:
            return None
        for record in reversed(self.keys_store.current().for_org(org_id)):  # the newest live key with a private file
            path = self.keys_store.private_path(record.key_id)
            if record.valid_at(now) and path.is_file():
                try:
                    return load_signing_key(path)
                except ConfigError:
                    continue
        return None

    def can_publish(self, org_id: str, now: dt.datetime) -> bool:
        return self._signing_key(org_id, now) is not None

    async def raise_challenge(self, person: Person, data: Mapping[str, Any], now: dt.datetime) -> str:
        key = self._signing_key(person.org_id, now)
        if key is None or self.submit is None:
            raise NotPermitted(
                f"Jigsaw holds no signing key of {person.org_id}: raise the challenge from its own system"
            )
        envelope = build_envelope(
            "challenge.raised", data, source=person.org_id, key=key, occurred_at=now, issued_at=now
        )
        outcome = await self.submit(envelope, person.org_id, now)
        if outcome.error is not None:
            raise outcome.error
        return str(outcome.event_id)

    async def delivery_status(self, org_ids: Sequence[str]) -> dict[str, OrgDeliveryStatus]:
        if not self._deliveries_topic:
            await self.log.create_topic(topics.DELIVERIES)
            self._deliveries_topic = True
        await self._deliveries.refresh()  # the ledger caught up with the deliveries topic (bounded)
        return {org: await self.inbox.store.delivery_status(org) for org in org_ids}

    def keys(self) -> list[KeyRecord]:
        return [] if self.keys_store is None else sorted(self.keys_store.load(), key=lambda r: (r.org_id, r.valid_from))

    def revoke_key(self, key_id: str, now: dt.datetime) -> None:
        if self.keys_store is None:
            raise ConfigError("this Jigsaw has no key registry")
        self.keys_store.revoke(key_id, now)

    def issue_key(self, org_id: str, kind: str, now: dt.datetime) -> tuple[KeyRecord, bytes]:
        if self.keys_store is None:
            raise ConfigError("this Jigsaw has no key registry")
        record, signing = new_key(org_id, kind, valid_from=now)
        self.keys_store.save(record, signing)  # as `jigsaw keys new`: the registry sees it on its next look
        return record, self.keys_store.private_path(record.key_id).read_bytes()

    def _credentials_path(self) -> Path:
        if self.credentials_file is None:
            raise ConfigError("this Jigsaw has no credentials file (JIGSAW_CREDENTIALS_FILE)")
        return self.credentials_file

    def credentials(self) -> list[dict[str, str]]:
        path = self.credentials_file
        if path is None or not path.is_file():
            return []
        try:
            return sorted(list_credentials(path), key=lambda c: (c["org_id"], c["role"], c["label"], c["id"]))
        except ConfigError:
            return []

    def issue_credential(self, org_id: str, role: str, label: str) -> tuple[str, str]:
        if not _ORG_ID.match(org_id):
            raise ConfigError(f"org id {org_id!r} must be letters, digits, '-' or '_' (at most 64)")
        token = add_credential(self._credentials_path(), org_id, role, label)
        self.reload_credentials()
        return hash_token(token)[:12], token

    def revoke_credential(self, credential_id: str) -> dict[str, str]:
        removed = revoke_credential(self._credentials_path(), credential_id)
        self.reload_credentials()
        return removed


async def read_inbox_page(
    store: Store, org_id: str, filters: Filters, now: dt.datetime, *, page_size: int = PAGE_SIZE
) -> Page:
    """One page of an inbox from the store: the page (one indexed query), the counts, the total if filtered."""
    query = store_query(org_id, filters, now, page_size=page_size)
    listed = await store.list_inbox(query)
    counts = await store.count_inbox(org_id, now=now)
    total = known_total(filters, counts)
    if total is None:
        total = await store.count_listing(query)
    originals = {r.notification.follows for r in listed.items if r.notification.kind == "escalation"}
    acknowledged: set[str] = set()
    for nid in sorted(o for o in originals if o):  # the few escalations on the page: is their original answered?
        original = await store.notification(org_id, nid)
        if original is not None and original.ack is not None:
            acknowledged.add(nid)
    items = [item_of(r, now, acknowledged) for r in listed.items]
    return page_of(items, filters=filters, more=listed.next, total=total, counts=counts, page_size=page_size)


def names_of(entries: Sequence[Entry]) -> dict[str, Entry]:
    """Directory entries by organisation id."""
    return {e.org_id: e for e in entries}
