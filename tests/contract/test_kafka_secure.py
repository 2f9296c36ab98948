"""The Kafka backend over SASL_SSL with SCRAM (and SSL with a client certificate), against a real broker.

Every case of the log contract (``test_log_contract.py``) runs here again, each
on a Kafka log opened from settings as ``jigsaw serve`` opens one
(``Settings.from_env`` then ``open_log``) for the SASL_SSL listener: the module
imports the contract's cases and overrides their ``log_backend`` fixture. Then
what must fail does, quickly and with a message naming the setting to fix: a
wrong password, a CA that did not sign the broker's certificate, no client
certificate where the listener requires one. The broker comes from
``kafka_secure_support.secure_kafka``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import pytest

from broker.errors import LogUnavailable
from broker.log import Log, open_log
from broker.log.kafka import KafkaLog
from broker.settings import Settings
from tests.conftest import LogBackend
from tests.contract import test_log_contract
from tests.contract.kafka_secure_support import SecureKafka, secure_kafka
from tests.integration.tls_support import make_pki

__all__ = ["secure_kafka"]

pytestmark = pytest.mark.kafka

# The contract's cases, collected again in this module, where ``log_backend`` below is the secure broker.
globals().update({name: case for name, case in vars(test_log_contract).items() if name.startswith("test_")})

_FAIL_FAST_S = 20.0  # a refused connection must be reported within this, never hang


def _open(env: Mapping[str, str], **changes: str) -> Log:
    """A Kafka log built from ``env`` (a ``client.env``) as ``jigsaw serve`` builds one."""
    settings = Settings.from_env(
        {**env, "JIGSAW_LOG_BACKEND": "kafka", "JIGSAW_KAFKA_CLIENT_ID": "jigsaw-secure-tests", **changes}
    )
    return open_log(settings)


@pytest.fixture
async def log_backend(secure_kafka: SecureKafka) -> AsyncIterator[LogBackend]:
    """The Kafka backend on the SASL_SSL listener (the contract's cases take their ``log`` from it)."""
    backend = LogBackend("kafka", lambda: _open(secure_kafka.sasl_ssl))
    yield backend
    for log in reversed(backend.opened):
        await log.close()


async def _refused(log: Log) -> LogUnavailable:
    """Start ``log`` and append, expecting LogUnavailable soon; the error."""
    started = time.monotonic()
    try:
        with pytest.raises(LogUnavailable) as caught:
            await asyncio.wait_for(log.start(), _FAIL_FAST_S)
            await log.append("jigsaw.secure.refused", b"never written")
    finally:
        await log.close()
    assert time.monotonic() - started < _FAIL_FAST_S
    return caught.value


async def test_every_client_speaks_sasl_ssl(log: Log, topic: str, unique: Callable[[str], str]) -> None:
    """The producer, admin, readers, committer and group member all connect over SASL_SSL with SCRAM."""
    assert isinstance(log, KafkaLog)
    await log.create_topic(topic, partitions=2)
    await log.append(topic, b"v")
    await log.read(topic, 0)
    group = unique("group")
    await log.commit(group, topic, 1)
    member = log.member(unique("members"), topic)
    try:
        deadline = time.monotonic() + _FAIL_FAST_S
        while await member.poll() != {0, 1}:
            assert time.monotonic() < deadline, "the group member was never given the topic's partitions"
            await asyncio.sleep(0.1)
        await member.commit(1, 1)
        assert await member.committed(1) == 1
        consumers = [log._meta, log._committers[group].consumer, *(r.consumer for r in log._readers.values())]
        clients = [log._producer.client, log._admin._client, member.consumer._client]
        clients += [c._client for c in consumers]
        assert {(c._security_protocol, c._sasl_mechanism) for c in clients} == {("SASL_SSL", "SCRAM-SHA-512")}
    finally:
        await member.close()
    assert await log.committed(group, topic) == 1


async def test_a_wrong_password_is_log_unavailable_naming_the_password_file(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    """A SCRAM password the broker refuses fails the start at once, saying to check the password file."""
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)

    error = await _refused(_open(secure_kafka.sasl_ssl, JIGSAW_KAFKA_SASL_PASSWORD_FILE=str(wrong)))

    assert "refused the SCRAM-SHA-512 login of user 'jigsaw'" in error.message
    assert f"JIGSAW_KAFKA_SASL_PASSWORD_FILE ({wrong})" in error.message
    assert "not-the-password" not in error.message
    real = Path(secure_kafka.sasl_ssl["JIGSAW_KAFKA_SASL_PASSWORD_FILE"]).read_text().strip()
    assert real not in error.message
    assert error.code == "log_unavailable"


async def test_a_broker_certificate_from_an_untrusted_ca_is_refused(secure_kafka: SecureKafka, tmp_path: Path) -> None:
    """With a CA file that did not sign the broker's certificate, the client refuses it and says which file."""
    other_ca = make_pki(tmp_path).other_ca

    error = await _refused(_open(secure_kafka.sasl_ssl, JIGSAW_KAFKA_SSL_CA_FILE=str(other_ca)))

    assert "its TLS certificate was refused" in error.message
    assert f"JIGSAW_KAFKA_SSL_CA_FILE ({other_ca})" in error.message


async def test_scram_sha_256_logs_in_too(secure_kafka: SecureKafka, topic: str) -> None:
    """JIGSAW_KAFKA_SASL_MECHANISM=SCRAM-SHA-256 logs in as the same user."""
    log = _open(secure_kafka.sasl_ssl, JIGSAW_KAFKA_SASL_MECHANISM="SCRAM-SHA-256")
    try:
        await log.append(topic, b"over sha-256")
        assert [r.value for r in await log.read(topic, 0)] == [b"over sha-256"]
    finally:
        await log.close()


def _ssl_env(secure_kafka: SecureKafka) -> dict[str, str]:
    if secure_kafka.ssl is None:
        pytest.fail("the secure broker has no SSL listener: start it with JIGSAW_KAFKA_SSL_PORT set", pytrace=False)
    return secure_kafka.ssl


async def test_ssl_with_a_client_certificate_round_trips(secure_kafka: SecureKafka, topic: str) -> None:
    """On the SSL listener, which requires a client certificate, a client with one appends and reads."""
    log = _open(_ssl_env(secure_kafka))
    try:
        await log.append(topic, b"over mutual TLS", key=b"k")
        [record] = await log.read(topic, 0)
        assert (record.key, record.value) == (b"k", b"over mutual TLS")
    finally:
        await log.close()


async def test_ssl_without_a_client_certificate_is_refused(secure_kafka: SecureKafka) -> None:
    """Without a client certificate the SSL listener hangs up, and the error says to set one."""
    env = {
        k: v
        for k, v in _ssl_env(secure_kafka).items()
        if k not in ("JIGSAW_KAFKA_SSL_CERT_FILE", "JIGSAW_KAFKA_SSL_KEY_FILE")
    }

    error = await _refused(_open(env))

    assert "set JIGSAW_KAFKA_SSL_CERT_FILE and JIGSAW_KAFKA_SSL_KEY_FILE" in error.message
