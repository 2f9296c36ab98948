"""Intake: every submission is either accepted into the log or refused, and the refusal recorded.

One code path for the HTTP gateway and ``jigsaw simulate``: verify the
envelope (``validation.verify``, against the key registry and the directory
as they stand), check the caller may submit for its
``source``, recognise a re-sent event by id, append to the input topic
(``topics.INPUT``: the one ordered stream the router reads), or append a
rejection record that says what was refused and why: never the payload itself.

Any number of intakes (gateways) may append to the input topic at once: none
of them chains or numbers records (the sealer does that after the append, in
the log's own order), and each catches its index of accepted ids up with the
log's tail before it judges a submission, so a re-send is recognised whichever
gateway took the first copy. An append that the log does not confirm within
``append_timeout`` seconds is answered ``log_unavailable`` (retriable: the
client re-sends the same bytes and the id index makes that safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
from collections.abc import AsyncIterator, Callable, Sequence

from broker import topics, wire
from broker.delivery.directory import DirectoryFollower
from broker.envelope.keys import KeyRegistry
from broker.envelope.model import Envelope, decode_envelope, encode_envelope, to_millis
from broker.errors import DuplicateEvent, Forbidden, LogUnavailable, Refusal, UnknownOrganisation
from broker.log.base import Headers, Log, Position, Record
from broker.log.scan import read_available
from broker.logging import get_logger
from broker.model import Event
from broker.routing.model import iso
from broker.schemas import Catalogue, default_catalogue
from broker.validation import DEFAULT_RULES, Accepted, Rules, subject_key, verify

__all__ = ["Intake", "Outcome"]

_log = get_logger("jigsaw.intake")


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one submission."""

    status: str  # "accepted", "duplicate" (accepted before: same content) or "refused"
    event_id: str | None
    position: Position | None = None
    error: Refusal | None = None
    event: Event | None = None

    @property
    def http_status(self) -> int:
        if self.error is not None:
            return self.error.http_status
        return 202 if self.status == "accepted" else 200

    def body(self) -> dict[str, object]:
        """The JSON a client receives for this submission."""
        if self.error is not None:
            return {**self.error.to_dict(), **({"event_id": self.event_id} if self.event_id else {})}
        assert self.position is not None
        return {
            "event_id": self.event_id,
            "status": self.status,
            "topic": self.position.topic,
            "partition": self.position.partition,
            "offset": self.position.offset,
        }


def _content_digest(env: Envelope) -> str:
    """What makes two submissions the same event: every field but when and with which key it was signed.

    An agency that re-sends an event it sent before (an adapter re-running an export file) signs it
    again with a new ``issued_at``; that is the same event (200), not a conflicting one (409).
    """
    digest = hashlib.sha256()
    fields = (env.event_id, env.event_type, env.schema_fingerprint, env.source, to_millis(env.occurred_at))
    for part in (*fields, env.lawful_basis, env.consent, env.payload):
        raw = part if isinstance(part, bytes) else str(part).encode()
        digest.update(len(raw).to_bytes(8, "big") + raw)
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True, slots=True)
class _Pending:
    raw: bytes
    accepted: Accepted
    digest: str


def _headers(env: Envelope, kind: str) -> Headers:
    """Jigsaw's own headers (the router and auditors filter on them), then the CloudEvents binding's (``wire``)."""
    return (
        (topics.RECORD_HEADER, topics.EVENT),
        ("event_type", env.event_type.encode()),
        ("event_id", env.event_id.encode()),
        ("source", env.source.encode()),
        (topics.SOURCE_KIND_HEADER, kind.encode()),
        *wire.event_headers(env),
    )


def _conflict(event_id: str) -> DuplicateEvent:
    return DuplicateEvent(
        f"event id {event_id} was already accepted with different content; "
        "give a corrected event a new id (and retract the old one if it was wrong)",
        event_id=event_id,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _Seen:
    digest: str
    source: str
    position: Position


class Intake:
    """Accept-or-refuse over one log. Call ``start`` before ``submit``."""

    def __init__(
        self,
        log: Log,
        keys: Callable[[], KeyRegistry],
        *,
        catalogue: Catalogue | None = None,
        rules: Rules = DEFAULT_RULES,
        append_timeout: float = 10.0,
    ) -> None:
        self.log = log
        self._keys = keys
        self._catalogue = catalogue or default_catalogue()
        self._rules = rules
        self._append_timeout = append_timeout
        self._seen: dict[str, _Seen] = {}
        self._indexed = 0  # the input topic's offset the id index has read up to
        # One submission at a time in this process: the id check and the append must not interleave.
        # Every wait (this lock, the log) falls under one deadline per submission (``_bounded``).
        self._submitting = asyncio.Lock()
        # The partnership's directory: every OrgId an event names must be in it (permissions.py).
        self.directory = DirectoryFollower(log)
        self.accepted = 0
        self.refused = 0

    async def start(self) -> None:
        """Create the topics and build the index of accepted event ids from the log."""
        for topic in (topics.INPUT, topics.REJECTED):
            await self.log.create_topic(topic)
        await self.directory.refresh()
        await self.refresh()

    async def refresh(self) -> None:
        """Read what other intakes appended since the last look into the id index."""
        async with self._bounded("read the accepted event ids"), self._submitting:
            await self._refresh()

    async def _refresh(self) -> None:
        while True:
            records = await read_available(self.log, topics.INPUT, self._indexed, limit=1000)
            if not records:
                return
            for record in records:
                self._index(record)
            self._indexed = records[-1].offset + 1

    @contextlib.asynccontextmanager
    async def _bounded(self, what: str) -> AsyncIterator[None]:
        """``log_unavailable`` when the log does not answer within ``append_timeout`` seconds."""
        try:
            async with asyncio.timeout(self._append_timeout):
                yield
        except TimeoutError:
            raise LogUnavailable(
                f"the log did not answer within {self._append_timeout:g} s ({what}); nothing is lost by sending "
                "the same bytes again later (a re-sent event id is recognised)",
                retry_after=5,
            ) from None

    def _index(self, record: Record) -> None:
        if record.value is None or not topics.is_event(record):
            return
        env = decode_envelope(record.value, catalogue=self._catalogue)
        if env.event_id not in self._seen:  # the first copy in the log is the one that counts
            position = Position(record.topic, record.partition, record.offset)
            self._seen[env.event_id] = _Seen(_content_digest(env), env.source, position)

    async def _append(self, items: list[tuple[bytes | None, bytes | None, Headers]], ts: int) -> list[Position]:
        positions = await self.log.append_many(topics.INPUT, items, timestamp_ms=ts)
        if positions and positions[0].offset == self._indexed:  # nobody else appended in between:
            self._indexed = positions[-1].offset + 1  # what we appended is indexed already, no need to read it back
        return positions

    def publisher_of(self, event_id: str) -> str | None:
        """The organisation that published an accepted event, or None."""
        seen = self._seen.get(event_id)
        return seen.source if seen else None

    async def submit(
        self,
        body: bytes | Envelope,
        *,
        caller: str | None,
        now: dt.datetime,
        timestamp_ms: int | None = None,
        client: str | None = None,
    ) -> Outcome:
        """Accept one envelope into the log or refuse it (and record the refusal).

        Args:
            body: the envelope's Avro bytes as received, or an ``Envelope`` (the simulator).
            caller: the authenticated organisation; None when the caller is trusted to be the source
                (the simulator, which signs as each organisation).
            now: the receiving time; also the record's timestamp unless ``timestamp_ms`` is given.
            client: the client's network address, kept in a rejection record.
        """
        async with self._bounded("accept an event"), self._submitting:
            return await self._submit(body, caller=caller, now=now, timestamp_ms=timestamp_ms, client=client)

    async def _submit(
        self,
        body: bytes | Envelope,
        *,
        caller: str | None,
        now: dt.datetime,
        timestamp_ms: int | None,
        client: str | None,
    ) -> Outcome:
        raw = body if isinstance(body, bytes) else encode_envelope(body, self._catalogue)
        await self._refresh()
        try:
            accepted, digest = await self._verified(body, caller=caller, now=now, publisher_of=self.publisher_of)
            env = accepted.envelope
            seen = self._seen.get(env.event_id)
            if seen is not None:
                if seen.digest == digest:
                    return Outcome("duplicate", env.event_id, seen.position, event=accepted.event)
                raise _conflict(env.event_id)
        except Refusal as exc:
            await self.refuse(exc, caller=caller, body=raw, now=now, client=client)
            return Outcome("refused", exc.evidence.get("event_id"), error=exc)
        ts = timestamp_ms if timestamp_ms is not None else int(now.timestamp() * 1000)
        [position] = await self._append([(subject_key(accepted.event).encode(), raw, _headers(env, accepted.kind))], ts)
        self._seen.setdefault(env.event_id, _Seen(digest, env.source, position))
        self.directory.directory.apply(accepted.event, ts)
        self.accepted += 1
        _log.info(
            "accepted",
            event_id=env.event_id,
            source=env.source,
            event_type=env.event_type,
            topic=position.topic,
            offset=position.offset,
        )
        return Outcome("accepted", env.event_id, position, event=accepted.event)

    async def submit_many(
        self,
        bodies: Sequence[bytes | Envelope],
        *,
        caller: str | None,
        now: dt.datetime,
        timestamp_ms: int | None = None,
        client: str | None = None,
    ) -> list[Outcome]:
        """``submit`` for a batch: the same checks for each envelope, one durable append per topic.

        An event id twice in one batch is accepted once (the second is a re-send, or a conflict).
        """
        async with self._bounded("accept a batch of events"), self._submitting:
            return await self._submit_many(bodies, caller=caller, now=now, timestamp_ms=timestamp_ms, client=client)

    async def _submit_many(
        self,
        bodies: Sequence[bytes | Envelope],
        *,
        caller: str | None,
        now: dt.datetime,
        timestamp_ms: int | None,
        client: str | None,
    ) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(bodies)
        await self._refresh()
        pending: list[tuple[int, _Pending]] = []
        in_batch: dict[str, tuple[int, str]] = {}  # event id -> (index of its first copy, digest)
        sources: dict[str, str] = {}
        kinds: dict[str, str] = {}  # directory entries earlier in this batch

        def publisher_of(event_id: str) -> str | None:
            return self.publisher_of(event_id) or sources.get(event_id)

        def org_kind(org_id: str) -> str | None:
            return kinds.get(org_id) or self.directory.directory.kind_of(org_id)

        for i, body in enumerate(bodies):
            raw = body if isinstance(body, bytes) else encode_envelope(body, self._catalogue)
            try:
                accepted, digest = await self._verified(
                    body, caller=caller, now=now, publisher_of=publisher_of, org_kind=org_kind
                )
                env = accepted.envelope
                seen = self._seen.get(env.event_id)
                if seen is not None:
                    if seen.digest != digest:
                        raise _conflict(env.event_id)
                    outcomes[i] = Outcome("duplicate", env.event_id, seen.position, event=accepted.event)
                    continue
                if env.event_id in in_batch:
                    if in_batch[env.event_id][1] != digest:
                        raise _conflict(env.event_id)
                    continue  # filled in below, once the first copy has its position
            except Refusal as exc:
                await self.refuse(exc, caller=caller, body=raw, now=now, client=client)
                outcomes[i] = Outcome("refused", exc.evidence.get("event_id"), error=exc)
                continue
            in_batch[env.event_id] = (i, digest)
            sources[env.event_id] = env.source
            if env.event_type == "directory.organisation":
                kinds[str(accepted.event.data["org_id"])] = str(accepted.event.data["kind"])
            pending.append((i, _Pending(raw, accepted, digest)))
        ts = timestamp_ms if timestamp_ms is not None else int(now.timestamp() * 1000)
        if pending:
            records: list[tuple[bytes | None, bytes | None, Headers]] = [
                (subject_key(p.accepted.event).encode(), p.raw, _headers(p.accepted.envelope, p.accepted.kind))
                for _, p in pending
            ]
            positions = await self._append(records, ts)
            for (i, p), position in zip(pending, positions, strict=True):
                env = p.accepted.envelope
                self._seen.setdefault(env.event_id, _Seen(p.digest, env.source, position))
                self.directory.directory.apply(p.accepted.event, ts)
                outcomes[i] = Outcome("accepted", env.event_id, position, event=p.accepted.event)
            self.accepted += len(pending)
            _log.info("accepted_batch", topic=topics.INPUT, events=len(pending), last_offset=positions[-1].offset)
        for i, body in enumerate(bodies):  # later copies of an event accepted earlier in this batch
            if outcomes[i] is None:
                env = body if isinstance(body, Envelope) else decode_envelope(bytes(body), catalogue=self._catalogue)
                first = outcomes[in_batch[env.event_id][0]]
                assert first is not None
                outcomes[i] = Outcome("duplicate", env.event_id, first.position, event=first.event)
        return [o for o in outcomes if o is not None]

    async def _verified(
        self,
        body: bytes | Envelope,
        *,
        caller: str | None,
        now: dt.datetime,
        publisher_of: Callable[[str], str | None],
        org_kind: Callable[[str], str | None] | None = None,
    ) -> tuple[Accepted, str]:
        """``_check``; on an unknown organisation, read the directory's news from the log and check again.

        Another gateway may have accepted the organisation's directory entry since this one read it.
        """
        org_kind = org_kind or self.directory.directory.kind_of
        try:
            return self._check(body, caller=caller, now=now, publisher_of=publisher_of, org_kind=org_kind)
        except UnknownOrganisation:
            await self.directory.refresh()
            return self._check(body, caller=caller, now=now, publisher_of=publisher_of, org_kind=org_kind)

    def _check(
        self,
        body: bytes | Envelope,
        *,
        caller: str | None,
        now: dt.datetime,
        publisher_of: Callable[[str], str | None],
        org_kind: Callable[[str], str | None],
    ) -> tuple[Accepted, str]:
        """Every check of one submission but the id index: verified envelope and its content digest."""
        accepted = verify(
            body,
            keys=self._keys(),
            now=now,
            publisher_of=publisher_of,
            org_kind=org_kind,
            catalogue=self._catalogue,
            rules=self._rules,
        )
        env = accepted.envelope
        if caller is not None and env.source != caller:
            raise Forbidden(
                f"you are signed in as {caller} but the envelope's source is {env.source}: "
                "an organisation may only submit its own events",
                event_id=env.event_id,
            )
        return accepted, _content_digest(env)

    async def refuse(
        self, error: Refusal, *, caller: str | None, body: bytes, now: dt.datetime, client: str | None = None
    ) -> Position:
        """Record a refusal: what, from whom (and which address), why; the body only as its size and SHA-256."""
        record = {
            "event_id": error.evidence.get("event_id"),
            "source": error.evidence.get("source"),
            "event_type": error.evidence.get("event_type"),
            "caller": caller,
            "error": error.code,
            "message": error.message,
            "received_at": iso(now),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "body_bytes": len(body),
            **({"client": client} if client else {}),
        }
        key = str(record["event_id"] or record["body_sha256"]).encode()
        value = wire.encode_json(record)
        async with self._bounded("record a refusal"):
            position = await self.log.append(
                topics.REJECTED, value, key=key, headers=wire.JSON_HEADERS, timestamp_ms=int(now.timestamp() * 1000)
            )
        self.refused += 1
        _log.info("refused", event_id=record["event_id"], source=record["source"], caller=caller, error=error.code)
        return position
