"""Loading the schemas: one per catalogue type, fingerprints, shared types."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from broker.errors import SchemaInvalid
from broker.schemas import SCHEMAS_DIR, default_catalogue, load_catalogue, standalone

CATALOGUE_TYPES = {
    "directory.organisation",
    "gp.registration",
    "midwifery.pregnancy_booked",
    "midwifery.birth_notified",
    "csc.household_composition",
    "link.professional_assigned",
    "identity.same_person",
    "identity.sensitive_record",
    "police.domestic_abuse_incident",
    "csc.child_in_need_plan",
    "csc.child_protection_plan",
    "csc.strategy_meeting",
    "csc.pre_birth_assessment",
    "marac.case_heard",
    "gp.safeguarding_information",
    "midwifery.safeguarding_concern",
    "adult.concern_about_parent",
    "challenge.raised",
    "challenge.resolved",
    "record.retracted",
}


def test_every_catalogue_type_has_a_schema() -> None:
    """There is exactly one current schema per event type in events.md."""
    assert set(default_catalogue().event_types) == CATALOGUE_TYPES


def test_record_names_follow_event_types() -> None:
    """police.domestic_abuse_incident is the record jigsaw.police.domestic_abuse_incident."""
    for event_type in CATALOGUE_TYPES:
        source = default_catalogue().for_type(event_type).source
        assert f"{source['namespace']}.{source['name']}" == f"jigsaw.{event_type}"


def test_person_ref_is_defined_once_and_referenced_by_name() -> None:
    """Schema files reference jigsaw.PersonRef by name; only types/PersonRef.avsc defines it."""
    for path in SCHEMAS_DIR.glob("*.avsc"):
        assert '"name": "PersonRef"' not in path.read_text()
    assert json.loads((SCHEMAS_DIR / "types" / "PersonRef.avsc").read_text())["name"] == "PersonRef"


def test_standalone_inlines_the_first_reference_only() -> None:
    """A type used twice is defined at its first use and named at the second."""
    shared = {"jigsaw.P": {"type": "record", "name": "P", "namespace": "jigsaw", "fields": []}}
    schema = {
        "type": "record",
        "name": "x",
        "fields": [{"name": "a", "type": "jigsaw.P"}, {"name": "b", "type": "jigsaw.P"}],
    }
    out = standalone(schema, shared)
    assert out["fields"][0]["type"]["name"] == "P"
    assert out["fields"][1]["type"] == "jigsaw.P"
    parse_schema(out)


def test_fingerprint_is_crc64_of_the_canonical_form() -> None:
    """The fingerprint is fastavro's CRC-64-AVRO of the Parsing Canonical Form, as 8 bytes."""
    schema = default_catalogue().for_type("gp.registration")
    assert schema.canonical == to_parsing_canonical_form(parse_schema(dict(schema.source)))
    assert schema.fingerprint == bytes.fromhex(fingerprint(schema.canonical, "CRC-64-AVRO"))
    assert len(schema.fingerprint) == 8


def test_fingerprints_are_distinct_and_found() -> None:
    """Every schema is found by its own fingerprint."""
    catalogue = default_catalogue()
    fps = {catalogue.for_type(t).fingerprint for t in CATALOGUE_TYPES}
    assert len(fps) == len(CATALOGUE_TYPES)
    for event_type in CATALOGUE_TYPES:
        assert catalogue.for_fingerprint(catalogue.for_type(event_type).fingerprint).event_type == event_type


def test_unknown_type_and_fingerprint_are_schema_invalid() -> None:
    """Asking for an unknown type or fingerprint raises SchemaInvalid."""
    with pytest.raises(SchemaInvalid, match="unknown event type"):
        default_catalogue().for_type("police.nothing")
    with pytest.raises(SchemaInvalid, match="fingerprint"):
        default_catalogue().for_fingerprint(b"\x00" * 8)


def test_released_v1_is_loaded_and_shares_fingerprints_while_unchanged() -> None:
    """The released v1 tree loads; today it is identical to the current schemas."""
    catalogue = load_catalogue(SCHEMAS_DIR)
    released = catalogue.released["v1"]
    for event_type in CATALOGUE_TYPES:
        assert catalogue.for_fingerprint(released[event_type].fingerprint).event_type == event_type


def test_a_broken_schema_is_a_config_error(tmp_path: Path) -> None:
    """A schema file that does not parse stops loading with ConfigError."""
    from broker.errors import ConfigError

    (tmp_path / "envelope.avsc").write_text(json.dumps({"type": "record", "name": "E", "fields": []}))
    (tmp_path / "x.y.avsc").write_text(
        '{"type": "record", "name": "y", "fields": [{"name": "a", "type": "nope"}]}'
    )
    with pytest.raises(ConfigError, match=r"x\.y\.avsc"):
        load_catalogue(tmp_path)
