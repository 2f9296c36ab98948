"""Counters and a latency histogram, rendered in the Prometheus text format (version 0.0.4).

Deliberately tiny (no client library): a handful of labelled counters and
one histogram, kept in plain dicts, rendered on ``GET /metrics``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping

__all__ = ["LATENCY_BUCKETS", "Metrics"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Labels = tuple[tuple[str, str], ...]

_HELP = {
    "jigsaw_http_requests_total": ("counter", "HTTP requests answered, by route, method and status."),
    "jigsaw_events_accepted_total": ("counter", "Envelopes accepted and appended, by event type."),
    "jigsaw_events_duplicate_total": ("counter", "Re-sent envelopes answered with their original position."),
    "jigsaw_events_refused_total": ("counter", "Submissions refused, by error code."),
    "jigsaw_http_request_duration_seconds": ("histogram", "Time to answer an HTTP request, by route."),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


class Metrics:
    """The gateway's metrics (one per app)."""

    def __init__(self) -> None:
        self._counters: dict[str, dict[Labels, float]] = {}
        self._histograms: dict[Labels, list[float]] = {}  # bucket counts, then sum, then count

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter."""
        series = self._counters.setdefault(name, {})
        key = tuple(sorted(labels.items()))
        series[key] = series.get(key, 0.0) + amount

    def observe(self, seconds: float, **labels: str) -> None:
        """Record one request's latency."""
        key = tuple(sorted(labels.items()))
        counts = self._histograms.setdefault(key, [0.0] * (len(LATENCY_BUCKETS) + 2))
        index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        if index < len(LATENCY_BUCKETS):
            counts[index] += 1
        counts[-2] += seconds
        counts[-1] += 1

    def value(self, name: str, **labels: str) -> float:
        """A counter's current value (tests)."""
        return self._counters.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def render(self, gauges: Mapping[str, tuple[str, Iterable[tuple[Labels, float]]]] = {}) -> str:
        """The text exposition; ``gauges`` adds ``name -> (help, [(labels, value)])`` read at scrape time."""
        lines: list[str] = []
        for name in sorted(_HELP):
            kind, help_text = _HELP[name]
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
            if kind == "counter":
                for labels, value in sorted(self._counters.get(name, {}).items()):
                    lines.append(f"{name}{_labels(labels)} {value:g}")
                continue
            for labels, counts in sorted(self._histograms.items()):
                cumulative = 0.0
                for bound, count in zip(LATENCY_BUCKETS, counts, strict=False):
                    cumulative += count
                    lines.append(f"{name}_bucket{_labels((*labels, ('le', f'{bound:g}')))} {cumulative:g}")
                lines.append(f"{name}_bucket{_labels((*labels, ('le', '+Inf')))} {counts[-1]:g}")
                lines.append(f"{name}_sum{_labels(labels)} {counts[-2]:.6f}")
                lines.append(f"{name}_count{_labels(labels)} {counts[-1]:g}")
        for name, (help_text, samples) in sorted(gauges.items()):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            lines += [f"{name}{_labels(labels)} {value:g}" for labels, value in samples]
        return "\n".join(lines) + "\n"
