"""What a replay found: one ``Finding`` per thing that does not verify or does not match (pure).

A finding names where it is (topic, partition, offset) and, when it concerns
an event, the event's id, so an auditor can go straight to it. Findings never
carry payload contents: only ids, organisation ids, codes and field names.
"""

from __future__ import annotations

import dataclasses

__all__ = ["ERROR", "NOTE", "Finding"]

ERROR = "error"  # something does not verify or does not match: the replay fails
NOTE = "note"  # worth knowing, not a failure (e.g. the newest records are not yet under a signed tree head)


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    """One thing a replay found."""

    code: str
    message: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    event_id: str | None = None
    severity: str = ERROR
    order: int = -1  # where it sorts in the router's order of inputs (-1: unknown, last)

    @property
    def position(self) -> str:
        """``topic:partition:offset``, or as much of it as is known."""
        if self.topic is None:
            return "-"
        if self.offset is None:
            return f"{self.topic}:{self.partition if self.partition is not None else '*'}"
        return f"{self.topic}:{self.partition or 0}:{self.offset}"

    def line(self) -> str:
        """One line for a terminal or a report file."""
        event = f" event {self.event_id}" if self.event_id else ""
        return f"{self.severity.upper()} {self.code} at {self.position}{event}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "code": self.code,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "event_id": self.event_id,
            "message": self.message,
        }
