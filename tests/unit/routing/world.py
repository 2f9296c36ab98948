"""A small world to test routing in: organisations, people and events, no log, no clock."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Any

from broker.model import Event
from broker.nhs import synthetic_nhs_number
from broker.routing.model import Ack, Decision, Notification, notification_id
from broker.routing.state import Output, RoutingState

UTC = dt.UTC
_numbers = itertools.count(1)


def person(
    dob: str | None = None, *, name: str | None = None, nhs: bool = True, local: str | None = None
) -> dict[str, Any]:
    """A synthetic PersonRef (999-range NHS number with a valid check digit)."""
    return {
        "nhs_number": synthetic_nhs_number(next(_numbers)) if nhs else None,
        "local_id": local,
        "name": name,
        "date_of_birth": dt.date.fromisoformat(dob) if dob else None,
    }


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


class World:
    """Feeds events to one ``RoutingState`` and keeps what came out."""

    def __init__(self) -> None:
        self.state = RoutingState()
        self.outputs: list[Output] = []
        self.clock = when("2021-01-01T09:00:00")

    def org(self, org_id: str, kind: str, area: str = "bradford", lead: str | None = "Lead") -> str:
        self.send(
            "directory.organisation",
            "PARTNERSHIP",
            org_id=org_id,
            kind=kind,
            name=org_id,
            area=area,
            endpoint=None,
            safeguarding_lead=lead,
        )
        return org_id

    def standard_orgs(self) -> None:
        for org_id, kind in (
            ("GP-A", "gp_practice"),
            ("GP-B", "gp_practice"),
            ("GP-C", "gp_practice"),
            ("CSC", "childrens_social_care"),
            ("POLICE", "police"),
            ("MW", "midwifery"),
            ("MARAC", "marac"),
            ("PSHIP", "partnership"),
            ("HV", "health_visiting"),
            ("SCHOOL", "school"),
            ("ADULTS", "adult_services"),
        ):
            self.org(org_id, kind)

    def send(self, event_type: str, source: str, at: str | None = None, **data: Any) -> tuple[str, list[Output]]:
        """Apply one event at ``at`` (or one minute after the last); returns its id and outputs."""
        moment = when(at) if at else self.clock + dt.timedelta(minutes=1)
        self.clock = moment
        event_id = str(uuid.uuid4())
        event = Event(event_id, event_type, source, moment, moment, "DPA2018-S1P18", "not_required", data)
        out = self.state.apply_event(event, moment)
        self.outputs += out
        return event_id, out

    def ack(self, event_id: str, org: str, at: str) -> None:
        moment = when(at)
        self.clock = moment
        self.outputs += self.state.apply_ack(Ack(notification_id(event_id, org), org, "a person", moment))

    def run_until(self, at: str) -> list[Output]:
        out = self.state.advance(when(at))
        self.outputs += out
        return out

    # -- helpers for the common facts ----------------------------------------------

    def register(self, who: dict[str, Any], practice: str, on: str = "2015-01-01", status: str = "registered") -> None:
        self.send(
            "gp.registration",
            practice,
            person=who,
            practice=practice,
            status=status,
            effective_date=dt.date.fromisoformat(on),
        )

    def birth(
        self,
        child: dict[str, Any],
        mother: dict[str, Any] | None,
        father: dict[str, Any] | None,
        hv: str | None = "HV",
        booking_ref: str | None = None,
    ) -> tuple[str, list[Output]]:
        born = child["date_of_birth"] or dt.date(2021, 1, 1)
        return self.send(
            "midwifery.birth_notified",
            "MW",
            booking_ref=booking_ref,
            child=child,
            mother=mother,
            father=father,
            born_on=born,
            health_visiting=hv,
        )

    def household(
        self,
        child: dict[str, Any],
        members: list[tuple[dict[str, Any], str, bool]],
        school: str | None = None,
        hv: str | None = None,
        source: str = "CSC",
    ) -> tuple[str, list[Output]]:
        return self.send(
            "csc.household_composition",
            source,
            child=child,
            members=[{"person": p, "relationship": r, "lives_with_child": lw} for p, r, lw in members],
            school=school,
            health_visiting=hv,
        )

    def incident(
        self,
        victim: dict[str, Any],
        perpetrator: dict[str, Any] | None,
        *,
        present: list[Any] | None = None,
        household: list[Any] | None = None,
        risk: str = "standard",
        marac: bool = False,
        at: str | None = None,
    ) -> tuple[str, list[Output]]:
        return self.send(
            "police.domestic_abuse_incident",
            "POLICE",
            at,
            incident_ref="I",
            victim=victim,
            perpetrator=perpetrator,
            children_present=present or [],
            children_in_household=household or [],
            risk_level=risk,
            marac_referral=marac,
            summary="synthetic incident",
        )


def notes(outputs: list[Output], kind: str | None = "alert") -> dict[str, Notification]:
    """Notifications by recipient, of one kind (alerts unless told; None for every kind)."""
    return {o.recipient: o for o in outputs if isinstance(o, Notification) and (kind is None or o.kind == kind)}


def decisions(outputs: list[Output]) -> list[Decision]:
    return [o for o in outputs if isinstance(o, Decision)]


def withheld(outputs: list[Output]) -> list[tuple[str | None, str, str]]:
    return [(w.org, w.rule, w.reason) for d in decisions(outputs) for w in d.withheld]
