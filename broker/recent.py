"""The events this process accepted lately, by their bytes: decoded once, read back many times.

A gateway reads every record it appends to the input topic back a moment
later, in three followers: the accepted-id index (an event's id, content digest
and source), the chronology index (the people an event names) and the
directory. Decoding an envelope and its payload costs as much as checking its
signature, so the intake remembers what it verified, keyed by the exact bytes
it appended, and the followers ask here first. Decoding is a pure function of
the bytes, so an answer from here is the answer a decode would give; bytes not
remembered (another gateway's records, a record read after a restart, one
evicted from this bounded memory) are decoded as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from broker.envelope.model import Envelope
from broker.model import Event

__all__ = ["Recent", "RecentEvents"]


@dataclasses.dataclass(frozen=True, slots=True)
class Recent:
    """What the intake knew of one accepted envelope."""

    envelope: Envelope
    event: Event
    digest: str  # ``submissions.content_digest`` of the envelope


class RecentEvents:
    """A bounded memory of accepted envelopes by their bytes, oldest forgotten first."""

    def __init__(self, capacity: int = 20_000) -> None:
        self._capacity = capacity
        self._by_bytes: dict[bytes, Recent] = {}

    def __len__(self) -> int:
        return len(self._by_bytes)

    def remember(self, raw: bytes, recent: Recent) -> None:
        """Keep what the intake verified of ``raw`` (before its append: what bytes decode to does not depend on
        whether they landed)."""
        entries = self._by_bytes
        entries[raw] = recent
        while len(entries) > self._capacity:
            del entries[next(iter(entries))]

    def get(self, raw: bytes) -> Recent | None:
        """What was remembered of exactly these bytes, or None."""
        return self._by_bytes.get(raw)

    def event_of(self, decode: Callable[[bytes], Event]) -> Callable[[bytes], Event]:
        """``decode``, answered from memory for bytes the intake accepted lately."""

        def event(raw: bytes) -> Event:
            found = self._by_bytes.get(raw)
            return found.event if found is not None else decode(raw)

        return event
