"""Series spills in a process that lives: the file comes and goes with its run, and never breaks a run.

(Killed processes are in tests/faults/test_fault_series_spill.py.)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import recorder as rec


def _spills(store: Path) -> list[str]:
    locks = store / "locks"
    return sorted(
        f"{folder.name}/{name}"
        for folder in locks.iterdir()
        if folder.name.endswith(".series")
        for name in (os.listdir(folder) if folder.is_dir() else ["(not a folder)"])
    )


def test_a_spill_file_lives_while_its_run_runs(store: Path) -> None:
    seen: dict[str, list[str]] = {}

    def steps(n: int) -> dict:
        run = rec.current_run()
        for i in range(n):
            run.append(loss=i * 0.5, step=i)
        seen[run.id] = _spills(store)
        return {}

    with rec.Recorder("sp", store=store, git=False, flush_interval=0) as r:  # 0: every append is spilled
        df = r.sweep(steps, rec.plist("n", [3, 4]), progress=False)
        with r.run(n=5) as run:
            steps(5)
        seen_after = _spills(store)
    for run_id, spills in seen.items():
        assert [s.split("/")[1] for s in spills] == [f"{run_id}.spill"]  # its own file, while it ran
    assert seen_after == []  # each run removed its own when it ended
    assert not any(p.name.endswith(".series") for p in (store / "locks").iterdir())  # the session its folder
    with rec.open(store) as db:
        for run_id, n in [*zip(df["_run_id"], [3, 4]), (run.id, 5)]:
            assert np.array_equal(db.result(run_id, "loss_series"), np.arange(n) * 0.5)
            assert db.result(run_id, "step_series").dtype == np.int64 and db.result(run_id, "step") == n - 1


def test_a_run_without_series_or_shorter_than_the_interval_writes_no_file(store: Path) -> None:
    def steps(n: int) -> dict:
        run = rec.current_run()
        for i in range(n):
            run.append(loss=float(i))
        return {"spills": len(_spills(store))}

    with rec.Recorder("sp", store=store, git=False, flush_interval=60) as r:
        df = r.sweep(steps, rec.plist("n", [0, 1000]), progress=False)
    assert df["spills"].tolist() == [0, 0]


def test_a_spill_that_cannot_be_written_warns_and_the_run_goes_on(store: Path) -> None:
    def steps(n: int) -> dict:
        run = rec.current_run()
        for i in range(n):
            run.append(loss=float(i))
        return {}

    with rec.Recorder("sp", store=store, git=False, flush_interval=0) as r:
        r.writing()
        (store / "locks" / f"{r.id}.series").write_text("not a folder")  # where the spill folder goes
        with pytest.warns(rec.RecorderWarning, match="cannot spill the series of run"):
            df = r.sweep(steps, rec.plist("n", [3]), progress=False)
    assert df["_status"].tolist() == ["done"]
    with rec.open(store) as db:
        assert np.array_equal(db.result(df["_run_id"][0], "loss_series"), [0.0, 1.0, 2.0])


def test_a_series_of_text_is_not_spilled_and_fails_its_run_at_the_end(store: Path) -> None:
    def steps(n: int) -> dict:
        run = rec.current_run()
        run.append(loss=1.0, word="a")
        run.append(loss=2.0, word="b")
        return {}

    with rec.Recorder("sp", store=store, git=False, flush_interval=0) as r:
        df = r.sweep(steps, rec.plist("n", [1]), progress=False)
    assert df["_status"].tolist() == ["failed"] and "SeriesRefused" in df["_error"][0]


def test_a_sweep_run_cut_short_by_ctrl_c_keeps_its_spilled_series(store: Path) -> None:
    def steps(n: int) -> dict:
        run = rec.current_run()
        for i in range(n):
            run.append(loss=i * 0.5)
        raise KeyboardInterrupt  # Ctrl-C in the middle of the run

    with rec.Recorder("sp", store=store, git=False, flush_interval=0) as r, pytest.raises(KeyboardInterrupt):
        r.sweep(steps, rec.plist("n", [4]), progress=False)
    with rec.open(store) as db:
        (run_id,) = db.sql("SELECT run_id FROM overview_runs WHERE status = 'interrupted'")["run_id"]
        assert np.array_equal(db.result(run_id, "loss_series"), np.arange(4) * 0.5)
    assert _spills(store) == []
