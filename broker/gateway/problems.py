"""How the gateway answers a request it cannot serve: one JSON shape, the headers HTTP asks for.

Every error body is ``{"error": code, "message": ...}``. The codes are the
``code``s of ``broker.errors`` plus the few aiohttp refuses with itself
(``HTTP_CODES``); ``error_codes()`` lists them all, and the OpenAPI document's
error enum is built from it, so the two cannot drift.

aiohttp's own refusals keep their headers (a 405 says ``Allow``); every 401
carries a ``WWW-Authenticate`` Bearer challenge (RFC 6750), with
``error="invalid_token"`` when a credential was sent and refused.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web

from broker.errors import ConfigError, JigsawError, ScenarioError

__all__ = ["HTTP_CODES", "INTERNAL_ERROR", "challenge", "error_codes", "from_http_exception"]

# What aiohttp refuses by itself (no route, wrong method, body over client_max_size), as Jigsaw codes.
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
INTERNAL_ERROR = "internal_error"
_NOT_FOR_CLIENTS = (ConfigError, ScenarioError)  # raised at start-up and by commands, never answered
_HOP_HEADERS = frozenset({"content-type", "content-length", "content-encoding", "transfer-encoding"})


def _subclasses(cls: type[JigsawError]) -> Iterator[type[JigsawError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def error_codes() -> tuple[str, ...]:
    """Every ``error`` code a client can receive, sorted."""
    # The tree in broker.errors only: a subclass elsewhere (a webhook endpoint's refusal) never reaches a client.
    tree = (c for c in _subclasses(JigsawError) if c.__module__ == "broker.errors")
    codes = {c.code for c in tree if not issubclass(c, _NOT_FOR_CLIENTS)}
    return tuple(sorted(codes | set(HTTP_CODES.values()) | {INTERNAL_ERROR}))


def from_http_exception(exc: web.HTTPException) -> web.Response:
    """aiohttp's refusal as Jigsaw's JSON, keeping the headers it set (``Allow`` on a 405)."""
    headers = {k: v for k, v in exc.headers.items() if k.lower() not in _HOP_HEADERS}
    code = HTTP_CODES.get(exc.status, "invalid_request" if exc.status < 500 else INTERNAL_ERROR)
    return web.json_response({"error": code, "message": exc.reason}, status=exc.status, headers=headers)


def challenge(request: web.Request, response: web.StreamResponse) -> None:
    """Add the Bearer challenge to a 401 that has none (before it is sent)."""
    if response.status != 401 or "WWW-Authenticate" in response.headers or response.prepared:
        return
    value = 'Bearer realm="jigsaw"'
    if request.headers.get("Authorization"):
        value += ', error="invalid_token"'
    response.headers["WWW-Authenticate"] = value
