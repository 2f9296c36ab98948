"""The intake checks OrgIds against the directory as it stands, however the directory reached the log."""

from __future__ import annotations

import datetime as dt

from broker import topics
from broker.client import build_envelope
from broker.envelope import Envelope
from broker.envelope.testing import make_keys, sample_data, sample_directory
from broker.intake import Intake
from broker.log import MemoryLog

NOW = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
KEYS = make_keys()


def _registration(practice: str = "GP-B83001") -> Envelope:
    data = {**sample_data("gp.registration"), "practice": practice}
    return build_envelope(
        "gp.registration", data, source="GP-B83001", key=KEYS.signing["GP-B83001"], occurred_at=NOW, issued_at=NOW
    )


async def test_an_event_naming_an_org_the_directory_lacks_is_refused_and_recorded() -> None:
    """Before the partnership lists the practice, a registration naming it is unknown_organisation."""
    log = MemoryLog()
    intake = Intake(log, lambda: KEYS.registry)
    await intake.start()
    outcome = await intake.submit(_registration(), caller="GP-B83001", now=NOW)
    assert outcome.status == "refused" and outcome.error is not None
    assert outcome.error.code == "unknown_organisation" and outcome.http_status == 422
    assert len(await log.read(topics.REJECTED, 0)) == 1
    for entry in sample_directory(KEYS, at=NOW):
        assert (await intake.submit(entry, caller=None, now=NOW)).status == "accepted"
    assert (await intake.submit(_registration(), caller="GP-B83001", now=NOW)).status == "accepted"
    wrong_kind = await intake.submit(_registration("SCHOOL-107300"), caller="GP-B83001", now=NOW)
    assert wrong_kind.error is not None and "needs a GP practice" in wrong_kind.error.message


async def test_a_restarted_intake_reads_the_directory_from_the_log() -> None:
    """The directory is rebuilt on start, like the index of accepted ids."""
    log = MemoryLog()
    first = Intake(log, lambda: KEYS.registry)
    await first.start()
    await first.submit_many(sample_directory(KEYS, at=NOW), caller=None, now=NOW)
    again = Intake(log, lambda: KEYS.registry)
    await again.start()
    assert (await again.submit(_registration(), caller=None, now=NOW)).status == "accepted"


async def test_an_entry_another_gateway_accepted_is_read_before_refusing() -> None:
    """Two gateways on one log: an organisation listed through the other one is found, not refused."""
    log = MemoryLog()
    one, other = Intake(log, lambda: KEYS.registry), Intake(log, lambda: KEYS.registry)
    await one.start()
    await other.start()
    await other.submit_many(sample_directory(KEYS, at=NOW), caller=None, now=NOW)
    assert (await one.submit(_registration(), caller=None, now=NOW)).status == "accepted"
    assert (await one.submit_many([_registration("GP-NOWHERE")], caller=None, now=NOW))[0].status == "refused"
