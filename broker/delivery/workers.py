"""The ``dispatcher`` role of ``jigsaw serve``: ``dispatcher.Dispatcher`` with Jigsaw's webhook key and
the retry schedule and timeout from the settings, running until cancelled.

The ``router`` role lives in ``broker/routing/live.py``.
"""

from __future__ import annotations

from typing import Any

from broker.delivery.backoff import parse_schedule
from broker.delivery.dispatcher import Dispatcher
from broker.delivery.signing import webhook_key_for
from broker.delivery.webhook import WebhookSender
from broker.errors import ConfigError
from broker.log.base import Log
from broker.roles import RoleContext
from broker.settings import Settings

__all__ = ["dispatcher_for", "notification_partitions", "run_dispatcher"]


def dispatcher_for(settings: Settings, log: Log, *, metrics: Any = None) -> Dispatcher:
    """A dispatcher configured by the settings (key, retry schedule, timeout).

    Raises:
        ConfigError: the retry schedule or the key file is malformed.
    """
    try:
        schedule = parse_schedule(settings.webhook_retry_schedule)
    except ValueError as exc:
        raise ConfigError(f"JIGSAW_WEBHOOK_RETRY_SCHEDULE: {exc}") from exc
    key = webhook_key_for(settings.signing_key_file, settings.data_dir)
    timeout = float(settings.webhook_timeout)
    sender = WebhookSender(key, timeout=timeout, ca_file=settings.webhook_ca_file)  # trusts JIGSAW_WEBHOOK_CA_FILE
    return Dispatcher(
        log,
        key,
        schedule=schedule,
        timeout=timeout,
        sender=sender,
        partitions=notification_partitions(settings),
        metrics=metrics,
    )


def notification_partitions(settings: Settings) -> int:
    """Partitions of the notifications topic: ``JIGSAW_KAFKA_PARTITIONS`` on Kafka, one on a single-process log."""
    return settings.kafka_partitions if settings.log_backend == "kafka" else 1


async def run_dispatcher(ctx: RoleContext) -> None:
    """The ``dispatcher`` role: deliver every notification until cancelled."""
    await dispatcher_for(ctx.settings, ctx.log, metrics=ctx.metrics).run()
