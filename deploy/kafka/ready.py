"""Exit 0 once a Kafka client can list topics on BOOTSTRAP, 1 otherwise (one attempt).

Used by start.sh, which loops with a bounded deadline. Needs aiokafka (the
client Jigsaw itself uses); exits 3 when it is not importable so start.sh can
fall back to the Java check (Ready.java) against the broker's own jars.
"""

from __future__ import annotations

import asyncio
import sys


async def _list_topics(bootstrap: str) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
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
    return asyncio.run(_list_topics(sys.argv[1]))


if __name__ == "__main__":
    sys.exit(main())
