"""TLS on the HTTP side: an HTTPS gateway, agency client certificates, HTTPS webhooks, no token in clear."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from broker.client import JigsawClient
from broker.delivery.addresses import EndpointRefused, check_url
from broker.delivery.signing import WebhookKey
from broker.delivery.webhook import WebhookSender
from broker.errors import ConfigError
from broker.gateway.tls import check_token_transport, client_context, server_context
from tests.integration.serve_support import TOKENS, serving
from tests.integration.tls_support import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One test PKI for the module (openssl takes a moment)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def _trusting(pki: Pki, *, with_client_cert: bool = False) -> ssl.SSLContext:
    context = client_context(pki.ca)
    if with_client_cert:
        context.load_cert_chain(pki.client_cert, pki.client_key)
    return context


async def test_gateway_serves_https(tmp_path: Path, pki: Pki) -> None:
    """With a certificate and key the gateway answers only over TLS, verified against the test CA."""
    async with serving(tmp_path, tls_cert_file=pki.server_cert, tls_key_file=pki.server_key) as served:
        assert served.url.startswith("https://")
        connector = aiohttp.TCPConnector(ssl=_trusting(pki))
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(served.url + "/healthz") as response:
                assert response.status == 200
            client = JigsawClient(served.url, TOKENS["publisher"][0], session=session)
            result = await client.send(b"not an envelope")
            assert result.status == 400  # it reached the gateway, over TLS, with its token
        async with aiohttp.ClientSession() as session:  # the system's CAs do not know the test CA
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.get(served.url + "/healthz")
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientError):  # plain http to the TLS port gets nowhere
                await session.get(served.url.replace("https://", "http://") + "/healthz")


async def test_agency_client_certificate_is_required_when_a_client_ca_is_set(tmp_path: Path, pki: Pki) -> None:
    """With JIGSAW_TLS_CLIENT_CA_FILE a client without a certificate from that CA cannot connect."""
    async with serving(
        tmp_path, tls_cert_file=pki.server_cert, tls_key_file=pki.server_key, tls_client_ca_file=pki.ca
    ) as served:
        connector = aiohttp.TCPConnector(ssl=_trusting(pki, with_client_cert=True))
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(served.url + "/healthz") as response:
                assert response.status == 200
        connector = aiohttp.TCPConnector(ssl=_trusting(pki))
        async with aiohttp.ClientSession(connector=connector) as session:
            with pytest.raises(aiohttp.ClientError):
                async with session.get(served.url + "/healthz") as response:
                    await response.read()


def test_bad_tls_files_are_a_clear_configuration_error(pki: Pki) -> None:
    """A key that does not belong to the certificate is refused at start, naming both files."""
    with pytest.raises(ConfigError, match="key belongs to the certificate"):
        server_context(pki.server_cert, pki.client_key)


async def test_webhook_delivered_over_https_to_a_receiver_with_a_test_ca_certificate(pki: Pki) -> None:
    """A webhook goes over HTTPS to a receiver with a test-CA certificate, trusted via JIGSAW_WEBHOOK_CA_FILE."""
    received: list[dict[str, object]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append({"id": request.headers["webhook-id"], "body": json.loads(await request.read())})
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context(pki.server_cert, pki.server_key))
    await site.start()
    url = f"https://localhost:{site.port}/hook"
    key = WebhookKey.generate()
    trusting = WebhookSender(key, timeout=5.0, ca_file=pki.ca)
    distrusting = WebhookSender(key, timeout=5.0)
    try:
        # The receiver is on this machine, so the directory must mark it internal; it is still https.
        result = await trusting.deliver(url, internal=True, webhook_id="msg_1", body=b'{"n": 1}')
        assert result.outcome == "delivered" and result.status == 204, result
        refused = await distrusting.deliver(url, internal=True, webhook_id="msg_2", body=b'{"n": 2}')
        assert refused.outcome == "failed" and "certificate" in (refused.error or "").lower(), refused
    finally:
        await trusting.close()
        await distrusting.close()
        await runner.cleanup()
    assert received == [{"id": "msg_1", "body": {"n": 1}}]


def test_plain_http_webhook_is_refused_unless_the_directory_marks_it_internal() -> None:
    """A public endpoint must be https; http is accepted only for an endpoint marked internal."""
    with pytest.raises(EndpointRefused, match="https"):
        check_url("http://receiver.example.org/hook", internal=False)
    assert check_url("https://receiver.example.org/hook", internal=False) == ("receiver.example.org", 443)
    assert check_url("http://10.0.0.5:8080/hook", internal=True) == ("10.0.0.5", 8080)


def test_adapter_refuses_to_send_a_token_over_plain_http() -> None:
    """The client (and so every adapter) will not send a bearer token over http to another machine."""
    for url in ("http://jigsaw.example.org", "http://10.1.2.3:8080", "ftp://jigsaw.example.org"):
        with pytest.raises(ConfigError, match="https"):
            JigsawClient(url, "token")
        with pytest.raises(ConfigError):
            check_token_transport(url)
    for url in ("https://jigsaw.example.org", "http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:80"):
        check_token_transport(url)
