"""The shortcuts a sweep takes for speed give exactly what the general path gives."""

from __future__ import annotations

import gc
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import recorder as rec
from recorder.codec.canonical import canonical_pset
from recorder.codec.values import Encoded
from recorder.errors import RecorderError
from recorder.sweep import serial
from recorder.sweep.loop import Binder, RunFailed


def with_defaults(b: int, a: float, c: float = 2.5, d: str = "x") -> dict:
    return {}


def plain(a: float, b: int) -> dict:
    return {}


def keywords(a: float, **more: Any) -> dict:
    return {}


@pytest.mark.parametrize("func", [with_defaults, plain, keywords])
def test_prepare_gives_what_bind_and_canonical_pset_give(func: Any) -> None:
    binder = Binder(func)
    psets: list[dict[str, Any]] = [
        {"a": 0.5, "b": 1},
        {"b": 2, "a": 1.5},
        {"a": 0.5, "b": 1},
        {"a": -0.0, "b": 3},
        {"a": float("inf"), "b": 4},
        {"a": np.float32(0.1), "b": 5},
        {"a": True, "b": 6},
        {"a": 2.5, "b": 7, "c": 1.0},
        {"a": 2.5, "b": 8, "c": 1.0},
        {"a": 2.5, "b": 9, "d": "é"},
        {"a": 2**63 - 1, "b": -(2**63)},
    ]
    for pset in psets * 2:  # the second time, every layout is known
        try:
            expected = canonical_pset(binder.bind(**pset))
        except RecorderError as e:  # the same error either way
            with pytest.raises(type(e)):
                binder.prepare(pset)
            continue
        clean, canonical = binder.prepare(pset)
        assert canonical == expected[1]
        assert list(clean.items()) == list(expected[0].items())
        assert [type(v) for v in clean.values()] == [type(v) for v in expected[0].values()]


def test_prepare_refuses_what_bind_refuses() -> None:
    binder = Binder(plain)
    binder.prepare({"a": 0.5, "b": 1})
    with pytest.raises(RecorderError, match="cannot call"):
        binder.prepare({"a": 0.5})
    with pytest.raises(RecorderError, match="NaN"):
        binder.prepare({"a": float("nan"), "b": 1})


# -- plain numbers go to runs.scalars without encoding each value ---------------------------------------


def mixed(a: float, b: int) -> dict:
    """Mostly plain numbers; now and then a value or a name that must take the general way."""
    if b == 7:
        raise ValueError("seven")
    if b == 8:
        return {"y": float("nan"), "z": 1}
    if b == 9:
        return {"y": float("inf"), "z": -0.0}
    if b == 10:
        return {"y": True, "z": 2**64}
    if b == 11:
        return {"z": 1.0, "y": 2.0, "w": np.arange(3.0)}
    if b == 12:
        return {"z": a, "y": b}  # the same names in another order
    if b == 13:
        return {}
    if b == 14:
        return None  # type: ignore[return-value]
    return {"y": a * b, "z": b, "zero": 0.0, "neg": -0.0, "big": -(2**63), "p%r": 1.5, 'q"': 2}


def stored(store: Path) -> list[Any]:
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        return [
            conn.execute("SELECT pk, pset, status, seed, scalars, error IS NULL FROM runs ORDER BY pk").fetchall(),
            conn.execute("SELECT run, name, kind, quote(value) FROM results ORDER BY run, name").fetchall(),
            conn.execute("SELECT pk, role, name, kind, first_run FROM fields ORDER BY pk").fetchall(),
            conn.execute("SELECT pk, hash, params FROM psets ORDER BY pk").fetchall(),
        ]
    finally:
        conn.close()


def sweep_mixed(store: Path) -> Any:
    with rec.Recorder("m", store=store, git=False, seed=3) as r:
        df = r.sweep(mixed, rec.grid(a=[0.5, 1.5, 2.5], b=list(range(17))), progress=False)
    return df.drop(columns=["_run_id", "_time_start", "_duration_s", "_session", "_env_sha"])


def test_the_shortcut_stores_what_the_general_way_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = sweep_mixed(tmp_path / "fast")
    monkeypatch.setattr(serial, "plain_results", lambda values: False)  # every run the general way
    general = sweep_mixed(tmp_path / "general")
    assert stored(tmp_path / "fast") == stored(tmp_path / "general")
    pd.testing.assert_frame_equal(fast, general)
    meta = ["_run_id", "_time_start", "_duration_s", "_session", "_env_sha"]
    pd.testing.assert_frame_equal(
        rec.open(tmp_path / "fast").df("m").drop(columns=meta),
        rec.open(tmp_path / "general").df("m").drop(columns=meta),
    )


def test_runs_on_the_shortcut_are_journaled_with_their_results() -> None:
    from recorder.codec.hashing import pset_hash
    from recorder.store.journal import _record, _run_of
    from recorder.store.pending import PendingRun

    run = PendingRun("0" * 24, pset_hash('{"a":1}'), '{"a":1}', 5, 1.0, ("a",))  # replay checks the hash
    run.status, run.duration = "done", 0.5
    run.scalars, run.scalar_names = '{"x":1.5,"y":-3}', ("x", "y")
    back = _run_of(_record(run))
    assert back.results == {"x": Encoded(None, 1.5), "y": Encoded(None, -3)}


def interrupted_at(stop: int) -> Any:
    def work(i: int) -> dict:
        if i == stop:
            raise KeyboardInterrupt
        return {"sq": float(i * i), "seed": rec.current_seed()}

    return work


def test_ctrl_c_on_the_shortcut_records_the_run_interrupted_and_the_rest_done(store: Path) -> None:
    with pytest.raises(KeyboardInterrupt), rec.Recorder("k", store=store, git=False) as r:
        r.sweep(interrupted_at(50), rec.plist("i", range(100)), progress=False)
    conn = sqlite3.connect(store / "recorder.sqlite")
    statuses = conn.execute("SELECT status, count(*) FROM runs GROUP BY status ORDER BY status").fetchall()
    assert statuses == [("done", 50), ("interrupted", 1)]
    # current_seed() is the run's own seed on the shortcut too
    assert (
        conn.execute(
            "SELECT count(*) FROM runs WHERE status = 'done' AND json_extract(scalars, '$.seed') = seed"
        ).fetchone()[0]
        == 50
    )


def test_a_failure_on_the_shortcut_raises_with_on_error_raise(store: Path) -> None:
    def fails_late(i: int) -> dict:
        if i == 30:
            raise ValueError("thirty")
        return {"y": i}

    with rec.Recorder("f", store=store, git=False) as r:
        with pytest.raises(RunFailed, match="thirty"):
            r.sweep(fails_late, rec.plist("i", range(100)), on_error="raise", progress=False)
        df = r.sweep(fails_late, rec.plist("i", range(40)), progress=False)
    assert df.set_index("i")["_status"].value_counts().loc[lambda c: c > 0].to_dict() == {"done": 39, "failed": 1}
    assert (
        "thirty"
        in sqlite3.connect(store / "recorder.sqlite")
        .execute("SELECT error FROM runs WHERE status = 'failed'")
        .fetchone()[0]
    )


# -- the skip check of a sweep alone in its experiment --------------------------------------------------


def square(i: int) -> dict:
    return {"sq": i * i}


def test_runs_another_session_commits_during_a_sweep_are_skipped(store: Path) -> None:
    """The first sweep of a new experiment skips no skip checks once another session appears."""

    def psets() -> Any:
        for i in range(2000):
            if i == 600:  # while the sweep is at its second chunk of psets, another session does later ones
                with rec.Recorder("c", store=store, git=False) as other:
                    other.sweep(square, rec.plist("i", range(1500, 1600)), progress=False)
            yield {"i": i}

    with rec.Recorder("c", store=store, git=False) as r:
        df = r.sweep(square, psets(), progress=False)
    assert len(df) == 2000 and (df["sq"] == df["i"] ** 2).all()
    conn = sqlite3.connect(store / "recorder.sqlite")
    assert conn.execute("SELECT count(*), count(DISTINCT pset) FROM runs").fetchone() == (2000, 2000)
    sessions = conn.execute("SELECT s.pk, count(*) FROM runs r JOIN sessions s ON s.pk = r.session GROUP BY s.pk")
    assert sorted(n for _, n in sessions) == [100, 1900]


def test_a_second_sweep_of_a_session_skips_what_the_first_did(store: Path) -> None:
    with rec.Recorder("c", store=store, git=False) as r:
        r.sweep(square, rec.plist("i", range(10)), progress=False)
        df = r.sweep(square, rec.plist("i", range(20)), progress=False)
    assert sqlite3.connect(store / "recorder.sqlite").execute("SELECT count(*) FROM runs").fetchone()[0] == 20
    assert (df["sq"] == df["i"] ** 2).all()


# -- the collector leaves the objects of the program alone during a sweep ----------------------------------


def freeze_count(i: int) -> dict:
    return {"frozen": gc.get_freeze_count()}


def test_a_sweep_sets_older_objects_aside_from_the_collector_and_puts_them_back(store: Path) -> None:
    before = gc.get_freeze_count()
    with rec.Recorder("g", store=store, git=False) as r:
        df = r.sweep(freeze_count, rec.plist("i", range(3)), progress=False)
        assert (df["frozen"] > 0).all()  # the objects made before the sweep
        assert gc.get_freeze_count() == before == 0
        with pytest.raises(RunFailed):
            r.sweep(
                lambda i: {"x": 1 / 0} if i == 4 else {"x": i},
                rec.plist("i", range(3, 6)),
                on_error="raise",
                progress=False,
            )
        assert gc.get_freeze_count() == 0


def test_a_program_that_froze_objects_itself_keeps_them_frozen(store: Path) -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with rec.Recorder("g", store=store, git=False) as r:
            df = r.sweep(freeze_count, rec.plist("i", range(3)), progress=False)
        assert (df["frozen"] <= frozen).all()  # the sweep froze nothing more (objects freed leave it)
        assert gc.get_freeze_count() > 0  # nor unfroze the program's
    finally:
        gc.unfreeze()


def slowish(i: int) -> dict:
    time.sleep(0.02)
    return {"y": i / 2, "z": i}


def test_runs_longer_than_the_interval_get_a_running_row_then_their_plain_results(store: Path) -> None:
    with rec.Recorder("l", store=store, git=False, flush_interval=0.01) as r:
        r.sweep(slowish, rec.plist("i", range(6)), progress=False)
    rows = sqlite3.connect(store / "recorder.sqlite").execute("SELECT status, scalars FROM runs ORDER BY pk").fetchall()
    assert rows == [("done", f'{{"y":{i / 2!r},"z":{i}}}') for i in range(6)]


# -- the serial loop calls each run by the rule a worker's execute() follows -----------------------------


def printing(b: int) -> dict:
    """Prints for some runs, fails for one, is interrupted by nothing: each way a call can end."""
    if b % 3 == 0:
        print(f"run {b}")
    if b == 7:
        raise ValueError("seven")
    return {"y": b / 2, "seed": rec.current_seed(), "z": None if b == 5 else b}


def stored_by_pset(store: Path) -> list[Any]:
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        runs = conn.execute(
            "SELECT p.params, r.status, r.seed, r.scalars, r.error IS NULL, t.text"
            " FROM runs r JOIN psets p ON p.pk = r.pset LEFT JOIN texts t ON t.digest = r.output ORDER BY p.params"
        ).fetchall()
        results = conn.execute(
            "SELECT p.params, x.name, x.kind, quote(x.value) FROM results x JOIN runs r ON r.pk = x.run"
            " JOIN psets p ON p.pk = r.pset ORDER BY p.params, x.name"
        ).fetchall()
        return [runs, results]
    finally:
        conn.close()


@pytest.mark.parametrize("capture", [False, True])
def test_serial_runs_store_what_runs_by_execute_store(tmp_path: Path, capture: bool) -> None:
    from concurrent.futures import ThreadPoolExecutor

    grid = rec.plist("b", range(12))
    failed = pytest.warns(rec.RecorderWarning, match="1 of 12 runs failed")
    with failed, rec.Recorder("p", store=tmp_path / "serial", git=False, seed=1) as r:
        r.sweep(printing, grid, capture=capture, progress=False)
    failed = pytest.warns(rec.RecorderWarning, match="1 of 12 runs failed")
    with failed, ThreadPoolExecutor(1) as pool, rec.Recorder("p", store=tmp_path / "executor", git=False, seed=1) as r:
        r.sweep(printing, grid, capture=capture, executor=pool, progress=False)
    serial_rows, executor_rows = stored_by_pset(tmp_path / "serial"), stored_by_pset(tmp_path / "executor")
    assert serial_rows == executor_rows
    outputs = [row[5] for row in serial_rows[0]]
    assert outputs.count(None) == (12 if not capture else 8)  # printed by b = 0, 3, 6, 9 when captured


def test_the_serial_loop_calls_each_run_by_executes_rule(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from recorder.sweep import execute

    calls: list[dict[str, Any]] = []

    def counted(func: Any, kwargs: dict[str, Any], seed: int, capture: bool = False, *where: Any) -> Any:
        calls.append(kwargs)
        return execute.call(func, kwargs, seed, capture, *where)

    monkeypatch.setattr(serial, "call", counted)
    with pytest.warns(rec.RecorderWarning, match="1 of 12 runs failed"), rec.Recorder("c", store=store, git=False) as r:
        df = r.sweep(printing, rec.plist("b", range(12)), progress=False)
    assert [kwargs["b"] for kwargs in calls] == list(range(12))
    assert df["_status"].value_counts()[["done", "failed"]].tolist() == [11, 1]


def _blocks_case() -> list[dict[str, Any]]:
    """Psets of a vectorised sweep, in blocks: plain ones, then blocks that each break the shortcut once."""
    from recorder.sweep.loop import _BLOCK

    plain_psets: list[dict[str, Any]] = [{"b": i, "a": 0.25 + i} for i in range(3 * _BLOCK)]
    odd: list[dict[str, Any]] = [
        {"b": 1, "a": -0.0},  # -0.0 is written 0.0
        {"b": 2**63 - 1, "a": 1e300},
        {"b": 3, "a": np.float64(0.5)},  # a numpy scalar
        {"a": 2.0, "b": 4},  # another order
        {"b": 5, "a": "y"},  # a str
        {"b": True, "a": 1.0},  # a bool
        {"b": 6, "a": float("inf")},
    ]
    out = list(plain_psets)
    for i, pset in enumerate(odd):  # each in a block of its own, among plain psets
        block = [{"b": 10_000 + i * _BLOCK + j, "a": 0.5 + j} for j in range(_BLOCK)]
        block[_BLOCK // 2] = pset
        out += block
    return out


def numeric(b: int, a: float, c: float = 2.5) -> dict:
    return {}


def test_tasks_in_blocks_give_what_tasks_give(monkeypatch: pytest.MonkeyPatch) -> None:
    from recorder.sweep import loop

    general = []  # the blocks that went the general way

    def counted(*args: Any) -> Any:
        general.append(args[-1])
        return tasks(*args)

    tasks = loop._tasks
    psets = _blocks_case()
    for seed in (None, 11):
        general.clear()
        expected = list(tasks(Binder(numeric), psets, seed))
        monkeypatch.setattr(loop, "_tasks", counted)
        got = list(loop._tasks_in_blocks(Binder(numeric), psets, seed))
        monkeypatch.setattr(loop, "_tasks", tasks)
        assert got == expected
        assert [type(v) for t in got for v in t.params.values()] == [
            type(v) for t in expected for v in t.params.values()
        ]
        # The first block (the layout is new) and each block with an odd pset (not 2**63 - 1 and 1e300,
        # which are plain); the others in one go.
        assert general == [0] + [(3 + i) * loop._BLOCK for i in range(7) if i != 1]


def test_tasks_in_blocks_refuse_what_tasks_refuse() -> None:
    from recorder.sweep.loop import _BLOCK, _tasks, _tasks_in_blocks

    psets: list[Any] = [{"b": i, "a": 1.0 + i} for i in range(_BLOCK + 5)]
    psets[_BLOCK + 3] = {"b": 1, "a": float("nan")}
    with pytest.raises(RecorderError, match="NaN"):
        list(_tasks_in_blocks(Binder(plain), psets, None))
    psets[_BLOCK + 3] = [1, 2]
    with pytest.raises(RecorderError) as general:
        list(_tasks(Binder(plain), psets, None))
    with pytest.raises(RecorderError) as blocks:
        list(_tasks_in_blocks(Binder(plain), psets, None))
    assert str(blocks.value) == str(general.value) and f"pset number {_BLOCK + 3}:" in str(general.value)


def test_ids_made_together_are_what_new_id_makes_one_by_one() -> None:
    from recorder.store.ids import new_id, new_ids

    before = new_id()
    ids = new_ids(1000)
    after = new_id()
    assert len(set(ids)) == 1000 and all(len(i) == 24 for i in ids)
    assert [before, *ids, after] == sorted([before, *ids, after])
    assert new_ids(0) == [] and new_id() > after


def test_pset_identities_give_what_pset_identity_gives() -> None:
    from recorder.codec.hashing import pset_identities, pset_identity

    texts = [canonical_pset({"a": 0.1 * i, "b": i, "c": "é" * (i % 3)})[1] for i in range(500)] + ["{}"]
    for seed in (None, 0, 7, -3, 2**40):
        hashes, seeds = pset_identities(seed)(texts)
        assert list(zip(hashes, seeds)) == [pset_identity(seed)(t) for t in texts]
    assert pset_identities(None)([]) == ([], [])
