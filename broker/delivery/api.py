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

from broker.delivery.inbox import Authenticate, InboxService, add_inbox_routes
from broker.delivery.signing import SCHEME, TOLERANCE_S, WebhookKey, public_key_text
from broker.log.base import Log

__all__ = ["WEBHOOK_KEY", "mount_delivery", "webhook_key_document"]

WEBHOOK_KEY = web.AppKey("jigsaw_webhook_key", WebhookKey)


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
    return web.json_response(webhook_key_document(request.app[WEBHOOK_KEY]))


def mount_delivery(
    app: web.Application,
    *,
    log: Log,
    authenticate: Authenticate,
    clock: Callable[[], dt.datetime],
    webhook_key: WebhookKey,
) -> None:
    """Add the inbox routes (and their follower, started with the app) and the webhook key route.

    Args:
        app: the gateway's application (not yet started; its log starts before these cleanup contexts run).
        log: the same log the app uses.
        authenticate: ``Authorization`` header to caller (``Credentials.authenticate``).
        clock: the time of reads and acknowledgements.
        webhook_key: the key the dispatcher signs with.
    """
    add_inbox_routes(app, InboxService(log, authenticate, clock))
    app[WEBHOOK_KEY] = webhook_key
    app.router.add_get("/v1/webhook-key", get_webhook_key)
