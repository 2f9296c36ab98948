"""What a text field may hold (broker/freetext.py): no hidden characters, and a documented length per field."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from broker.errors import SchemaInvalid
from broker.freetext import BIDI_CONTROLS, LINE_LIMITS, MULTILINE_LIMITS, OTHER_LIMIT, check_text, max_length


@pytest.mark.parametrize("char", sorted(BIDI_CONTROLS))
def test_every_bidi_override_and_isolate_is_refused_even_in_free_text(char: str) -> None:
    """U+202A to U+202E and U+2066 to U+2069 can make text display as something it is not."""
    with pytest.raises(SchemaInvalid, match=f"U\\+{ord(char):04X}"):
        check_text({"summary": f"safe{char}text"})


@pytest.mark.parametrize("code", [*range(0x00, 0x09), 0x0B, 0x0C, 0x0D, *range(0x0E, 0x20), 0x7F, 0x85, 0x9B])
def test_control_characters_other_than_tab_and_newline_are_refused_in_free_text(code: int) -> None:
    """C0 controls (CR included), DEL and C1 controls are refused; the message names the character."""
    with pytest.raises(SchemaInvalid, match=f"U\\+{code:04X}") as caught:
        check_text({"outcome": f"before{chr(code)}after"})
    assert caught.value.evidence["field"] == "outcome"


@pytest.mark.parametrize("field", sorted(MULTILINE_LIMITS))
def test_multiline_fields_keep_tabs_and_newlines(field: str) -> None:
    """Summaries, actions, outcomes, reasons and bases may hold tab and newline."""
    check_text({field: "one\n\ttwo"})


@pytest.mark.parametrize("field", [*sorted(LINE_LIMITS), "incident_ref", "practice"])
def test_one_line_fields_refuse_tab_and_newline(field: str) -> None:
    """Names, references, ids and directory details are one line."""
    with pytest.raises(SchemaInvalid, match="it is one line"):
        check_text({field: "one\ntwo"})


def test_limits_are_per_field_and_nested_paths_are_named() -> None:
    """Each field has its own limit; a too-long string inside a list of records is named by its path."""
    assert max_length("summary") == MULTILINE_LIMITS["summary"] and max_length("name") == LINE_LIMITS["name"]
    assert max_length("plan_ref") == OTHER_LIMIT
    check_text({"members": [{"person": {"name": "n" * LINE_LIMITS["name"]}}]})
    with pytest.raises(SchemaInvalid, match=re.escape("'members[1].person.name' is 201 characters")) as caught:
        check_text({"members": [{}, {"person": {"name": "n" * (LINE_LIMITS["name"] + 1)}}]})
    assert caught.value.evidence["field"] == "members[1].person.name"


def test_strings_held_directly_in_a_list_are_checked_by_the_list_field() -> None:
    """A list of strings is checked item by item under the list's field: its limit, its characters, its index."""
    check_text({"summary": "ok", "labels": ["a", "b", None, 3]})
    with pytest.raises(SchemaInvalid, match=re.escape("'labels[2]' holds the control character")) as caught:
        check_text({"labels": ["a", "b", "c\td"]})
    assert caught.value.evidence["field"] == "labels[2]"
    with pytest.raises(SchemaInvalid, match=re.escape("'outer.labels[0]' is 101 characters")):
        check_text({"outer": {"labels": ["x" * (OTHER_LIMIT + 1)]}})


def test_ordinary_unicode_is_kept() -> None:
    """Accents, scripts written right to left and emoji are ordinary text, not hidden characters."""
    check_text({"name": "Zoë Ní Bhriain", "summary": "مرحبا — שלום ✓", "basis": "MASH: address & DoB"})


def test_the_documented_limits_are_the_ones_enforced() -> None:
    """schemas/README.md's table of text fields says what freetext.py enforces, field by field."""
    readme = (Path(__file__).resolve().parents[2] / "schemas" / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Text fields") :]
    rows = re.findall(r"^\| (.+?) \| (\d+)[^|]*\| (multi-line|one) \|$", table, re.M)
    assert rows
    for fields, limit, lines in rows:
        for field in re.findall(r"`(\w+)`", fields):
            assert max_length(field) == int(limit), field
            assert (field in MULTILINE_LIMITS) == (lines == "multi-line"), field
    documented = {f for fields, _, _ in rows for f in re.findall(r"`(\w+)`", fields)}
    assert documented >= set(MULTILINE_LIMITS) | set(LINE_LIMITS)
    assert any("every other string" in fields and int(limit) == OTHER_LIMIT for fields, limit, _ in rows)


def test_the_refused_characters_are_exactly_unicode_controls_and_bidi_overrides() -> None:
    """Across the Basic Multilingual Plane, a one-line field refuses category Cc and the bidi set, nothing else."""
    for code in range(0x10000):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF:
            continue  # surrogates are not characters
        refused = unicodedata.category(char) == "Cc" or char in BIDI_CONTROLS
        try:
            check_text({"name": char})
        except SchemaInvalid:
            assert refused, hex(code)
        else:
            assert not refused, hex(code)
