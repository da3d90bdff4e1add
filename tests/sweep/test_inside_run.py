"""Inside a run: ``rec.current_run()`` (id, pset hash, seed, params, experiment, work folder) wherever the run runs."""

from __future__ import annotations

import concurrent.futures as cf
import sqlite3
from pathlib import Path

import pytest

import recorder as rec
from recorder.errors import NotInRun


def who(a: int) -> dict:
    """Report what current_run() says, as results."""
    run = rec.current_run()
    return {
        "seen_id": run.id,
        "seen_hash": run.pset_hash,
        "seen_seed": run.seed,
        "seen_a": run.params["a"],
        "seen_experiment": run.experiment,
        "same_seed": run.seed == rec.current_seed(),
    }


def plain(a: int) -> dict:
    return {"y": a}


def _recorded(store: Path) -> dict[str, tuple[str, int]]:
    """Run id → (pset hash, seed) as the database has them."""
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        rows = conn.execute(
            "SELECT lower(hex(r.id)), lower(hex(p.hash)), r.seed FROM runs r JOIN psets p ON p.pk = r.pset"
        ).fetchall()
    finally:
        conn.close()
    return {run_id: (hash_, seed) for run_id, hash_, seed in rows}


def _check(df: object, store: Path, experiment: str = "w") -> None:
    import pandas as pd

    assert isinstance(df, pd.DataFrame)
    assert set(df["_status"]) == {"done"}, df
    recorded = _recorded(store)
    assert len(recorded) == len(df)
    for row in df.to_dict("records"):
        assert row["seen_id"] == row["_run_id"]  # the id the function saw is the recorded id
        assert recorded[row["seen_id"]] == (row["seen_hash"], row["seen_seed"])
        assert row["seen_a"] == row["a"] and row["seen_experiment"] == experiment and row["same_seed"]


def test_current_run_in_a_serial_sweep_is_the_recorded_run(store: Path) -> None:
    with rec.Recorder("w", store=store, git=False) as r:
        df = r.sweep(who, rec.plist("a", [1, 2, 3]))
    _check(df, store)


def test_current_run_in_a_process_pool_is_the_recorded_run(store: Path) -> None:
    with rec.Recorder("w", store=store, git=False) as r:
        df = r.sweep(who, rec.plist("a", range(6)), workers=2)
    _check(df, store)


def test_current_run_in_threads_is_each_threads_own_run(store: Path) -> None:
    with cf.ThreadPoolExecutor(4) as pool, rec.Recorder("w", store=store, git=False) as r:
        df = r.sweep(who, rec.plist("a", range(12)), executor=pool)
    _check(df, store)


def test_current_run_on_dask_worker_processes_is_the_recorded_run(store: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
        rec.Recorder("w", store=store, git=False) as r,
    ):
        df = r.sweep(who, rec.plist("a", range(4)), executor=client.get_executor())
    _check(df, store)


def test_current_run_in_with_run_and_a_decorated_call(store: Path) -> None:
    with rec.Recorder("w", store=store, git=False) as r, r.run(a=4) as run:
        inside = rec.current_run()
        assert (inside.id, inside.pset_hash, inside.seed, inside.params) == (run.id, run.pset_hash, run.seed, {"a": 4})
        assert run.dir == inside.dir == store.absolute() / "runs" / run.id
        assert run.dir.is_dir()

    @rec.experiment("deco", store=store, git=False)
    def deco(a: int) -> dict:
        return {"seen_id": rec.current_run().id}

    seen = deco(a=1)["seen_id"]
    assert seen in _recorded(store)


def test_current_run_outside_a_run_is_a_clear_error() -> None:
    with pytest.raises(NotInRun, match="only known inside a recorded run"):
        rec.current_run()
    with pytest.raises(NotInRun):
        rec.current_seed()


def test_the_work_folder_is_made_only_when_asked(store: Path, tmp_path: Path) -> None:
    with rec.Recorder("w", store=store, git=False) as r:
        r.sweep(plain, rec.plist("a", [1, 2]))
    assert not (store / "runs").exists()  # no run asked for its folder

    def wants_dir(a: int) -> dict:
        return {"where": str(rec.current_run().dir)}

    work = tmp_path / "work"
    with rec.Recorder("w", store=store, git=False, workdir=work) as r:
        df = r.sweep(wants_dir, rec.plist("a", [5]))
    assert df["where"][0] == str(work.absolute() / df["_run_id"][0])
    with rec.Recorder("w", store=store, git=False) as r:
        df = r.sweep(wants_dir, rec.plist("a", [6]), workdir=tmp_path / "other")
    assert df["where"][0] == str((tmp_path / "other").absolute() / df["_run_id"][0])
