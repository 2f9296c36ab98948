"""Agency adapters: an agency's own export files in, signed catalogue events out, through the gateway.

One module per agency (``police``, ``gp``, ``midwifery``, ``csc``) maps rows of
its export with pure functions; ``prepare`` signs and checks them with the
gateway's own validation; ``publish`` sends them through
``broker.client.JigsawClient``; ``watch`` serves a folder that exports are
dropped into. The formats are described in ``adapters/README.md``.

To publish records from code (``jigsaw demo`` does)::

    async with JigsawClient(gateway_url, token, key=signing_key) as client:
        report = await publish_records("police", records, client)
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters import csc, gp, midwifery, police
from adapters.base import Adapter, Mapped, RecordKey, Row, RowError, event_id
from adapters.files import read_export, rows_from_records
from adapters.prepare import Preparation, Prepared, RowRefusal, prepare
from adapters.publish import Report, publish_file, publish_records, resolve_adapter, send_prepared

__all__ = [
    "ADAPTERS",
    "Adapter",
    "Mapped",
    "Preparation",
    "Prepared",
    "RecordKey",
    "Report",
    "Row",
    "RowError",
    "RowRefusal",
    "event_id",
    "prepare",
    "publish_file",
    "publish_records",
    "read_export",
    "resolve_adapter",
    "rows_from_records",
    "send_prepared",
]

ADAPTERS: Mapping[str, Adapter] = {
    adapter.name: adapter for adapter in (police.ADAPTER, gp.ADAPTER, midwifery.ADAPTER, csc.ADAPTER)
}
