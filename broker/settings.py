"""One frozen settings object, built from an explicit mapping.

``Settings.from_env(os.environ)`` reads ``JIGSAW_*`` variables. Secrets (the
API credentials file, Jigsaw's own signing key) are read from the files the
variables name, never from the variable values themselves. Defaults run
everything on the embedded log with no setup.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from broker.errors import ConfigError

__all__ = ["ENV_VARS", "LOG_BACKENDS", "ROLES", "Settings"]

LOG_BACKENDS = ("embedded", "kafka", "memory")
ROLES = ("gateway", "router", "dispatcher")

# Every variable the code reads, with its default (None: no default).
# docker-compose.yml is tested against this table.
ENV_VARS: dict[str, str | None] = {
    "JIGSAW_LOG_BACKEND": "embedded",
    "JIGSAW_DATA_DIR": ".jigsaw",
    "JIGSAW_LOG_PATH": None,
    "JIGSAW_KEYS_DIR": None,
    "JIGSAW_KAFKA_BOOTSTRAP": "127.0.0.1:19092",
    "JIGSAW_KAFKA_CLIENT_ID": "jigsaw",
    "JIGSAW_KAFKA_REPLICATION_FACTOR": "1",
    "JIGSAW_HTTP_HOST": "127.0.0.1",
    "JIGSAW_HTTP_PORT": "8080",
    "JIGSAW_ROLES": "gateway,router,dispatcher",
    "JIGSAW_MAX_BODY_BYTES": str(1024 * 1024),
    "JIGSAW_MAX_BATCH": "500",
    "JIGSAW_CREDENTIALS_FILE": None,
    "JIGSAW_SIGNING_KEY_FILE": None,
    "JIGSAW_CHECKPOINT_EVERY": "100",
    "JIGSAW_TREE_HEAD_INTERVAL": "10",
    "JIGSAW_APPEND_TIMEOUT": "10",
    "JIGSAW_KAFKA_PARTITIONS": "6",
    "JIGSAW_WEBHOOK_RETRY_SCHEDULE": "standard",
    "JIGSAW_WEBHOOK_TIMEOUT": "10",
    "JIGSAW_LOG_FORMAT": "auto",
    "JIGSAW_LOG_LEVEL": "info",
}


def _int(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name, ENV_VARS[name]) or ""
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, not {value}")
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Everything Jigsaw reads from its environment, frozen once at start."""

    log_backend: str = "embedded"
    data_dir: Path = Path(".jigsaw")
    log_path: Path = Path(".jigsaw/log.db")
    keys_dir: Path = Path(".jigsaw/keys")
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_client_id: str = "jigsaw"
    kafka_replication_factor: int = 1
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
    kafka_partitions: int = 6  # partitions of the notifications topic (dispatchers share them as a group)
    webhook_retry_schedule: str = "standard"  # comma-separated seconds between retries, or standard/testing
    webhook_timeout: int = 10  # seconds an endpoint has to answer one webhook
    log_format: str = "auto"
    log_level: str = "info"

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
        roles = tuple(r.strip() for r in get("JIGSAW_ROLES").split(",") if r.strip())
        unknown = [r for r in roles if r not in ROLES]
        if unknown or not roles:
            raise ConfigError(f"JIGSAW_ROLES takes a comma-separated subset of {', '.join(ROLES)}; got {roles}")
        log_format = get("JIGSAW_LOG_FORMAT")
        if log_format not in ("auto", "console", "json"):
            raise ConfigError(f"JIGSAW_LOG_FORMAT must be auto, console or json, not {log_format!r}")
        secrets: dict[str, Path | None] = {}
        for name in ("JIGSAW_CREDENTIALS_FILE", "JIGSAW_SIGNING_KEY_FILE"):
            value = env.get(name)
            if value and not Path(value).is_file():
                raise ConfigError(f"{name} names {value}, which is not a readable file")
            secrets[name] = Path(value) if value else None
        schedule = get("JIGSAW_WEBHOOK_RETRY_SCHEDULE")
        try:
            from broker.delivery.backoff import parse_schedule

            parse_schedule(schedule)
        except ValueError as exc:
            raise ConfigError(f"JIGSAW_WEBHOOK_RETRY_SCHEDULE: {exc}") from None
        return cls(
            log_backend=backend,
            data_dir=data_dir,
            log_path=log_path,
            keys_dir=keys_dir,
            kafka_bootstrap=get("JIGSAW_KAFKA_BOOTSTRAP"),
            kafka_client_id=get("JIGSAW_KAFKA_CLIENT_ID"),
            kafka_replication_factor=_int(env, "JIGSAW_KAFKA_REPLICATION_FACTOR"),
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
            kafka_partitions=_int(env, "JIGSAW_KAFKA_PARTITIONS"),
            webhook_retry_schedule=schedule,
            webhook_timeout=_int(env, "JIGSAW_WEBHOOK_TIMEOUT"),
            log_format=log_format,
            log_level=get("JIGSAW_LOG_LEVEL").lower(),
        )

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed (settings stay frozen)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
