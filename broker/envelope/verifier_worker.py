"""A signature-checking worker process: ``python -m broker.envelope.verifier_worker FD``.

It reads requests from the socket whose file descriptor it is given and
answers each in turn. It imports nothing from Jigsaw but this module, holds no
state but a cache of public keys, and never sees anything but public keys,
signatures and the bytes signed (the envelopes' pre-authentication encodings).

Frames (all integers big-endian):

- request: ``u32 count``, ``u32 size``, then ``size`` bytes of items, each
  ``32 bytes public key``, ``64 bytes signature``, ``u32 length``, ``length
  bytes message``;
- answer: ``count`` bytes, 1 where the signature is valid, 0 where it is not.

The worker ends when the socket closes.
"""

from __future__ import annotations

import os
import socket
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["answer", "main"]

_COUNT = struct.Struct(">I")
_KEY, _SIGNATURE = 32, 64


def _exactly(sock: socket.socket, size: int) -> bytes | None:
    parts, have = [], 0
    while have < size:
        part = sock.recv(min(size - have, 1 << 20))
        if not part:
            return None
        parts.append(part)
        have += len(part)
    return b"".join(parts)


def answer(request: bytes, keys: dict[bytes, Ed25519PublicKey]) -> bytes:
    """The answer frame to one request's items (the frame without its count and size)."""
    out = bytearray()
    at = 0
    while at < len(request):
        raw = request[at : at + _KEY]
        signature = request[at + _KEY : at + _KEY + _SIGNATURE]
        (length,) = _COUNT.unpack_from(request, at + _KEY + _SIGNATURE)
        start = at + _KEY + _SIGNATURE + _COUNT.size
        message = request[start : start + length]
        at = start + length
        key = keys.get(raw)
        if key is None:
            if len(keys) >= 1024:
                keys.clear()
            key = keys[raw] = Ed25519PublicKey.from_public_bytes(raw)
        try:
            key.verify(signature, message)
            out.append(1)
        except InvalidSignature:
            out.append(0)
    return bytes(out)


def main(argv: list[str]) -> int:
    """Serve requests on the inherited socket until it closes."""
    sock = socket.socket(fileno=int(argv[1]))
    keys: dict[bytes, Ed25519PublicKey] = {}
    try:
        os.nice(5)  # the gateway's event loop goes first: it feeds this worker
    except OSError:
        pass
    while True:
        head = _exactly(sock, 2 * _COUNT.size)
        if head is None:
            return 0
        _count, size = struct.unpack(">II", head)
        body = _exactly(sock, size)
        if body is None:
            return 0
        sock.sendall(answer(body, keys))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
