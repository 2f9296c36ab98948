"""Fixtures shared by every test package: where Kafka is, and one log per backend.

Where the Kafka tests get their broker, in this order (see
``../shared/design/kafka-local.md``):

1. ``JIGSAW_TEST_KAFKA_BOOTSTRAP``: a broker already running (the one
   ``deploy/test.sh`` starts from ``deploy/kafka``, or a developer's cluster);
2. testcontainers' Kafka module, when a Docker engine answers;
3. otherwise the Kafka tests skip with a message saying how to get a broker,
   except in CI (``CI=true``), where they fail: CI never skips them.

Every test names its own topics and groups (``unique_name``), so tests never
see each other's records on a shared broker.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from broker.log import EmbeddedLog, Log, MemoryLog

# testcontainers' Kafka module drives Confluent's image; Confluent Platform 7.9 is Apache Kafka 3.9,
# the line deploy/kafka pins.
KAFKA_TEST_IMAGE = "confluentinc/cp-kafka:7.9.1"

NO_BROKER = (
    "no Kafka broker for the tests marked 'kafka': run `bash deploy/test.sh` (it fetches and starts "
    "one from Maven Central jars; needs Java 17 and Maven), or start one with `deploy/kafka/fetch.sh && "
    "deploy/kafka/start.sh` and set JIGSAW_TEST_KAFKA_BOOTSTRAP=127.0.0.1:19092, or start Docker "
    "so testcontainers can run one"
)


# Outcomes of the tests marked ``kafka``, reported at the end of the run so the
# output says how many ran against a real broker (deploy/test.sh reads the line).
_kafka_outcomes: collections.Counter[str] = collections.Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "kafka" not in report.keywords:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _kafka_outcomes[report.outcome] += 1
    elif report.when == "teardown" and report.failed:
        _kafka_outcomes["failed"] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _kafka_outcomes:
        return
    passed, failed, skipped = (_kafka_outcomes[k] for k in ("passed", "failed", "skipped"))
    if passed + failed == 0:
        terminalreporter.write_line(f"kafka-marked tests: none ran against a real broker ({skipped} skipped)")
        return
    where = os.environ.get("JIGSAW_TEST_KAFKA_BOOTSTRAP") or "testcontainers"
    terminalreporter.write_line(
        f"kafka-marked tests against a real broker ({where}): {passed} passed, "
        f"{failed} failed or errored, {skipped} skipped"
    )


def unique_name(prefix: str = "test") -> str:
    """A topic or group name no other test (or earlier run on the same broker) uses."""
    return f"{prefix}.{uuid.uuid4().hex}"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _docker_answers() -> bool:
    try:
        import docker  # installed with testcontainers

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no socket, no permission, no package: no Docker for us
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """The bootstrap address of a real Kafka broker for this test session."""
    address = os.environ.get("JIGSAW_TEST_KAFKA_BOOTSTRAP", "").strip()
    if address:
        yield address
        return
    if _docker_answers():
        from testcontainers.community.kafka import KafkaContainer

        image = os.environ.get("JIGSAW_TEST_KAFKA_IMAGE", KAFKA_TEST_IMAGE)
        with KafkaContainer(image).with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    if _in_ci():
        pytest.fail(f"CI=true and {NO_BROKER}", pytrace=False)
    pytest.skip(NO_BROKER)


@dataclasses.dataclass
class LogBackend:
    """One backend under test, able to open the same storage again (a consumer restart)."""

    name: str
    _factory: Callable[[], Log]
    opened: list[Log] = dataclasses.field(default_factory=list)

    async def open(self) -> Log:
        """A new, started log object on this backend's storage.

        For ``memory`` the storage is the object itself, so reopening hands back
        the same one; ``embedded`` reopens the same file, ``kafka`` the same broker.
        """
        log = self._factory()
        await log.start()
        self.opened.append(log)
        return log


BACKENDS = ["memory", "embedded", pytest.param("kafka", marks=pytest.mark.kafka)]


@pytest.fixture(params=BACKENDS)
async def log_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LogBackend]:
    """Each log backend in turn: memory, embedded (a SQLite file in tmp_path) and real Kafka."""
    name: str = request.param
    if name == "memory":
        memory = MemoryLog()

        def factory() -> Log:
            return memory  # the storage is the object itself

    elif name == "embedded":
        path = tmp_path / "log.db"

        def factory() -> Log:
            return EmbeddedLog(path)

    else:
        from broker.log.kafka import KafkaLog

        bootstrap: str = request.getfixturevalue("kafka_bootstrap")

        def factory() -> Log:
            return KafkaLog(bootstrap, client_id="jigsaw-tests")

    backend = LogBackend(name, factory)
    yield backend
    for log in reversed(backend.opened):
        await log.close()


@pytest.fixture
async def log(log_backend: LogBackend) -> Log:
    """A started log on each backend; closed after the test."""
    return await log_backend.open()


@pytest.fixture
def topic() -> str:
    """A topic name of this test's own."""
    return unique_name("test.topic")


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Makes names (topics, groups) of this test's own: ``unique("group")``."""
    return unique_name
