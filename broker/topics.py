"""Topic names. One events topic per publishing kind, so Kafka ACLs can say who writes where."""

from __future__ import annotations

__all__ = [
    "ACCESS",
    "ACKS",
    "CHECKPOINTS",
    "DECISIONS",
    "DELIVERIES",
    "EVENTS_PREFIX",
    "NOTIFICATIONS",
    "ORG_KINDS",
    "REJECTED",
    "all_event_topics",
    "events_topic",
]

EVENTS_PREFIX = "jigsaw.events."
REJECTED = "jigsaw.rejected"
NOTIFICATIONS = "jigsaw.notifications"
DECISIONS = "jigsaw.decisions"
ACKS = "jigsaw.acks"
DELIVERIES = "jigsaw.deliveries"
CHECKPOINTS = "jigsaw.checkpoints"
ACCESS = "jigsaw.access"  # who read which notification or chronology, when

ORG_KINDS = (
    "gp_practice",
    "health_visiting",
    "school",
    "childrens_social_care",
    "police",
    "midwifery",
    "marac",
    "adult_services",
    "partnership",
)


def events_topic(kind: str) -> str:
    """The topic that accepted envelopes from organisations of this kind go to."""
    if kind not in ORG_KINDS:
        raise ValueError(f"unknown organisation kind {kind!r}")
    return EVENTS_PREFIX + kind


def all_event_topics() -> tuple[str, ...]:
    """Every events topic, in a fixed order (the router reads them all)."""
    return tuple(events_topic(kind) for kind in ORG_KINDS)
