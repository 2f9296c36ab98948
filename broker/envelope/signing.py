"""Ed25519 signatures over the pre-authentication encoding (pure functions)."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from broker.envelope.canonical import pre_auth_encoding
from broker.envelope.model import Envelope

__all__ = ["SIGNATURE_SIZE", "sign", "signature_valid"]

SIGNATURE_SIZE = 64


def sign(env: Envelope, private_key: Ed25519PrivateKey) -> Envelope:
    """A copy of ``env`` carrying an Ed25519 signature over its PAE (Ed25519 is deterministic)."""
    return env.with_signature(private_key.sign(pre_auth_encoding(env)))


def signature_valid(env: Envelope, public_key: Ed25519PublicKey) -> bool:
    """True when ``env.signature`` is ``public_key``'s signature over ``env``'s PAE."""
    if len(env.signature) != SIGNATURE_SIZE:
        return False
    try:
        public_key.verify(env.signature, pre_auth_encoding(env))
    except InvalidSignature:
        return False
    return True
