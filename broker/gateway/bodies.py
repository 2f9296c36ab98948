"""Reading request bodies under a limit, whether or not they declare their length.

A body whose ``Content-Length`` is over the limit is refused before a byte is
read; a chunked (or lying) body is read piece by piece and refused as soon as
it passes the limit, so the gateway never holds more than ``limit`` bytes of
one request.
"""

from __future__ import annotations

from aiohttp import web

from broker.errors import PayloadTooLarge

__all__ = ["read_limited"]


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The whole body, or ``PayloadTooLarge`` once it is known to exceed ``limit`` bytes."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(
            f"the body is {declared} bytes, over the limit of {limit}; send smaller batches",
            body_bytes=declared,
        )
    received = bytearray()
    async for chunk in request.content.iter_any():
        received += chunk
        if len(received) > limit:
            raise PayloadTooLarge(
                f"the body is more than {limit} bytes (the limit); send smaller batches",
                body_bytes=len(received),
            )
    return bytes(received)
