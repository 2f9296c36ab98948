"""The pre-authentication encoding (PAE) that signatures cover.

DSSE signs ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` so that no
two different messages share signed bytes. Jigsaw does the same over every
envelope field except the signature, with binary lengths::

    PAE = LEN(tag) tag  LEN(f1) f1  LEN(f2) f2  ...  LEN(f10) f10

where ``LEN`` is the byte length as an unsigned 64-bit big-endian integer,
``tag`` is ``b"jigsaw.envelope.v1"`` (a new version of this encoding gets a new
tag), and the fields, in this order, are:

1. ``event_id`` (UTF-8)
2. ``event_type`` (UTF-8)
3. ``schema_fingerprint`` (the 8 raw bytes)
4. ``source`` (UTF-8)
5. ``key_id`` (UTF-8)
6. ``occurred_at`` (milliseconds since the Unix epoch, signed 64-bit big-endian)
7. ``issued_at`` (the same)
8. ``lawful_basis`` (UTF-8)
9. ``consent`` (UTF-8, the enum symbol)
10. ``payload`` (the raw Avro bytes)

Every field is length-prefixed, so moving bytes between neighbouring fields
changes the encoding; the tag fixes the field list and its meaning.
"""

from __future__ import annotations

import struct

from broker.envelope.model import Envelope, to_millis

__all__ = ["PAE_TAG", "pre_auth_encoding"]

PAE_TAG = b"jigsaw.envelope.v1"

_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")


def pre_auth_encoding(env: Envelope) -> bytes:
    """The exact bytes an envelope's signature covers."""
    fields = (
        PAE_TAG,
        env.event_id.encode("utf-8"),
        env.event_type.encode("utf-8"),
        env.schema_fingerprint,
        env.source.encode("utf-8"),
        env.key_id.encode("utf-8"),
        _I64.pack(to_millis(env.occurred_at)),
        _I64.pack(to_millis(env.issued_at)),
        env.lawful_basis.encode("utf-8"),
        env.consent.encode("utf-8"),
        env.payload,
    )
    return b"".join(_U64.pack(len(f)) + f for f in fields)
