"""Where the secure Kafka tests get their broker: one reached only over SASL_SSL with SCRAM.

In this order:

1. ``JIGSAW_TEST_KAFKA_SECURE_ENV``: the ``client.env`` that
   ``JIGSAW_KAFKA_SECURE=1 deploy/kafka/start.sh`` wrote (``deploy/test.sh``
   starts one next to the plain broker and exports it); a ``client-ssl.env``
   beside it, when the broker has an SSL listener, is used too;
2. otherwise this module starts one itself with ``deploy/kafka/start.sh`` (its
   own state dir and free ports) when Kafka's jars are cached and Java and
   openssl are installed, and stops it after the session;
3. otherwise the tests skip saying how to get one, except under ``CI=true``,
   where they fail.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shlex
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["SecureKafka", "read_env", "secure_kafka"]

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPTS = ROOT / "deploy" / "kafka"
NO_SECURE_BROKER = (
    "no secure Kafka broker for these tests: run `bash deploy/test.sh`, or start one with "
    "`JIGSAW_KAFKA_SECURE=1 JIGSAW_KAFKA_STATE=/tmp/kafka-secure JIGSAW_KAFKA_PORT=19192 "
    "JIGSAW_KAFKA_CONTROLLER_PORT=19193 deploy/kafka/start.sh` and set "
    "JIGSAW_TEST_KAFKA_SECURE_ENV=/tmp/kafka-secure/secure/client.env (needs deploy/kafka/fetch.sh first, "
    "Java 17 and openssl)"
)


@dataclasses.dataclass(frozen=True)
class SecureKafka:
    """A broker's client settings: ``sasl_ssl`` for its SASL_SSL listener, ``ssl`` for its SSL one (if any)."""

    sasl_ssl: dict[str, str]
    ssl: dict[str, str] | None


def read_env(path: Path) -> dict[str, str]:
    """The ``NAME=value`` lines of a ``client.env`` (shell-quoted, # comments) as a mapping."""
    words = shlex.split(path.read_text(encoding="utf-8"), comments=True)
    return dict(word.split("=", 1) for word in words)


def _load(client_env: Path) -> SecureKafka:
    ssl_env = client_env.with_name("client-ssl.env")
    return SecureKafka(read_env(client_env), read_env(ssl_env) if ssl_env.is_file() else None)


async def _first_commit(env: dict[str, str]) -> None:
    """Commit once as a group, so the broker has made its offsets topic before any test asks for an offset.

    On a broker that has never seen a group, ``KafkaLog.committed`` (the admin
    client's offset fetch, which does not retry) is refused with
    GroupCoordinatorNotAvailable while Kafka creates ``__consumer_offsets``. The
    plain broker's suite commits before it asks, by the order of its tests; this
    does it on purpose.
    """
    from broker.log import open_log
    from broker.settings import Settings

    log = open_log(Settings.from_env({**env, "JIGSAW_LOG_BACKEND": "kafka"}))
    try:
        await log.create_topic("jigsaw-secure-tests.first-commit")
        await log.commit("jigsaw-secure-tests.first-commit", "jigsaw-secure-tests.first-commit", 0)
    finally:
        await log.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _can_start() -> bool:
    cache = Path(os.environ.get("JIGSAW_CACHE_DIR") or Path.home() / ".cache" / "jigsaw")
    jars = any((cache / name / ".complete").is_file() for name in os.listdir(cache)) if cache.is_dir() else False
    return jars and all(shutil.which(tool) for tool in ("java", "openssl"))


@pytest.fixture(scope="session")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    """Client settings for a real broker with a SASL_SSL (SCRAM) listener and, when it has one, an SSL listener."""
    given = os.environ.get("JIGSAW_TEST_KAFKA_SECURE_ENV", "").strip()
    if given:
        kafka = _load(Path(given))
        asyncio.run(_first_commit(kafka.sasl_ssl))
        yield kafka
        return
    if not _can_start():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {NO_SECURE_BROKER}", pytrace=False)
        pytest.skip(NO_SECURE_BROKER)
    state = tmp_path_factory.mktemp("kafka-secure")
    env = {
        **os.environ,
        "JIGSAW_KAFKA_SECURE": "1",
        "JIGSAW_KAFKA_STATE": str(state),
        "JIGSAW_KAFKA_PORT": str(_free_port()),
        "JIGSAW_KAFKA_CONTROLLER_PORT": str(_free_port()),
        "JIGSAW_KAFKA_SSL_PORT": str(_free_port()),
    }
    started = subprocess.run(
        [str(KAFKA_SCRIPTS / "start.sh")], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    try:
        if started.returncode != 0:
            pytest.fail(f"deploy/kafka/start.sh (secure) failed:\n{started.stderr[-4000:]}", pytrace=False)
        kafka = _load(state / "secure" / "client.env")
        asyncio.run(_first_commit(kafka.sasl_ssl))
        yield kafka
    finally:
        subprocess.run([str(KAFKA_SCRIPTS / "stop.sh"), "--quiet"], env=env, capture_output=True, timeout=60)
