"""How Jigsaw's Kafka clients reach the cluster: TLS, SASL/SCRAM, and what to say when that fails.

``KafkaSecurity`` holds the ``JIGSAW_KAFKA_SECURITY_PROTOCOL``, ``JIGSAW_KAFKA_SSL_*``
and ``JIGSAW_KAFKA_SASL_*`` settings; ``check`` refuses combinations that would
send safeguarding records, or a password, across a network in clear, and
``client_options`` turns them into the keyword arguments every aiokafka client
takes (``KafkaLog._common``). The rules:

- ``PLAINTEXT`` (the default) is for a broker on a private network or this
  machine; ``SSL`` and ``SASL_SSL`` verify the broker's certificate against
  ``JIGSAW_KAFKA_SSL_CA_FILE`` (only that CA) or the system's CAs, with TLS 1.2
  at least and the host name checked.
- ``SASL_PLAINTEXT`` is refused unless every bootstrap host is loopback: SCRAM
  keeps the password off the wire, but every record would cross it in clear.
- ``PLAIN`` sends the password itself, so it is refused without TLS.
- TLS files with a protocol that has no TLS, or SASL credentials with one that
  has no SASL, are refused rather than silently ignored.

When a client cannot start, aiokafka only says "Unable to bootstrap" (the cause
goes to its log). ``explain`` connects once more, directly, to learn why (a
certificate not signed by the CA, a refused password, a missing client
certificate) and says which setting to fix. It never includes the password.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any

from broker.errors import ConfigError, LogUnavailable
from broker.gateway.tls import is_loopback_host
from broker.secretfiles import check_secret_file

if TYPE_CHECKING:
    from broker.settings import Settings

__all__ = ["PROTOCOLS", "SASL_MECHANISMS", "KafkaSecurity", "bootstrap_hosts"]

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT")
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
_PROBE_S = 10.0  # the longest the diagnosis of a failed start may take


def bootstrap_hosts(bootstrap: str) -> list[tuple[str, int]]:
    """``host:port,[::1]:port`` as (host, port) pairs (a missing port is Kafka's 9092).

    Raises:
        ConfigError: an entry has a port that is not a number.
    """
    pairs = []
    for entry in (part.strip() for part in bootstrap.split(",")):
        if not entry:
            continue
        host, sep, port = entry.rpartition(":")
        if not sep or host.endswith(":") or ("]" not in entry and ":" in host):  # no port, or bare IPv6
            host, port = entry, "9092"
        if not port.isdigit():
            raise ConfigError(f"JIGSAW_KAFKA_BOOTSTRAP entry {entry!r} must be host:port")
        pairs.append((host.strip("[]"), int(port)))
    return pairs


@dataclasses.dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """How to reach the Kafka cluster; the default is plain TCP with no authentication."""

    protocol: str = "PLAINTEXT"
    ca_file: Path | None = None  # the CA that signed the brokers' certificates (else the system's CAs)
    cert_file: Path | None = None  # a client certificate, for listeners that require one
    key_file: Path | None = None
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password_file: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaSecurity:
        """The security part of Jigsaw's settings."""
        return cls(
            protocol=settings.kafka_security_protocol,
            ca_file=settings.kafka_ssl_ca_file,
            cert_file=settings.kafka_ssl_cert_file,
            key_file=settings.kafka_ssl_key_file,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_username=settings.kafka_sasl_username,
            sasl_password_file=settings.kafka_sasl_password_file,
        )

    @property
    def tls(self) -> bool:
        """Whether connections are encrypted and the broker's certificate verified."""
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        """Whether the client logs in with a SASL username and password."""
        return self.protocol.startswith("SASL_")

    def describe(self) -> str:
        """The settings in words, for messages (never the password)."""
        if not self.sasl:
            return self.protocol
        return f"{self.protocol} ({self.sasl_mechanism} as {self.sasl_username!r})"

    def check(self, bootstrap: str) -> None:
        """Refuse settings that are inconsistent or would expose records or passwords.

        Args:
            bootstrap: ``JIGSAW_KAFKA_BOOTSTRAP``, whose hosts decide whether SASL_PLAINTEXT may be used.

        Raises:
            ConfigError: naming the variable to change.
        """
        name = "JIGSAW_KAFKA_SECURITY_PROTOCOL"
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"{name} must be one of {', '.join(PROTOCOLS)}, not {self.protocol!r}")
        if not self.tls:
            given = [v for v, f in (("CA", self.ca_file), ("CERT", self.cert_file), ("KEY", self.key_file)) if f]
            if given:
                raise ConfigError(
                    f"JIGSAW_KAFKA_SSL_{given[0]}_FILE is set but {name}={self.protocol} does not use TLS: "
                    "set it to SSL or SASL_SSL, or unset the JIGSAW_KAFKA_SSL_* files"
                )
        if bool(self.cert_file) != bool(self.key_file):
            raise ConfigError("set both JIGSAW_KAFKA_SSL_CERT_FILE and JIGSAW_KAFKA_SSL_KEY_FILE, or neither")
        if not self.sasl:
            if self.sasl_username or self.sasl_password_file:
                raise ConfigError(
                    f"JIGSAW_KAFKA_SASL_USERNAME or _PASSWORD_FILE is set but {name}={self.protocol} does not log in: "
                    "set it to SASL_SSL, or unset them"
                )
            return
        if self.sasl_mechanism not in SASL_MECHANISMS:
            raise ConfigError(
                f"JIGSAW_KAFKA_SASL_MECHANISM must be one of {', '.join(SASL_MECHANISMS)}, not {self.sasl_mechanism!r}"
            )
        if not self.sasl_username or not self.sasl_password_file:
            raise ConfigError(
                f"{name}={self.protocol} needs JIGSAW_KAFKA_SASL_USERNAME and JIGSAW_KAFKA_SASL_PASSWORD_FILE "
                "(a file, mode 0600, holding the password)"
            )
        if not self.tls and self.sasl_mechanism == "PLAIN":
            raise ConfigError(
                f"JIGSAW_KAFKA_SASL_MECHANISM=PLAIN sends the password itself, so it needs TLS: set {name}=SASL_SSL"
            )
        if not self.tls:
            remote = [host for host, _ in bootstrap_hosts(bootstrap) if not is_loopback_host(host)]
            if remote:
                raise ConfigError(
                    f"{name}=SASL_PLAINTEXT would send every record to {remote[0]} in clear: use SASL_SSL "
                    "(SASL_PLAINTEXT is allowed only to a broker on this machine)"
                )

    def client_options(self) -> dict[str, Any]:
        """The keyword arguments every aiokafka client gets for these settings (reads the files).

        Raises:
            ConfigError: a file is missing, unreadable, open to others, or not what it should be.
        """
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.tls:
            options["ssl_context"] = self._ssl_context()
        if self.sasl:
            options.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self._password(),
            )
        return options

    def _ssl_context(self) -> ssl.SSLContext:
        try:
            # With a CA file only that CA is trusted, as a Kafka truststore would; else the system's.
            context = ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"JIGSAW_KAFKA_SSL_CA_FILE: cannot read {self.ca_file} as PEM certificates: {exc}"
            ) from exc
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file is not None and self.key_file is not None:
            check_secret_file(self.key_file, "JIGSAW_KAFKA_SSL_KEY_FILE")
            try:
                context.load_cert_chain(self.cert_file, self.key_file)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"cannot use the Kafka client certificate {self.cert_file} with the key {self.key_file}: {exc}; "
                    "check both are PEM, the key is not encrypted, and it belongs to the certificate"
                ) from exc
        return context

    def _password(self) -> str:
        path = self.sasl_password_file
        assert path is not None  # check() demands one with SASL
        check_secret_file(path, "JIGSAW_KAFKA_SASL_PASSWORD_FILE")
        try:
            password = path.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"JIGSAW_KAFKA_SASL_PASSWORD_FILE: cannot read {path}: {exc}") from exc
        if not password:
            raise ConfigError(f"JIGSAW_KAFKA_SASL_PASSWORD_FILE: {path} is empty; it must hold the SASL password")
        return password

    async def explain(self, bootstrap: str, error: LogUnavailable, options: dict[str, Any]) -> None:
        """Raise a clearer ``LogUnavailable`` for a client that could not start, when one more try says why.

        Returns without raising when the cause is not a TLS or SASL one (a broker
        that is down, say): the caller then re-raises ``error``.

        Args:
            bootstrap: where the clients tried.
            error: what the start raised.
            options: ``client_options()`` as the clients got them.

        Raises:
            LogUnavailable: naming the setting to fix, chained to ``error``.
        """
        hosts = bootstrap_hosts(bootstrap)
        if self.protocol == "PLAINTEXT" or not hosts:
            return
        from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed, UnsupportedSaslMechanismError

        host, port = hosts[0]
        try:
            await asyncio.wait_for(_probe(host, port, options), _PROBE_S)
        except ssl.SSLCertVerificationError as exc:
            trusted = f"JIGSAW_KAFKA_SSL_CA_FILE ({self.ca_file})" if self.ca_file else "the system's CAs"
            why = (
                f"its TLS certificate was refused ({exc.verify_message}): it must be issued by a CA in {trusted} "
                f"and name the host {host}; set JIGSAW_KAFKA_SSL_CA_FILE to the CA that signed the broker's certificate"
            )
        except SaslAuthenticationFailed as exc:
            why = (
                f"it refused the {self.sasl_mechanism} login of user {self.sasl_username!r} ({exc}): check "
                "JIGSAW_KAFKA_SASL_USERNAME and the password in JIGSAW_KAFKA_SASL_PASSWORD_FILE "
                f"({self.sasl_password_file})"
            )
        except UnsupportedSaslMechanismError as exc:
            why = f"it does not offer {self.sasl_mechanism} ({exc}): set JIGSAW_KAFKA_SASL_MECHANISM to one it enables"
        except (ssl.SSLError, ConnectionResetError, KafkaConnectionError) as exc:
            why = self._handshake_advice(host, port, exc)  # the handshake failed, or the broker hung up after it
        except Exception:  # refused, unreachable, unknown host, timed out: the original message says so
            return
        else:
            return  # it works now: the failure was something else, or has passed
        raise LogUnavailable(
            f"Kafka at {bootstrap} ({self.describe()}) could not be used: {why}",
            **{**error.evidence, "bootstrap": bootstrap},
        ) from error

    def _handshake_advice(self, host: str, port: int, exc: BaseException) -> str:
        """What to check when the connection fails during or just after the TLS handshake."""
        from broker.log.kafka_safety import describe_error  # one way to put an aiokafka error in words

        if self.cert_file:
            advice = (
                f"the broker did not accept the client certificate in JIGSAW_KAFKA_SSL_CERT_FILE ({self.cert_file}): "
                "it must be issued by a CA the broker trusts"
            )
        else:
            advice = (
                "if the listener requires a client certificate, set JIGSAW_KAFKA_SSL_CERT_FILE and "
                "JIGSAW_KAFKA_SSL_KEY_FILE to one issued by a CA the broker trusts"
            )
        return (
            f"the connection failed during or just after the TLS handshake ({describe_error(exc)}); {advice}; "
            f"and check that {host}:{port} is a {self.protocol} listener"
        )


async def _probe(host: str, port: int, options: dict[str, Any]) -> None:
    """Connect as the clients do and ask for metadata, raising what went wrong (aiokafka's errors as they are)."""
    from aiokafka.conn import create_conn
    from aiokafka.protocol.metadata import MetadataRequest

    conn = await create_conn(host, port, request_timeout_ms=int(_PROBE_S * 1000), **options)
    try:
        await conn.send(MetadataRequest([]))
    finally:
        conn.close()
