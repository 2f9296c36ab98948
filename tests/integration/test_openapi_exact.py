"""The OpenAPI document says exactly what the gateway does: routes, codes, statuses, headers, parameters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from broker.gateway.openapi import check_against, documented_operations, openapi_document, served_operations
from broker.gateway.problems import error_codes
from tests.integration.gateway_support import Gateway, running_gateway


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_gateway("embedded", tmp_path) as running:
        yield running


async def _get(gateway: Gateway, path: str, token: str | None = None, method: str = "GET") -> tuple[int, Any, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with gateway.session.request(method, gateway.base_url + path, headers=headers) as response:
        return response.status, response.headers, await response.json(content_type=None)


async def test_the_document_describes_exactly_the_served_routes(gateway: Gateway) -> None:
    """Every API route is documented and every documented operation is served (pages for people aside)."""
    status, _, doc = await _get(gateway, "/v1/openapi.json")
    assert status == 200
    assert documented_operations(doc) == served_operations(gateway.app)
    assert ("POST", "/v1/inbox/{notification_id}/ack") in documented_operations(doc)


def test_a_drifted_document_is_refused() -> None:
    """A served route missing from the document, or a documented one not served, raises."""

    async def extra(request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    app.router.add_get("/v1/extra", extra)
    with pytest.raises(RuntimeError, match="served but undocumented \\[\\('GET', '/v1/extra'\\)\\]"):
        check_against(app, {"paths": {}})
    with pytest.raises(RuntimeError, match="documented but not served"):
        check_against(web.Application(), openapi_document(1024, 10))


def test_the_gateway_does_not_start_with_a_drifted_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """create_app checks the document against its routes: one route left out stops it."""
    from broker.gateway import app as app_module
    from broker.log import MemoryLog
    from broker.settings import Settings

    def drifted(max_body_bytes: int, max_batch: int) -> dict[str, Any]:
        document = openapi_document(max_body_bytes, max_batch)
        del document["paths"]["/v1/webhook-key"]
        return document

    monkeypatch.setattr(app_module, "openapi_document", drifted)
    with pytest.raises(RuntimeError, match="served but undocumented \\[\\('GET', '/v1/webhook-key'\\)\\]"):
        app_module.create_app(Settings(data_dir=tmp_path, keys_dir=tmp_path / "keys"), MemoryLog(), roles=())


async def test_every_error_code_is_in_the_enum_and_not_found_is_answered_with_it(gateway: Gateway) -> None:
    """The error enum is built from the exception tree: not_found and method_not_allowed included."""
    _, _, doc = await _get(gateway, "/v1/openapi.json")
    enum = doc["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
    assert enum == list(error_codes())
    assert {"not_found", "method_not_allowed", "invalid_nhs_number", "rate_limited"} <= set(enum)
    status, _, body = await _get(gateway, "/v1/nothing-here")
    assert (status, body["error"]) == (404, "not_found")


async def test_a_405_says_which_methods_are_allowed(gateway: Gateway) -> None:
    """aiohttp's Allow header survives the JSON error wrapper."""
    status, headers, body = await _get(gateway, "/v1/events", method="DELETE")
    assert (status, body["error"]) == (405, "method_not_allowed")
    assert headers["Allow"] == "POST"


async def test_a_401_carries_a_bearer_challenge(gateway: Gateway) -> None:
    """No credential: a plain Bearer challenge; a refused one: error="invalid_token" (RFC 6750)."""
    status, headers, _ = await _get(gateway, "/v1/inbox")
    assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="jigsaw"'
    status, headers, _ = await _get(gateway, "/v1/children/9990000018/chronology", token="not-a-token")
    assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="jigsaw", error="invalid_token"'


async def test_an_empty_since_or_flag_is_refused(gateway: Gateway) -> None:
    """``since=`` is not a date-time and ``unacknowledged=`` is not a boolean: both are 400."""
    for query in ("since=", "unacknowledged="):
        status, _, body = await _get(gateway, f"/v1/inbox?{query}", token="token-recipient")
        assert (status, body["error"]) == (400, "invalid_request"), query


async def test_the_chronology_path_has_a_pattern_and_its_422_is_documented(gateway: Gateway) -> None:
    """A ten-digit number with a wrong check digit is 422, which the document lists beside the pattern."""
    _, _, doc = await _get(gateway, "/v1/openapi.json")
    operation = doc["paths"]["/v1/children/{nhs_number}/chronology"]["get"]
    [nhs] = [p for p in operation["parameters"] if p["name"] == "nhs_number"]
    assert nhs["schema"]["pattern"].startswith("^") and "422" in operation["responses"]
    status, _, body = await _get(gateway, "/v1/children/9990000019/chronology", token="token-csc-bradford")
    assert (status, body["error"]) == (422, "invalid_nhs_number")


async def test_an_ack_body_holds_only_by(gateway: Gateway) -> None:
    """The ack body is ``{"by": ...}`` and nothing else, as the document's additionalProperties says."""
    nid = await gateway.notify("HV-BRADFORD-NORTH")
    url, headers = f"{gateway.base_url}/v1/inbox/{nid}/ack", {"Authorization": "Bearer token-recipient"}
    for _ in range(50):  # the inbox follows the log: wait until it has the notification
        async with gateway.session.get(f"{gateway.base_url}/v1/inbox/{nid}", headers=headers) as response:
            if response.status == 200:
                break
        await asyncio.sleep(0.05)
    async with gateway.session.post(url, json={"by": "A Person", "extra": 1}, headers=headers) as response:
        assert response.status == 400
    async with gateway.session.post(url, json={"by": "A Person"}, headers=headers) as response:
        assert response.status == 201
    _, _, doc = await _get(gateway, "/v1/openapi.json")
    body = doc["paths"]["/v1/inbox/{notification_id}/ack"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["additionalProperties"] is False
