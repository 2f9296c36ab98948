"""One webhook attempt over HTTP: the imperative shell around signing and the address checks.

``WebhookSender.deliver`` POSTs a notification's JSON with the Standard
Webhooks headers and turns whatever happens into an ``AttemptResult``:
``delivered`` (2xx), ``gone`` (410: stop), ``refused`` (the endpoint is not
allowed: retrying cannot help) or ``failed`` (any other status, a timeout, a
connection error: retry). It never raises for anything the endpoint does.

Endpoints the directory does not mark internal go through a session whose
resolver checks every address (``addresses.py``), so the connection can only
reach addresses that were checked; redirects are not followed (a 3xx is a
failure), so a redirect cannot lead anywhere unchecked either. Only ``https``
endpoints are accepted unless the directory marks one internal; certificates
are verified against the system's CAs plus ``JIGSAW_WEBHOOK_CA_FILE`` when set
(a partnership's private CA).
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from pathlib import Path

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from broker.delivery.addresses import EndpointRefused, check_url, resolve
from broker.delivery.signing import WebhookKey, sign_headers
from broker.gateway.tls import client_context

__all__ = ["AttemptResult", "WebhookSender", "classify_status"]

USER_AGENT = "Jigsaw-Webhooks/1"
_MAX_RESPONSE_BYTES = 64 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one attempt came to."""

    outcome: str  # delivered, failed, gone or refused
    status: int | None = None
    error: str | None = None
    duration_ms: int = 0


def classify_status(status: int) -> str:
    """``delivered`` for 2xx, ``gone`` for 410 (the receiver wants no more), else ``failed`` (retry)."""
    if 200 <= status < 300:
        return "delivered"
    if status == 410:
        return "gone"
    return "failed"


class _CheckedResolver(AbstractResolver):
    """Resolves a host and refuses it unless every address it resolves to is public."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await resolve(host, port, internal=False)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        return None


class WebhookSender:
    """Sends signed webhooks; ``start`` before use, ``close`` after."""

    def __init__(self, key: WebhookKey, *, timeout: float = 10.0, ca_file: Path | None = None) -> None:
        """Args: key: signs each webhook; timeout: seconds per attempt; ca_file: a CA to trust besides the system's."""
        self.key = key
        self.timeout = timeout
        self._tls = client_context(ca_file)
        self._public: aiohttp.ClientSession | None = None
        self._internal: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the HTTP sessions (one checks addresses, one is for endpoints marked internal)."""
        if self._public is not None:
            return
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        headers = {"User-Agent": USER_AGENT}
        self._public = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=_CheckedResolver(), limit=100, ssl=self._tls),
            timeout=timeout,
            headers=headers,
        )
        self._internal = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100, ssl=self._tls), timeout=timeout, headers=headers
        )

    async def close(self) -> None:
        """Close the sessions."""
        for session in (self._public, self._internal):
            if session is not None:
                await session.close()
        self._public = self._internal = None

    async def deliver(
        self, url: str, *, internal: bool, webhook_id: str, body: bytes, timestamp: int | None = None
    ) -> AttemptResult:
        """POST ``body`` to ``url``, signed; the result (never raises for the endpoint's behaviour)."""
        await self.start()
        session = self._internal if internal else self._public
        assert session is not None
        started = time.perf_counter()

        def took() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            host, port = check_url(url, internal=internal)
            if not internal:
                await resolve(host, port, internal=False)  # a clear reason now; the resolver checks again
        except EndpointRefused as exc:
            return AttemptResult("refused", error=exc.message, duration_ms=took())
        headers = sign_headers(self.key, webhook_id, timestamp if timestamp is not None else int(time.time()), body)
        headers["Content-Type"] = "application/json"
        try:
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                await response.content.read(_MAX_RESPONSE_BYTES)  # never kept: it may echo data
                status = response.status
        except EndpointRefused as exc:  # the connector's resolver saw a different answer
            return AttemptResult("refused", error=exc.message, duration_ms=took())
        except TimeoutError:
            return AttemptResult("failed", error=f"timed out after {self.timeout:g} s", duration_ms=took())
        except aiohttp.ClientError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, EndpointRefused):
                return AttemptResult("refused", error=cause.message, duration_ms=took())
            return AttemptResult("failed", error=f"{type(exc).__name__}: {exc}"[:300], duration_ms=took())
        except (OSError, asyncio.IncompleteReadError) as exc:
            return AttemptResult("failed", error=f"{type(exc).__name__}: {exc}"[:300], duration_ms=took())
        outcome = classify_status(status)
        error = None if outcome == "delivered" else f"the endpoint answered {status}"
        return AttemptResult(outcome, status=status, error=error, duration_ms=took())
