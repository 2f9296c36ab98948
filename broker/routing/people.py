"""Who is who: PersonRefs joined into people.

Two refs are the same person when their NHS numbers are equal, their local ids
are equal, or an ``identity.same_person`` event joined them. A ref carrying
both an NHS number and a local id joins the two as well (the sending agency
knows both). People are identified by a *key* (``nhs:<number>`` or
``local:<id>``); ``find`` gives the canonical key of a key's person, which can
change as more refs are joined, so facts are stored under the key they arrived
with and looked up through ``members``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from typing import Any

__all__ = ["People", "ref_keys"]


def ref_keys(ref: Mapping[str, Any] | None) -> list[str]:
    """The keys a PersonRef carries (NHS number first), empty for None."""
    if not ref:
        return []
    keys = []
    nhs = ref.get("nhs_number")
    if nhs:
        keys.append("nhs:" + str(nhs).replace(" ", ""))
    local = ref.get("local_id")
    if local:
        keys.append("local:" + str(local))
    return keys


class People:
    """A union-find over person keys, with what is known of each person."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}
        self._members: dict[str, set[str]] = {}  # root -> its keys, for people known by more than one
        self._dob: dict[str, dt.date] = {}
        self._sensitive: dict[str, bool] = {}

    # -- identity -------------------------------------------------------------

    def _add(self, key: str) -> None:
        if key not in self._parent:
            self._parent[key] = key

    def find(self, key: str) -> str:
        """The canonical key of the person ``key`` belongs to."""
        parent = self._parent.get(key)
        if parent == key:  # the common case, asked hundreds of times per event: a root
            return key
        if parent is None:
            self._add(key)
            return key
        root = key
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[key] != root:  # path compression
            self._parent[key], key = root, self._parent[key]
        return root

    def union(self, a: str, b: str) -> str:
        """Join two keys into one person; returns the canonical key."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        # Keep the smaller key as root so the canonical key does not depend on arrival order.
        root, other = (ra, rb) if ra < rb else (rb, ra)
        self._parent[other] = root
        self._members[root] = {*self._members.pop(root, (root,)), *self._members.pop(other, (other,))}
        if other in self._dob and root not in self._dob:
            self._dob[root] = self._dob[other]
        if self._sensitive.get(other):
            self._sensitive[root] = True
        return root

    def members(self, person: str) -> Collection[str]:
        """Every key of the person."""
        members = self._members.get(person)  # held by the roots of people known by more than one key
        if members is not None:
            return members
        root = self.find(person)
        return self._members.get(root) or (root,)

    def observe(self, ref: Mapping[str, Any] | None, *, born_on: dt.date | None = None) -> str | None:
        """Record a PersonRef; returns its person's canonical key (None for a null ref)."""
        keys = ref_keys(ref)
        if not keys:
            return None
        person = self.find(keys[0])
        for key in keys[1:]:
            person = self.union(person, key)
        dob = (ref or {}).get("date_of_birth") or born_on
        if isinstance(dob, dt.date):
            self._dob[person] = dob
        return person

    def resolve(self, ref: Mapping[str, Any] | None) -> str | None:
        """The canonical key of a ref without recording anything new about it."""
        keys = ref_keys(ref)
        return self.find(keys[0]) if keys else None

    def label(self, person: str) -> str:
        """How a reason names the person: its NHS number, else its local id."""
        keys = sorted(self.members(person))
        nhs = [k for k in keys if k.startswith("nhs:")]
        return (nhs or keys)[0].split(":", 1)[1]

    # -- attributes -----------------------------------------------------------

    def date_of_birth(self, person: str) -> dt.date | None:
        return self._dob.get(self.find(person))

    def age_on(self, person: str, day: dt.date) -> int | None:
        """Whole years of age on ``day``; None when the date of birth is not known."""
        dob = self.date_of_birth(person)
        if dob is None:
            return None
        return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))

    def is_child(self, person: str, day: dt.date, *, named_as_child: bool = False) -> bool:
        """Under 18 on ``day``; with no date of birth, a child only if named in a child field."""
        age = self.age_on(person, day)
        return named_as_child if age is None else 0 <= age < 18

    def set_sensitive(self, person: str, sensitive: bool) -> None:
        self._sensitive[self.find(person)] = sensitive

    def is_sensitive(self, person: str) -> bool:
        return self._sensitive.get(self.find(person), False)

    def canonical(self, keys: Iterable[str]) -> set[str]:
        """The canonical keys of several keys."""
        return {self.find(k) for k in keys}
