"""Exit 0 once a Kafka client can list topics on BOOTSTRAP, 1 otherwise (one attempt).

Usage: ``ready.py BOOTSTRAP [CLIENT_ENV]``. CLIENT_ENV is the ``client.env`` a
secure start writes (``JIGSAW_KAFKA_SECURITY_PROTOCOL``, CA file, SASL user and
password file): the check then connects as that client would.

Used by start.sh, which loops with a bounded deadline. Needs aiokafka (the
client Jigsaw itself uses); exits 3 when it is not importable so start.sh can
fall back to the Java check (Ready.java) against the broker's own jars.
"""

from __future__ import annotations

import asyncio
import shlex
import ssl
import sys
from pathlib import Path
from typing import Any


def _client_options(env_file: str | None) -> dict[str, Any]:
    if env_file is None:
        return {}
    env = dict(word.split("=", 1) for word in shlex.split(Path(env_file).read_text(), comments=True))
    protocol = env.get("JIGSAW_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    options: dict[str, Any] = {"security_protocol": protocol}
    if "SSL" in protocol:
        context = ssl.create_default_context(cafile=env.get("JIGSAW_KAFKA_SSL_CA_FILE"))
        if env.get("JIGSAW_KAFKA_SSL_CERT_FILE"):
            context.load_cert_chain(env["JIGSAW_KAFKA_SSL_CERT_FILE"], env["JIGSAW_KAFKA_SSL_KEY_FILE"])
        options["ssl_context"] = context
    if protocol.startswith("SASL_"):
        options["sasl_mechanism"] = env["JIGSAW_KAFKA_SASL_MECHANISM"]
        options["sasl_plain_username"] = env["JIGSAW_KAFKA_SASL_USERNAME"]
        options["sasl_plain_password"] = Path(env["JIGSAW_KAFKA_SASL_PASSWORD_FILE"]).read_text().strip()
    return options


async def _list_topics(bootstrap: str, env_file: str | None) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **_client_options(env_file))
    try:
        await admin.start()
        await admin.list_topics()
    except Exception as exc:  # any failure means "not ready yet"
        print(f"not ready: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        await admin.close()
    return 0


def main() -> int:
    try:
        import aiokafka  # noqa: F401
    except ImportError:
        return 3
    return asyncio.run(_list_topics(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))


if __name__ == "__main__":
    sys.exit(main())
