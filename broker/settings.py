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
    "JIGSAW_WEBHOOK_RETRY_SCHEDULE": "standard",
    "JIGSAW_WEBHOOK_TIMEOUT": "10",
    "JIGSAW_LOG_FORMAT": "auto",
    "JIGSAW_LOG_LEVEL": "info",
    "JIGSAW_WEB_OIDC_ISSUER": None,  # the web pages' OpenID Connect provider (sign-in as a person)
    "JIGSAW_WEB_OIDC_CLIENT_ID": "jigsaw",
    "JIGSAW_WEB_OIDC_CLIENT_SECRET_FILE": None,
    "JIGSAW_WEB_USERS_FILE": None,  # the admin's mapping of people to organisation and role
    "JIGSAW_WEB_LOCAL_SIGN_IN": "false",  # true: the demo's local sign-in as the users file's people
    "JIGSAW_WEB_BASE_URL": None,  # the pages' public address (https:// makes cookies Secure)
    "JIGSAW_WEB_IDLE_MINUTES": "30",
    "JIGSAW_WEB_ASSETS_DIR": None,  # node_modules holding govuk-frontend (deploy/web/fetch.sh)
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
    checkpoint_every: int = 100  # a signed hash-chain checkpoint after this many events per partition
    webhook_retry_schedule: str = "standard"  # comma-separated seconds between retries, or standard/testing
    webhook_timeout: int = 10  # seconds an endpoint has to answer one webhook
    log_format: str = "auto"
    log_level: str = "info"
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
        roles = tuple(r.strip() for r in get("JIGSAW_ROLES").split(",") if r.strip())
        unknown = [r for r in roles if r not in ROLES]
        if unknown or not roles:
            raise ConfigError(f"JIGSAW_ROLES takes a comma-separated subset of {', '.join(ROLES)}; got {roles}")
        log_format = get("JIGSAW_LOG_FORMAT")
        if log_format not in ("auto", "console", "json"):
            raise ConfigError(f"JIGSAW_LOG_FORMAT must be auto, console or json, not {log_format!r}")
        secrets: dict[str, Path | None] = {}
        for name in (
            "JIGSAW_CREDENTIALS_FILE",
            "JIGSAW_SIGNING_KEY_FILE",
            "JIGSAW_WEB_OIDC_CLIENT_SECRET_FILE",
            "JIGSAW_WEB_USERS_FILE",
        ):
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
            webhook_retry_schedule=schedule,
            webhook_timeout=_int(env, "JIGSAW_WEBHOOK_TIMEOUT"),
            log_format=log_format,
            log_level=get("JIGSAW_LOG_LEVEL").lower(),
            web_oidc_issuer=env.get("JIGSAW_WEB_OIDC_ISSUER") or None,
            web_oidc_client_id=get("JIGSAW_WEB_OIDC_CLIENT_ID"),
            web_oidc_client_secret_file=secrets["JIGSAW_WEB_OIDC_CLIENT_SECRET_FILE"],
            web_users_file=secrets["JIGSAW_WEB_USERS_FILE"],
            web_local_sign_in=get("JIGSAW_WEB_LOCAL_SIGN_IN").lower() in ("true", "1", "yes"),
            web_base_url=(env.get("JIGSAW_WEB_BASE_URL") or "").rstrip("/") or None,
            web_idle_minutes=_int(env, "JIGSAW_WEB_IDLE_MINUTES"),
            web_assets_dir=Path(env["JIGSAW_WEB_ASSETS_DIR"]) if env.get("JIGSAW_WEB_ASSETS_DIR") else None,
        )

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed (settings stay frozen)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
