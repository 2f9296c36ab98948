"""The access record: who read what, or was refused, when (``topics.ACCESS``), written one way.

The inbox, the chronology and the guard each say what happened (the action and
its details: ids, the route, the outcome); this adds who and when and appends
one JSON record keyed by the caller's organisation. Ids only, never content.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from broker import topics
from broker.callers import Caller
from broker.log.base import Log
from broker.routing.model import iso
from broker.wire import JSON_HEADERS, encode_json

__all__ = ["record_access"]


async def record_access(log: Log, caller: Caller, at: dt.datetime, action: str, **detail: Any) -> None:
    """Append one access record: ``{"at", "org_id", "role", "action", **detail}``."""
    value = {"at": iso(at), "org_id": caller.org_id, "role": caller.role, "action": action, **detail}
    await log.append(
        topics.ACCESS,
        encode_json(value),
        key=caller.org_id.encode(),
        headers=JSON_HEADERS,
        timestamp_ms=int(at.timestamp() * 1000),
    )
