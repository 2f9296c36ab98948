"""The organisations the family graph knows: the partnership's directory, and kinds links imply.

The directory is the ``directory.organisation`` events applied so far (the
latest entry for an organisation wins). The intake refuses an event naming an
organisation the directory does not list; a link in an older log that does is
still routed, with the kind its field implies (a ``practice`` is a GP practice,
so it is always ``restricted``).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import Any

__all__ = ["Organisations"]


class Organisations:
    """Organisation kinds, areas and safeguarding leads, for the graph's questions."""

    def __init__(self) -> None:
        self.directory: dict[str, dict[str, Any]] = {}
        self._inferred_kind: dict[str, str] = {}
        self._in_area: dict[tuple[Any, Any], list[str]] = {}  # (kind, area) -> sorted org ids, from the directory

    def list_organisation(self, entry: Mapping[str, Any]) -> None:
        """Apply one directory entry (``directory.organisation`` data)."""
        org = str(entry["org_id"])
        old = self.directory.get(org)
        index = self._area_index()  # before the directory changes: built from it, it must not hold the new entry
        self.directory[org] = dict(entry)
        if old is not None:
            index[(old.get("kind"), old.get("area"))].remove(org)
        bisect.insort(index.setdefault((entry.get("kind"), entry.get("area")), []), org)

    def _area_index(self) -> dict[tuple[Any, Any], list[str]]:
        """The directory by (kind, area); built here for a state from a snapshot written before it was kept."""
        index = self.__dict__.get("_in_area")
        if index is None:
            index = self._in_area = {}
            for org, e in sorted(self.directory.items()):
                index.setdefault((e.get("kind"), e.get("area")), []).append(org)
        return index

    def infer_kind(self, org: str, kind: str) -> None:
        """The kind a link's field implies, for an organisation the directory may not list."""
        self._inferred_kind.setdefault(org, kind)

    def org_kind(self, org: str) -> str | None:
        """The org's kind from the directory, else from the link that named it."""
        entry = self.directory.get(org)
        return str(entry["kind"]) if entry else self._inferred_kind.get(org)

    def org_area(self, org: str) -> str | None:
        entry = self.directory.get(org)
        return str(entry["area"]) if entry and entry.get("area") else None

    def orgs_of_kind_in_area(self, kind: str, area: str | None) -> list[str]:
        """Every directory organisation of ``kind`` in ``area`` (sorted)."""
        if area is None:
            return []
        return list(self._area_index().get((kind, area), ()))

    def safeguarding_lead(self, org: str) -> str | None:
        entry = self.directory.get(org)
        return entry.get("safeguarding_lead") if entry else None
