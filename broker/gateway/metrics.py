"""``GET /metrics``: the app's ``broker.observability.Metrics`` in the Prometheus text format.

The metrics themselves (names, labels, hooks) live in ``broker/observability.py``;
this module is only the HTTP edge: it reads the log's status at scrape time and
writes the exposition.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from broker.observability import CONTENT_TYPE, Metrics

__all__ = ["metrics_response"]


def metrics_response(metrics: Metrics, log_status: Mapping[str, object]) -> web.Response:
    """The ``/metrics`` answer, with ``jigsaw_log_up`` set from the log backend's ``status()``."""
    metrics.log_status(str(log_status.get("backend", "unknown")), bool(log_status.get("ok")))
    return web.Response(
        body=metrics.render(), headers={"Content-Type": CONTENT_TYPE, "X-Content-Type-Options": "nosniff"}
    )
