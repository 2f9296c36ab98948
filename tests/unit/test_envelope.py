"""The envelope: canonical Avro bytes, the pre-authentication encoding, Ed25519, golden vectors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.client import build_envelope
from broker.envelope import (
    PAE_TAG,
    Envelope,
    decode_envelope,
    encode_envelope,
    new_key,
    pre_auth_encoding,
    sign,
    signature_valid,
)
from broker.errors import SchemaInvalid

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "envelope-v1.json"


def _vector_inputs() -> dict[str, Any]:
    return json.loads(VECTORS.read_text())["inputs"]


def _build_from(inputs: dict[str, Any]) -> Envelope:
    _, key = new_key(
        inputs["org_id"],
        inputs["kind"],
        valid_from=dt.datetime.fromisoformat(inputs["valid_from"]),
        seed=bytes.fromhex(inputs["seed_hex"]),
    )
    return build_envelope(
        inputs["event_type"],
        inputs["data"],
        source=inputs["org_id"],
        key=key,
        occurred_at=dt.datetime.fromisoformat(inputs["occurred_at"]),
        issued_at=dt.datetime.fromisoformat(inputs["issued_at"]),
        event_id=inputs["event_id"],
        lawful_basis=inputs["lawful_basis"],
        consent=inputs["consent"],
    )


def test_golden_vector_pins_payload_pae_signature_and_bytes() -> None:
    """Building the vector's inputs gives exactly the stored payload, PAE, signature and envelope bytes."""
    stored = json.loads(VECTORS.read_text())["expected"]
    env = _build_from(_vector_inputs())
    assert env.key_id == stored["key_id"]
    assert env.schema_fingerprint.hex() == stored["schema_fingerprint_hex"]
    assert env.payload.hex() == stored["payload_hex"]
    assert pre_auth_encoding(env).hex() == stored["pae_hex"]
    assert env.signature.hex() == stored["signature_hex"]
    assert encode_envelope(env).hex() == stored["envelope_hex"]


def test_golden_vector_verifies_independently() -> None:
    """The stored signature verifies over the stored PAE with the stored public key (cryptography only)."""
    stored = json.loads(VECTORS.read_text())["expected"]
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(stored["public_key_hex"]))
    public.verify(bytes.fromhex(stored["signature_hex"]), bytes.fromhex(stored["pae_hex"]))


def test_pae_follows_the_written_definition() -> None:
    """The PAE is tag then ten fields, each prefixed by its length as a big-endian u64."""
    env = _build_from(_vector_inputs())
    ms = lambda t: int(t.timestamp() * 1000)  # noqa: E731 (a tiny local helper reads best inline)
    fields = [
        PAE_TAG,
        env.event_id.encode(),
        env.event_type.encode(),
        env.schema_fingerprint,
        env.source.encode(),
        env.key_id.encode(),
        struct.pack(">q", ms(env.occurred_at)),
        struct.pack(">q", ms(env.issued_at)),
        env.lawful_basis.encode(),
        env.consent.encode(),
        env.payload,
    ]
    assert pre_auth_encoding(env) == b"".join(struct.pack(">Q", len(f)) + f for f in fields)


@pytest.mark.parametrize(
    "change",
    [
        {"event_id": "00000000-0000-4000-8000-000000000001"},
        {"event_type": "police.other"},
        {"schema_fingerprint": b"\x00" * 8},
        {"source": "POLICE-XYZ"},
        {"key_id": "POLICE-WYP.other"},
        {"occurred_at": dt.datetime(2022, 1, 2, 21, 30, 0, 1000, tzinfo=dt.UTC)},
        {"issued_at": dt.datetime(2022, 1, 2, 22, 0, 1, tzinfo=dt.UTC)},
        {"lawful_basis": "DPA2018-S1P18"},
        {"consent": "given"},
        {"payload": b"\x00"},
    ],
)
def test_changing_any_signed_field_breaks_the_signature(change: dict[str, Any]) -> None:
    """Every field except the signature is covered by it."""
    env = _build_from(_vector_inputs())
    _, key = new_key("POLICE-WYP", "police", valid_from=env.issued_at, seed=bytes(range(32)))
    public = key.private_key.public_key()
    assert signature_valid(env, public)
    assert not signature_valid(dataclasses.replace(env, **change), public)


def test_moving_bytes_between_fields_changes_the_pae() -> None:
    """Length prefixes stop 'ab'+'c' and 'a'+'bc' from signing the same bytes."""
    env = _build_from(_vector_inputs())
    a = dataclasses.replace(env, source="POLICE-WY", key_id="P" + env.key_id)
    b = dataclasses.replace(env, source="POLICE-WYP", key_id=env.key_id)
    assert pre_auth_encoding(a) != pre_auth_encoding(b)


def test_signature_of_wrong_length_is_invalid() -> None:
    """A truncated signature is simply invalid (no exception)."""
    env = _build_from(_vector_inputs())
    _, key = new_key("POLICE-WYP", "police", valid_from=env.issued_at, seed=bytes(range(32)))
    assert not signature_valid(env.with_signature(env.signature[:63]), key.private_key.public_key())


def test_envelope_round_trips_and_times_keep_milliseconds() -> None:
    """Encoding then decoding gives the same envelope; times are truncated to milliseconds."""
    env = _build_from(_vector_inputs())
    assert decode_envelope(encode_envelope(env)) == env
    micro = dataclasses.replace(env, issued_at=dt.datetime(2022, 1, 2, 22, 0, 0, 123456, tzinfo=dt.UTC))
    assert micro.issued_at.microsecond == 123000


def test_non_canonical_envelope_bytes_are_refused() -> None:
    """An over-long varint that decodes to the same value is refused (one envelope, one byte string)."""
    data = encode_envelope(_build_from(_vector_inputs()))
    assert data[0] == 72  # event_id length 36, zigzag 72
    padded = bytes([72 | 0x80, 0x00]) + data[1:]
    with pytest.raises(SchemaInvalid, match="canonical"):
        decode_envelope(padded)


def test_sign_is_deterministic() -> None:
    """Ed25519 gives the same signature for the same key and bytes."""
    env = _build_from(_vector_inputs())
    _, key = new_key("POLICE-WYP", "police", valid_from=env.issued_at, seed=bytes(range(32)))
    assert sign(env, key.private_key).signature == env.signature


def test_naive_times_are_refused() -> None:
    """An envelope time without a zone is a programming error."""
    env = _build_from(_vector_inputs())
    with pytest.raises(ValueError, match="timezone-aware"):
        dataclasses.replace(env, issued_at=dt.datetime(2022, 1, 1))
