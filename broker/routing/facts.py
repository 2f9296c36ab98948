"""The facts the family graph holds, one frozen record per statement a link event made.

Each keeps its ``order`` (when it was stated, then the router's sequence number)
and the id of the event that stated it, so a later statement wins and a
retracted one stops counting (``graph.py``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

__all__ = [
    "LINK_TYPES",
    "PARENT_RELATIONSHIPS",
    "UNBORN",
    "Assessment",
    "Birth",
    "Composition",
    "Order",
    "Pregnancy",
    "Registration",
    "Slot",
    "is_unborn",
]

# The event types of the Links table (events.md): facts that stay true until a later event ends them.
LINK_TYPES = frozenset(
    {
        "gp.registration",
        "midwifery.pregnancy_booked",
        "midwifery.birth_notified",
        "csc.household_composition",
        "link.professional_assigned",
        "identity.same_person",
        "identity.sensitive_record",
    }
)
PARENT_RELATIONSHIPS = ("mother", "father")
UNBORN = "unborn:"

Order = tuple[dt.datetime, int]


@dataclasses.dataclass(frozen=True, slots=True)
class Registration:
    practice: str
    registered: bool
    effective_date: dt.date
    order: Order
    event_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class Composition:
    child: str
    members: tuple[tuple[str, str, bool], ...]  # (person key, relationship, lives_with_child)
    publisher: str
    order: Order
    event_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class Birth:
    child: str
    mother: str | None
    father: str | None
    born_on: dt.date
    booking_ref: str | None
    order: Order
    event_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class Pregnancy:
    booking_ref: str
    mother: str
    expected_father: str | None
    expected_date: dt.date
    midwifery_service: str
    booked_at: dt.datetime
    order: Order
    event_id: str

    @property
    def unborn(self) -> str:
        """The pseudo-person key of the unborn child."""
        return UNBORN + self.booking_ref


@dataclasses.dataclass(frozen=True, slots=True)
class Slot:
    """One statement of who serves a child in a role (``org`` None: an ended assignment)."""

    org: str | None
    ended_org: str | None
    order: Order
    event_id: str
    how: str  # which link named it: "birth", "household", "assignment"


@dataclasses.dataclass(frozen=True, slots=True)
class Assessment:
    assessment_ref: str
    mother: str
    expected_father: str | None
    status: str
    publisher: str
    order: Order
    event_id: str


def is_unborn(person: str) -> bool:
    return person.startswith(UNBORN)
