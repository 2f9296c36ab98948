"""Acknowledging at two gateways: the store decides the first, only it reaches the log; a failed append undoes it."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from broker import topics
from broker.delivery.inbox import InboxService
from broker.errors import LogUnavailable
from broker.log import MemoryLog
from broker.routing.records import decode_ack
from broker.store import SqliteStore, Store
from tests.unit.delivery.test_inboxes import T0, _note, _row


class _Caller:
    org_id, role = "GP-A", "recipient"


def _service(log: MemoryLog, store: Store) -> InboxService:
    return InboxService(log, store, lambda _header: _Caller(), lambda: T0, append_timeout=0.2)


async def _store(tmp_path: Path) -> Store:
    store = SqliteStore(tmp_path / "store.db", durable=False)
    await store.start()
    await store.add_notifications([_row(_note("a", "GP-A"))])
    return store


async def test_two_gateways_acknowledging_at_once_append_one_ack(tmp_path: Path) -> None:
    """Two people acknowledge the same notification at two gateways: one counts, one ack is on the log."""
    log, store = MemoryLog(), await _store(tmp_path)
    one, two = _service(log, store), _service(log, store)
    item = await store.notification("GP-A", "a")
    assert item is not None
    outcomes = await asyncio.gather(
        one.acknowledge(item, "Dr One", T0), two.acknowledge(item, "Dr Two", T0 + dt.timedelta(seconds=1))
    )
    assert sorted(o.status for o in outcomes) == ["acknowledged", "already_acknowledged"]
    assert outcomes[0].ack == outcomes[1].ack
    acks = [decode_ack(r) for r in await log.read(topics.INPUT, 0) if topics.is_ack(r)]
    assert outcomes[0].ack is not None and [a.by for a in acks] == [outcomes[0].ack.by]
    await store.close()


@pytest.mark.parametrize("failure", ["error", "timeout"])
async def test_an_ack_the_log_did_not_take_is_withdrawn(tmp_path: Path, failure: str) -> None:
    """An append that fails or never answers is 503 and leaves the notification unacknowledged, to try again."""

    class Broken(MemoryLog):
        async def append(self, *args: Any, **kwargs: Any) -> Any:
            if failure == "timeout":
                await asyncio.sleep(3600)
            raise LogUnavailable("the log is down", retry_after=1)

    store = await _store(tmp_path)
    service = _service(Broken(), store)
    item = await store.notification("GP-A", "a")
    assert item is not None
    with pytest.raises(LogUnavailable):
        await service.acknowledge(item, "Dr One", T0)
    again = await store.notification("GP-A", "a")
    assert again is not None and again.ack is None and again.status == "awaiting"
    await store.close()
