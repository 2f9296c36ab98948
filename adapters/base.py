"""The shared base of the agency adapters: rows in, catalogue events out.

An agency's export (CSV or JSON, read by ``adapters.files``) becomes a list of
``Row``s: flat, lower-case field names, blank cells dropped, each with the row
number a person can find in the file. An ``Adapter`` maps one row to a list of
``Mapped`` events with pure functions (no I/O, no clock): the event type, the
catalogue data, when it happened, and the agency's own record key, from which
the event id is derived (``event_id``), so the same record always becomes the
same event and re-sending a file sends nothing new.

A row that cannot be mapped raises ``RowError`` naming the field; the caller
reports it with the row number and goes on with the next row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from broker.errors import JigsawError

__all__ = [
    "EVENT_ID_NAMESPACE",
    "Adapter",
    "ExportUnreadable",
    "Mapped",
    "Mapper",
    "MissingField",
    "RecordKey",
    "Row",
    "RowError",
    "UnknownCode",
    "event_id",
    "iter_fields",
    "normalise_name",
    "normalise_word",
]

# uuid5 namespace of every adapter-made event id (itself uuid5 of a fixed name, so it never changes).
EVENT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:jigsaw:adapters:event-id:v1")


class RowError(JigsawError, ValueError):
    """One row cannot be mapped to a catalogue event (the message names the field and what is wrong)."""

    code = "row_invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.field = field


class MissingField(RowError):
    """A field the mapping needs is blank or absent."""

    code = "missing_field"


class UnknownCode(RowError):
    """A code or label the mapping's tables do not know (nothing is guessed)."""

    code = "unknown_code"


class ExportUnreadable(JigsawError, ValueError):
    """The export file as a whole cannot be read (not CSV or JSON, no header, not a list of records)."""

    code = "export_unreadable"


def normalise_name(text: str) -> str:
    """A column or key name as rows hold it: lower case, words joined by ``_`` ("Victim NHS Number")."""
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


def normalise_word(text: str) -> str:
    """A code or label as compared with a table: lower case, one space between words, no punctuation."""
    return re.sub(r"[\s_\-/.]+", " ", re.sub(r"['\u2019]", "", text.strip().lower())).strip()


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    """One record of an export: flat field names (lower case), blank values dropped.

    ``number`` is where a person finds it: the line a CSV row starts on (the header is
    line 1) or a JSON record's position (the first is 1). A sub-row (``group``) shares
    its row's number and fields and reads the names under its ``prefix``.
    """

    number: int
    fields: Mapping[str, str]
    prefix: str = ""

    def name(self, field: str) -> str:
        """The full field name (with this sub-row's prefix), as the export spells it."""
        return self.prefix + field

    def get(self, field: str) -> str | None:
        """The field's text, or None when it is absent or blank."""
        return self.fields.get(self.prefix + field)

    def text(self, field: str) -> str:
        """The field's text; RowError when it is missing."""
        value = self.get(field)
        if value is None:
            raise MissingField(f"{self.name(field)} is missing", field=self.name(field))
        return value

    def has_any(self, *fields: str) -> bool:
        """True when any of the fields has a value."""
        return any(self.get(f) is not None for f in fields)

    def group(self, prefix: str) -> list[Row]:
        """The numbered sub-records ``<prefix>_1_*``, ``<prefix>_2_*`` ... in number order.

        A JSON list under ``prefix`` arrives flattened to exactly these names.
        """
        pattern = re.compile(re.escape(self.prefix + prefix) + r"_(\d+)_")
        numbers = sorted({int(m.group(1)) for key in self.fields if (m := pattern.match(key))})
        return [Row(self.number, self.fields, f"{self.prefix}{prefix}_{n}_") for n in numbers]

    def choice(self, field: str, table: Mapping[str, str], what: str) -> str:
        """The catalogue value a code or label in ``field`` stands for; RowError for an unknown one."""
        raw = self.text(field)
        value = {normalise_word(k): v for k, v in table.items()}.get(normalise_word(raw))
        if value is None:
            known = ", ".join(sorted({v for v in table.values()}))
            raise UnknownCode(f"{self.name(field)}: unknown {what} {raw!r} (known: {known})", field=self.name(field))
        return value


@dataclasses.dataclass(frozen=True, slots=True)
class RecordKey:
    """The agency's own identity of the record an event comes from.

    ``kind`` is the record type (``incident``, ``cp_plan`` ...), ``ident`` the agency's id
    for it, ``version`` what tells apart the several events one record legitimately
    produces (a plan's status and date, an incident's revision).
    """

    kind: str
    ident: str
    version: str = ""

    @property
    def ref(self) -> str:
        """A readable reference: ``kind:ident`` or ``kind:ident@version``."""
        return f"{self.kind}:{self.ident}" + (f"@{self.version}" if self.version else "")


def event_id(org_id: str, record: RecordKey) -> str:
    """The event id of a record: uuid5 over the org id and the record key, the same on every run."""
    name = json.dumps([org_id, record.kind, record.ident, record.version], separators=(",", ":"))
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, name))


@dataclasses.dataclass(frozen=True, slots=True)
class Mapped:
    """One catalogue event a row maps to (JSON-like data: ISO dates, PersonRef dicts)."""

    event_type: str
    data: Mapping[str, Any]
    occurred_at: dt.datetime
    record: RecordKey


Mapper = Callable[[Row, str], list[Mapped]]
"""A pure function from a row and the publishing org id to the events it maps to."""


@dataclasses.dataclass(frozen=True, slots=True)
class Adapter:
    """An agency's mapping: which org kind publishes, and a mapper per record type.

    A row names its record type in ``record_type``; it may be left out when the
    adapter has a ``default_type``. ``aliases`` maps other spellings to record types.
    """

    name: str
    org_kind: str
    mappers: Mapping[str, Mapper]
    default_type: str | None = None
    aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)

    RECORD_TYPE: ClassVar[str] = "record_type"

    def record_type(self, row: Row) -> str:
        """The row's record type (RowError when it is missing or unknown)."""
        raw = row.get(self.RECORD_TYPE)
        if raw is None:
            if self.default_type is None:
                raise MissingField(
                    f"record_type is missing (one of: {', '.join(sorted(self.mappers))})", field=self.RECORD_TYPE
                )
            return self.default_type
        word = normalise_word(raw).replace(" ", "_")
        found = word if word in self.mappers else self.aliases.get(word)
        if found is None:
            raise UnknownCode(
                f"record_type: unknown record type {raw!r} (known: {', '.join(sorted(self.mappers))})",
                field=self.RECORD_TYPE,
            )
        return found

    def map_row(self, row: Row, org_id: str) -> list[Mapped]:
        """The events one row maps to.

        Raises:
            RowError: the row is incomplete or holds a value the mapping does not know.
        """
        return self.mappers[self.record_type(row)](row, org_id)


def iter_fields(value: Any, prefix: str = "") -> Iterator[tuple[str, str | None]]:
    """Flatten a JSON value to ``(name, text)`` pairs: nested keys joined by ``_``, list items numbered from 1."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = normalise_name(str(key))
            yield from iter_fields(item, f"{prefix}_{name}" if prefix else name)
    elif isinstance(value, list):
        for index, item in enumerate(value, 1):
            yield from iter_fields(item, f"{prefix}_{index}")
    elif value is None:
        yield prefix, None
    elif isinstance(value, bool):
        yield prefix, "true" if value else "false"
    else:
        yield prefix, str(value)
