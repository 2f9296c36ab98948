"""A replay under a memory ceiling keeps the routing state's growing maps in a file and gives the same verdict."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from pathlib import Path

import pytest

from broker.audit.checkpoint import PUBLIC_KEY_FILE, load_public_key
from broker.audit.collect import replay_log
from broker.audit.report import Report
from broker.audit.spill import GROWING, Spill, SpillMap, SpillSet, _owner, _Table
from broker.audit.spill_rows import Bloom
from broker.audit.state_snapshot import decode_snapshot
from broker.envelope.keys import KeyStore
from broker.log import EmbeddedLog
from broker.simulate import load_scenario, run_scenario
from tests.shared import SCENARIOS

DATA = Path(__file__).parents[2] / "scenarios" / "data"
LOGS = [DATA / f"family-{x}.json" for x in "abc"] + [SCENARIOS / f"child-{n}.json" for n in (1, 2, 3)]


def _map(factory: object = None, mem: dict[object, object] | None = None, kind: type[SpillMap] = SpillMap) -> SpillMap:
    table = _Table(sqlite3.connect(":memory:", isolation_level=None), "t")
    return kind(table, factory, mem or {})  # type: ignore[arg-type]


def test_entries_moved_out_of_memory_read_back_the_same_and_changes_to_them_are_kept() -> None:
    m = _map(list, {f"k{i}": [i] for i in range(100)})
    table = m._table
    table.cap = 10
    assert table.evict() == 91 and len(m._mem) == 9  # down to 90 % of the cap, the oldest first
    assert m.get("k0") == [0] and table.loads == 1
    m["k1"].append("more")  # read for changing: written out again when it leaves memory
    m["new"].append("x")  # a missing entry read with [] is created, as in a defaultdict
    assert m.get("absent") is None and "absent" not in m and m.get("absent", ()) == ()
    table.cap = 0
    table.evict()
    assert not m._mem
    assert m.get("k1") == [1, "more"] and m.get("new") == ["x"] and m.get("k0") == [0] and m.get("k99") == [99]
    assert m.setdefault("k2", ["other"]) == [2] and m.setdefault("k200", ["other"]) == ["other"]
    assert m.pop("k3") == [3] and "k3" not in m and m.pop("k3", None) is None
    with pytest.raises(KeyError):
        m.pop("k3")
    table.evict()
    assert dict(m.items())["k1"] == [1, "more"] and "k3" not in dict(m.items()) and len(dict(m.items())) == 101


def test_an_entry_only_read_is_not_written_again_and_tuple_keys_work() -> None:
    m = _map(None, {("child", "school"): "S1", ("a", None, "why"): True})
    m._table.cap = 0
    m._table.evict()
    db = m._table._db
    writes = db.total_changes
    assert m.get(("child", "school")) == "S1" and m.get(("a", None, "why")) is True
    m._table.evict()
    assert db.total_changes == writes  # read back with get, unchanged: nothing to write
    assert sorted(m.items(), key=repr) == [(("a", None, "why"), True), (("child", "school"), "S1")]


def test_maps_sharing_a_table_share_a_row_and_keep_each_others_values() -> None:
    """One read brings a key back for every map of the table; a change to one keeps the others' values."""
    births = _map(list, {"nhs:1": ["birth"]})
    table = births._table
    dob = SpillMap(table, None, {"nhs:1": "1990-01-01", "nhs:2": "2001-02-03"})
    table.cap = 0
    table.evict()
    assert births["nhs:1"] == ["birth"] and table.loads == 1
    births["nhs:1"].append("second")  # changed; dob's value for nhs:1 is in memory too, from the same read
    dob["nhs:2"] = "2001-02-04"  # set without reading first: the row comes back so births' value stays
    table.evict()
    assert dob.get("nhs:1") == "1990-01-01" and births.get("nhs:1") == ["birth", "second"]
    assert dob.get("nhs:2") == "2001-02-04" and births.get("nhs:2") is None
    dob.pop("nhs:1")
    table.evict()
    assert "nhs:1" not in dob and births.get("nhs:1") == ["birth", "second"]


def test_a_set_keeps_membership_through_the_file() -> None:
    s = _map(None, {"x": True}, kind=SpillSet)
    assert isinstance(s, SpillSet)
    s.add("y")
    s._table.cap = 0
    s._table.evict()
    assert "x" in s and "y" in s and "z" not in s


def test_the_bloom_filter_never_says_no_to_a_key_it_was_given() -> None:
    bloom = Bloom()
    given = [f"nhs:{n}" for n in range(200_000)]  # past the first layer: a second one is added
    for key in given:
        bloom.add(key)
    assert all(bloom.may_hold(k) for k in given)
    others = sum(bloom.may_hold(f"local:{n}") for n in range(20_000))
    assert others < 20_000 * 0.05  # about 1.4 % per layer


def test_growing_names_every_map_the_state_has() -> None:
    from broker.routing.state import RoutingState

    state = RoutingState()
    for owner, attr, _, _ in GROWING:
        assert isinstance(getattr(_owner(state, owner), attr), dict | set), (owner, attr)


def _keep(scenario: Path, path: Path) -> Path:
    asyncio.run(run_scenario(load_scenario(scenario), io.StringIO(), keep_log=path))
    return path


async def _replay(path: Path, **options: object) -> Report:
    keys = Path(f"{path}.keys")
    log = EmbeddedLog(path)
    await log.start()
    try:
        return await replay_log(
            log,
            keys=KeyStore(keys).load(),
            checkpoint_key=load_public_key(keys / PUBLIC_KEY_FILE),
            **options,  # type: ignore[arg-type]
        )
    finally:
        await log.close()


@pytest.mark.parametrize("scenario", LOGS, ids=lambda p: p.stem)
def test_a_replay_spilling_after_every_input_gives_the_same_verdict_and_state(scenario: Path, tmp_path: Path) -> None:
    """Ceiling 0, one entry per map in memory, checked after every input: every rule reads the file back."""
    if not scenario.is_file():
        pytest.skip(f"{scenario} is missing (../shared is not beside this checkout)")
    path = _keep(scenario, tmp_path / "log.db")
    plain = asyncio.run(_replay(path, batch=1, save=True))
    spill = Spill(0, tmp_path, floor=1)
    spilled = asyncio.run(_replay(path, batch=1, save=True, spill=spill))
    assert plain.ok and spilled.ok, [f.line() for f in spilled.findings]
    assert spilled.summary() == plain.summary() and spilled.events > 0
    assert spill.spilled_at is not None and spill.evicted > 0 and spill.loads > 0
    assert not list(tmp_path.glob("jigsaw-state-*")) and spill.file_bytes > 0
    assert plain.snapshot is not None and spilled.snapshot is not None
    a, b = decode_snapshot(plain.snapshot).state, decode_snapshot(spilled.snapshot).state
    for owner, attr, _, _ in GROWING:
        assert getattr(_owner(a, owner), attr) == getattr(_owner(b, owner), attr), attr


def test_a_full_disk_is_a_clear_error_naming_where_and_what_to_do(tmp_path: Path) -> None:
    from broker.errors import StoreUnavailable
    from broker.routing.state import RoutingState

    state = RoutingState()
    for i in range(5000):
        state.had[f"event-{i}"].add("GP1")
    spill = Spill(0, tmp_path, floor=1)
    spill.check(state)  # spills: 70 % of the keys stay in memory, the rest are written
    assert spill.writes > 0
    assert not list(tmp_path.iterdir())  # open, the file has no name: nothing is left behind even on SIGKILL
    db = spill._db
    assert db is not None
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")  # the file can grow no more: as a full disk
    for i in range(5000, 20000):
        state.had[f"event-{i}"].add("GP1")
    with pytest.raises(StoreUnavailable) as refused:
        spill.check(state)
    assert str(tmp_path) in refused.value.message and "--memory" in refused.value.message
    spill.close()
    assert not list(tmp_path.glob("jigsaw-state-*"))


def test_the_default_ceiling_is_half_the_containers_limit_when_it_has_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from broker.commands import replay

    machine = replay.default_memory_mib()
    limit = tmp_path / "memory.max"
    monkeypatch.setattr(replay, "_CGROUP_LIMITS", (limit,))
    limit.write_text("max\n")  # no limit
    assert replay.default_memory_mib() == machine > 0
    limit.write_text(f"{2**30}\n")
    assert replay.default_memory_mib() == 512
