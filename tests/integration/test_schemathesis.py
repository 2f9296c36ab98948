"""Schemathesis, with its default checks, finds nothing wrong in the gateway against its own OpenAPI document."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.integration.gateway_support import running_gateway
from tests.shared import ROOT

pytestmark = pytest.mark.slow

# Per operation; the run takes seconds. JIGSAW_FUZZ_RANDOM=1 explores new cases instead of the fixed set.
MAX_EXAMPLES = int(os.environ.get("JIGSAW_FUZZ_EXAMPLES", "100"))


async def test_schemathesis_default_checks_pass_against_a_live_gateway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``schemathesis run`` (all phases, default checks, Avro bodies from the hooks) reports no failure."""
    # Limits high enough that the fuzzer reaches the handlers (429 is documented, and fuzzed elsewhere).
    rates = ("rate_per_address", "rate_burst_per_address", "rate_per_credential", "rate_burst_per_credential")
    async with running_gateway("embedded", tmp_path, **dict.fromkeys(rates, 10_000.0)) as gateway:
        note = await gateway.notify("HV-BRADFORD-NORTH")  # the recipient credential's inbox has one
        env = {
            **os.environ,
            "JIGSAW_FUZZ_NOTIFICATION_ID": note,
            "SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks",
            "PYTHONPATH": str(ROOT),
            "NO_COLOR": "1",
        }
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{gateway.base_url}/v1/openapi.json",
            f"--max-examples={MAX_EXAMPLES}",
            *([] if os.environ.get("JIGSAW_FUZZ_RANDOM") else ["--generation-deterministic"]),
            "--no-shrink",
            cwd=tmp_path,  # its .schemathesis and .hypothesis folders land here, not in the checkout
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=180)
    text = output.decode(errors="replace")
    summary = text[text.rfind("SUMMARY") :] if "SUMMARY" in text else text[-3000:]
    with capsys.disabled():  # the summary shows in CI's log, passing or not
        print("\nschemathesis " + summary)
    assert process.returncode == 0, text[-12000:]
