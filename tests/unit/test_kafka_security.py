"""The Kafka security settings: what is refused at start, and what every aiokafka client is given."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import pytest

from broker.errors import ConfigError, LogUnavailable
from broker.log import open_log
from broker.log.kafka import KafkaLog
from broker.log.kafka_security import KafkaSecurity, bootstrap_hosts
from broker.secretfiles import SECRET_VARIABLES
from broker.settings import Settings
from tests.integration.tls_support import make_pki


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    """A SCRAM password file, private to its owner."""
    path = tmp_path / "kafka.password"
    path.write_text("s3cret-scram\n")
    path.chmod(0o600)
    return path


def _sasl_ssl(password_file: Path, **more: str) -> dict[str, str]:
    return {
        "JIGSAW_LOG_BACKEND": "kafka",
        "JIGSAW_KAFKA_BOOTSTRAP": "kafka-1.example:9093",
        "JIGSAW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "JIGSAW_KAFKA_SASL_USERNAME": "jigsaw",
        "JIGSAW_KAFKA_SASL_PASSWORD_FILE": str(password_file),
        **more,
    }


def test_plaintext_is_the_default_and_adds_nothing_but_the_protocol() -> None:
    """With no security settings the clients connect with PLAINTEXT, as before."""
    settings = Settings.from_env({"JIGSAW_LOG_BACKEND": "kafka"})

    security = KafkaSecurity.from_settings(settings)

    assert security == KafkaSecurity()
    assert security.client_options() == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_gives_a_verifying_tls_context_and_the_scram_login(password_file: Path) -> None:
    """SASL_SSL: TLS 1.2+ with the certificate and host name checked, SCRAM-SHA-512 as the user, password from file."""
    settings = Settings.from_env(_sasl_ssl(password_file))

    options = KafkaSecurity.from_settings(settings).client_options()

    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "jigsaw",
        "sasl_plain_password": "s3cret-scram",
    }


def test_open_log_hands_the_security_to_the_kafka_log(password_file: Path) -> None:
    """open_log builds a KafkaLog whose clients all get the TLS and SASL options (through _common)."""
    log = open_log(Settings.from_env(_sasl_ssl(password_file, JIGSAW_KAFKA_SASL_MECHANISM="scram-sha-256")))

    assert isinstance(log, KafkaLog)
    common = log._common()
    assert (common["security_protocol"], common["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-256")
    assert isinstance(common["ssl_context"], ssl.SSLContext)


def test_the_password_never_appears_in_descriptions(password_file: Path) -> None:
    """The security settings' repr and description name the password file, never the password."""
    security = KafkaSecurity.from_settings(Settings.from_env(_sasl_ssl(password_file)))

    assert "s3cret" not in repr(security) + security.describe()
    assert security.describe() == "SASL_SSL (SCRAM-SHA-512 as 'jigsaw')"


def test_the_password_file_and_client_key_are_secret_files(password_file: Path) -> None:
    """A SASL password file readable by the group is refused at start, with the chmod that fixes it."""
    assert {"JIGSAW_KAFKA_SASL_PASSWORD_FILE", "JIGSAW_KAFKA_SSL_KEY_FILE"} <= set(SECRET_VARIABLES)
    password_file.chmod(0o640)

    with pytest.raises(ConfigError, match=f"JIGSAW_KAFKA_SASL_PASSWORD_FILE: {password_file} .*chmod 600"):
        Settings.from_env(_sasl_ssl(password_file))


def test_an_empty_password_file_is_refused(password_file: Path) -> None:
    """A password file with nothing in it is a configuration error, not a login that fails later."""
    password_file.write_text("\n")

    with pytest.raises(ConfigError, match="is empty"):
        open_log(Settings.from_env(_sasl_ssl(password_file)))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"JIGSAW_KAFKA_SECURITY_PROTOCOL": "TLS"}, "must be one of PLAINTEXT, SSL, SASL_SSL, SASL_PLAINTEXT"),
        ({"JIGSAW_KAFKA_SASL_MECHANISM": "GSSAPI"}, "must be one of SCRAM-SHA-512, SCRAM-SHA-256, PLAIN"),
        ({"JIGSAW_KAFKA_SASL_USERNAME": ""}, "needs JIGSAW_KAFKA_SASL_USERNAME and JIGSAW_KAFKA_SASL_PASSWORD_FILE"),
        ({"JIGSAW_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "would send every record to kafka-1.example in clear"),
        (
            {
                "JIGSAW_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "JIGSAW_KAFKA_BOOTSTRAP": "127.0.0.1:9092",
                "JIGSAW_KAFKA_SASL_MECHANISM": "PLAIN",
            },
            "PLAIN sends the password itself, so it needs TLS",
        ),
        ({"JIGSAW_KAFKA_SECURITY_PROTOCOL": "SSL"}, "does not log in: set it to SASL_SSL, or unset them"),
    ],
    ids=["unknown-protocol", "unknown-mechanism", "no-username", "sasl-plaintext-remote", "plain-no-tls", "ssl-sasl"],
)
def test_unsafe_or_inconsistent_settings_are_refused(
    password_file: Path, changes: dict[str, str], message: str
) -> None:
    """Settings that would expose records or a password, or would be silently ignored, fail at start."""
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(_sasl_ssl(password_file, **changes))


def test_sasl_plaintext_is_allowed_to_this_machine_only(password_file: Path) -> None:
    """SASL_PLAINTEXT with SCRAM is accepted when every bootstrap host is loopback."""
    env = _sasl_ssl(password_file, JIGSAW_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT")
    env["JIGSAW_KAFKA_BOOTSTRAP"] = "127.0.0.1:9092,localhost:9093,[::1]:9094"

    options = KafkaSecurity.from_settings(Settings.from_env(env)).client_options()

    assert options["security_protocol"] == "SASL_PLAINTEXT" and "ssl_context" not in options


def test_tls_files_without_tls_are_refused(tmp_path: Path) -> None:
    """A CA file with PLAINTEXT would be ignored, so it is refused; so is a certificate without its key."""
    ca = tmp_path / "ca.pem"
    ca.write_text("not used")

    with pytest.raises(ConfigError, match=r"JIGSAW_KAFKA_SSL_CA_FILE is set but .*=PLAINTEXT does not use TLS"):
        Settings.from_env({"JIGSAW_KAFKA_SSL_CA_FILE": str(ca)})
    with pytest.raises(ConfigError, match="set both JIGSAW_KAFKA_SSL_CERT_FILE and JIGSAW_KAFKA_SSL_KEY_FILE"):
        Settings.from_env({"JIGSAW_KAFKA_SECURITY_PROTOCOL": "SSL", "JIGSAW_KAFKA_SSL_CERT_FILE": str(ca)})


def test_a_ca_file_that_is_not_pem_is_a_config_error(tmp_path: Path) -> None:
    """A CA file that holds no certificate is refused when the log is built, naming the variable."""
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")

    with pytest.raises(ConfigError, match="JIGSAW_KAFKA_SSL_CA_FILE: cannot read"):
        open_log(Settings.from_env({"JIGSAW_LOG_BACKEND": "kafka", "JIGSAW_KAFKA_SECURITY_PROTOCOL": "SSL",
                                    "JIGSAW_KAFKA_SSL_CA_FILE": str(ca)}))  # fmt: skip


def test_bootstrap_hosts_reads_names_addresses_and_ports() -> None:
    """Bootstrap entries become (host, port), with IPv6 brackets removed and 9092 when no port is given."""
    assert bootstrap_hosts("kafka-1:9093, 10.0.0.2:9094,[::1]:9095,kafka-4") == [
        ("kafka-1", 9093),
        ("10.0.0.2", 9094),
        ("::1", 9095),
        ("kafka-4", 9092),
    ]


def test_the_readme_lines_build_a_sasl_ssl_kafka_log(tmp_path: Path) -> None:
    """The README's "Kafka over TLS and SCRAM" exports, files in place, make a SASL_SSL log with that CA."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("### Kafka over TLS and SCRAM", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    env = dict(line.split("#")[0].strip().removeprefix("export ").split("=", 1) for line in block.splitlines())
    env = {name: value.replace("/etc/jigsaw", str(tmp_path)) for name, value in env.items()}
    pki = make_pki(tmp_path / "pki")
    Path(env["JIGSAW_KAFKA_SSL_CA_FILE"]).write_bytes(pki.ca.read_bytes())
    password = Path(env["JIGSAW_KAFKA_SASL_PASSWORD_FILE"])
    password.write_text("from-the-readme\n")
    password.chmod(0o600)

    log = open_log(Settings.from_env({**env, "JIGSAW_LOG_BACKEND": "kafka", "JIGSAW_KAFKA_BOOTSTRAP": "kafka-1:9093"}))

    assert isinstance(log, KafkaLog)
    common = log._common()
    assert (common["security_protocol"], common["sasl_plain_username"]) == ("SASL_SSL", "jigsaw")
    assert common["sasl_plain_password"] == "from-the-readme"
    assert [c["subject"] for c in common["ssl_context"].get_ca_certs()] == [((("commonName", "Jigsaw test ca"),),)]


async def test_a_broker_that_is_down_keeps_the_plain_message(password_file: Path) -> None:
    """With SASL_SSL and nothing listening, the start fails at once asking whether the broker runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = _sasl_ssl(password_file, JIGSAW_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}")
    log = open_log(Settings.from_env(env))

    with pytest.raises(LogUnavailable, match=r"could not start \(is the broker running\?\)"):
        await asyncio.wait_for(log.start(), 20)
    await log.close()
