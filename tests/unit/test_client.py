"""The client turns a gateway's refusal of a whole batch into the error that answer stands for."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from broker.client import JigsawClient, error_for_response
from broker.errors import (
    InvalidRequest,
    JigsawError,
    LogUnavailable,
    NotPermitted,
    PayloadTooLarge,
    SchemaInvalid,
    Unauthenticated,
)

ANSWERS = {
    "401": (401, {"error": "unauthenticated", "message": "no such token"}),
    "503": (503, {"error": "log_unavailable", "message": "the log is down"}),
    "413": (413, {"error": "payload_too_large", "message": "too big"}),
    "400": (400, {"error": "schema_invalid", "message": "not a batch"}),
}


@pytest.fixture
async def gateway() -> AsyncIterator[str]:
    """A stand-in gateway that answers each batch with the status named by its token."""

    async def batch(request: web.Request) -> web.Response:
        status, body = ANSWERS[request.headers["Authorization"].removeprefix("Bearer ")]
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_post("/v1/events:batch", batch)
    async with TestServer(app) as server:
        yield str(server.make_url(""))


@pytest.mark.parametrize(
    ("token", "error"),
    [("401", Unauthenticated), ("503", LogUnavailable), ("413", PayloadTooLarge), ("400", SchemaInvalid)],
)
async def test_a_refused_batch_raises_its_error(gateway: str, token: str, error: type[JigsawError]) -> None:
    """401 is Unauthenticated, 503 a retriable LogUnavailable (regression: every status was SchemaInvalid)."""
    async with JigsawClient(gateway, token) as client:
        with pytest.raises(error) as raised:
            await client.send_batch([b"x"])
    assert type(raised.value) is error
    assert raised.value.evidence["status"] == int(token)
    assert raised.value.evidence["body"] == ANSWERS[token][1]
    assert raised.value.retriable is (token == "503")


def test_the_status_wins_when_the_code_does_not_fit_it() -> None:
    """An unknown code, or a code of another status, is mapped by the status alone; an unlisted 5xx is internal."""
    assert type(error_for_response(403, {"error": "not_permitted"})) is NotPermitted
    assert type(error_for_response(401, {"error": "schema_invalid"})) is Unauthenticated
    assert type(error_for_response(400, {"error": "something_new"})) is InvalidRequest
    assert type(error_for_response(502, {})) is JigsawError
    assert "502" in error_for_response(502, {}).message
