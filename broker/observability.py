"""Prometheus metrics for every role (gateway, router, dispatcher), in one registry per app.

``Metrics`` defines every metric a Jigsaw process exposes, with Prometheus
naming (``_total`` counters, ``_seconds`` and ``_records`` units), in its own
``CollectorRegistry``: never the global one, so tests and several apps in one
process do not collide. The gateway keeps one in ``app[METRICS]`` and serves it
on ``GET /metrics``; the roles record through the hook methods below, each
one line at the place the work is done: the gateway calls ``http_request``,
``event_accepted``, ``event_duplicate`` and ``event_refused``; the router
``routed`` (per event, with the kinds of notifications it sent),
``escalated`` and ``set_router_lag``; the dispatcher ``delivery`` (per
attempt), ``dead_lettered`` and ``breaker`` (already wired); any consumer
``set_consumer_lag``. Give the roles the app's instance (``app[METRICS]``). Labels never carry payload
contents: routes, codes, outcomes, topics, partitions and organisation ids only.

Counters are exact: ``prometheus_client`` writes every digit of a value
(1,234,568 is ``1.234568e+06``, which Prometheus reads back as 1234568), unlike
the ``:g`` formatting it replaces.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from broker.delivery.breaker import CLOSED, HALF_OPEN, OPEN

__all__ = ["BREAKER_STATES", "CONTENT_TYPE", "LATENCY_BUCKETS", "Metrics", "read_sample"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the text format every Prometheus reads
BREAKER_STATES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}  # jigsaw_breaker_state's values

# No ``*_created`` series beside every counter and histogram: they double the exposition and no
# dashboard of ours reads them. (prometheus_client keeps this one switch process-wide.)
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus_client


class Metrics:
    """Every metric of one Jigsaw app, registered in ``registry`` (a fresh one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # gateway
        self.http_requests = Counter(
            "jigsaw_http_requests",
            "HTTP requests answered, by route, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_request_duration = Histogram(
            "jigsaw_http_request_duration_seconds",
            "Time to answer an HTTP request, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.events_accepted = Counter(
            "jigsaw_events_accepted", "Envelopes accepted and appended, by event type.", ["event_type"], registry=r
        )
        self.events_duplicate = Counter(
            "jigsaw_events_duplicate", "Re-sent envelopes answered with their original position.", registry=r
        )
        self.events_refused = Counter(
            "jigsaw_events_refused", "Submissions refused, by error code.", ["code"], registry=r
        )
        self.log_up = Gauge("jigsaw_log_up", "1 when the log backend answers.", ["backend"], registry=r)
        # router
        self.router_events_routed = Counter(
            "jigsaw_router_events_routed", "Accepted events the router has applied to the family graph.", registry=r
        )
        self.router_lag = Gauge(
            "jigsaw_router_lag_records", "Accepted events the router has yet to read, over all partitions.", registry=r
        )
        self.notifications = Counter(
            "jigsaw_notifications",
            "Notifications the router sent, by kind (alert, catch_up, ...).",
            ["kind"],
            registry=r,
        )
        self.escalations = Counter(
            "jigsaw_escalations", "Unacknowledged notifications escalated to a safeguarding lead.", registry=r
        )
        # dispatcher
        self.webhook_deliveries = Counter(
            "jigsaw_webhook_deliveries",
            "Webhook attempts, by outcome (delivered, failed, gone, refused, ...).",
            ["outcome"],
            registry=r,
        )
        self.webhook_retries = Counter(
            "jigsaw_webhook_retries", "Webhook attempts after the first for the same notification.", registry=r
        )
        self.breaker_state = Gauge(
            "jigsaw_breaker_state",
            "Webhook circuit breaker per organisation: 0 closed, 1 half open, 2 open.",
            ["org"],
            registry=r,
        )
        self.dead_letters = Counter(
            "jigsaw_dead_letters", "Notifications whose webhook attempts ran out (moved to the inbox).", registry=r
        )
        # any consumer
        self.consumer_lag = Gauge(
            "jigsaw_consumer_lag_records",
            "Records a consumer group has yet to read, by group, topic and partition.",
            ["group", "topic", "partition"],
            registry=r,
        )

    # -- hooks: one call where the work is done ---------------------------------------------------

    def http_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """The gateway answered a request (``route`` is the canonical route, never the raw path)."""
        self.http_requests.labels(route=route, method=method, status=str(status)).inc()
        self.http_request_duration.labels(route=route).observe(seconds)

    def event_accepted(self, event_type: str) -> None:
        """An envelope of ``event_type`` was accepted and appended to the input topic."""
        self.events_accepted.labels(event_type=event_type).inc()

    def event_duplicate(self) -> None:
        """A re-sent envelope was answered with its original position."""
        self.events_duplicate.inc()

    def event_refused(self, code: str) -> None:
        """A submission was refused with the error ``code``."""
        self.events_refused.labels(code=code).inc()

    def log_status(self, backend: str, up: bool) -> None:
        """Whether the log backend answers (set at scrape time)."""
        self.log_up.labels(backend=backend).set(1 if up else 0)

    def routed(self, notification_kinds: list[str] | tuple[str, ...] = ()) -> None:
        """The router applied one event and sent notifications of these kinds (escalations counted too)."""
        self.router_events_routed.inc()
        for kind in notification_kinds:
            self.notifications.labels(kind=kind).inc()
            if kind == "escalation":
                self.escalations.inc()

    def escalated(self, count: int = 1) -> None:
        """Escalations sent outside ``routed`` (e.g. by a deadline sweep)."""
        self.escalations.inc(count)
        self.notifications.labels(kind="escalation").inc(count)

    def set_router_lag(self, records: int) -> None:
        """Accepted events the router has yet to read (end offsets minus positions, summed)."""
        self.router_lag.set(records)

    def delivery(self, outcome: str, attempt: int) -> None:
        """One webhook attempt ended with ``outcome``; ``attempt`` is 1 for the first (later ones are retries)."""
        self.webhook_deliveries.labels(outcome=outcome).inc()
        if attempt > 1:
            self.webhook_retries.inc()

    def dead_lettered(self) -> None:
        """A notification's webhook attempts ran out."""
        self.dead_letters.inc()

    def breaker(self, org: str, state: str) -> None:
        """The breaker of ``org``'s webhook endpoint is now ``state`` (``closed``, ``half_open``, ``open``)."""
        self.breaker_state.labels(org=org).set(BREAKER_STATES[state])

    def set_consumer_lag(self, group: str, topic: str, partition: int, records: int) -> None:
        """A consumer group's lag on one partition (end offset minus committed position)."""
        self.consumer_lag.labels(group=group, topic=topic, partition=str(partition)).set(records)

    # -- exposition ---------------------------------------------------------------------------------

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float:
        """One sample's current value, 0 when it has none yet (for tests and health checks)."""
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found


def read_sample(text: str, name: str, **labels: str) -> float | None:
    """One sample's value in a text exposition (e.g. a scraped ``/metrics``), or None; for tests and tools."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and dict(sample.labels) == labels:
                return float(sample.value)
    return None
