"""Topic names, and the headers that say what an input record is.

Everything that changes routing goes to one single-partition topic,
``jigsaw.input``, in the one order Kafka gives it: accepted events (from any
number of gateways) and acknowledgements (from the inbox). The router applies
it in offset order, and so does the auditor's replay; nothing is sorted by
time. A consumer that wants one kind of record filters on headers: ``record``
(``event`` or ``ack``), and on events ``event_type``, ``event_id``, ``source``
and ``source_kind`` (the publishing organisation's kind). National volumes are
a few events a second; one partition carries thousands.
"""

from __future__ import annotations

from broker.log.base import Record

__all__ = [
    "ACCESS",
    "ACK",
    "DECISIONS",
    "DELIVERIES",
    "DIRECTORY_AT_HEADER",
    "EVENT",
    "INPUT",
    "NOTIFICATIONS",
    "ORG_KINDS",
    "RECORD_HEADER",
    "REJECTED",
    "SOURCE_KIND_HEADER",
    "TREE_HEADS",
    "is_ack",
    "is_event",
]

INPUT = "jigsaw.input"  # accepted events and acknowledgements, one partition, the router's one order
RECORD_HEADER = "record"  # what an input record is: EVENT or ACK
SOURCE_KIND_HEADER = "source_kind"  # on events: the publishing organisation's kind (police, gp_practice, ...)
EVENT = b"event"
# On notifications (and decisions): the input offset of the last partnership event (the directory) the
# router had applied when it routed them; a dispatcher that has read the input past it has every entry
# they need.
DIRECTORY_AT_HEADER = "directory_at"
ACK = b"ack"
REJECTED = "jigsaw.rejected"
NOTIFICATIONS = "jigsaw.notifications"
DECISIONS = "jigsaw.decisions"
DELIVERIES = "jigsaw.deliveries"
TREE_HEADS = "jigsaw.tree-heads"  # signed tree heads (seals) of the Merkle tree over INPUT, from the one sealer
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


def is_ack(record: Record) -> bool:
    """True for an acknowledgement on the input topic."""
    return record.header(RECORD_HEADER) == ACK


def is_event(record: Record) -> bool:
    """True for an accepted event on the input topic."""
    return record.header(RECORD_HEADER) == EVENT
