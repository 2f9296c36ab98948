"""The example family's exports through the adapters and the real gateway route as its scenario does in simulate."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest

from adapters import ADAPTERS, event_id, publish_records, rows_from_records
from adapters.base import Row
from broker.routing.model import Notification
from broker.routing.service import RouterService
from broker.simulate import Scenario, load_scenario, run_scenario
from tests.integration.test_adapters import family_gateway, open_log
from tests.unit.adapters.family import EXAMPLES, EXPORTS, Export

SCENARIO = Path(__file__).parent / "data" / "ashworth-family.json"
NOTIFICATION_KINDS = frozenset({"alert", "catch_up", "history", "pre_birth_alert", "escalation", "retraction"})

Sent = tuple[str, str, str]  # (event ref, recipient, kind)

# On Kafka the router's many short reads across every events topic take about half a minute.
BACKENDS = ["embedded", pytest.param("kafka", marks=[pytest.mark.kafka, pytest.mark.slow])]


class VirtualClock:
    """The story's time, shared by the gateway (its receiving time) and the adapter (its signing time)."""

    def __init__(self) -> None:
        self.now = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@dataclasses.dataclass(frozen=True)
class Step:
    """One record of an example export, when it happened, and the scenario refs of the events it maps to."""

    at: dt.datetime
    order: int
    export: Export
    record: dict[str, Any]
    refs: dict[str, str]  # event id -> record ref (the scenario's step ref)


def _story() -> list[Step]:
    """Every record of the family's JSON exports (the same records as the CSVs), in the order they happened."""
    steps: list[Step] = []
    for export in EXPORTS:
        data = json.loads((EXAMPLES / export.json).read_text(encoding="utf-8"))
        for record in data["records"] if isinstance(data, dict) else data:
            (row,) = rows_from_records([record])
            assert isinstance(row, Row)
            mapped = ADAPTERS[export.agency].map_row(row, export.org_id)
            refs = {event_id(export.org_id, m.record): m.record.ref for m in mapped}
            steps.append(Step(min(m.occurred_at for m in mapped), len(steps), export, record, refs))
    return sorted(steps, key=lambda s: (s.at, s.order))


async def _simulated(scenario: Scenario) -> set[Sent]:
    out = io.StringIO()
    assert await run_scenario(scenario, out) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert not [line for line in lines if line["kind"] == "rejected"]
    return {
        (line["event_ref"], line["recipient"], line["kind"]) for line in lines if line["kind"] in NOTIFICATION_KINDS
    }


def test_the_scenario_has_one_step_per_adapter_event() -> None:
    """The scenario's steps are exactly the events the example exports map to, at the same times."""
    scenario = load_scenario(SCENARIO)
    from_exports = sorted((s.at, ref) for s in _story() for ref in s.refs.values())
    from_scenario = sorted(
        (dt.datetime.fromisoformat(step["at"].replace("Z", "+00:00")), step["ref"]) for step in scenario.steps
    )
    assert from_exports == from_scenario


@pytest.mark.parametrize("backend", BACKENDS)
async def test_exports_through_the_gateway_route_as_the_scenario_does_in_simulate(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Notifications (event, recipient, kind) from the router over the gateway-fed log equal simulate's."""
    scenario = load_scenario(SCENARIO)
    expected = await _simulated(scenario)
    story = _story()
    clock = VirtualClock()
    refs: dict[str, str] = {}
    outputs: list[Any] = []
    async with family_gateway(tmp_path, open_log(backend, tmp_path, request), clock=clock) as gw:
        router = RouterService(gw.log)
        await router.start()
        # The directory first, as simulate publishes it: a minute before the first step, by the partnership.
        clock.now = story[0].at - dt.timedelta(minutes=1)
        async with gw.client("PARTNERSHIP-BRADFORD") as partnership:
            for org in scenario.organisations:
                fields = ("org_id", "kind", "name", "area", "endpoint", "safeguarding_lead")
                result = await partnership.publish(
                    "directory.organisation",
                    {k: org.get(k) for k in fields},
                    occurred_at=clock.now,
                    issued_at=clock.now,
                )
                assert result.status == 202, result.body
        outputs += await router.run_until_idle()
        for step in story:
            # What simulate does between steps: route what is waiting, then let the clock run to just before this one.
            outputs += await router.run_until_idle(now=step.at - dt.timedelta(milliseconds=1))
            clock.now = step.at
            report = await publish_records(
                step.export.agency, [step.record], gw.client(step.export.org_id), clock=clock
            )
            assert report.ok and report.accepted == report.events == len(step.refs), report.to_json()
            refs.update(step.refs)
        assert scenario.run_until is not None
        outputs += await router.run_until_idle(now=scenario.run_until)
    got = {(refs[n.event_id], n.recipient, n.kind) for n in outputs if isinstance(n, Notification)}
    assert got == expected
    # The story's point, as routed: what the review found missing reached the people who needed it.
    assert ("coded_entry:HMP-E-88120", "CSC-BRADFORD", "history") in got  # the father's drinking, from his GP
    assert ("incident:WYP-26-004417@1", "MARAC-BRADFORD", "alert") in got  # DASH 15 graded medium travels as high
    assert ("incident:WYP-26-004417@1", "HV-BRADFORD-NORTH", "catch_up") in got  # the new baby's health visitor
    assert ("cp_plan:CP-26-0040@started:2026-03-09", "GP-B83002", "alert") in got  # the father's GP, another practice
