"""Issue 11's attacks on links and free text, repeated through a real gateway: each is refused and recorded.

Each test is named after the attack. Nothing reaches an agency topic, so nothing reaches the router:
no school reads a child's chronology, no real health visitor is taken off a baby's notifications,
no notification goes to an organisation that does not exist, and no hidden character is stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broker.envelope import encode_envelope
from broker.envelope.testing import sample_data
from tests.integration.gateway_support import Gateway, running_gateway


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway on 127.0.0.1 over the embedded log, the sample organisations in its directory."""
    async with running_gateway("embedded", tmp_path) as gw:
        yield gw


def _assignment(org: str, role: str) -> dict[str, object]:
    return {**sample_data("link.professional_assigned"), "org": org, "role": role}


async def test_self_assignment_a_school_as_a_childs_social_worker(gateway: Gateway) -> None:
    """A school naming itself a child's social worker is unknown_organisation (a school cannot hold that role)."""
    marks = await gateway.mark()
    env = gateway.build(
        "link.professional_assigned", _assignment("SCHOOL-107300", "social_worker"), source="SCHOOL-107300"
    )
    status, body = await gateway.post(encode_envelope(env), org="SCHOOL-107300")
    assert (status, body["error"]) == (422, "unknown_organisation")
    await gateway.assert_refused(marks, "unknown_organisation", [env.event_id])


async def test_self_assignment_the_police_as_a_babys_health_visitor(gateway: Gateway) -> None:
    """The police assigning a health visiting service is not_permitted; naming itself in that role is refused too."""
    marks = await gateway.mark()
    other = gateway.build(
        "link.professional_assigned", _assignment("HV-BRADFORD-NORTH", "health_visitor"), source="POLICE-WYP"
    )
    status, body = await gateway.post(encode_envelope(other), org="POLICE-WYP")
    assert (status, body["error"]) == (403, "not_permitted")
    itself = gateway.build(
        "link.professional_assigned", _assignment("POLICE-WYP", "health_visitor"), source="POLICE-WYP"
    )
    status, body = await gateway.post(encode_envelope(itself), org="POLICE-WYP")
    assert (status, body["error"]) == (422, "unknown_organisation")
    await gateway.assert_refused(marks, "not_permitted", [other.event_id])
    await gateway.assert_refused(marks, "unknown_organisation", [itself.event_id])


async def test_notifications_to_an_organisation_that_does_not_exist(gateway: Gateway) -> None:
    """A registration at a practice the directory does not list is refused: nobody unreachable is linked."""
    marks = await gateway.mark()
    data = {**sample_data("gp.registration"), "practice": "GP-Z99999"}
    env = gateway.build("gp.registration", data)
    status, body = await gateway.post(encode_envelope(env), org="GP-B83001")
    assert (status, body["error"]) == (422, "unknown_organisation") and "GP-Z99999" in body["message"]
    await gateway.assert_refused(marks, "unknown_organisation", [env.event_id])


@pytest.mark.parametrize(
    ("attack", "summary"),
    [
        ("nul", "refuge\x00"),
        ("escape sequence", "\x1b[2J\x1b[Hcleared the screen"),
        ("carriage return", "line one\r\nline two"),
        ("bidirectional override", "12 Secret Lane \u202eenal terceS 21"),
    ],
)
async def test_hidden_characters_in_free_text(gateway: Gateway, attack: str, summary: str) -> None:
    """NUL, ESC, CR and bidi overrides in a summary are schema_invalid, naming the field; nothing is stored."""
    marks = await gateway.mark()
    env = gateway.build(data={**sample_data("police.domestic_abuse_incident"), "summary": summary})
    status, body = await gateway.post(encode_envelope(env))
    assert (status, body["error"]) == (400, "schema_invalid"), attack
    assert "'summary'" in body["message"]
    await gateway.assert_refused(marks, "schema_invalid", [env.event_id])


async def test_a_legitimate_assignment_still_goes_through(gateway: Gateway) -> None:
    """The children's social care org assigning a school to a child is accepted (202)."""
    env = gateway.build("link.professional_assigned", _assignment("SCHOOL-107300", "school"), source="CSC-BRADFORD")
    status, body = await gateway.post(encode_envelope(env), org="CSC-BRADFORD")
    assert status == 202, body
