"""The shared submission check: every refusal code, and what an accepted event looks like."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from broker.client import build_envelope
from broker.envelope import Envelope, encode_envelope, sign
from broker.envelope.testing import SAMPLE_ORGS, make_keys, publisher_for, sample_data
from broker.errors import (
    InvalidNhsNumber,
    KeyRevoked,
    NotPermitted,
    Refusal,
    SchemaInvalid,
    SignatureInvalid,
    UnknownKey,
    UnknownOrganisation,
)
from broker.freetext import max_length
from broker.permissions import may_publish
from broker.schemas import default_catalogue
from broker.validation import subject_key, validate, verify

NOW = dt.datetime(2022, 1, 2, 22, 0, tzinfo=dt.UTC)
KEYS = make_keys()


def _env(event_type: str = "police.domestic_abuse_incident", data: dict[str, Any] | None = None, **kw: Any) -> Envelope:
    source = kw.pop("source", publisher_for(event_type))
    key = KEYS.signing[kw.pop("signed_by", source)]
    return build_envelope(
        event_type,
        data if data is not None else sample_data(event_type),
        source=source,
        key=key,
        occurred_at=kw.pop("occurred_at", NOW - dt.timedelta(hours=1)),
        issued_at=kw.pop("issued_at", NOW),
        **kw,
    )


def _check(envelope: Envelope | bytes, publisher_of: Any = lambda _id: None, keys: Any = None) -> Any:
    return validate(envelope, keys=keys or KEYS.registry, now=NOW, publisher_of=publisher_of)


@pytest.mark.parametrize("event_type", default_catalogue().event_types)
def test_each_sample_is_accepted_from_a_permitted_publisher(event_type: str) -> None:
    """A well-formed event of each type, signed by a permitted publisher, is accepted."""
    original = "00000000-0000-4000-8000-000000000000"
    event = _check(
        encode_envelope(_env(event_type)),
        publisher_of=lambda i: publisher_for(event_type) if i == original else None,
    )
    assert event.event_type == event_type and event.source == publisher_for(event_type)


def test_accepted_event_carries_decoded_data() -> None:
    """The Event has the envelope's fields and the payload decoded (dates as date objects)."""
    event = _check(_env())
    assert event.data["victim"]["date_of_birth"] == dt.date(1994, 5, 1)
    assert event.lawful_basis == "DPA2018-S8P4" and event.occurred_at == NOW - dt.timedelta(hours=1)
    assert subject_key(event) == event.data["victim"]["nhs_number"]  # an incident is keyed by its victim


def test_forged_signature_is_signature_invalid() -> None:
    """Random signature bytes are refused."""
    with pytest.raises(SignatureInvalid):
        _check(_env().with_signature(bytes(64)))


def test_key_of_another_org_is_signature_invalid() -> None:
    """An envelope whose key belongs to another organisation is refused, naming both."""
    with pytest.raises(SignatureInvalid, match="belongs to GP-B83001, not to the source POLICE-WYP"):
        _check(_env(signed_by="GP-B83001"))


def test_unknown_key_is_refused() -> None:
    """A key id that is not registered is unknown_key."""
    env = _env()
    forged = sign(dataclasses.replace(env, key_id="POLICE-WYP.ffffffffffff"), KEYS.signing["POLICE-WYP"].private_key)
    with pytest.raises(UnknownKey):
        _check(forged)


def test_revoked_key_is_refused_but_history_stays_valid() -> None:
    """A key revoked before issued_at is key_revoked; an event it signed and we received before revocation verifies."""
    record = KEYS.records["POLICE-WYP"]
    registry = KEYS.registry.with_records(dataclasses.replace(record, revoked_at=NOW - dt.timedelta(minutes=1)))
    with pytest.raises(KeyRevoked):
        _check(_env(), keys=registry)
    earlier = _env(issued_at=NOW - dt.timedelta(minutes=2), occurred_at=NOW - dt.timedelta(hours=1))
    received = NOW - dt.timedelta(seconds=90)  # replay judges it at its record's timestamp, before the revocation
    accepted = validate(earlier, keys=registry, now=received, publisher_of=lambda _id: None)
    assert accepted.event_type == "police.domestic_abuse_incident"


def test_backdated_signature_after_revocation_is_refused() -> None:
    """A stolen key revoked a minute ago cannot sign an event back-dated to before its revocation."""
    record = KEYS.records["POLICE-WYP"]
    registry = KEYS.registry.with_records(dataclasses.replace(record, revoked_at=NOW - dt.timedelta(minutes=1)))
    backdated = _env(issued_at=NOW - dt.timedelta(hours=2), occurred_at=NOW - dt.timedelta(hours=3))
    with pytest.raises(KeyRevoked, match="was revoked at"):
        _check(backdated, keys=registry)


def test_key_not_yet_valid_is_unknown_key() -> None:
    """An envelope issued before its key's valid_from is refused."""
    record = KEYS.records["POLICE-WYP"]
    registry = KEYS.registry.with_records(dataclasses.replace(record, valid_from=NOW + dt.timedelta(minutes=1)))
    with pytest.raises(UnknownKey, match="not valid before"):
        _check(_env(), keys=registry)


def test_every_single_bit_flip_is_refused() -> None:
    """Flipping any one bit of a valid envelope's bytes is refused with a Refusal."""
    data = encode_envelope(_env())
    for index in range(len(data)):
        for bit in range(8):
            mutated = bytearray(data)
            mutated[index] ^= 1 << bit
            with pytest.raises(Refusal):
                _check(bytes(mutated))


def test_wrong_publisher_kind_is_not_permitted() -> None:
    """A GP practice may not publish a police incident."""
    with pytest.raises(NotPermitted, match="gp_practice organisation and may not publish police"):
        _check(_env(source="GP-B83001"))


@pytest.mark.parametrize(
    ("kind_org", "event_type", "allowed"),
    [
        ("police", "police.domestic_abuse_incident", True),
        ("gp_practice", "identity.sensitive_record", True),
        ("gp_practice", "identity.same_person", False),
        ("childrens_social_care", "identity.same_person", True),
        ("school", "link.professional_assigned", True),
        ("school", "challenge.raised", True),
        ("adult_services", "adult.concern_about_parent", True),
        ("partnership", "directory.organisation", True),
        ("police", "directory.organisation", False),
        ("marac", "csc.child_protection_plan", False),
        ("health_visiting", "gp.registration", False),
    ],
)
def test_permission_table(kind_org: str, event_type: str, allowed: bool) -> None:
    """The publish-permission table from scenarios.md."""
    assert may_publish(kind_org, event_type) is allowed


def test_retraction_only_by_the_original_publisher() -> None:
    """record.retracted is refused from anyone but the original's publisher, and for unknown originals."""
    data = sample_data("record.retracted")
    env = _env("record.retracted", data, source="POLICE-WYP")
    assert _check(env, publisher_of=lambda _i: "POLICE-WYP").event_type == "record.retracted"
    with pytest.raises(NotPermitted, match="another organisation"):
        _check(env, publisher_of=lambda _i: "GP-B83001")
    with pytest.raises(NotPermitted, match="no accepted event"):
        _check(env, publisher_of=lambda _i: None)


def test_invalid_nhs_number_is_refused_also_inside_lists() -> None:
    """A bad check digit at the top level or inside a list of people is invalid_nhs_number."""
    data = sample_data("police.domestic_abuse_incident")
    data["children_in_household"][1] = {"nhs_number": "9990000019"}
    with pytest.raises(InvalidNhsNumber, match=r"children_in_household\[1\].nhs_number"):
        _check(_env(data=data))
    data = sample_data("police.domestic_abuse_incident")
    data["victim"] = {"nhs_number": "1234567890"}
    with pytest.raises(InvalidNhsNumber, match=r"victim\.nhs_number"):
        _check(_env(data=data))
    members = sample_data("csc.household_composition")
    members["members"][0]["person"]["nhs_number"] = "9990000010"
    with pytest.raises(InvalidNhsNumber, match=r"members\[0\].person.nhs_number"):
        _check(_env("csc.household_composition", members))


def test_nhs_number_with_spaces_is_accepted_and_normalised() -> None:
    """Spaces in an NHS number are stripped before the check and in the decoded event."""
    data = sample_data("gp.registration")
    data["person"] = {"nhs_number": "999 291 4173"}
    schema = default_catalogue().for_type("gp.registration")
    from broker.codec import encode

    record = {
        **sample_data("gp.registration"),
        "person": {"nhs_number": "999 291 4173", "local_id": None, "name": None, "date_of_birth": None},
    }
    record["effective_date"] = dt.date(2015, 1, 1)
    env = dataclasses.replace(_env("gp.registration", data), payload=encode(schema, record))
    env = sign(env, KEYS.signing["GP-B83001"].private_key)
    assert _check(env).data["person"]["nhs_number"] == "9992914173"


def test_person_without_any_identifier_is_schema_invalid() -> None:
    """A PersonRef with neither NHS number nor local id is refused."""
    data = sample_data("gp.registration")
    data["person"] = {"name": "Nobody Known"}
    with pytest.raises(SchemaInvalid, match="needs an nhs_number or a local_id"):
        _check(_env("gp.registration", data))


def test_missing_required_field_is_schema_invalid_at_build_time() -> None:
    """Building an event without a required field fails naming the field."""
    data = sample_data("gp.registration")
    del data["practice"]
    with pytest.raises(SchemaInvalid, match="missing required field 'practice'"):
        _env("gp.registration", data)


def test_payload_of_another_schema_is_schema_invalid() -> None:
    """A payload that does not decode under its fingerprint's schema is refused."""
    env = _env()
    other = _env("gp.registration", source="POLICE-WYP", signed_by="POLICE-WYP")
    forged = sign(dataclasses.replace(env, payload=other.payload), KEYS.signing["POLICE-WYP"].private_key)
    with pytest.raises(SchemaInvalid):
        _check(forged)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"issued_at": NOW + dt.timedelta(hours=1)}, "in the future"),
        ({"issued_at": NOW - dt.timedelta(days=3)}, "old; sign it again"),
        ({"occurred_at": NOW + dt.timedelta(hours=1)}, "occurred_at is after issued_at"),
        ({"occurred_at": dt.datetime(1850, 1, 1, tzinfo=dt.UTC)}, "before 1900"),
        ({"event_id": "not-a-uuid"}, "UUID"),
        ({"event_id": "6F1C2D1E-9B7A-4C51-8A0E-3F2B9D4C5E61"}, "UUID"),
        ({"event_type": "police.unknown"}, "unknown event type"),
    ],
)
def test_insane_envelope_fields_are_schema_invalid(change: dict[str, Any], message: str) -> None:
    """Times out of range, malformed ids and unknown types are refused."""
    kw = {
        "issued_at": change.get("issued_at", NOW),
        "occurred_at": change.get("occurred_at", NOW - dt.timedelta(hours=1)),
    }
    env = _env(**kw)
    env = sign(
        dataclasses.replace(env, **{k: v for k, v in change.items() if k not in kw}),
        KEYS.signing["POLICE-WYP"].private_key,
    )
    with pytest.raises(SchemaInvalid, match=message):
        _check(env)


def test_absurd_payload_dates_and_levels_are_schema_invalid() -> None:
    """A date of birth in the future, a date before 1900 or a challenge level of 5 is refused."""
    data = sample_data("gp.registration")
    data["person"]["date_of_birth"] = "2030-01-01"
    with pytest.raises(SchemaInvalid, match="date_of_birth' is in the future"):
        _check(_env("gp.registration", data))
    data = sample_data("gp.registration")
    data["effective_date"] = "1066-10-14"
    with pytest.raises(SchemaInvalid, match="not plausible"):
        _check(_env("gp.registration", data))
    with pytest.raises(SchemaInvalid, match="1 to 4"):
        _check(_env("challenge.raised", {**sample_data("challenge.raised"), "level": 5}))


def test_an_implausible_date_inside_a_list_of_people_is_named_by_its_path() -> None:
    """A child's date of birth before 1900, in a list of children, is refused naming that child's field."""
    data = sample_data("csc.strategy_meeting")
    _check(_env("csc.strategy_meeting", data))
    data["children"][0]["date_of_birth"] = "1066-10-14"
    with pytest.raises(SchemaInvalid, match="not plausible") as caught:
        _check(_env("csc.strategy_meeting", data))
    assert caught.value.evidence["field"] == "children[0].date_of_birth"


def test_refusals_carry_event_id_and_source_evidence() -> None:
    """A refusal after decoding names the event id and source for the rejection record."""
    env = _env(signed_by="GP-B83001")
    with pytest.raises(SignatureInvalid) as caught:
        _check(env)
    assert caught.value.evidence["event_id"] == env.event_id
    assert caught.value.evidence["source"] == "POLICE-WYP"


def test_verify_returns_the_key_and_kind() -> None:
    """verify() also returns the key used and the publisher's kind (the gateway's topic)."""
    accepted = verify(_env(), keys=KEYS.registry, now=NOW, publisher_of=lambda _i: None)
    assert accepted.kind == "police" and accepted.key.org_id == "POLICE-WYP"


# -- who may assign, which organisations an event may name, what free text may hold ----------

DIRECTORY = {**SAMPLE_ORGS, "SCHOOL-108700": "school"}


def _assignment(source: str, org: str, role: str) -> Envelope:
    data = {**sample_data("link.professional_assigned"), "org": org, "role": role}
    return _env("link.professional_assigned", data, source=source)


def _checked(envelope: Envelope, org_kind: Any = DIRECTORY.get) -> Any:
    return validate(envelope, keys=KEYS.registry, now=NOW, publisher_of=lambda _i: None, org_kind=org_kind)


@pytest.mark.parametrize(
    ("source", "org", "role"),
    [
        ("HV-BRADFORD-NORTH", "HV-BRADFORD-NORTH", "health_visitor"),  # the assigned organisation itself
        ("CSC-BRADFORD", "SCHOOL-107300", "school"),  # a children's social care org, for anyone
        ("CSC-BRADFORD", "CSC-BRADFORD", "social_worker"),
        ("POLICE-WYP", "POLICE-WYP", "other"),  # any kind may be "other"
    ],
)
def test_an_assignment_from_the_assigned_org_or_a_csc_is_accepted(source: str, org: str, role: str) -> None:
    """link.professional_assigned is open to the assigned organisation itself and to children's social care."""
    assert _checked(_assignment(source, org, role)).data["org"] == org


def test_an_organisation_may_not_assign_another_one() -> None:
    """The police linking a child to a school is not_permitted (scenarios.md: which kinds may publish what)."""
    with pytest.raises(NotPermitted, match="only the assigned organisation itself or a children's social care"):
        _checked(_assignment("POLICE-WYP", "SCHOOL-108700", "school"))


def test_a_school_may_not_make_itself_a_childs_social_worker() -> None:
    """A role its kind cannot hold is unknown_organisation, naming the field and the kind it needs."""
    with pytest.raises(UnknownOrganisation, match="the role social_worker needs a children's social care") as caught:
        _checked(_assignment("SCHOOL-107300", "SCHOOL-107300", "social_worker"))
    assert caught.value.evidence["field"] == "org"


def test_the_publisher_rule_is_checked_before_the_directory() -> None:
    """An assignment of an unknown organisation by someone else is not_permitted, not unknown_organisation."""
    with pytest.raises(NotPermitted):
        _checked(_assignment("POLICE-WYP", "SCHOOL-000000", "school"))


@pytest.mark.parametrize(
    ("event_type", "field", "value", "message"),
    [
        ("gp.registration", "practice", "GP-NOWHERE", "not in the directory"),
        ("gp.registration", "practice", "SCHOOL-107300", "the field practice needs a GP practice"),
        ("midwifery.pregnancy_booked", "midwifery_service", "GP-B83001", "needs a midwifery service"),
        ("csc.household_composition", "school", "SCHOOL-106800", "not in the directory"),
        ("csc.household_composition", "health_visiting", "SCHOOL-107300", "needs a health visiting service"),
        ("midwifery.birth_notified", "health_visiting", "HV-NOWHERE", "not in the directory"),
        ("challenge.raised", "directed_to", "CSC-NOWHERE", "not in the directory"),
    ],
)
def test_every_org_id_must_name_a_directory_org_of_the_right_kind(
    event_type: str, field: str, value: str, message: str
) -> None:
    """An OrgId field naming an unknown organisation, or one of the wrong kind, is unknown_organisation."""
    data = {**sample_data(event_type), field: value}
    with pytest.raises(UnknownOrganisation, match=message) as caught:
        _checked(_env(event_type, data))
    assert caught.value.code == "unknown_organisation" and caught.value.evidence["field"] == field


def test_null_org_ids_and_any_kind_for_directed_to_are_accepted() -> None:
    """A null school is "not known", and a challenge may be directed to an organisation of any kind."""
    data = {**sample_data("csc.household_composition"), "school": None, "health_visiting": None}
    assert _checked(_env("csc.household_composition", data)).data["school"] is None
    challenge = {**sample_data("challenge.raised"), "directed_to": "GP-B83001"}
    assert _checked(_env("challenge.raised", challenge)).data["directed_to"] == "GP-B83001"


@pytest.mark.parametrize(
    ("where", "bad"),
    [
        ("summary", "Refuge\x00 address"),
        ("summary", "colour \x1b[31mred"),
        ("summary", "line one\r\nline two"),
        ("summary", "12 Secret Lane \u202eenal terceS"),
        ("summary", "an isolate \u2066here\u2069"),
        ("victim.name", "Mother\n1"),
        ("children_in_household[1].local_id", "POLICE-WYP:C\t0"),
    ],
)
def test_control_characters_and_bidi_overrides_are_schema_invalid_naming_the_field(where: str, bad: str) -> None:
    """NUL, ESC, CR, bidi overrides and isolates anywhere, and tab or newline outside free text, are refused."""
    data = sample_data("police.domestic_abuse_incident")
    if where == "summary":
        data = {**data, "summary": bad}
    elif where == "victim.name":
        data = {**data, "victim": {**data["victim"], "name": bad}}
    else:
        sibling = {**data["children_in_household"][1], "local_id": bad}
        data = {**data, "children_in_household": [data["children_in_household"][0], sibling]}
    with pytest.raises(SchemaInvalid) as caught:
        _checked(_env(data=data))
    assert caught.value.evidence["field"] == where and repr(where) in caught.value.message


def test_tab_and_newline_are_allowed_in_free_text() -> None:
    """A summary may be laid out with tabs and newlines."""
    data = {**sample_data("police.domestic_abuse_incident"), "summary": "Seen:\n\tmother\n\tchild"}
    assert _checked(_env(data=data)).data["summary"] == "Seen:\n\tmother\n\tchild"


def test_free_text_longer_than_its_documented_limit_is_schema_invalid() -> None:
    """Each free-text field has a maximum length (freetext.max_length); one character more is refused."""
    limit = max_length("summary")
    data = {**sample_data("police.domestic_abuse_incident"), "summary": "x" * limit}
    assert len(_checked(_env(data=data)).data["summary"]) == limit
    with pytest.raises(SchemaInvalid, match=f"at most {limit} are allowed"):
        _checked(_env(data={**data, "summary": "x" * (limit + 1)}))
