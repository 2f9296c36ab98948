"""The family graph's questions about pregnancies, births and pre-birth assessments.

``FamilyGraph.apply`` stores the facts; these read them (``routing.md``,
"Words": active pregnancies, the unborn child of a booking, open pre-birth
assessments). Plain data, never awaits.
"""

from __future__ import annotations

import datetime as dt

from broker.routing.facts import UNBORN, Assessment, Birth, Pregnancy, is_unborn
from broker.routing.indexes import PersonIndexes

__all__ = ["PregnancyQueries"]


class PregnancyQueries(PersonIndexes):
    """Mixed into ``FamilyGraph``, which fills these indexes as it applies events."""

    _pregnancies: dict[str, Pregnancy]
    _pregnancies_by_person: dict[str, set[str]]
    _births: dict[str, list[Birth]]
    _births_by_parent: dict[str, set[str]]
    _births_by_booking: dict[str, list[Birth]]
    _assessments: dict[str, list[Assessment]]  # by mother key
    _assessments_by_person: dict[str, set[str]]

    def active_pregnancies(self, person: str, day: dt.date) -> list[Pregnancy]:
        """Pregnancies where the person is mother or expected father, booked, not born, not long overdue."""
        me = self.people.find(person)
        out = []
        for ref in sorted(self._keys_for(self._pregnancies_by_person, person)):
            preg = self._pregnancies.get(ref)
            if preg is None or preg.event_id in self.retracted:
                continue
            if me not in (
                self.people.find(preg.mother),
                preg.expected_father and self.people.find(preg.expected_father),
            ):
                continue
            if self._born(preg) or day > preg.expected_date + dt.timedelta(days=28):
                continue
            out.append(preg)
        return out

    def _born(self, preg: Pregnancy) -> bool:
        if self._live(self._births_by_booking.get(preg.booking_ref, [])):
            return True
        for child in self._keys_for(self._births_by_parent, preg.mother):
            for birth in self._for_person(self._births, child):
                if (
                    birth.mother
                    and self.people.find(birth.mother) == self.people.find(preg.mother)
                    and birth.order > preg.order
                    and birth.booking_ref in (None, preg.booking_ref)
                ):
                    return True
        return False

    def pregnancy(self, unborn: str) -> Pregnancy | None:
        return self._pregnancies.get(unborn[len(UNBORN) :]) if is_unborn(unborn) else None

    def open_assessments(self, person: str) -> list[Assessment]:
        """Pre-birth assessments not completed where the person is mother or expected father."""
        me = self.people.find(person)
        out = []
        for mother in self._keys_for(self._assessments_by_person, person):
            by_ref: dict[str, Assessment] = {}
            for a in sorted(self._for_person(self._assessments, mother), key=lambda a: a.order):
                by_ref[a.assessment_ref] = a
            for a in by_ref.values():
                parents = {self.people.find(a.mother)} | (
                    {self.people.find(a.expected_father)} if a.expected_father else set()
                )
                if a.status != "completed" and me in parents:
                    out.append(a)
        return out
