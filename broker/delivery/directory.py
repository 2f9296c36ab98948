"""Where each organisation's notifications go: the partnership's directory, as the dispatcher sees it.

The directory is the ``directory.organisation`` events on the partnership's
events topic; the latest entry for an organisation wins. An organisation with
an ``endpoint`` gets webhooks (``endpoint_internal`` lets the endpoint be on a
private network); one without uses the inbox. ``Directory`` is pure;
``DirectoryFollower`` reads the topic.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from broker import topics
from broker.errors import SchemaInvalid
from broker.log.base import Log, Record
from broker.log.scan import read_available
from broker.logging import get_logger
from broker.model import Event
from broker.validation import event_of

__all__ = ["Directory", "DirectoryFollower", "Entry"]

_log = get_logger("jigsaw.delivery")


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One organisation's delivery details."""

    org_id: str
    name: str
    kind: str
    endpoint: str | None
    endpoint_internal: bool
    safeguarding_lead: str | None
    updated_ms: int  # when the entry was accepted into the log


class Directory:
    """Organisations by id, from ``directory.organisation`` events applied in log order."""

    def __init__(self, entries: Mapping[str, Entry] | None = None) -> None:
        self._entries: dict[str, Entry] = dict(entries or {})

    def __len__(self) -> int:
        return len(self._entries)

    def apply(self, event: Event, timestamp_ms: int) -> Entry | None:
        """Apply one accepted event; returns the new entry when it was a directory entry."""
        if event.event_type != "directory.organisation":
            return None
        d: Mapping[str, Any] = event.data
        entry = Entry(
            org_id=str(d["org_id"]),
            name=str(d.get("name") or d["org_id"]),
            kind=str(d.get("kind") or ""),
            endpoint=str(d["endpoint"]) if d.get("endpoint") else None,
            endpoint_internal=bool(d.get("endpoint_internal", False)),  # absent in v1 entries
            safeguarding_lead=str(d["safeguarding_lead"]) if d.get("safeguarding_lead") else None,
            updated_ms=timestamp_ms,
        )
        self._entries[entry.org_id] = entry
        return entry

    def get(self, org_id: str) -> Entry | None:
        """The organisation's entry, or None when the directory does not list it."""
        return self._entries.get(org_id)

    def kind_of(self, org_id: str) -> str | None:
        """The organisation's kind, or None when the directory does not list it (``validation.verify``)."""
        entry = self._entries.get(org_id)
        return entry.kind if entry is not None else None

    def entries(self) -> list[Entry]:
        """Every entry, by org id."""
        return [self._entries[k] for k in sorted(self._entries)]


class DirectoryFollower:
    """Keeps a ``Directory`` up to date with the partnership's events on the input topic."""

    def __init__(self, log: Log, *, decode: Callable[[bytes], Event] = event_of) -> None:
        self.log = log
        self.directory = Directory()
        self._decode = decode
        self._positions: dict[int, int] = {}
        self._read_at = -math.inf  # monotonic time of the last refresh

    def holds(self, offset: int) -> bool:
        """The input record at ``offset`` (partition 0, the input's one partition) has been read."""
        return self._positions.get(0, 0) > offset

    async def refresh_for(self, records: Iterable[Record], *, every: float = 1.0) -> None:
        """``refresh`` when a notification among ``records`` was routed with a directory entry newer than
        this one has read (its ``directory_at`` header; a record without one counts as newer), or when the
        last refresh is ``every`` seconds old, so endpoint changes reach retries too. Reading the whole input
        at every dispatcher step cost a quarter of the end-to-end latency at 200 events/s."""
        if time.monotonic() - self._read_at < every and all(
            (at := record.header(topics.DIRECTORY_AT_HEADER)) is not None and self.holds(int(at)) for record in records
        ):
            return
        await self.refresh()

    async def refresh(self) -> None:
        """Read whatever the topic gained since the last refresh (no waiting)."""
        self._read_at = time.monotonic()
        topic = topics.INPUT
        for partition in range(max(1, await self.log.partitions(topic))):
            offset = self._positions.get(partition, 0)
            while records := await read_available(self.log, topic, offset, partition=partition):
                for record in records:
                    if record.value is None or record.header(topics.SOURCE_KIND_HEADER) != b"partnership":
                        continue
                    try:
                        event = self._decode(record.value)
                    except SchemaInvalid as exc:
                        _log.error("undecodable_event", topic=topic, offset=record.offset, error=exc.message)
                        continue
                    self.directory.apply(event, record.timestamp_ms)
                offset = records[-1].offset + 1
                self._positions[partition] = offset
