"""What a text field may hold: no hidden characters, and a maximum length per field.

Free text travels to other agencies' screens, inboxes, logs and spreadsheets.
A control character (NUL, ESC, CR, ...) can rewrite a terminal or a log line;
a bidirectional override (U+202A to U+202E, U+2066 to U+2069) can make
``refuge at 12 Secret Lane`` display as something else. So every string in an
event's data is checked (``check_text``), and one that breaks a rule is refused
with ``schema_invalid`` naming the field:

- multi-line free text (``MULTILINE_LIMITS``: summaries, actions, outcomes,
  reasons, the basis of an identity match) may hold tab and newline, and no
  other control character;
- every other string (names, references, ids, directory details) is one line:
  no control character at all, tab and newline included;
- no string holds a bidirectional override or isolate;
- each field has a maximum length in characters (``max_length``).

The limits are documented in ``schemas/README.md``; change both together.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from broker.errors import SchemaInvalid

__all__ = [
    "BIDI_CONTROLS",
    "LINE_LIMITS",
    "MULTILINE_LIMITS",
    "OTHER_LIMIT",
    "check_string",
    "check_text",
    "max_length",
]

# Multi-line free text: tab and newline allowed.
MULTILINE_LIMITS: Mapping[str, int] = {
    "summary": 8000,
    "actions": 8000,
    "outcome": 4000,
    "reason": 2000,
    "basis": 2000,
}
# One-line fields with a limit of their own.
LINE_LIMITS: Mapping[str, int] = {
    "name": 200,
    "safeguarding_lead": 200,
    "area": 100,
    "endpoint": 2048,
    "local_id": 100,
    "nhs_number": 20,
    "lawful_basis": 100,
}
OTHER_LIMIT = 100  # every other string: references (incident_ref, ...), OrgIds, enum symbols

# Bidirectional embeddings, overrides (U+202A-U+202E) and isolates (U+2066-U+2069).
BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
# Control characters are Unicode category Cc: U+0000-U+001F and U+007F-U+009F. One regex search
# per string keeps the check off the per-character Python path (the gateway checks every event).
_BIDI = "\u202a-\u202e\u2066-\u2069"
_ONE_LINE_BAD = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_MULTILINE_BAD = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
# Each field's (limit, characters it may not hold), looked up once per string (``check_string`` is the rule).
_RULES: Mapping[str, tuple[int, re.Pattern[str]]] = {
    **{field: (limit, _ONE_LINE_BAD) for field, limit in LINE_LIMITS.items()},
    **{field: (limit, _MULTILINE_BAD) for field, limit in MULTILINE_LIMITS.items()},
}
_DEFAULT_RULE = (OTHER_LIMIT, _ONE_LINE_BAD)
# Decoded values that hold no string: skipped without the slower checks below.
_LEAVES = frozenset({type(None), bool, int, float, bytes, dt.date, dt.datetime})


def max_length(field: str) -> int:
    """The most characters the field may hold."""
    return MULTILINE_LIMITS.get(field) or LINE_LIMITS.get(field) or OTHER_LIMIT


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name.lower()})" if name else "")


def check_string(value: str, field: str, path: str) -> None:
    """One string, named ``field`` in the schema, at ``path`` in the data.

    Raises:
        SchemaInvalid: with ``field=path``, saying which character or how long.
    """
    limit = max_length(field)
    if len(value) > limit:
        raise SchemaInvalid(f"field {path!r} is {len(value)} characters long; at most {limit} are allowed", field=path)
    multiline = field in MULTILINE_LIMITS
    found = (_MULTILINE_BAD if multiline else _ONE_LINE_BAD).search(value)
    if found is None:
        return
    char = found.group()
    if char in BIDI_CONTROLS:
        raise SchemaInvalid(
            f"field {path!r} holds the bidirectional control {_describe(char)}, which can disguise "
            "what the text says; remove it",
            field=path,
        )
    allowed = "tab and newline are the only control characters allowed" if multiline else "it is one line"
    raise SchemaInvalid(
        f"field {path!r} holds the control character {_describe(char)}: {allowed}; remove it", field=path
    )


def check_text(data: Mapping[str, Any], path: str = "") -> None:
    """Every string in decoded event data (nested records and lists included).

    Raises:
        SchemaInvalid: the first string that breaks a rule, naming its path (``victim.name``).
    """
    for key, value in data.items():
        field = str(key)
        if type(value) is str and _fits(value, field):
            continue  # the common case, without building the field's path
        _check_value(value, field, f"{path}.{field}" if path else field)


def _fits(value: str, field: str) -> bool:
    limit, bad = _RULES.get(field, _DEFAULT_RULE)
    return len(value) <= limit and bad.search(value) is None


def _check_value(value: Any, field: str, path: str) -> None:
    if type(value) in _LEAVES:
        return
    if isinstance(value, str):
        check_string(value, field, path)
    elif type(value) is dict or isinstance(value, Mapping):  # a decoded record is a dict: no ABC check
        check_text(value, path)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if type(item) is str and _fits(item, field):
                continue
            _check_value(item, field, f"{path}[{index}]")
