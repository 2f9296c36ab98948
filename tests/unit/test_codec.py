"""Bounded Avro decoding and the JSON-side converter."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from broker.codec import (
    Limits,
    check_bounds,
    decode,
    decode_payload,
    encode,
    encode_payload,
    from_json,
    jsonable,
)
from broker.envelope.batch import decode_batch, encode_batch
from broker.envelope.testing import sample_data
from broker.errors import SchemaInvalid
from broker.schemas import compile_schema, default_catalogue

CATALOGUE = default_catalogue()
DA = CATALOGUE.for_type("police.domestic_abuse_incident")


def _zigzag(n: int) -> bytes:
    raw = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        byte = raw & 0x7F
        raw >>= 7
        if raw:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


@pytest.mark.parametrize("event_type", CATALOGUE.event_types)
def test_every_sample_round_trips(event_type: str) -> None:
    """Each event type's sample converts from JSON, encodes, and decodes back to the same record."""
    record = from_json(CATALOGUE.for_type(event_type), sample_data(event_type))
    fp, data = encode_payload(CATALOGUE, event_type, record)
    assert decode_payload(CATALOGUE, event_type, fp, data) == record


def test_array_bomb_is_refused_before_allocation() -> None:
    """A few bytes declaring fifty million array items are refused at once, naming the field."""
    schema = compile_schema("bomb", {"type": "array", "items": "null"})
    body = _zigzag(50_000_000)
    started = time.perf_counter()
    with pytest.raises(SchemaInvalid, match="50000000 items"):
        decode(schema, body)
    assert time.perf_counter() - started < 0.1


def test_array_bomb_inside_an_event_names_the_field() -> None:
    """A huge children_present count inside a real event is refused with the field's name."""
    prefix = _zigzag(2) + b"I1" + b"\x02" + _zigzag(10) + b"9990000018" + b"\x00\x00\x00" + b"\x00"
    body = prefix + _zigzag(50_000_000)
    with pytest.raises(SchemaInvalid, match="children_present"):
        decode(DA, body)


def test_map_and_negative_block_counts_are_bounded() -> None:
    """A negative block count with a byte size that overruns the data is refused."""
    schema = compile_schema("m", {"type": "map", "values": "string"})
    with pytest.raises(SchemaInvalid, match="block declares"):
        decode(schema, _zigzag(-3) + _zigzag(1_000_000))
    with pytest.raises(SchemaInvalid, match="over the limit"):
        decode(schema, _zigzag(20_000) + b"\x00" * 40_000, Limits(max_items=10_000))


def test_huge_string_length_is_refused() -> None:
    """A string declaring more bytes than remain, or more than the limit, is refused."""
    schema = compile_schema("s", "string")
    with pytest.raises(SchemaInvalid, match="only 3 remain"):
        decode(schema, _zigzag(1_000_000_000) + b"abc", Limits(max_string=2**40))
    with pytest.raises(SchemaInvalid, match="over the limit"):
        decode(schema, _zigzag(100) + b"a" * 100, Limits(max_string=10))
    with pytest.raises(SchemaInvalid, match="negative length"):
        decode(schema, _zigzag(-5))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "ends inside a number"),
        (b"\xff" * 11, "longer than 10 bytes"),
        (_zigzag(3) + b"\xff\xfe\xfd", "does not decode"),  # invalid UTF-8
    ],
)
def test_malformed_strings_are_schema_invalid(body: bytes, problem: str) -> None:
    """Truncated numbers, over-long varints and invalid UTF-8 become SchemaInvalid."""
    with pytest.raises(SchemaInvalid, match=problem):
        decode(compile_schema("s", "string"), body)


def test_union_enum_boolean_and_int_ranges_are_checked() -> None:
    """A union branch, enum index, boolean byte or int out of range is refused."""
    with pytest.raises(SchemaInvalid, match="union branch 5"):
        decode(compile_schema("u", ["null", "string"]), _zigzag(5))
    with pytest.raises(SchemaInvalid, match="enum index 3"):
        decode(compile_schema("e", {"type": "enum", "name": "E", "symbols": ["a", "b"]}), _zigzag(3))
    with pytest.raises(SchemaInvalid, match="not a boolean"):
        decode(compile_schema("b", "boolean"), b"\x02")
    with pytest.raises(SchemaInvalid, match="does not fit in an Avro int"):
        decode(compile_schema("i", "int"), _zigzag(2**40))


def test_trailing_bytes_are_refused() -> None:
    """Bytes left over after the record are refused (one message, one meaning)."""
    data = encode(DA, from_json(DA, sample_data("police.domestic_abuse_incident")))
    check_bounds(DA, data)
    with pytest.raises(SchemaInvalid, match="left over"):
        decode(DA, data + b"\x00")


def test_every_truncation_of_a_payload_is_schema_invalid() -> None:
    """Cutting a valid payload anywhere gives SchemaInvalid, never another exception."""
    data = encode(DA, from_json(DA, sample_data("police.domestic_abuse_incident")))
    for cut in range(len(data)):
        with pytest.raises(SchemaInvalid):
            decode(DA, data[:cut])


def test_fingerprint_of_another_type_is_refused() -> None:
    """A payload claiming another type's fingerprint is refused."""
    fp = CATALOGUE.for_type("gp.registration").fingerprint
    with pytest.raises(SchemaInvalid, match=r"is the schema of gp\.registration"):
        decode_payload(CATALOGUE, "police.domestic_abuse_incident", fp, b"")


def test_from_json_fills_optional_person_fields_and_strips_nhs_spaces() -> None:
    """A PersonRef missing optional keys gets nulls; spaces leave NHS numbers; dates parse."""
    data = dict(sample_data("gp.registration"))
    data["person"] = {"nhs_number": "999 291 4173"}
    record = from_json(CATALOGUE.for_type("gp.registration"), data)
    assert record["person"] == {
        "nhs_number": "9992914173",
        "local_id": None,
        "name": None,
        "date_of_birth": None,
    }
    assert record["effective_date"] == dt.date(2015, 1, 1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"victim": None}, "field 'victim' must be an object"),
        ({"risk_level": "low"}, "field 'risk_level' must be one of standard, medium, high"),
        ({"marac_referral": "yes"}, "field 'marac_referral' must be true or false"),
        ({"children_present": [{"nhs_number": 9990000018}]}, r"field 'children_present\[0\].nhs_number'"),
        ({"children_present": "all"}, "must be a list"),
        ({"unexpected": 1}, "field 'unexpected' is not in the schema"),
    ],
)
def test_from_json_names_the_wrong_field(change: dict[str, object], message: str) -> None:
    """A wrong type or unknown field is SchemaInvalid naming the field."""
    data = {**sample_data("police.domestic_abuse_incident"), **change}
    with pytest.raises(SchemaInvalid, match=message):
        from_json(DA, data)


def test_from_json_missing_required_field() -> None:
    """A missing required field is SchemaInvalid naming it."""
    data = sample_data("police.domestic_abuse_incident")
    del data["incident_ref"]
    with pytest.raises(SchemaInvalid, match="missing required field 'incident_ref'"):
        from_json(DA, data)


def test_from_json_bad_dates() -> None:
    """A date that is not YYYY-MM-DD is SchemaInvalid naming the field."""
    schema = CATALOGUE.for_type("challenge.raised")
    with pytest.raises(SchemaInvalid, match="field 'respond_by' must be a date"):
        from_json(schema, {**sample_data("challenge.raised"), "respond_by": "next week"})


def test_jsonable_turns_dates_into_iso_strings() -> None:
    """Decoded dates and times come back as ISO strings."""
    when = dt.datetime(2022, 1, 2, 22, tzinfo=dt.UTC)
    assert jsonable({"d": dt.date(2022, 1, 2), "t": [when]}) == {
        "d": "2022-01-02",
        "t": ["2022-01-02T22:00:00Z"],
    }


def test_batch_framing_round_trips_and_is_bounded() -> None:
    """A batch is an Avro array of bytes; too many items are refused before decoding."""
    assert decode_batch(encode_batch([b"a", b"bc"]), max_items=5, max_item_bytes=10) == [b"a", b"bc"]
    with pytest.raises(SchemaInvalid, match="over the limit"):
        decode_batch(encode_batch([b"a"] * 6), max_items=5, max_item_bytes=10)
    with pytest.raises(SchemaInvalid):
        decode_batch(_zigzag(40_000_000), max_items=500, max_item_bytes=10)


def _fastavro(schema_json: object, data: bytes) -> object:
    import io

    from fastavro import parse_schema, schemaless_reader

    return schemaless_reader(io.BytesIO(data), parse_schema(schema_json))


def _same(a: object, b: object) -> bool:
    """Equal values of the same types all the way down (``True == 1`` does not count)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dt.datetime):
        assert isinstance(b, dt.datetime)
        return a == b and a.tzinfo == b.tzinfo
    return a == b


@pytest.mark.parametrize("event_type", CATALOGUE.event_types)
def test_the_one_pass_reader_gives_what_fastavro_gives(event_type: str) -> None:
    """Every event type's samples read to exactly fastavro's value: same types, keys in the same order."""
    schema = CATALOGUE.for_type(event_type)
    for index in range(5):
        data = encode(schema, from_json(schema, sample_data(event_type, index)))
        assert _same(decode(schema, data), _fastavro(schema.source, data))


def test_the_one_pass_reader_takes_every_avro_type_as_fastavro_does() -> None:
    """Floats, doubles, maps, fixed, bytes, booleans, longs and UTC timestamps read as fastavro reads them."""
    source = {
        "type": "record",
        "name": "AllTypes",
        "fields": [
            {"name": "f", "type": "float"},
            {"name": "d", "type": "double"},
            {"name": "m", "type": {"type": "map", "values": ["null", "long"]}},
            {"name": "fx", "type": {"type": "fixed", "name": "Three", "size": 3}},
            {"name": "b", "type": "bytes"},
            {"name": "t", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "day", "type": {"type": "int", "logicalType": "date"}},
            {"name": "yes", "type": "boolean"},
            {"name": "no", "type": "boolean"},
            {"name": "many", "type": {"type": "array", "items": ["string", "int"]}},
        ],
    }
    schema = compile_schema("all", source)
    record = {
        "f": 1.5,
        "d": -2.25,
        "m": {"a": 1, "b": None, "c": -(2**40)},
        "fx": b"abc",
        "b": b"\x00\xff",
        "t": dt.datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=dt.UTC),
        "day": dt.date(1969, 12, 31),
        "yes": True,
        "no": False,
        "many": ["x", 7, "é"],
    }
    data = encode(schema, record)
    value = decode(schema, data)
    assert _same(value, _fastavro(source, data))
    assert _same(value, record)


def test_a_logical_type_the_reader_does_not_take_is_left_to_fastavro() -> None:
    """A uuid string is checked by the one pass but decoded by fastavro, which makes it a UUID."""
    import uuid

    uuid_type = {"type": "string", "logicalType": "uuid"}
    source = {"type": "record", "name": "U", "fields": [{"name": "id", "type": uuid_type}]}
    schema = compile_schema("u", source)
    data = _zigzag(36) + b"12345678-1234-5678-1234-567812345678"
    assert decode(schema, data) == {"id": uuid.UUID("12345678-1234-5678-1234-567812345678")}
    with pytest.raises(SchemaInvalid, match="only 4 remain"):
        decode(schema, _zigzag(36) + b"1234")


def test_a_misfit_later_in_the_bytes_is_named_before_invalid_text_earlier() -> None:
    """Invalid UTF-8 (or a date out of range) is refused only once the whole message fits the schema, so a
    length that overruns the data later on is what the refusal names, as when fastavro decoded afterwards."""
    source = {
        "type": "record",
        "name": "Two",
        "fields": [{"name": "first", "type": "string"}, {"name": "second", "type": "string"}],
    }
    schema = compile_schema("two", source)
    bad_text = _zigzag(2) + b"\xff\xfe"
    with pytest.raises(SchemaInvalid, match="field 'second': needs 9 bytes but only 1 remain"):
        decode(schema, bad_text + _zigzag(9) + b"a")
    with pytest.raises(SchemaInvalid, match="two does not decode: 'utf-8' codec can't decode byte 0xff"):
        decode(schema, bad_text + _zigzag(1) + b"a")
    day = compile_schema("day", {"type": "int", "logicalType": "date"})
    with pytest.raises(SchemaInvalid, match="day does not decode"):
        decode(day, _zigzag(2**31 - 1))


def test_schemas_differing_only_in_a_logical_type_read_their_own_values() -> None:
    """Their Parsing Canonical Forms are the same (it leaves logical types out), their values are not."""
    plain = compile_schema("plain", "int")
    day = compile_schema("day", {"type": "int", "logicalType": "date"})
    assert plain.canonical == day.canonical
    assert decode(plain, _zigzag(1)) == 1
    assert decode(day, _zigzag(1)) == dt.date(1970, 1, 2)
    assert decode(plain, _zigzag(1)) == 1


def test_whatever_the_one_pass_reader_accepts_fastavro_reads_to_the_same_value() -> None:
    """Thousands of mutated payloads (bytes changed, cut, inserted): each one the reader accepts, fastavro reads
    to exactly the same value; the mutations give both accepted and refused payloads."""
    import random

    rng = random.Random(20261202)
    accepted = refused = 0
    for event_type in CATALOGUE.event_types:
        schema = CATALOGUE.for_type(event_type)
        data = encode(schema, from_json(schema, sample_data(event_type)))
        for _ in range(60):
            body = bytearray(data)
            how = rng.randrange(3)
            if how == 0:
                body[rng.randrange(len(body))] = rng.randrange(256)
            elif how == 1:
                body.insert(rng.randrange(len(body) + 1), rng.randrange(256))
            else:
                del body[rng.randrange(len(body))]
            try:
                value = decode(schema, bytes(body))
            except SchemaInvalid:
                refused += 1
                continue
            accepted += 1
            assert _same(value, _fastavro(schema.source, bytes(body))), (event_type, bytes(body))
    assert accepted > 100 and refused > 100
