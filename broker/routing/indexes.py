"""Facts kept by person key, read through ``People.members``, retracted ones left out.

``FamilyGraph`` stores each fact under the person key it arrived with; an
``identity.same_person`` that later joins two records joins their facts
because every read goes through the joined members. A fact keeps the id of the
event that stated it, so a retracted event stops counting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from broker.routing.people import People

__all__ = ["PersonIndexes"]


class PersonIndexes:
    """The reading helpers the graph's questions share (the graph sets ``people`` and ``retracted``)."""

    people: People
    retracted: set[str]

    def _live(self, items: Iterable[Any]) -> list[Any]:
        if not self.retracted:
            return list(items)
        return [i for i in items if i.event_id not in self.retracted]

    def _for_person(self, index: Mapping[str, Iterable[Any]], person: str) -> list[Any]:
        out: list[Any] = []
        for key in self.people.members(person):
            out.extend(index.get(key, ()))
        return self._live(out)

    def _keys_for(self, index: Mapping[str, set[str]], person: str) -> set[str]:
        out: set[str] = set()
        for key in self.people.members(person):
            out |= index.get(key, set())
        return out
