"""Series: ``run.append(loss=x)`` per step; at the end an array result ``loss_series`` and the last value as ``loss``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import recorder as rec


def trains(steps: int) -> dict:
    run = rec.current_run()
    for step in range(steps):
        run.append(loss=1.0 / (step + 1), step=step)
    return {"ran": steps}


def mixes(a: int) -> None:
    rec.current_run().append(loss=0.5)
    rec.current_run().append(loss="high")


def clashes(loss: float) -> None:
    rec.current_run().append(loss=loss)


def fails_midway(a: int) -> None:
    for step in range(3):
        rec.current_run().append(loss=float(step))
    raise RuntimeError("diverged")


def _check_trains(store: Path, df: object, steps: int = 1000) -> None:
    import pandas as pd

    assert isinstance(df, pd.DataFrame) and set(df["_status"]) == {"done"}
    with rec.open(store) as db:
        for run_id in df["_run_id"]:
            loss = db.array(run_id, "loss_series", mmap=False)
            assert loss.shape == (steps,) and loss.dtype == np.float64
            assert loss[0] == 1.0 and loss[-1] == 1.0 / steps
            assert db.result(run_id, "loss") == 1.0 / steps  # the last value, as a scalar
            step = db.array(run_id, "step_series", mmap=False)
            assert step.dtype == np.int64 and step.tolist() == list(range(steps))
            assert db.result(run_id, "step") == steps - 1
        frame = db.df("t")
    assert frame["loss"].tolist() == [1.0 / steps] * len(df)  # SQL and df() see the final value


def test_a_thousand_appends_give_an_array_and_the_last_value(store: Path) -> None:
    with rec.Recorder("t", store=store, git=False) as r:
        df = r.sweep(trains, rec.plist("steps", [1000]))
    _check_trains(store, df)


def test_series_in_worker_processes(store: Path) -> None:
    with rec.Recorder("t", store=store, git=False) as r:
        df = r.sweep(trains, rec.plist("steps", [10, 10, 20]), workers=2, skip=None)
    assert set(df["_status"]) == {"done"}
    with rec.open(store) as db:
        assert [len(db.array(i, "loss_series")) for i in df["_run_id"]] == [10, 10, 20]


def test_series_of_a_with_run_block(store: Path) -> None:
    with rec.Recorder("t", store=store, git=False) as r, r.run(lr=0.1) as run:
        for step in range(5):
            run.append(acc=step / 4)
        run.log(note="x")
    with rec.open(store) as db:
        assert db.array(run.id, "acc_series").tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
        assert db.result(run.id, "acc") == 1.0


def test_a_series_of_mixed_types_fails_its_run_only(store: Path) -> None:
    with pytest.warns(rec.RecorderWarning, match="2 of 2 runs failed"), rec.Recorder("t", store=store, git=False) as r:
        df = r.sweep(mixes, rec.plist("a", [1, 2]), skip=None)
        df2 = r.sweep(trains, rec.plist("steps", [3]))
    assert set(df["_status"]) == {"failed"} and set(df2["_status"]) == {"done"}
    with rec.open(store) as db:
        error = db.conn.execute("SELECT error FROM runs WHERE status = 'failed'").fetchone()[0]
    assert "SeriesRefused" in error and "'high'" in error and "step 1" in error


def test_a_series_named_like_a_parameter_fails_its_run(store: Path) -> None:
    with pytest.warns(rec.RecorderWarning), rec.Recorder("t", store=store, git=False) as r:
        df = r.sweep(clashes, rec.plist("loss", [0.5]))
    assert df["_status"].tolist() == ["failed"]
    with rec.open(store) as db:
        error = db.conn.execute("SELECT error FROM runs").fetchone()[0]
    assert "NameRefused" in error and "loss" in error


def test_a_failed_run_keeps_its_series(store: Path) -> None:
    with pytest.warns(rec.RecorderWarning), rec.Recorder("t", store=store, git=False) as r:
        df = r.sweep(fails_midway, rec.plist("a", [1]))
    assert df["_status"].tolist() == ["failed"]
    with rec.open(store) as db:
        assert db.array(df["_run_id"][0], "loss_series").tolist() == [0.0, 1.0, 2.0]


def test_append_outside_a_run_block_is_refused(store: Path) -> None:
    with rec.Recorder("t", store=store, git=False) as r:
        run = r.run(a=1)
        with pytest.raises(rec.RecorderError, match="open run"):
            run.append(loss=1.0)
