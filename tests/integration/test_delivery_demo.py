"""``jigsaw demo --no-wait``: the review's cases through the HTTP gateway, and the table of what was received."""

from __future__ import annotations

import io
import re
from pathlib import Path

from broker.cli import main
from broker.commands.demo import PACKAGED_CASES, demo, find_cases
from tests.shared import SCENARIOS, require_shared


async def test_demo_publishes_the_cases_and_prints_who_received_what(tmp_path: Path) -> None:
    """The demo sends every case through the gateway and shows each organisation's notifications and why."""
    out = io.StringIO()
    assert await demo(tmp_path / "demo", 0, wait=False, cases_dir=None, out=out) == 0
    text = out.getvalue()
    assert "Published 45 events" in text
    assert "child-1/forged (signature_invalid)" in text and "child-1/bad-nhs (invalid_nhs_number)" in text
    # Every step an agency's adapter carries went through it (bad-nhs refused there); the rest with the client.
    assert "Sent through the agencies' adapters (one export record each): 14 csc, 15 gp, 6 midwifery, 6 police" in text
    assert "; 4 with the client." in text
    # The acknowledgements found their notifications by the event ids the adapters gave (uuid5 of the record).
    assert "Acknowledged through the inbox API, as the cases do: 4." in text
    assert re.search(r"midwifery\.pregnancy_booked [0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-", text)
    sent = re.search(r"Sent (\d+) notifications to (\d+) organisations: (.*)", text)
    assert sent is not None
    # The same routing as `jigsaw simulate` gives for the three cases; escalations run on the live clock.
    assert sent.group(3) == "54 alert, 7 catch_up, 2 escalation, 4 history, 11 pre_birth_alert"
    hv = text[text.index("HV-BRADFORD-NORTH  ") :]
    hv = hv[: hv.index("\n\n")]
    assert "incident · police.domestic_abuse_incident" in hv
    assert "acknowledged by Duty professional, HV-BRADFORD-NORTH" in hv
    assert "escalation" in text and "challenge not resolved by its respond_by date" in text
    assert (tmp_path / "demo" / "tokens" / "HV-BRADFORD-NORTH.token").stat().st_mode & 0o777 == 0o600


def test_packaged_cases_match_the_shared_ones() -> None:
    """The copies shipped for installs without ../shared are the review's cases byte for byte."""
    require_shared(SCENARIOS)
    shared = find_cases(SCENARIOS)
    for path in find_cases(PACKAGED_CASES):
        twin = next(p for p in shared if p.name == path.name)
        assert twin.read_bytes() == path.read_bytes()


def test_demo_refuses_a_directory_in_use(tmp_path: Path) -> None:
    """``--dir`` must be new or empty: the demo never writes over someone's data."""
    (tmp_path / "something").write_text("x")
    assert main(["demo", "--no-wait", "--dir", str(tmp_path)]) == 2
