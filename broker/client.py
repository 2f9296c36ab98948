"""Build, sign and send events: what adapters, tests and the simulator use.

``build_envelope`` is pure (no I/O): JSON-like data in, a signed ``Envelope``
out; the simulator uses it without HTTP. ``JigsawClient`` sends envelopes to a
gateway with aiohttp, one at a time (``POST /v1/events``) or in batches
(``POST /v1/events:batch``, framed by ``encode_batch``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

from broker.codec import encode, from_json
from broker.envelope.batch import BATCH_CONTENT_TYPE, ENVELOPE_CONTENT_TYPE, encode_batch
from broker.envelope.keys import SigningKey, load_signing_key
from broker.envelope.model import Envelope, encode_envelope
from broker.envelope.signing import sign
from broker.errors import (
    DuplicateEvent,
    Forbidden,
    InvalidNhsNumber,
    InvalidRequest,
    JigsawError,
    KeyRevoked,
    LogUnavailable,
    NotFound,
    NotPermitted,
    PayloadTooLarge,
    SchemaInvalid,
    SignatureInvalid,
    Unauthenticated,
    UnknownKey,
)
from broker.gateway.tls import check_token_transport
from broker.schemas import Catalogue, default_catalogue

__all__ = [
    "BATCH_CONTENT_TYPE",
    "ENVELOPE_CONTENT_TYPE",
    "JigsawClient",
    "SendResult",
    "build_envelope",
    "default_lawful_basis",
    "encode_batch",
    "error_for_response",
]

# The gateway's refusal codes, each with the error (and status) it stands for.
_BY_CODE: dict[str, type[JigsawError]] = {
    cls.code: cls
    for cls in (
        SchemaInvalid,
        SignatureInvalid,
        UnknownKey,
        KeyRevoked,
        NotPermitted,
        InvalidNhsNumber,
        InvalidRequest,
        PayloadTooLarge,
        DuplicateEvent,
        Unauthenticated,
        Forbidden,
        NotFound,
        LogUnavailable,
    )
}
# When the body names no code we know (or one that does not go with the status): by status alone.
_BY_STATUS: dict[int, type[JigsawError]] = {
    400: InvalidRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: DuplicateEvent,
    413: PayloadTooLarge,
    422: InvalidRequest,
    503: LogUnavailable,
}


def default_lawful_basis(kind: str) -> str:
    """The usual lawful basis for sharing by an organisation of this kind."""
    return "DPA2018-S8P4" if kind == "police" else "DPA2018-S1P18"


def build_envelope(
    event_type: str,
    data: Mapping[str, Any],
    *,
    source: str,
    key: SigningKey,
    occurred_at: dt.datetime,
    issued_at: dt.datetime | None = None,
    event_id: str | None = None,
    lawful_basis: str | None = None,
    consent: str = "not_sought",
    catalogue: Catalogue | None = None,
) -> Envelope:
    """A signed envelope for JSON-like ``data`` (ISO dates, PersonRef dicts), with no I/O.

    Args:
        event_type: a type from the catalogue, e.g. ``police.domestic_abuse_incident``.
        data: the event's fields; converted with ``codec.from_json``.
        source: the publishing OrgId (the gateway refuses a key of another org).
        key: the signing key.
        occurred_at: when it happened (aware).
        issued_at: when it was signed; defaults to now (the simulator passes its clock).
        event_id: defaults to a fresh UUID4.
        lawful_basis: defaults to ``default_lawful_basis(key.kind)``.

    Raises:
        SchemaInvalid: ``data`` does not fit the schema (the field is named).
    """
    catalogue = catalogue or default_catalogue()
    schema = catalogue.for_type(event_type)
    payload = encode(schema, from_json(schema, data))
    envelope = Envelope(
        event_id=event_id or str(uuid.uuid4()),
        event_type=event_type,
        schema_fingerprint=schema.fingerprint,
        source=source,
        key_id=key.key_id,
        occurred_at=occurred_at,
        issued_at=issued_at or dt.datetime.now(dt.UTC),
        lawful_basis=lawful_basis or default_lawful_basis(key.kind),
        consent=consent,
        payload=payload,
    )
    return sign(envelope, key.private_key)


@dataclasses.dataclass(frozen=True, slots=True)
class SendResult:
    """The gateway's answer about one envelope."""

    status: int
    body: Mapping[str, Any]

    @property
    def accepted(self) -> bool:
        """Accepted now (202) or earlier (200, a re-send)."""
        return self.status in (200, 202)

    @property
    def error(self) -> str | None:
        """The refusal code, or None."""
        value = self.body.get("error")
        return str(value) if value is not None else None


class JigsawClient:
    """Send signed envelopes to a gateway: ``async with JigsawClient(url, token, key=...) as c``.

    The URL must be ``https``, or ``http`` to this machine: a bearer token never crosses a network in clear
    (``ConfigError`` otherwise).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        key: SigningKey | Path | str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
    ) -> None:
        check_token_transport(base_url)  # a bearer token crosses a network only inside TLS
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.key = load_signing_key(key) if isinstance(key, (Path, str)) else key
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def __aenter__(self) -> JigsawClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this client made it."""
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._owns_session = True
        return self._session

    def _headers(self, content_type: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}", "Content-Type": content_type}

    def build(self, event_type: str, data: Mapping[str, Any], **options: Any) -> Envelope:
        """``build_envelope`` with this client's key, its organisation as source, and now as default times."""
        if self.key is None:
            raise ValueError("this client has no signing key")
        options.setdefault("source", self.key.org_id)
        options.setdefault("occurred_at", dt.datetime.now(dt.UTC))
        return build_envelope(event_type, data, key=self.key, **options)

    async def send(self, envelope: Envelope | bytes) -> SendResult:
        """``POST /v1/events`` with one envelope."""
        body = envelope if isinstance(envelope, bytes) else encode_envelope(envelope)
        async with self._http().post(
            f"{self.base_url}/v1/events", data=body, headers=self._headers(ENVELOPE_CONTENT_TYPE)
        ) as response:
            return SendResult(response.status, await _json(response))

    async def send_batch(self, envelopes: Sequence[Envelope | bytes]) -> list[SendResult]:
        """``POST /v1/events:batch``; one result per envelope, in order.

        Raises:
            JigsawError: the gateway refused the batch as a whole; the subclass follows the answer
                (``error_for_response``): ``Unauthenticated`` for 401, ``LogUnavailable`` (retriable)
                for 503, ``PayloadTooLarge`` for 413, ``SchemaInvalid`` for a 400 saying so, and so on.
                ``evidence`` holds the ``status`` and the JSON ``body``.
        """
        body = encode_batch([e if isinstance(e, bytes) else encode_envelope(e) for e in envelopes])
        async with self._http().post(
            f"{self.base_url}/v1/events:batch", data=body, headers=self._headers(BATCH_CONTENT_TYPE)
        ) as response:
            payload = await _json(response)
            if response.status != 207:
                raise error_for_response(response.status, payload)
        return [SendResult(int(item.get("status", 0)), item) for item in payload.get("results", [])]

    async def publish(self, event_type: str, data: Mapping[str, Any], **options: Any) -> SendResult:
        """Build, sign and send one event."""
        return await self.send(self.build(event_type, data, **options))


def error_for_response(status: int, body: Mapping[str, Any]) -> JigsawError:
    """The error a gateway answer stands for: by the body's ``error`` code when it fits the status, else by status.

    Any other 5xx is a ``JigsawError`` (code ``internal_error``); the status and
    body are kept as evidence, so callers can still decide by status.
    """
    code = body.get("error")
    cls = _BY_CODE.get(code) if isinstance(code, str) else None
    if cls is None or cls.http_status != status:
        cls = _BY_STATUS.get(status, JigsawError)
    message = f"the gateway answered {status}: {code or 'no error code'}: {body.get('message') or 'no message'}"
    return cls(message, status=status, body=dict(body))


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        data = await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return {"error": "bad_response", "message": (await response.text())[:500]}
    return data if isinstance(data, dict) else {"results": data}
