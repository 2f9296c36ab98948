"""Plain data that crosses module boundaries: an accepted event, decoded.

The gateway and the simulator turn a verified envelope into an ``Event``; the
router, the auditor and the chronology only ever see ``Event``s. Payload data
is the event's Avro record as fastavro decodes it: dates are ``datetime.date``,
timestamps are aware ``datetime``s, PersonRefs are dicts with ``nhs_number``,
``local_id``, ``name`` and ``date_of_birth``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

__all__ = ["Event", "PersonRef"]

PersonRef = Mapping[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """An accepted, verified agency event."""

    event_id: str
    event_type: str
    source: str
    occurred_at: dt.datetime
    issued_at: dt.datetime
    lawful_basis: str
    consent: str
    data: Mapping[str, Any]
