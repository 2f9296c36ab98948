"""`jigsaw serve` as a real process: health, metrics, a publish, and a clean SIGTERM shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from broker.client import JigsawClient
from broker.envelope import load_signing_key
from broker.envelope.testing import sample_data
from broker.observability import read_sample


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _jigsaw(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "broker", *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout


async def _wait_healthy(url: str, proc: subprocess.Popen[str]) -> dict[str, object]:
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                async with session.get(url + "/healthz") as response:
                    return dict(await response.json())
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    raise AssertionError("jigsaw serve did not answer /healthz within 20 s")


def _start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "broker", "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, err


async def test_serve_publishes_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """serve answers /healthz and /metrics, accepts an event, exits 0 on SIGTERM, and the event survives."""
    port = _free_port()
    env = {
        **os.environ,
        "JIGSAW_DATA_DIR": str(tmp_path / "data"),
        "JIGSAW_HTTP_PORT": str(port),
        "JIGSAW_ROLES": "gateway",
        "JIGSAW_LOG_FORMAT": "json",
    }
    env.pop("JIGSAW_CREDENTIALS_FILE", None)
    _jigsaw(env, "keys", "new", "GP-B83001", "--kind", "gp_practice", "--valid-from", "2020-01-01T00:00:00Z")
    [key_id] = [json.loads(line)["key_id"] for line in _jigsaw(env, "keys", "list", "--json").splitlines()]
    token = _jigsaw(
        env, "keys", "credential", "GP-B83001", "--role", "publisher", "--file", str(tmp_path / "creds.json")
    )
    env["JIGSAW_CREDENTIALS_FILE"] = str(tmp_path / "creds.json")
    key = load_signing_key(tmp_path / "data" / "keys" / "private" / f"{key_id}.json")
    url = f"http://127.0.0.1:{port}"

    proc = _start(env)
    try:
        health = await _wait_healthy(url, proc)
        assert health == {"status": "ok"}  # up or down only, to an anonymous caller
        proc.send_signal(signal.SIGHUP)  # reloads the credentials and keys; the service carries on
        async with JigsawClient(url, token.strip(), key=key) as client:
            # An event that names no organisation: this directory lists none.
            env_built = client.build("gp.safeguarding_information", sample_data("gp.safeguarding_information"))
            first = await client.send(env_built)
            assert first.status == 202, first.body
        proc.send_signal(signal.SIGUSR1)  # where every task waits, to stderr; the service carries on
        async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
            text = await response.text()
        assert read_sample(text, "jigsaw_events_accepted_total", event_type="gp.safeguarding_information") == 1
    finally:
        code, err = _stop(proc)
    assert code == 0, err
    assert '"event": "stopped"' in err and '"event": "reloaded"' in err
    dump = err[err.index("asyncio tasks (SIGUSR1) ---") : err.index("--- end of tasks ---")]
    assert "Stack for <Task" in dump and "commands/serve.py" in dump  # the task serving, where it waits
    assert env_built.event_id not in dump and str(env_built.payload) not in dump  # code only, never an event

    proc = _start(env)
    try:
        await _wait_healthy(url, proc)
        async with JigsawClient(url, token.strip()) as client:
            again = await client.send(env_built)
        assert again.status == 200 and again.body["offset"] == first.body["offset"]
    finally:
        code, err = _stop(proc)
    assert code == 0, err
