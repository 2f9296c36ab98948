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

__all__ = ["PERSON_FIELDS", "PERSON_LIST_FIELDS", "Event", "PersonRef"]

PersonRef = Mapping[str, Any]

# The catalogue's fields that hold one PersonRef, and those that hold a list of them (events.md).
PERSON_FIELDS = frozenset({"person", "child", "mother", "expected_father", "father", "victim", "perpetrator", "a", "b"})
PERSON_LIST_FIELDS = frozenset({"children", "children_present", "children_in_household"})


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
