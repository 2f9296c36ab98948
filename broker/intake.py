"""Intake: every submission is either accepted into the log or refused, and the refusal recorded.

One code path for the HTTP gateway and ``jigsaw simulate``: verify the envelope (``validation.verify``,
against the key registry and the directory as they stand), check the caller may submit for its ``source``,
recognise a re-sent event by id, append to the input topic (``topics.INPUT``: the one ordered stream the
router reads), or append a rejection record that says what was refused and why: never the payload itself.

Any number of intakes (gateways) may append to the input topic at once: none of them chains or numbers records
(the sealer does that after the append, in the log's own order), and they share one index of accepted ids in
the store (``broker.accepted``): an id is claimed before its append (put-if-absent, so of two gateways racing
on one id exactly one appends), settled with its position after, and released if the append failed. A re-send
is recognised whichever gateway took the first copy: 200 with the original position for the same content, 409
for other content, and ``event_pending`` (503, retriable) while the first gateway is still appending after a
short wait. At start the index is caught up from the log, so an empty or lagging store is rebuilt. An intake
given no store keeps a private throwaway one (the simulator, tests) and reads the log's tail into it before
each submission. An append that the log does not confirm within ``append_timeout`` seconds is answered
``log_unavailable`` (retriable: the client re-sends the same bytes and the id index makes that safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from broker import submissions, topics, wire
from broker.accepted import AcceptedIds
from broker.delivery.directory import DirectoryFollower
from broker.envelope.keys import KeyRegistry
from broker.envelope.model import Envelope, encode_envelope
from broker.envelope.verifiers import Presigned, Presigning, SignatureWorkers
from broker.errors import EventPending, LogUnavailable, NotPermitted, Refusal, UnknownOrganisation
from broker.log.base import Log, Position
from broker.logging import get_logger
from broker.recent import Recent, RecentEvents
from broker.schemas import Catalogue, default_catalogue
from broker.store import AcceptedId, SqliteStore, Store
from broker.submissions import Outcome, Pending, conflict, content_digest, event_headers, lost_claim, refusal_record
from broker.validation import DEFAULT_RULES, Accepted, Rules, event_of, subject_key

__all__ = ["Intake", "Outcome", "content_digest"]

_log = get_logger("jigsaw.intake")


class Intake:
    """Accept-or-refuse over one log and the store's accepted-id index. Call ``start`` before ``submit``."""

    def __init__(
        self,
        log: Log,
        keys: Callable[[], KeyRegistry],
        *,
        store: Store | None = None,
        catalogue: Catalogue | None = None,
        rules: Rules = DEFAULT_RULES,
        append_timeout: float = 10.0,
        claim_wait: float = 2.0,
        recent: RecentEvents | None = None,
        signature_workers: int = 0,
    ) -> None:
        self.log = log
        self.signatures = SignatureWorkers(signature_workers)  # a batch's signatures checked beside the loop
        self._keys = keys
        self._catalogue = catalogue or default_catalogue()
        self._rules = rules
        self._append_timeout = append_timeout
        self._claim_wait = claim_wait
        self._store = store
        self._private: tempfile.TemporaryDirectory[str] | None = None
        self._ids: AcceptedIds | None = None
        # Submissions run concurrently: the store's claim (put-if-absent) decides which of two copies of an
        # id is appended. Every wait (the store, the log) falls under one deadline per submission (``_bounded``).
        # The partnership's directory: every OrgId an event names must be in it (permissions.py).
        # What this intake accepted lately, so its followers (and the app's) need not decode it again.
        self.recent = recent if recent is not None else RecentEvents()
        self.directory = DirectoryFollower(log, decode=self.recent.event_of(event_of))
        self.accepted = 0
        self.refused = 0

    @property
    def ids(self) -> AcceptedIds:
        """The accepted-id index (after ``start``)."""
        if self._ids is None:
            raise RuntimeError("call Intake.start first")
        return self._ids

    async def start(self) -> None:
        """Create the topics, open a private store if none was given, and catch the id index up with the log."""
        for topic in (topics.INPUT, topics.REJECTED):
            await self.log.create_topic(topic)
        if self._ids is None:
            store = self._store
            if store is None:
                self._private = tempfile.TemporaryDirectory(prefix="jigsaw-intake-")
                store = SqliteStore(Path(self._private.name) / "ids.db", durable=False)
                await store.start()
            self._ids = AcceptedIds(
                store,
                self.log,
                self._catalogue,
                content_digest,
                wait=self._claim_wait,
                stale_after=max(60.0, 6 * self._append_timeout),
                release_after=self._append_timeout,
                recent=self.recent,
            )
        await self.directory.refresh()
        # In full and unbounded: rebuilding an empty store from a long log takes as long as it takes.
        read = await self.ids.start(background=False)  # the views role follows in the background
        _log.info("accepted_ids_caught_up", records_read=read)

    async def close(self) -> None:
        """Stop background work; close the private store (a store passed in belongs to the caller)."""
        await self.signatures.close()
        if self._ids is not None:
            await self._ids.close()
            if self._private is not None:
                await self._ids.store.close()
                self._private.cleanup()
                self._private = None
            self._ids = None

    async def refresh(self) -> None:
        """Read what the input topic gained since the index last looked into the id index."""
        async with self._bounded("read the accepted event ids"):
            await self.ids.catch_up()

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

    async def _append(self, won: Sequence[tuple[Pending, AcceptedId]], ts: int) -> list[Position]:
        """Append claimed events and settle their claims; on failure, or past the submission's deadline (the append
        goes on as its own task), the claims are resolved once the append's outcome is final."""
        items = [
            (subject_key(p.accepted.event).encode(), p.raw, event_headers(p.accepted.envelope, p.accepted.kind))
            for p, _ in won
        ]
        claims = [row for _, row in won]
        for p, _ in won:  # before the append: a follower may read the records before the log confirms them
            self.recent.remember(p.raw, Recent(p.accepted.envelope, p.accepted.event, p.digest))
        append = asyncio.ensure_future(self.log.append_many(topics.INPUT, items, timestamp_ms=ts))
        try:
            positions = await asyncio.shield(append)
        except BaseException:  # a failure, or the deadline: the append may still land
            self.ids.release_later(claims, append)
            raise
        await self.ids.settle(list(zip(claims, positions, strict=True)))
        return positions

    async def publisher_of(self, event_id: str) -> str | None:
        """The organisation that published an accepted event, or None."""
        await self.ids.load_publishers([event_id])
        return self.ids.publisher_cached(event_id)

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
        async with self._bounded("accept an event"):
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
        if self._private is not None:
            await self.ids.catch_up()  # no shared store: what other intakes appended is only in the log
        try:
            accepted, digest = await self._verified(body, caller=caller, now=now)
            env = accepted.envelope
            row = AcceptedId(env.event_id, digest, env.source)
            [claim] = await self.ids.claim([row])
            if not claim.won:
                return lost_claim(claim, digest, accepted)
        except EventPending:
            raise  # not a refusal: the same bytes are welcome again in a moment (503 with Retry-After)
        except Refusal as exc:
            await self.refuse(exc, caller=caller, body=raw, now=now, client=client)
            return Outcome("refused", exc.evidence.get("event_id"), error=exc)
        ts = timestamp_ms if timestamp_ms is not None else int(now.timestamp() * 1000)
        [position] = await self._append([(Pending(raw, accepted, digest), row)], ts)
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
        async with self._bounded("accept a batch of events"):
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
        if self._private is not None:
            await self.ids.catch_up()  # no shared store: what other intakes appended is only in the log
        pending: list[tuple[int, Pending]] = []
        in_batch: dict[str, tuple[int, str]] = {}  # event id -> (index of its first copy, digest)
        copies: list[tuple[int, str]] = []  # (index, event id) of later copies in this batch
        sources: dict[str, str] = {}
        kinds: dict[str, str] = {}  # directory entries earlier in this batch

        def org_kind(org_id: str) -> str | None:
            return kinds.get(org_id) or self.directory.directory.kind_of(org_id)

        presigning: Presigning | None = None
        raws = [b for b in bodies if isinstance(b, bytes)]
        if self.signatures.count and len(bodies) >= 8 and len(raws) == len(bodies):
            presigning = await self.signatures.presign(raws, self._keys(), self._catalogue, self._rules.limits)
        for i, body in enumerate(bodies):
            raw = body if isinstance(body, bytes) else encode_envelope(body, self._catalogue)
            presigned = await presigning.get(i) if presigning is not None else None  # waits for its chunk only
            try:
                accepted, digest = await self._verified(
                    body, caller=caller, now=now, batch_publishers=sources, org_kind=org_kind, presigned=presigned
                )
                env = accepted.envelope
                if env.event_id in in_batch:
                    if in_batch[env.event_id][1] != digest:
                        raise conflict(env.event_id)
                    copies.append((i, env.event_id))  # answered below, as its first copy is
                    continue
            except Refusal as exc:
                await self.refuse(exc, caller=caller, body=raw, now=now, client=client)
                outcomes[i] = Outcome("refused", exc.evidence.get("event_id"), error=exc)
                continue
            in_batch[env.event_id] = (i, digest)
            sources[env.event_id] = env.source
            if env.event_type == "directory.organisation":
                kinds[str(accepted.event.data["org_id"])] = str(accepted.event.data["kind"])
            pending.append((i, Pending(raw, accepted, digest)))
        rows = [AcceptedId(p.accepted.envelope.event_id, p.digest, p.accepted.envelope.source) for _, p in pending]
        claims = await self.ids.claim(rows)
        won: list[tuple[int, Pending, AcceptedId]] = []
        for (i, p), row, claim in zip(pending, rows, claims, strict=True):
            if claim.won:
                won.append((i, p, row))
                continue
            try:
                outcomes[i] = lost_claim(claim, p.digest, p.accepted)
            except EventPending as exc:
                outcomes[i] = Outcome("pending", row.event_id, error=exc)
            except Refusal as exc:
                await self.refuse(exc, caller=caller, body=p.raw, now=now, client=client)
                outcomes[i] = Outcome("refused", row.event_id, error=exc)
        ts = timestamp_ms if timestamp_ms is not None else int(now.timestamp() * 1000)
        if won:
            positions = await self._append([(p, row) for _, p, row in won], ts)
            for (i, p, _), position in zip(won, positions, strict=True):
                self.directory.directory.apply(p.accepted.event, ts)
                outcomes[i] = Outcome("accepted", p.accepted.envelope.event_id, position, event=p.accepted.event)
            self.accepted += len(won)
            _log.info("accepted_batch", topic=topics.INPUT, events=len(won), last_offset=positions[-1].offset)
        for i, event_id in copies:  # later copies of an event earlier in this batch: answered as the first was
            first = outcomes[in_batch[event_id][0]]
            assert first is not None
            status = "duplicate" if first.status in ("accepted", "duplicate") else first.status
            outcomes[i] = dataclasses.replace(first, status=status)
        return [o for o in outcomes if o is not None]

    async def _verified(
        self,
        body: bytes | Envelope,
        *,
        caller: str | None,
        now: dt.datetime,
        batch_publishers: dict[str, str] | None = None,
        org_kind: Callable[[str], str | None] | None = None,
        presigned: Presigned | None = None,
    ) -> tuple[Accepted, str]:
        """``_check``, looking up what it lacked and checking again.

        On an unknown organisation, read the directory's news from the log (another gateway may
        have accepted the organisation's entry since this one read it); on a retraction of an id
        whose publisher this process has not looked up, ask the store.
        """
        org_kind = org_kind or self.directory.directory.kind_of
        missed: list[str] = []

        def publisher_of(event_id: str) -> str | None:
            found = (batch_publishers or {}).get(event_id) or self.ids.publisher_cached(event_id)
            if found is None:
                missed.append(event_id)
            return found

        directory_read = publishers_read = False
        while True:
            try:
                return self._check(
                    body, caller=caller, now=now, publisher_of=publisher_of, org_kind=org_kind, presigned=presigned
                )
            except UnknownOrganisation:
                if directory_read:
                    raise
                directory_read = True
                await self.directory.refresh()
            except NotPermitted:
                if publishers_read or not missed:
                    raise
                publishers_read = True
                await self.ids.load_publishers(missed)

    def _check(
        self,
        body: bytes | Envelope,
        *,
        caller: str | None,
        now: dt.datetime,
        publisher_of: Callable[[str], str | None],
        org_kind: Callable[[str], str | None],
        presigned: Presigned | None = None,
    ) -> tuple[Accepted, str]:
        """Every check of one submission but the id index (``submissions.check``), with this intake's rules."""
        return submissions.check(
            body,
            caller=caller,
            presigned=presigned,
            keys=self._keys(),
            now=now,
            publisher_of=publisher_of,
            org_kind=org_kind,
            catalogue=self._catalogue,
            rules=self._rules,
        )

    async def refuse(
        self, error: Refusal, *, caller: str | None, body: bytes, now: dt.datetime, client: str | None = None
    ) -> Position:
        """Record a refusal: what, from whom (and which address), why; the body only as its size and SHA-256."""
        record = refusal_record(error, caller=caller, body=body, now=now, client=client)
        key = str(record["event_id"] or record["body_sha256"]).encode()
        value = wire.encode_json(record)
        async with self._bounded("record a refusal"):
            position = await self.log.append(
                topics.REJECTED, value, key=key, headers=wire.JSON_HEADERS, timestamp_ms=int(now.timestamp() * 1000)
            )
        self.refused += 1
        _log.info("refused", event_id=record["event_id"], source=record["source"], caller=caller, error=error.code)
        return position
