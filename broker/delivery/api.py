"""The delivery side of the HTTP API, mounted into the gateway's app: the inbox and the webhook key.

``mount_delivery(app, ...)`` adds ``/v1/inbox...`` (``inbox.py``) and
``GET /v1/webhook-key``: Jigsaw's public key for webhook signatures, which
receivers fetch once and pin (no credential needed: it is public).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from aiohttp import web

from broker.callers import Authenticate
from broker.delivery.inbox import InboxService, add_inbox_routes
from broker.delivery.signing import SCHEME, TOLERANCE_S, WebhookKey, public_key_text
from broker.log.base import Log
from broker.store import Store

__all__ = ["WEBHOOK_KEY", "mount_delivery", "webhook_key_document"]

KeySource = WebhookKey | Callable[[], WebhookKey]


class _KeyHolder:
    """The webhook key, loaded on first use (building an app must not write a key file)."""

    def __init__(self, source: KeySource) -> None:
        self._source = source
        self._key: WebhookKey | None = source if isinstance(source, WebhookKey) else None

    def get(self) -> WebhookKey:
        if self._key is None:
            assert not isinstance(self._source, WebhookKey)
            self._key = self._source()
        return self._key


WEBHOOK_KEY = web.AppKey("jigsaw_webhook_key", _KeyHolder)


def webhook_key_document(key: WebhookKey) -> dict[str, Any]:
    """What ``GET /v1/webhook-key`` returns."""
    return {
        "key_id": key.key_id,
        "algorithm": "ed25519",
        "scheme": SCHEME,
        "public_key": public_key_text(key.public_bytes),
        "signed_content": "{webhook-id}.{webhook-timestamp}.{body}",
        "headers": ["webhook-id", "webhook-timestamp", "webhook-signature"],
        "timestamp_tolerance_seconds": TOLERANCE_S,
        "ephemeral": key.ephemeral,
    }


async def get_webhook_key(request: web.Request) -> web.Response:
    """``GET /v1/webhook-key``: the public key that verifies Jigsaw's webhook signatures."""
    return web.json_response(webhook_key_document(request.app[WEBHOOK_KEY].get()))


def mount_delivery(
    app: web.Application,
    *,
    log: Log,
    store: Store,
    authenticate: Authenticate,
    clock: Callable[[], dt.datetime],
    webhook_key: KeySource,
    append_timeout: float = 10.0,
) -> None:
    """Add the inbox routes (and their follower, started with the app) and the webhook key route.

    Args:
        app: the gateway's application (not yet started; its log starts before these cleanup contexts run).
        log: the same log the app uses.
        store: the serving views (started by the app's own start-up, before these cleanup contexts run).
        authenticate: ``Authorization`` header to caller (``Credentials.authenticate``).
        clock: the time of reads and acknowledgements.
        webhook_key: the key the dispatcher signs with, or a function that loads it (called on first use).
        append_timeout: how long an acknowledgement's append may take before the caller gets 503.
    """
    add_inbox_routes(app, InboxService(log, store, authenticate, clock, append_timeout=append_timeout))
    app[WEBHOOK_KEY] = _KeyHolder(webhook_key)
    app.router.add_get("/v1/webhook-key", get_webhook_key)
