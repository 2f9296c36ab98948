"""The chaos run in short: 2 gateways, 2 routers, 2 dispatchers as processes, one SIGKILLed every 5 s, nothing lost.

bench/chaos.py is the long version (60 s and more); this runs it for 20 s on the
test broker, under a topic prefix of its own, and reads its verdict.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_killing_processes_under_load_loses_and_duplicates_nothing(kafka_bootstrap: str) -> None:
    """Every accepted event once in the log, every notification recorded once and delivered, no webhook-id
    sent again after its delivery was recorded, and jigsaw replay --kafka clean."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "chaos.py"),
            "--bootstrap",
            kafka_bootstrap,
            "--seconds",
            "20",
            "--kill-every",
            "5",
            "--rate",
            "5",
            "--settle",
            "90",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    print(done.stdout[-4000:])
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "verdict: OK" in done.stdout
    killed = re.search(r"killed and restarted: (\d+)", done.stdout)
    assert killed is not None and int(killed.group(1)) >= 3
