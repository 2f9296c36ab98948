"""Every role's metrics: Prometheus names, exact counters, one registry per app, hooks that count what they say."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from broker.observability import Metrics, read_sample

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "jigsaw.json"

# The names the issue, the Grafana dashboard and operators rely on.
NAMES = {
    "jigsaw_http_requests": "counter",
    "jigsaw_http_request_duration_seconds": "histogram",
    "jigsaw_events_accepted": "counter",
    "jigsaw_events_refused": "counter",
    "jigsaw_router_events_routed": "counter",
    "jigsaw_router_lag_records": "gauge",
    "jigsaw_notifications": "counter",
    "jigsaw_webhook_deliveries": "counter",
    "jigsaw_webhook_retries": "counter",
    "jigsaw_breaker_state": "gauge",
    "jigsaw_escalations": "counter",
    "jigsaw_dead_letters": "counter",
    "jigsaw_consumer_lag_records": "gauge",
    "jigsaw_log_up": "gauge",
}


def test_every_metric_is_exposed_with_its_type() -> None:
    """The exposition declares each metric with Prometheus naming (counters end in _total)."""
    text = Metrics().render().decode()
    for name, kind in NAMES.items():
        exposed = f"{name}_total" if kind == "counter" else name
        assert f"# TYPE {exposed} {kind}\n" in text
    assert "_created" not in text  # no creation-time series beside every counter


def test_counters_are_exact() -> None:
    """1,234,568 reads back as 1234568, not 1.23457e+06 (regression: counters were printed with :g)."""
    metrics = Metrics()
    metrics.events_accepted.labels(event_type="police.domestic_abuse_incident").inc(1_234_568)
    text = metrics.render().decode()
    assert "1.23457e+06" not in text
    assert read_sample(text, "jigsaw_events_accepted_total", event_type="police.domestic_abuse_incident") == 1_234_568


def test_two_apps_in_one_process_do_not_collide() -> None:
    """Each Metrics has its own registry: a second one neither fails nor shares counts."""
    first, second = Metrics(), Metrics()
    first.event_refused("schema_invalid")
    assert first.value("jigsaw_events_refused_total", code="schema_invalid") == 1
    assert second.value("jigsaw_events_refused_total", code="schema_invalid") == 0


def test_router_hooks_count_events_notifications_and_escalations() -> None:
    """routed counts the event and each notification by kind; escalations are counted on their own too."""
    metrics = Metrics()
    metrics.routed(["alert", "alert", "escalation"])
    metrics.routed()
    metrics.set_router_lag(7)
    assert metrics.value("jigsaw_router_events_routed_total") == 2
    assert metrics.value("jigsaw_notifications_total", kind="alert") == 2
    assert metrics.value("jigsaw_escalations_total") == 1
    assert metrics.value("jigsaw_router_lag_records") == 7


def test_dispatcher_hooks_count_outcomes_retries_dead_letters_and_breakers() -> None:
    """Attempts by outcome, retries after the first, dead letters, breaker state and consumer lag."""
    metrics = Metrics()
    metrics.delivery("failed", attempt=1)
    metrics.delivery("delivered", attempt=2)
    metrics.dead_lettered()
    metrics.breaker("GP-B83001", "open")
    metrics.set_consumer_lag("jigsaw-dispatcher", "jigsaw.notifications", 0, 3)
    assert metrics.value("jigsaw_webhook_deliveries_total", outcome="failed") == 1
    assert metrics.value("jigsaw_webhook_retries_total") == 1
    assert metrics.value("jigsaw_dead_letters_total") == 1
    assert metrics.value("jigsaw_breaker_state", org="GP-B83001") == 2
    lag = {"group": "jigsaw-dispatcher", "topic": "jigsaw.notifications", "partition": "0"}
    assert metrics.value("jigsaw_consumer_lag_records", **lag) == 3


def test_an_unknown_breaker_state_is_a_bug() -> None:
    """Only the breaker's three states have values."""
    with pytest.raises(KeyError):
        Metrics().breaker("GP-B83001", "ajar")


def _exposed_names(metrics: Metrics) -> set[str]:
    names: set[str] = set()
    for family in metrics.registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"}
        else:
            names.add(family.name)
    return names


def test_the_grafana_dashboard_reads_only_metrics_that_exist_and_shows_each_one() -> None:
    """deploy/grafana/jigsaw.json queries exposed names only, and has a panel for every metric."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"\bjigsaw_[a-z_]+", expr)}
    exposed = _exposed_names(Metrics())
    assert used <= exposed, sorted(used - exposed)
    shown = {name.removesuffix("_total").removesuffix("_bucket") for name in used}
    assert {family.name for family in Metrics().registry.collect()} <= shown
