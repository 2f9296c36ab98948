"""Reading values out of export rows: dates, times, yes/no flags, people and organisation ids.

Pure functions over ``Row``; every failure is a ``RowError`` naming the field.

- Dates: ``YYYY-MM-DD`` or the UK ``DD/MM/YYYY`` (also ``DD-MM-YYYY``, ``DD.MM.YYYY``).
- Times: ISO 8601 with a zone (``2025-03-08T22:40:00Z``), or a date and time without
  one (``2025-03-08 22:40``, ``08/03/2025 22:40``), which is UK local time
  (``Europe/London``: agency systems record the clock on the wall). A date alone is
  00:00 UTC that day.
- Flags: ``Y``/``N``, ``yes``/``no``, ``true``/``false``, ``1``/``0``.
- People (prefix ``p``): ``p_nhs_number``, ``p_id`` (the agency's own person id, sent
  as ``local_id`` ``<org_id>:<id>``), ``p_name``, ``p_dob``. NHS numbers are passed on
  as written; the shared validation checks them.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from typing import Any

from adapters.base import MissingField, Row, RowError
from broker.errors import ConfigError

__all__ = [
    "LOCAL_ZONE",
    "date_value",
    "flag",
    "iso",
    "moment",
    "org_ref",
    "person",
    "required_person",
]

LOCAL_ZONE = "Europe/London"

_UK_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_UK_MOMENT = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?$")
_TRUE = frozenset({"y", "yes", "true", "1"})
_FALSE = frozenset({"n", "no", "false", "0"})


@functools.cache
def _local_zone() -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(LOCAL_ZONE)
    except zoneinfo.ZoneInfoNotFoundError as exc:
        raise ConfigError(f"no time zone data for {LOCAL_ZONE}: install the tzdata package") from exc


def _parse_date(text: str) -> dt.date | None:
    try:
        if m := _ISO_DATE.match(text):
            return dt.date(int(m[1]), int(m[2]), int(m[3]))
        if m := _UK_DATE.match(text):
            return dt.date(int(m[3]), int(m[2]), int(m[1]))
    except ValueError:
        return None
    return None


def _parse_moment(text: str) -> dt.datetime | None:
    day = _parse_date(text)
    if day is not None:
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    try:
        if m := _UK_MOMENT.match(text):
            naive = dt.datetime(int(m[3]), int(m[2]), int(m[1]), int(m[4]), int(m[5]), int(m[6] or 0))
        else:
            naive = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if naive.tzinfo is None:
        naive = naive.replace(tzinfo=_local_zone())
    return naive.astimezone(dt.UTC)


def date_value(row: Row, field: str, *, required: bool = True) -> dt.date | None:
    """A date (a time is cut to its UK date); None when optional and blank."""
    raw = row.get(field) if not required else row.text(field)
    if raw is None:
        return None
    day = _parse_date(raw)
    if day is None:
        when = _parse_moment(raw)
        day = when.astimezone(_local_zone()).date() if when is not None else None
    if day is None:
        raise RowError(f"{row.name(field)}: {raw!r} is not a date (YYYY-MM-DD or DD/MM/YYYY)", field=row.name(field))
    return day


def moment(row: Row, field: str) -> dt.datetime:
    """A time in UTC (required)."""
    raw = row.text(field)
    when = _parse_moment(raw)
    if when is None:
        raise RowError(
            f"{row.name(field)}: {raw!r} is not a date or time (e.g. 2025-03-08T22:40:00Z or 08/03/2025 22:40)",
            field=row.name(field),
        )
    return when


def flag(row: Row, field: str, default: bool) -> bool:
    """A yes/no field (the default when blank)."""
    raw = row.get(field)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise RowError(f"{row.name(field)}: {raw!r} is not yes or no (Y/N)", field=row.name(field))


def iso(day: dt.date | None) -> str | None:
    """A date as ``YYYY-MM-DD`` (None stays None)."""
    return day.isoformat() if day is not None else None


def _sub(row: Row, prefix: str) -> Row:
    return Row(row.number, row.fields, row.prefix + (f"{prefix}_" if prefix else ""))


def person(row: Row, prefix: str, org_id: str) -> dict[str, Any] | None:
    """The PersonRef under ``prefix`` (``<prefix>_nhs_number`` ...; ``""`` for a sub-row's own), or None when blank."""
    sub = _sub(row, prefix)
    if not sub.has_any("nhs_number", "id", "name", "dob"):
        return None
    local = sub.get("id")
    return {
        "nhs_number": sub.get("nhs_number"),
        "local_id": f"{org_id}:{local}" if local is not None else None,
        "name": sub.get("name"),
        "date_of_birth": iso(date_value(sub, "dob", required=False)),
    }


def required_person(row: Row, prefix: str, org_id: str) -> dict[str, Any]:
    """The PersonRef under ``prefix``; RowError when it has neither an NHS number nor an id."""
    sub = _sub(row, prefix)
    if not sub.has_any("nhs_number", "id"):
        name = sub.prefix.rstrip("_")
        raise MissingField(f"{name}: no {name}_nhs_number or {name}_id", field=f"{name}_nhs_number")
    found = person(row, prefix, org_id)
    assert found is not None
    return found


def org_ref(row: Row, field: str, *, digits_prefix: str | None = None, default: str | None = None) -> str | None:
    """An OrgId from the directory; a bare code of digits gets ``digits_prefix`` (a school's URN -> SCHOOL-<urn>)."""
    raw = row.get(field)
    if raw is None:
        return default
    value = raw.strip().upper().replace(" ", "-")
    if digits_prefix is not None and value.isdigit():
        value = digits_prefix + value
    if not re.fullmatch(r"[A-Z0-9][A-Z0-9_-]{0,63}", value):
        raise RowError(
            f"{row.name(field)}: {raw!r} is not an organisation id (e.g. HV-BRADFORD-NORTH)", field=row.name(field)
        )
    return value
