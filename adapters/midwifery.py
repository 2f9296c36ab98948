"""Midwifery: maternity bookings, birth notifications and safeguarding concerns.

Three record types (``record_type``), as a maternity system exports them
(columns in ``adapters/README.md``):

- ``booking``: the booking appointment: ``booking_ref``, ``booked_at``, the
  mother (``mother_*``), the baby's father (``father_*``, the catalogue's
  expected father), ``edd`` (the estimated due date), and ``service`` (the
  midwifery service's OrgId; the key's organisation when blank). The social
  factors recorded at booking (``social_factor`` and ``social_factor_notes``)
  also make a ``midwifery.safeguarding_concern``: one row, two events.
- ``birth``: the birth notification: ``born_at``, the baby (``baby_*``), the
  mother, the father, ``booking_ref`` and the health visiting team's OrgId
  (``health_visiting``).
- ``concern``: a safeguarding concern raised later in pregnancy:
  ``concern_id``, ``booking_ref``, ``recorded_at``, the mother, ``category``
  and ``summary``.

Concern categories take the catalogue's names or the short codes in
``CONCERN_CATEGORIES`` (``MH``, ``SUB``, ``ALC``, ``DA``, ``OTH``).
"""

from __future__ import annotations

from adapters.base import Adapter, Mapped, RecordKey, Row
from adapters.fields import date_value, moment, org_ref, person, required_person

__all__ = ["ADAPTER", "CONCERN_CATEGORIES", "map_birth", "map_booking", "map_concern"]

CONCERN_CATEGORIES = {
    "mental health": "mental_health",
    "mh": "mental_health",
    "substance misuse": "substance_misuse",
    "substance": "substance_misuse",
    "drugs": "substance_misuse",
    "sub": "substance_misuse",
    "alcohol misuse": "alcohol_misuse",
    "alcohol": "alcohol_misuse",
    "alc": "alcohol_misuse",
    "domestic abuse disclosure": "domestic_abuse_disclosure",
    "domestic abuse": "domestic_abuse_disclosure",
    "da": "domestic_abuse_disclosure",
    "dv": "domestic_abuse_disclosure",
    "other": "other",
    "oth": "other",
}


def map_booking(row: Row, org_id: str) -> list[Mapped]:
    """A ``midwifery.pregnancy_booked`` (and a concern when social factors were recorded)."""
    ref = row.text("booking_ref")
    mother = required_person(row, "mother", org_id)
    edd = date_value(row, "edd")
    assert edd is not None
    when = moment(row, "booked_at")
    version = row.get("version") or "1"
    data = {
        "booking_ref": ref,
        "mother": mother,
        "expected_father": person(row, "father", org_id),
        "expected_date": edd.isoformat(),
        "midwifery_service": org_ref(row, "service", default=org_id),
    }
    events = [Mapped("midwifery.pregnancy_booked", data, when, RecordKey("booking", ref, version))]
    if row.get("social_factor") is not None:
        concern = {
            "booking_ref": ref,
            "mother": mother,
            "category": row.choice("social_factor", CONCERN_CATEGORIES, "social factor"),
            "summary": row.text("social_factor_notes"),
        }
        events.append(
            Mapped("midwifery.safeguarding_concern", concern, when, RecordKey("booking_concern", ref, version))
        )
    return events


def map_birth(row: Row, org_id: str) -> list[Mapped]:
    """A ``midwifery.birth_notified`` from a birth notification."""
    baby = required_person(row, "baby", org_id)
    born = moment(row, "born_at")
    born_on = date_value(row, "born_at")
    assert born_on is not None
    if baby["date_of_birth"] is None:  # a birth notification's baby was born that day
        baby["date_of_birth"] = born_on.isoformat()
    data = {
        "booking_ref": row.get("booking_ref"),
        "child": baby,
        "mother": required_person(row, "mother", org_id),
        "father": person(row, "father", org_id),
        "born_on": born_on.isoformat(),
        "health_visiting": org_ref(row, "health_visiting"),
    }
    ident = row.get("notification_id") or row.get("booking_ref") or str(baby["nhs_number"] or baby["local_id"])
    return [Mapped("midwifery.birth_notified", data, born, RecordKey("birth", ident))]


def map_concern(row: Row, org_id: str) -> list[Mapped]:
    """A ``midwifery.safeguarding_concern``."""
    data = {
        "booking_ref": row.text("booking_ref"),
        "mother": required_person(row, "mother", org_id),
        "category": row.choice("category", CONCERN_CATEGORIES, "concern category"),
        "summary": row.text("summary"),
    }
    key = RecordKey("concern", row.text("concern_id"))
    return [Mapped("midwifery.safeguarding_concern", data, moment(row, "recorded_at"), key)]


ADAPTER = Adapter(
    name="midwifery",
    org_kind="midwifery",
    mappers={"booking": map_booking, "birth": map_birth, "concern": map_concern},
    aliases={
        "pregnancy_booked": "booking",
        "birth_notification": "birth",
        "birth_notified": "birth",
        "safeguarding_concern": "concern",
    },
)
