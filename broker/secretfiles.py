"""Secret files must be private to the user Jigsaw runs as, as ssh insists for its keys.

The credentials file, Jigsaw's own signing key, the TLS private keys and the
Kafka SASL password are refused at start when their mode lets the group or
others read or write them; the message names the file and the ``chmod`` that
fixes it.
"""

from __future__ import annotations

import stat
from pathlib import Path

from broker.errors import ConfigError

__all__ = ["SECRET_VARIABLES", "check_secret_file"]

# The settings that name secret files (each is checked by ``Settings.from_env``).
SECRET_VARIABLES = (
    "JIGSAW_CREDENTIALS_FILE",
    "JIGSAW_KAFKA_SASL_PASSWORD_FILE",
    "JIGSAW_KAFKA_SSL_KEY_FILE",
    "JIGSAW_SIGNING_KEY_FILE",
    "JIGSAW_TLS_KEY_FILE",
    "JIGSAW_WEB_OIDC_CLIENT_SECRET_FILE",
)


def check_secret_file(path: Path, what: str) -> None:
    """Refuse a secret file that the group or others may read or write.

    Args:
        path: the file.
        what: what names it (a variable such as ``JIGSAW_CREDENTIALS_FILE``), for the message.

    Raises:
        ConfigError: the file cannot be examined, or its mode is open to the group or others.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot examine {path}: {exc.strerror or exc}") from exc
    if mode & 0o077:
        raise ConfigError(
            f"{what}: {path} is accessible by group or others (mode {mode:04o}); "
            f"a secret must be private to its owner: run chmod 600 {path}",
            path=str(path),
        )
