"""What ``jigsaw demo`` prints once the cases are through: the inboxes table, a summary and how to query.

Everything here reads the log (``scan``: every partition) or what publishing
came to (``Published``); nothing publishes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from broker import topics
from broker.delivery.directory import DirectoryFollower
from broker.delivery.records import decode_delivery
from broker.delivery.report import Labels, render_inboxes
from broker.log.base import Log, Record
from broker.log.scan import scan
from broker.routing.model import Ack, Notification
from broker.routing.records import decode_ack, decode_notification
from broker.settings import Settings
from broker.web.people import UserMap

__all__ = ["Published", "SetupView", "how_to_query", "report", "summary", "wait_until_quiet"]


@dataclasses.dataclass
class Published:
    """What publishing the cases came to."""

    events: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)  # event id -> (case, ref)
    refused: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)  # (case, ref, error)
    acknowledged: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)  # (case, ref, org)
    people: dict[str, str] = dataclasses.field(default_factory=dict)  # NHS number -> handle
    adapted: dict[str, int] = dataclasses.field(default_factory=dict)  # agency -> steps given to its adapter


class SetupView(Protocol):
    """What ``how_to_query`` needs of the demo's setup (``demo.Setup``)."""

    @property
    def directory(self) -> Path: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def token_files(self) -> dict[str, Path]: ...


async def wait_until_quiet(log: Log, *, timeout: float = 60.0) -> None:
    """Until the router has read every input and the dispatcher has handled every notification, twice running."""
    previous: tuple[int, ...] | None = None
    for _ in range(int(timeout / 0.25)):
        ends = [await log.end_offset(topics.INPUT)]
        routed = [await log.committed("jigsaw-router", topics.INPUT) or 0]
        notes = await log.end_offset(topics.NOTIFICATIONS)
        dispatched = await log.committed("jigsaw-dispatcher", topics.NOTIFICATIONS) or 0
        state = (*ends, notes)
        if routed == ends and dispatched >= notes and state == previous:
            return
        previous = state
        await asyncio.sleep(0.25)
    raise TimeoutError("the router and dispatcher did not finish in time")


async def _all(log: Log, topic: str) -> list[Record]:
    """Every record of every partition of ``topic`` now, tombstones left out."""
    return [r async for batch in scan(log, topic) for r in batch if r.value is not None]


async def report(log: Log, published: Published, *, width: int) -> tuple[str, list[Notification], dict[str, Ack]]:
    """The table of what each organisation received, from the log; also the notifications and acks."""
    notes = list(
        {n.notification_id: n for n in map(decode_notification, await _all(log, topics.NOTIFICATIONS))}.values()
    )
    acks: dict[str, Ack] = {}
    for ack in map(decode_ack, [r for r in await _all(log, topics.INPUT) if topics.is_ack(r)]):
        acks.setdefault(ack.notification_id, ack)
    channels: dict[str, str] = {}
    outcome_text = {
        "inbox": "in the inbox (no webhook endpoint)",
        "delivered": "pushed by webhook",
        "dead_letter": "webhook given up; in the inbox",
    }
    for record in await _all(log, topics.DELIVERIES):
        delivery = decode_delivery(record)
        if delivery is not None and delivery.outcome in outcome_text:
            channels[delivery.notification_id] = outcome_text[delivery.outcome]
    follower = DirectoryFollower(log)
    await follower.refresh()

    def rename(text: str) -> str:
        for number, handle in published.people.items():
            text = text.replace(f"({number})", f"({handle})")
        return text

    table = render_inboxes(
        notes,
        acks=acks,
        channels=channels,
        directory=follower.directory.entries(),
        labels=Labels(published.events, rename),
        now=dt.datetime.now(dt.UTC),
        width=width,
    )
    return table, notes, acks


def adapted(published: Published) -> str:
    return ", ".join(f"{n} {agency}" for agency, n in sorted(published.adapted.items())) or "none"


def summary(published: Published, notes: list[Notification], acks: Mapping[str, Ack]) -> str:
    kinds: dict[str, int] = {}
    for note in notes:
        kinds[note.kind] = kinds.get(note.kind, 0) + 1
    lines = [
        f"Published {len(published.events)} events from the review's three cases through the HTTP gateway.",
        f"Sent through the agencies' adapters (one export record each): {adapted(published)}; "
        f"{len(published.events) - sum(published.adapted.values())} with the client.",
        "Refused, as the cases intend: " + (", ".join(f"{c}/{r} ({e})" for c, r, e in published.refused) or "nothing"),
        f"Sent {len(notes)} notifications to {len({n.recipient for n in notes})} organisations: "
        + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())),
        f"Acknowledged through the inbox API, as the cases do: {len(acks)}.",
        "Deadlines run on the live clock: each notification was sent now, so it is due for acknowledgement",
        "24 hours (urgent) or 5 days (routine) from now, and escalates to the organisation's safeguarding lead",
        "then if nobody acknowledges it. The challenge in child-3 had to be answered by a date in 2022: that",
        "has passed, so its escalations (cause unanswered_challenge) are already here.",
    ]
    return "\n".join(lines)


def how_to_query(base_url: str, setup: SetupView, notes: list[Notification], acks: Mapping[str, Ack]) -> str:
    """curl lines for one organisation with something to acknowledge."""
    waiting = [n for n in notes if n.ack_by is not None and n.notification_id not in acks]
    sample = waiting[0] if waiting else notes[0]
    org = sample.recipient
    token = setup.token_files[org]
    nid = sample.notification_id
    return "\n".join(
        [
            f"The web pages are at {base_url}/web/ (local demo sign-in: pick one of these people):",
            *(f"  {p.name} ({p.org_id}, {p.role})" for p in UserMap.load(setup.settings.web_users_file).local_people()),
            "",
            f"The service is running at {base_url} with its data in {setup.directory}.",
            f"Each organisation's recipient token is in {token.parent}/<ORG>.token. For example, as {org}:",
            "",
            f"  TOKEN=$(cat {token})",
            f'  curl -s -H "Authorization: Bearer $TOKEN" {base_url}/v1/inbox',
            f"  curl -s -H \"Authorization: Bearer $TOKEN\" '{base_url}/v1/inbox?unacknowledged=true&priority=urgent'",
            f'  curl -s -H "Authorization: Bearer $TOKEN" {base_url}/v1/inbox/{nid}',
            '  curl -s -X POST -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\',
            f'       -d \'{{"by": "Your Name"}}\' {base_url}/v1/inbox/{nid}/ack',
            f"  curl -s {base_url}/v1/webhook-key",
            f"  curl -s {base_url}/v1/openapi.json",
        ]
    )
