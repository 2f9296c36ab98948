"""The README's "On an existing Kafka cluster" steps, run as written, give a service that answers /healthz."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## On an existing Kafka cluster"


def cluster_block(readme: str) -> str:
    """The first ```bash block of the README's cluster section, as written."""
    section = readme.split(SECTION, 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert match, f"no ```bash block under {SECTION!r} in README.md"
    return match.group(1)


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"the README's cluster block no longer says {old!r}: update this test with it"
    return text.replace(old, new)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _health(url: str, proc: subprocess.Popen[bytes], err: Path) -> dict[str, object]:
    deadline = time.monotonic() + 90  # topic creation on a fresh broker can take a while
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the README's steps exited {proc.returncode}:\n{err.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return dict(json.loads(response.read()))
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)
    raise AssertionError(f"jigsaw serve did not answer {url} within 90 s:\n{err.read_text()[-3000:]}")


def test_the_readme_cluster_steps_start_a_service_on_kafka(tmp_path: Path, kafka_bootstrap: str) -> None:
    """keys init, an agency key and credential, then serve on Kafka: /healthz answers ok on the kafka backend."""
    script = cluster_block(README.read_text(encoding="utf-8"))
    assert "jigsaw keys init" in script.split("jigsaw serve")[0], "keys init must come before serve"
    script = _replace(script, "kafka-1.example:9092,kafka-2.example:9092", kafka_bootstrap)
    script = _replace(script, "/etc/jigsaw", str(tmp_path / "etc"))
    script = _replace(script, "JIGSAW_KAFKA_REPLICATION_FACTOR=3", "JIGSAW_KAFKA_REPLICATION_FACTOR=1")  # one node
    port = _free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("JIGSAW_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",  # this environment's `jigsaw`
        JIGSAW_HTTP_PORT=str(port),
        # Topics of this run's own on the shared test broker (the README's lines are run as written).
        JIGSAW_KAFKA_TOPIC_PREFIX=f"readme{uuid.uuid4().hex[:8]}.",
        JIGSAW_LOG_FORMAT="json",
    )
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own process group: bash and the serve it runs stop together
        )
    try:
        health = _health(f"http://127.0.0.1:{port}/healthz", proc, err)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert health["status"] == "ok", health  # anonymous callers hear only ok or unavailable
    assert '"log_backend": "kafka"' in err.read_text(), err.read_text()[-3000:]  # it served on Kafka
    key_file = tmp_path / "etc" / "jigsaw.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert '"event": "stopped"' in err.read_text(), err.read_text()[-3000:]  # serve stopped cleanly on SIGTERM
    printed = out.read_text()
    assert "jigsaw.key (0600" in printed and re.search(r"^\S{20,}$", printed, re.MULTILINE), printed
