"""The accepted-id index the intake keeps in the store: claim, wait for a winner, settle, release, catch up.

Every gateway shares one index (``Store.claim``): the first to claim an event
id appends it, then settles the claim with its log position; a gateway that
loses the claim answers from the row that stands (the same content: 200 with
the original position; other content: 409).

While the winner has not settled (it is appending right now), a loser polls
the row for up to ``wait`` seconds. Settled: answer as above. Released (the
winner's append failed): claim again. Still unsettled after the wait: read
the log's tail into the index (``catch_up``: the winner may have died after
its append landed, and this settles its claim), then take the claim over if
it is older than ``stale_after`` (its gateway died between claiming and
appending). Otherwise the submission is answered ``event_pending`` (503,
retriable): the client sends the same bytes again a moment later.

A claim whose append failed or timed out is not dropped at once: the append
may still land (a producer retrying in the background). ``release_later``
waits until that append's outcome is final (the append is its own task, left
running when the submission's deadline passes: settled from its positions if
it landed), reads the log's tail into the index (which settles the claim if
the record landed) and only then releases a claim still without a position, so
a re-send after a log outage is recognised rather than appended twice.

The index is materialised from the input topic (``materialise.accepted``),
so a store that is empty or behind is rebuilt from the log at start; the
``views`` role follows it in the background (every 5 s), so the look at the
log's tail that a stale claim or a release needs stays short.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Sequence

from broker import topics
from broker.envelope.model import Envelope, decode_envelope
from broker.errors import JigsawError
from broker.log.base import Log, Position, Record
from broker.logging import get_logger
from broker.recent import RecentEvents
from broker.schemas import Catalogue
from broker.store import AcceptedId, Claim, Store
from broker.store.follow import ViewFollower
from broker.store.materialise import accepted

__all__ = ["AcceptedIds", "Digest"]

_log = get_logger("jigsaw.intake")
_APPEND_OUTCOME_S = 600.0  # how long a release waits for an unconfirmed append to land or fail for good

# A record's content digest: what makes two copies of an event id the same event.
Digest = Callable[[Envelope], str]


def _wall() -> dt.datetime:
    """Claims are stamped with the wall clock (never a simulator's virtual clock): staleness is real time."""
    return dt.datetime.fromtimestamp(time.time(), dt.UTC)


class AcceptedIds:
    """The accepted-id index over a ``Store``, for one intake."""

    def __init__(
        self,
        store: Store,
        log: Log,
        catalogue: Catalogue,
        digest_of: Digest,
        *,
        wait: float = 2.0,
        stale_after: float = 60.0,
        release_after: float = 10.0,
        recent: RecentEvents | None = None,
    ) -> None:
        self.store = store
        self.log = log
        self._catalogue = catalogue
        self._digest_of = digest_of
        self._wait = wait
        self._stale_after = dt.timedelta(seconds=stale_after)
        self._release_after = release_after
        self._recent = recent if recent is not None else RecentEvents(capacity=0)
        self._publishers: dict[str, str] = {}  # settled ids only: a publisher never changes
        self._tasks: set[asyncio.Task[None]] = set()
        # Followed in the background too, so the look at the log's tail a stale claim needs stays short.
        self.follower = ViewFollower(log, store, "accepted", [(topics.INPUT, accepted(self._identify))], interval=5.0)

    def _identify(self, record: Record) -> tuple[str, str, str] | None:
        if record.value is None or not topics.is_event(record):
            return None
        recent = self._recent.get(record.value)
        if recent is not None:  # this process accepted these very bytes: no need to decode them again
            return recent.envelope.event_id, recent.digest, recent.envelope.source
        env = decode_envelope(record.value, catalogue=self._catalogue)
        return env.event_id, self._digest_of(env), env.source

    async def start(self, *, background: bool = True) -> int:
        """Catch the index up with the log in full, then follow it in the background; records read."""
        return await self.follower.start(background=background)

    async def catch_up(self) -> int:
        """Read what the input topic gained since the index last looked; how many records were read."""
        return await self.follower.catch_up()

    # -- publishers (for retractions) ----------------------------------------------------

    def publisher_cached(self, event_id: str) -> str | None:
        """The publisher of an accepted event, if this process has looked it up (no I/O)."""
        return self._publishers.get(event_id)

    async def load_publishers(self, event_ids: Sequence[str]) -> None:
        """Look up the publishers of those ids that are accepted (settled), for ``publisher_cached``."""
        wanted = [e for e in event_ids if e not in self._publishers]
        if not wanted:
            return
        for row in (await self.store.accepted_many(wanted)).values():
            if row.position is not None:
                self._remember(row)

    def _remember(self, row: AcceptedId) -> None:
        if len(self._publishers) >= 100_000:  # bounded: a cache, the store has them all
            self._publishers.clear()
        self._publishers[row.event_id] = row.source

    # -- claims ----------------------------------------------------------------------------

    async def claim(self, rows: Sequence[AcceptedId]) -> list[Claim]:
        """Claim each id; a claim lost to a winner still appending is waited for (``standing``)."""
        claims = await self.store.claim_many(rows, now=_wall())
        waiting = [i for i, c in enumerate(claims) if not c.won and c.row.position is None]
        if waiting:
            resolved = await asyncio.gather(*(self.standing(rows[i]) for i in waiting))
            for i, claim in zip(waiting, resolved, strict=True):
                claims[i] = claim
        for claim in claims:
            if not claim.won and claim.row.position is not None:
                self._remember(claim.row)
        return claims

    async def standing(self, mine: AcceptedId) -> Claim:
        """The claim on ``mine``'s id once its winner settles, releases, or is found stale (or the wait ends)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        delay = 0.005
        while True:
            row = await self.store.accepted(mine.event_id)
            if row is None:  # the winner's append failed and it let go: try again
                claim = await self.store.claim(mine, now=_wall())
                if claim.won or claim.row.position is not None:
                    return claim
            elif row.position is not None:
                return Claim(False, row)
            if loop.time() >= deadline:
                break
            await asyncio.sleep(delay)
            delay = min(0.1, delay * 2)
        # Its gateway may have died after the append landed (the tail settles it) or before (stale: take over).
        await self.catch_up()
        return await self.store.claim(mine, now=_wall(), stale_after=self._stale_after)

    async def settle(self, landed: Sequence[tuple[AcceptedId, Position]]) -> None:
        """Give won claims their positions; a claim that cannot be settled now is settled from the log later."""
        try:
            await self.store.settle_many([(row.event_id, row.digest, position) for row, position in landed])
        except JigsawError as exc:
            _log.warning("claims_unsettled", events=len(landed), error=exc.code)
            self.release_later([row for row, _ in landed])
            return
        for row, _ in landed:
            self._remember(row)

    def release_later(self, rows: Sequence[AcceptedId], append: asyncio.Future[list[Position]] | None = None) -> None:
        """After a failed or unconfirmed append: settle these claims if they landed, else release them.

        ``append``: the append itself, still running or done; nothing is released before its outcome is final.
        """
        if rows:
            task = asyncio.get_running_loop().create_task(self._release(list(rows), append))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _release(self, rows: list[AcceptedId], append: asyncio.Future[list[Position]] | None) -> None:
        delay = self._release_after  # without the append's own outcome: long enough for it to land or fail
        if append is not None:
            await asyncio.wait({append}, timeout=_APPEND_OUTCOME_S)  # however it ends, its records' fate is known
            if append.done() and not append.cancelled() and append.exception() is None:
                await self.settle(list(zip(rows, append.result(), strict=True)))
                return
            delay = 0.0 if append.done() else delay
        for _attempt in range(8):
            await asyncio.sleep(delay)
            try:
                await self.catch_up()
                for row in rows:
                    await self.store.release(row.event_id, row.digest)  # a no-op for a claim the log settled
            except (JigsawError, TimeoutError) as exc:
                _log.warning("claims_release_retry", events=len(rows), error=type(exc).__name__)
                delay = min(60.0, max(1.0, delay * 2))
                continue
            _log.info("claims_resolved", events=len(rows))
            return
        _log.warning("claims_left_to_go_stale", events=len(rows))  # another gateway takes them over when stale

    async def close(self) -> None:
        """Stop following and stop pending releases (their claims go stale: taken over after a look at the log)."""
        await self.follower.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
