"""Signed envelopes: the Avro model, the pre-authentication encoding, Ed25519, the key registry."""

from __future__ import annotations

from broker.envelope.canonical import PAE_TAG, pre_auth_encoding
from broker.envelope.keys import KeyRecord, KeyRegistry, KeyStore, SigningKey, load_signing_key, new_key
from broker.envelope.model import CONSENT_VALUES, Envelope, decode_envelope, encode_envelope, to_millis
from broker.envelope.signing import SIGNATURE_SIZE, sign, signature_valid

__all__ = [
    "CONSENT_VALUES",
    "PAE_TAG",
    "SIGNATURE_SIZE",
    "Envelope",
    "KeyRecord",
    "KeyRegistry",
    "KeyStore",
    "SigningKey",
    "decode_envelope",
    "encode_envelope",
    "load_signing_key",
    "new_key",
    "pre_auth_encoding",
    "sign",
    "signature_valid",
    "to_millis",
]
