"""Follow-ups to a notification that are not new notifications: escalations, and when they fall due (pure).

An escalation goes to the organisation that was told, naming its safeguarding
lead: when a notification is not acknowledged by ``ack_by``, or a challenge is
not resolved by the end of its ``respond_by`` date (R10). It is urgent, needs
no acknowledgement, and carries what the original did.
"""

from __future__ import annotations

import datetime as dt

from broker.routing.model import Notification, notification_id

__all__ = ["ROUTINE_ACK", "URGENT_ACK", "ack_deadline", "challenge_deadline", "escalation"]

URGENT_ACK = dt.timedelta(hours=24)
ROUTINE_ACK = dt.timedelta(days=5)


def ack_deadline(at: dt.datetime, priority: str) -> dt.datetime:
    """``ack_by``: urgent within 24 hours, routine within 5 days of being sent."""
    return at + (URGENT_ACK if priority == "urgent" else ROUTINE_ACK)


def challenge_deadline(respond_by: dt.date) -> dt.datetime:
    """00:00Z the day after ``respond_by`` (R10)."""
    return dt.datetime.combine(respond_by + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def escalation(note: Notification, cause: str, at: dt.datetime, lead: str | None) -> Notification:
    """The follow-up of ``note`` to the same organisation's safeguarding lead ``lead``, at ``at``.

    ``cause`` is ``unacknowledged`` (at ``ack_by``) or ``unanswered_challenge`` (R10). It carries what
    the original did (flags, view, content) and names why; its id comes from the original's.
    """
    if cause == "unacknowledged":
        nid = notification_id(note.notification_id, "escalation")
        why = f"not acknowledged by {note.ack_by and note.ack_by.isoformat()}: escalated to the safeguarding lead"
        rule = "ack"
    else:
        nid = notification_id(note.event_id, note.recipient, "unanswered_challenge")
        why = "challenge not resolved by its respond_by date: escalated to the safeguarding lead"
        rule = "R10"
    return Notification(
        notification_id=nid,
        kind="escalation",
        event_id=note.event_id,
        event_type=note.event_type,
        recipient=note.recipient,
        at=at,
        priority="urgent",
        flags=note.flags,
        view=note.view,
        reason=f"{why} ({lead or 'no lead named'}); first sent because: {note.reason}",
        also_notified=note.also_notified,
        ack_by=None,
        rule=rule,
        content=note.content,
        cause=cause,
        follows=note.notification_id,
        safeguarding_lead=lead,
    )
