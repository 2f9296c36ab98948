"""A replay resumes from a router snapshot and a signed head, checks only the tail, and refuses a foreign snapshot."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker import topics
from broker.audit.collect import replay_log
from broker.audit.report import Report
from broker.audit.sealer import Sealer
from broker.audit.state_snapshot import (
    RouterSnapshot,
    SnapshotInvalid,
    decode_snapshot,
    encode_snapshot,
)
from broker.client import build_envelope
from broker.envelope.testing import make_keys, publisher_for, sample_data, sample_directory
from broker.intake import Intake
from broker.log import MemoryLog
from broker.routing.service import RouterService
from broker.routing.state import RoutingState

NOW = dt.datetime(2022, 3, 1, 9, 0, tzinfo=dt.UTC)
KEYS = make_keys()
JIGSAW = Ed25519PrivateKey.from_private_bytes(b"\x06" * 32)
TYPES = ["gp.registration", "midwifery.birth_notified", "police.domestic_abuse_incident", "csc.strategy_meeting"]


async def _add(log: MemoryLog, intake: Intake, first: int, count: int) -> None:
    """Accept ``count`` sample events, then route and seal them as the router does."""
    for i in range(first, first + count):
        event_type = TYPES[i % len(TYPES)]
        source = publisher_for(event_type)
        at = NOW + dt.timedelta(hours=i)
        env = build_envelope(
            event_type,
            sample_data(event_type, i // len(TYPES)),
            source=source,
            key=KEYS.signing[source],
            occurred_at=at,
            issued_at=at,
        )
        assert (await intake.submit(env, caller=None, now=at)).status == "accepted"
    sealer = Sealer(log, key=JIGSAW, every=3)
    router = RouterService(log, sealer=sealer)
    await router.start()
    await router.run_until_idle()
    await sealer.seal(NOW)


async def _replay(log: MemoryLog, **options: object) -> Report:
    return await replay_log(log, keys=KEYS.registry, checkpoint_key=JIGSAW.public_key(), every=3, **options)  # type: ignore[arg-type]


async def _log() -> tuple[MemoryLog, Intake]:
    log = MemoryLog()
    intake = Intake(log, lambda: KEYS.registry)
    await intake.start()
    for outcome in await intake.submit_many(sample_directory(KEYS, at=NOW), caller=None, now=NOW):
        assert outcome.status == "accepted"  # every organisation the events name is in the directory
    return log, intake


D = len(sample_directory(KEYS, at=NOW))  # the directory's records come first on the input topic


async def test_a_resumed_replay_checks_only_the_tail_and_agrees_with_a_full_one() -> None:
    """Snapshot after eight events, four more routed and sealed: resuming re-runs four, as clean as a full replay."""
    log, intake = await _log()
    await _add(log, intake, 0, 8)
    first = await _replay(log, save=True)
    assert first.ok and first.snapshot is not None
    snapshot = decode_snapshot(first.snapshot)
    assert snapshot.input_offset == D + 8 and snapshot.tree_size == D + 8
    await _add(log, intake, 8, 4)
    resumed = await _replay(log, resume=snapshot)
    full = await _replay(log)
    assert full.ok, [f.line() for f in full.errors]
    assert resumed.ok, [f.line() for f in resumed.errors]
    assert (resumed.events, resumed.records, resumed.resumed_from) == (4, 4, D + 8)
    assert full.events == D + 12


async def test_tampering_in_the_tail_after_a_snapshot_is_named() -> None:
    """A record altered after the snapshot's offset is named by the resumed replay."""
    log, intake = await _log()
    await _add(log, intake, 0, 4)
    snapshot = decode_snapshot((await _replay(log, save=True)).snapshot or b"")
    await _add(log, intake, 4, 4)
    records = log._topics[topics.INPUT][0]  # the test tampers with the stored record itself
    altered = D + 5
    value = records[altered].value or b""
    records[altered] = type(records[altered])(
        *[getattr(records[altered], f) for f in ("topic", "partition", "offset", "key")],
        value[:-1] + bytes([value[-1] ^ 1]),
        records[altered].headers,
        records[altered].timestamp_ms,
    )
    resumed = await _replay(log, resume=snapshot)
    assert {f.offset for f in resumed.errors if f.code == "record_altered"} == {altered}


async def test_a_snapshot_of_another_log_is_named() -> None:
    """A snapshot whose tree head no signed head on the log matches does not describe this log."""
    log, intake = await _log()
    await _add(log, intake, 0, 4)
    snapshot = decode_snapshot((await _replay(log, save=True)).snapshot or b"")
    forged = RouterSnapshot(snapshot.state, snapshot.input_offset, snapshot.at_ms, snapshot.tree_size, b"\x01" * 32)
    resumed = await _replay(log, resume=forged)
    assert "snapshot_head_unknown" in {f.code for f in resumed.errors}


def test_the_snapshot_is_json_that_names_only_routing_classes() -> None:
    """A snapshot round-trips; one naming any other class, or another format, is refused without running it."""
    data = encode_snapshot(RouterSnapshot(RoutingState(), 0, 0))
    assert data.startswith(b'{"format":"jigsaw.router-snapshot.v2"')
    assert isinstance(decode_snapshot(data).state, RoutingState)
    hostile = data.replace(b"broker.routing.state:RoutingState", b"os:system")
    with pytest.raises(SnapshotInvalid, match="routing state class"):
        decode_snapshot(hostile)
    with pytest.raises(SnapshotInvalid):
        decode_snapshot(data.replace(b"router-snapshot.v2", b"router-snapshot.v9"))
    with pytest.raises(SnapshotInvalid):
        decode_snapshot(b"\x80\x04pickle")


async def test_a_snapshot_round_trips_the_state_its_outputs_and_escalations_byte_for_byte() -> None:
    """A routed state encodes, decodes and encodes again to the same bytes (sets sorted, shared objects shared),
    with where the outputs ended and the escalations raised elsewhere."""
    log, intake = await _log()
    await _add(log, intake, 0, 6)
    router = RouterService(log)
    await router.start()
    await router.run_until_idle()
    snapshot = RouterSnapshot(
        router.state, router.position, router.at_ms, None, None, {"n": [3, 0], "d": [7]}, ("e2", "e1")
    )
    data = encode_snapshot(snapshot)
    back = decode_snapshot(data)
    assert encode_snapshot(back) == data
    assert (back.input_offset, back.outputs, back.escalations) == (
        router.position,
        {"n": [3, 0], "d": [7]},
        ("e1", "e2"),
    )
    assert back.state.told == router.state.told and back.state.told


def test_an_older_snapshot_format_is_refused_with_its_name() -> None:
    """A v1 snapshot (tagged JSON objects) is refused clearly, never half-read: the next snapshot replaces it."""
    v1 = b'{"format":"jigsaw.router-snapshot.v1","input_offset":0,"at_ms":0,"tree_head":null,"state":{"$":"o"}}'
    with pytest.raises(SnapshotInvalid, match=r"router-snapshot\.v1"):
        decode_snapshot(v1)
    with pytest.raises(SnapshotInvalid, match="malformed"):
        decode_snapshot(
            encode_snapshot(RouterSnapshot(RoutingState(), 0, 0)).replace(b'"shapes":[[', b'"shapes":[[[', 1)
        )
