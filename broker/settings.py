"""One frozen settings object, built from an explicit mapping.

``Settings.from_env(os.environ)`` reads ``JIGSAW_*`` variables. Secrets (the
API credentials file, Jigsaw's own signing key) are read from the files the
variables name, never from the variable values themselves. Defaults run
everything on the embedded log with no setup.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from broker.errors import ConfigError

__all__ = ["ENV_VARS", "LOG_BACKENDS", "ROLES", "STORES", "Settings", "verify_worker_count"]

LOG_BACKENDS = ("embedded", "kafka", "memory")
ROLES = ("gateway", "router", "dispatcher", "views")
STORES = ("sqlite", "postgresql")

# Every variable the code reads, with its default (None: no default).
# docker-compose.yml is tested against this table.
ENV_VARS: dict[str, str | None] = {
    "JIGSAW_LOG_BACKEND": "embedded",
    "JIGSAW_DATA_DIR": ".jigsaw",
    "JIGSAW_LOG_PATH": None,
    "JIGSAW_KEYS_DIR": None,
    "JIGSAW_STORE": "sqlite",
    "JIGSAW_STORE_PATH": None,
    "JIGSAW_STORE_DSN_FILE": None,
    "JIGSAW_STORE_POOL_SIZE": "10",
    "JIGSAW_KAFKA_BOOTSTRAP": "127.0.0.1:19092",
    "JIGSAW_KAFKA_CLIENT_ID": "jigsaw",
    "JIGSAW_KAFKA_REPLICATION_FACTOR": "1",
    # How the Kafka clients reach the cluster (broker/log/kafka_security.py has the rules).
    "JIGSAW_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
    "JIGSAW_KAFKA_SSL_CA_FILE": None,
    "JIGSAW_KAFKA_SSL_CERT_FILE": None,
    "JIGSAW_KAFKA_SSL_KEY_FILE": None,
    "JIGSAW_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "JIGSAW_KAFKA_SASL_USERNAME": None,
    "JIGSAW_KAFKA_SASL_PASSWORD_FILE": None,
    "JIGSAW_KAFKA_MIN_INSYNC_REPLICAS": None,  # unset: 2 from a replication factor of 3 up (broker.log.kafka)
    "JIGSAW_HTTP_HOST": "127.0.0.1",
    "JIGSAW_HTTP_PORT": "8080",
    "JIGSAW_ROLES": "gateway,router,dispatcher,views",
    "JIGSAW_MAX_BODY_BYTES": str(1024 * 1024),
    "JIGSAW_MAX_BATCH": "500",
    "JIGSAW_CREDENTIALS_FILE": None,
    "JIGSAW_SIGNING_KEY_FILE": None,
    "JIGSAW_CHECKPOINT_EVERY": "100",
    "JIGSAW_TREE_HEAD_INTERVAL": "10",
    "JIGSAW_APPEND_TIMEOUT": "10",
    "JIGSAW_SNAPSHOT_EVERY": "10000",
    "JIGSAW_ROUTER_LINGER_MS": "2",
    "JIGSAW_VERIFY_WORKERS": "auto",
    "JIGSAW_KAFKA_PARTITIONS": "6",
    "JIGSAW_KAFKA_TOPIC_PREFIX": None,
    "JIGSAW_WEBHOOK_RETRY_SCHEDULE": "standard",
    "JIGSAW_WEBHOOK_TIMEOUT": "10",
    "JIGSAW_LOG_FORMAT": "auto",
    "JIGSAW_LOG_LEVEL": "info",
    # Transport security and abuse limits (broker/gateway/tls.py, limits.py, listener.py).
    "JIGSAW_TLS_CERT_FILE": None,
    "JIGSAW_TLS_KEY_FILE": None,
    "JIGSAW_TLS_CLIENT_CA_FILE": None,
    "JIGSAW_WEBHOOK_CA_FILE": None,
    "JIGSAW_RATE_PER_ADDRESS": "50",
    "JIGSAW_RATE_BURST_PER_ADDRESS": "200",
    "JIGSAW_RATE_PER_CREDENTIAL": "50",
    "JIGSAW_RATE_BURST_PER_CREDENTIAL": "200",
    "JIGSAW_REFUSAL_SUMMARY_SECONDS": "60",
    "JIGSAW_HTTP_HEADER_TIMEOUT": "30",
    "JIGSAW_HTTP_BODY_TIMEOUT": "60",
    "JIGSAW_HTTP_MAX_CONNECTIONS": "1000",
    "JIGSAW_HTTP_MAX_CONNECTIONS_PER_ADDRESS": "100",
    "JIGSAW_METRICS_REQUIRE_CREDENTIAL": "false",
    "JIGSAW_WEB_OIDC_ISSUER": None,  # the web pages' OpenID Connect provider (sign-in as a person)
    "JIGSAW_WEB_OIDC_CLIENT_ID": "jigsaw",
    "JIGSAW_WEB_OIDC_CLIENT_SECRET_FILE": None,
    "JIGSAW_WEB_USERS_FILE": None,  # the admin's mapping of people to organisation and role
    "JIGSAW_WEB_LOCAL_SIGN_IN": "false",  # true: the demo's local sign-in as the users file's people
    "JIGSAW_WEB_BASE_URL": None,  # the pages' public address (https:// makes cookies Secure)
    "JIGSAW_WEB_IDLE_MINUTES": "30",
    "JIGSAW_WEB_ASSETS_DIR": None,  # node_modules holding govuk-frontend (deploy/web/fetch.sh)
}


def verify_worker_count(settings: Settings) -> int:
    """Signature worker processes a gateway runs: as set, or one per core but the event loop's, at most 2."""
    if settings.verify_workers is not None:
        return settings.verify_workers
    return max(0, min(2, (os.cpu_count() or 1) - 1))


def _int(env: Mapping[str, str], name: str, *, least: int = 1) -> int:
    raw = env.get(name, ENV_VARS[name]) or ""
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < least:
        raise ConfigError(f"{name} must be positive, not {value}" if least == 1 else f"{name} must be {least} or more")
    return value


def _float(env: Mapping[str, str], name: str) -> float:
    raw = env.get(name) or ENV_VARS[name] or ""
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if not value > 0:
        raise ConfigError(f"{name} must be positive, not {raw}")
    return value


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or ENV_VARS[name] or "").lower()
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{name} takes true or false, not {raw!r}")
    return raw in ("true", "1", "yes")


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Everything Jigsaw reads from its environment, frozen once at start."""

    log_backend: str = "embedded"
    data_dir: Path = Path(".jigsaw")
    log_path: Path = Path(".jigsaw/log.db")
    keys_dir: Path = Path(".jigsaw/keys")
    store: str = "sqlite"  # the serving views: sqlite (one machine) or postgresql (many), see broker/store
    store_path: Path = Path(".jigsaw/store.db")
    store_dsn_file: Path | None = None  # a file holding the postgresql:// DSN (it may carry a password)
    store_pool_size: int = 10
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_client_id: str = "jigsaw"
    kafka_replication_factor: int = 1
    kafka_security_protocol: str = "PLAINTEXT"  # or SSL, SASL_SSL (SASL_PLAINTEXT only to this machine)
    kafka_ssl_ca_file: Path | None = None
    kafka_ssl_cert_file: Path | None = None
    kafka_ssl_key_file: Path | None = None
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_min_insync_replicas: int | None = None  # min.insync.replicas of created topics; None: derived
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    roles: tuple[str, ...] = ROLES
    max_body_bytes: int = 1024 * 1024
    max_batch: int = 500
    credentials_file: Path | None = None
    signing_key_file: Path | None = None
    checkpoint_every: int = 100  # a signed tree head after this many input records
    tree_head_interval: int = 10  # ... or after this many seconds with input records no head covers yet
    append_timeout: int = 10  # seconds a submission may wait for the log before it is answered log_unavailable
    snapshot_every: int = 10_000  # input records between the router's snapshots (in the store)
    router_linger_ms: int = 2  # how long the router waits for more input once some arrived (0: not at all)
    verify_workers: int | None = None  # processes checking a batch's signatures (None: auto, cores - 1, at most 2)
    kafka_partitions: int = 6  # partitions of the notifications topic (dispatchers share them as a group)
    kafka_topic_prefix: str = ""  # put before every topic and group name: several deployments on one cluster
    webhook_retry_schedule: str = "standard"  # comma-separated seconds between retries, or standard/testing
    webhook_timeout: int = 10  # seconds an endpoint has to answer one webhook
    log_format: str = "auto"
    log_level: str = "info"
    tls_cert_file: Path | None = None  # HTTPS for the gateway when given with tls_key_file
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None  # agencies must then present a certificate this CA issued
    webhook_ca_file: Path | None = None  # a CA trusted for webhook endpoints, besides the system's
    rate_per_address: float = 50.0  # requests a second, token bucket per client address
    rate_burst_per_address: float = 200.0
    rate_per_credential: float = 50.0  # requests a second, token bucket per credential
    rate_burst_per_credential: float = 200.0
    refusal_summary_seconds: float = 60.0  # anonymous refusals: one summary record per address per interval
    http_header_timeout: float = 30.0  # a connection must send a whole request head in this time
    http_body_timeout: float = 60.0  # and then the whole body in this time
    http_max_connections: int = 1000
    http_max_connections_per_address: int = 100
    metrics_require_credential: bool = False  # /metrics for admin or auditor credentials only
    web_oidc_issuer: str | None = None
    web_oidc_client_id: str = "jigsaw"
    web_oidc_client_secret_file: Path | None = None
    web_users_file: Path | None = None
    web_local_sign_in: bool = False
    web_base_url: str | None = None
    web_idle_minutes: int = 30
    web_assets_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from a mapping of ``JIGSAW_*`` variables.

        Args:
            env: usually ``os.environ``; tests pass a plain dict.

        Raises:
            ConfigError: a value is malformed or names a file that is missing.
        """

        def get(name: str) -> str:
            return env.get(name) or ENV_VARS[name] or ""

        backend = get("JIGSAW_LOG_BACKEND")
        if backend not in LOG_BACKENDS:
            raise ConfigError(f"JIGSAW_LOG_BACKEND must be one of {', '.join(LOG_BACKENDS)}, not {backend!r}")
        data_dir = Path(get("JIGSAW_DATA_DIR"))
        log_path = Path(env["JIGSAW_LOG_PATH"]) if env.get("JIGSAW_LOG_PATH") else data_dir / "log.db"
        keys_dir = Path(env["JIGSAW_KEYS_DIR"]) if env.get("JIGSAW_KEYS_DIR") else data_dir / "keys"
        store = get("JIGSAW_STORE")
        if store not in STORES:
            raise ConfigError(f"JIGSAW_STORE must be one of {', '.join(STORES)}, not {store!r}")
        store_path = Path(env["JIGSAW_STORE_PATH"]) if env.get("JIGSAW_STORE_PATH") else data_dir / "store.db"
        store_dsn_file = Path(env["JIGSAW_STORE_DSN_FILE"]) if env.get("JIGSAW_STORE_DSN_FILE") else None
        if store_dsn_file is not None and not store_dsn_file.is_file():
            raise ConfigError(f"JIGSAW_STORE_DSN_FILE names {store_dsn_file}, which is not a readable file")
        if store == "postgresql" and store_dsn_file is None:
            raise ConfigError("JIGSAW_STORE=postgresql needs JIGSAW_STORE_DSN_FILE: a file holding the DSN")
        roles = tuple(r.strip() for r in get("JIGSAW_ROLES").split(",") if r.strip())
        unknown = [r for r in roles if r not in ROLES]
        if unknown or not roles:
            raise ConfigError(f"JIGSAW_ROLES takes a comma-separated subset of {', '.join(ROLES)}; got {roles}")
        log_format = get("JIGSAW_LOG_FORMAT")
        if log_format not in ("auto", "console", "json"):
            raise ConfigError(f"JIGSAW_LOG_FORMAT must be auto, console or json, not {log_format!r}")
        from broker.secretfiles import SECRET_VARIABLES, check_secret_file

        secrets: dict[str, Path | None] = {}
        for name in (
            *SECRET_VARIABLES,
            "JIGSAW_TLS_CERT_FILE",
            "JIGSAW_TLS_CLIENT_CA_FILE",
            "JIGSAW_KAFKA_SSL_CA_FILE",
            "JIGSAW_KAFKA_SSL_CERT_FILE",
            "JIGSAW_WEBHOOK_CA_FILE",
            "JIGSAW_WEB_USERS_FILE",
        ):
            value = env.get(name)
            if value and not Path(value).is_file():
                raise ConfigError(f"{name} names {value}, which is not a readable file")
            secrets[name] = Path(value) if value else None
            if value and name in SECRET_VARIABLES:
                check_secret_file(Path(value), name)
        if bool(secrets["JIGSAW_TLS_CERT_FILE"]) != bool(secrets["JIGSAW_TLS_KEY_FILE"]):
            raise ConfigError("set both JIGSAW_TLS_CERT_FILE and JIGSAW_TLS_KEY_FILE for HTTPS, or neither")
        if secrets["JIGSAW_TLS_CLIENT_CA_FILE"] and not secrets["JIGSAW_TLS_CERT_FILE"]:
            raise ConfigError("JIGSAW_TLS_CLIENT_CA_FILE needs HTTPS: set JIGSAW_TLS_CERT_FILE and JIGSAW_TLS_KEY_FILE")
        schedule = get("JIGSAW_WEBHOOK_RETRY_SCHEDULE")
        try:
            from broker.delivery.backoff import parse_schedule

            parse_schedule(schedule)
        except ValueError as exc:
            raise ConfigError(f"JIGSAW_WEBHOOK_RETRY_SCHEDULE: {exc}") from None
        settings = cls(
            log_backend=backend,
            data_dir=data_dir,
            log_path=log_path,
            keys_dir=keys_dir,
            store=store,
            store_path=store_path,
            store_dsn_file=store_dsn_file,
            store_pool_size=_int(env, "JIGSAW_STORE_POOL_SIZE"),
            kafka_bootstrap=get("JIGSAW_KAFKA_BOOTSTRAP"),
            kafka_client_id=get("JIGSAW_KAFKA_CLIENT_ID"),
            kafka_replication_factor=_int(env, "JIGSAW_KAFKA_REPLICATION_FACTOR"),
            kafka_security_protocol=get("JIGSAW_KAFKA_SECURITY_PROTOCOL").upper(),
            kafka_ssl_ca_file=secrets["JIGSAW_KAFKA_SSL_CA_FILE"],
            kafka_ssl_cert_file=secrets["JIGSAW_KAFKA_SSL_CERT_FILE"],
            kafka_ssl_key_file=secrets["JIGSAW_KAFKA_SSL_KEY_FILE"],
            kafka_sasl_mechanism=get("JIGSAW_KAFKA_SASL_MECHANISM").upper(),
            kafka_sasl_username=env.get("JIGSAW_KAFKA_SASL_USERNAME") or None,
            kafka_sasl_password_file=secrets["JIGSAW_KAFKA_SASL_PASSWORD_FILE"],
            kafka_min_insync_replicas=(
                _int(env, "JIGSAW_KAFKA_MIN_INSYNC_REPLICAS") if env.get("JIGSAW_KAFKA_MIN_INSYNC_REPLICAS") else None
            ),
            http_host=get("JIGSAW_HTTP_HOST"),
            http_port=_int(env, "JIGSAW_HTTP_PORT"),
            roles=roles,
            max_body_bytes=_int(env, "JIGSAW_MAX_BODY_BYTES"),
            max_batch=_int(env, "JIGSAW_MAX_BATCH"),
            credentials_file=secrets["JIGSAW_CREDENTIALS_FILE"],
            signing_key_file=secrets["JIGSAW_SIGNING_KEY_FILE"],
            checkpoint_every=_int(env, "JIGSAW_CHECKPOINT_EVERY"),
            tree_head_interval=_int(env, "JIGSAW_TREE_HEAD_INTERVAL"),
            append_timeout=_int(env, "JIGSAW_APPEND_TIMEOUT"),
            snapshot_every=_int(env, "JIGSAW_SNAPSHOT_EVERY"),
            router_linger_ms=_int(env, "JIGSAW_ROUTER_LINGER_MS", least=0),
            verify_workers=None
            if get("JIGSAW_VERIFY_WORKERS") == "auto"
            else _int(env, "JIGSAW_VERIFY_WORKERS", least=0),
            kafka_partitions=_int(env, "JIGSAW_KAFKA_PARTITIONS"),
            kafka_topic_prefix=env.get("JIGSAW_KAFKA_TOPIC_PREFIX") or "",
            webhook_retry_schedule=schedule,
            webhook_timeout=_int(env, "JIGSAW_WEBHOOK_TIMEOUT"),
            log_format=log_format,
            log_level=get("JIGSAW_LOG_LEVEL").lower(),
            tls_cert_file=secrets["JIGSAW_TLS_CERT_FILE"],
            tls_key_file=secrets["JIGSAW_TLS_KEY_FILE"],
            tls_client_ca_file=secrets["JIGSAW_TLS_CLIENT_CA_FILE"],
            webhook_ca_file=secrets["JIGSAW_WEBHOOK_CA_FILE"],
            rate_per_address=_float(env, "JIGSAW_RATE_PER_ADDRESS"),
            rate_burst_per_address=_float(env, "JIGSAW_RATE_BURST_PER_ADDRESS"),
            rate_per_credential=_float(env, "JIGSAW_RATE_PER_CREDENTIAL"),
            rate_burst_per_credential=_float(env, "JIGSAW_RATE_BURST_PER_CREDENTIAL"),
            refusal_summary_seconds=_float(env, "JIGSAW_REFUSAL_SUMMARY_SECONDS"),
            http_header_timeout=_float(env, "JIGSAW_HTTP_HEADER_TIMEOUT"),
            http_body_timeout=_float(env, "JIGSAW_HTTP_BODY_TIMEOUT"),
            http_max_connections=_int(env, "JIGSAW_HTTP_MAX_CONNECTIONS"),
            http_max_connections_per_address=_int(env, "JIGSAW_HTTP_MAX_CONNECTIONS_PER_ADDRESS"),
            metrics_require_credential=_bool(env, "JIGSAW_METRICS_REQUIRE_CREDENTIAL"),
            web_oidc_issuer=env.get("JIGSAW_WEB_OIDC_ISSUER") or None,
            web_oidc_client_id=get("JIGSAW_WEB_OIDC_CLIENT_ID"),
            web_oidc_client_secret_file=secrets["JIGSAW_WEB_OIDC_CLIENT_SECRET_FILE"],
            web_users_file=secrets["JIGSAW_WEB_USERS_FILE"],
            web_local_sign_in=get("JIGSAW_WEB_LOCAL_SIGN_IN").lower() in ("true", "1", "yes"),
            web_base_url=(env.get("JIGSAW_WEB_BASE_URL") or "").rstrip("/") or None,
            web_idle_minutes=_int(env, "JIGSAW_WEB_IDLE_MINUTES"),
            web_assets_dir=Path(env["JIGSAW_WEB_ASSETS_DIR"]) if env.get("JIGSAW_WEB_ASSETS_DIR") else None,
        )
        from broker.log.kafka_security import KafkaSecurity

        KafkaSecurity.from_settings(settings).check(settings.kafka_bootstrap)
        return settings

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed (settings stay frozen)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
