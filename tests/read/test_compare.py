"""db.compare: one row per run, the columns whose values differ, the constant ones in ``attrs["constant"]``."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from conftest import git

import recorder as rec
from recorder.read import compare as compare_module


def three_runs(store: Path) -> list[str]:
    """Three runs of one session: a and energy differ; b, the config, the array and the environment do not."""
    ids = []
    with rec.Recorder("lorenz", store=store, git=False, config={"dt": 0.01}) as r:
        for a in (0.1, 0.2, 0.3):
            with r.run(a=a, b=8) as run:
                run.log(energy=a * 10, label="x", traj=np.arange(30000.0), small=np.arange(3))
            ids.append(run.id)
    return ids


def dump(store: Path) -> list[str]:
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_only_the_differing_columns(store: Path) -> None:
    ids = three_runs(store)
    with rec.open(store) as db:
        df = db.compare(ids)
        shorts = [db.short_id(i) for i in ids]
    assert list(df.columns) == ["_run_id", "param.a", "result.energy"]
    assert list(df.index) == shorts and df.index.name == "run"
    assert list(df["_run_id"]) == ids
    assert df["param.a"].tolist() == [0.1, 0.2, 0.3]
    assert df["result.energy"].tolist() == [1.0, 2.0, 3.0]
    constant = df.attrs["constant"]
    assert constant["param.b"] == 8 and constant["config.dt"] == 0.01 and constant["result.label"] == "x"
    assert constant["experiment"] == "lorenz" and constant["status"] == "done"
    assert constant["result.traj"].startswith("array <f8 (30000,) ")  # by dtype, shape and digest
    assert constant["result.small"].startswith("array <i8 (3,) ")
    assert constant["env.python"].endswith(platform.python_version()) and constant["env.host"]
    assert constant["code.commit"] is None and constant["code.dirty"] is None  # recorded without git
    assert "error" not in constant and "code.diff" not in constant  # None in every run: left out
    assert df.attrs["same_packages"] > 0
    assert not any(name.startswith("package.") for name in [*df.columns, *constant])


def test_all_columns(store: Path) -> None:
    ids = three_runs(store)
    with rec.open(store) as db:
        df = db.compare(ids, all_columns=True)
    assert list(df.columns[:5]) == ["_run_id", "experiment", "status", "param.a", "param.b"]
    assert {"config.dt", "result.energy", "result.label", "result.traj", "code.env_sha", "env.python"} <= set(df)
    assert df["param.b"].tolist() == [8, 8, 8]
    assert set(df.attrs["constant"]) < set(df.columns)


def test_runs_in_the_order_named_and_once(store: Path) -> None:
    ids = three_runs(store)
    with rec.open(store) as db:
        df = db.compare([ids[2], db.short_id(ids[0]), ids[2].upper(), ids[0]])
        prefix = next(ids[1][:k] for k in range(1, 25) if sum(i.startswith(ids[1][:k]) for i in ids) == 1)
        by_prefix = db.compare([prefix, ids[0]])
    assert list(df["_run_id"]) == [ids[2], ids[0]]
    assert list(by_prefix["_run_id"]) == [ids[1], ids[0]]


def test_config_of_different_sessions(store: Path) -> None:
    ids = []
    for dt in (0.01, 0.02):
        with rec.Recorder("lorenz", store=store, git=False, config={"dt": dt, "solver": "rk4"}) as r:
            with r.run(a=1) as run:
                run.log(e=1.0)
            ids.append(run.id)
    with rec.open(store) as db:
        df = db.compare(ids)
    assert df["config.dt"].tolist() == [0.01, 0.02]
    assert df.attrs["constant"]["config.solver"] == "rk4"
    assert "param.a" not in df and "result.e" not in df


def test_runs_of_two_experiments_have_the_union_of_columns(store: Path) -> None:
    with rec.Recorder("one", store=store, git=False) as r, r.run(a=1, b=2) as first:
        first.log(e=1.0)
    with rec.Recorder("two", store=store, git=False) as r, r.run(a=1, c=3) as second:
        second.log(e=1.0)
    with rec.open(store) as db:
        df = db.compare([first.id, second.id])
        document = compare_module.compare(db, [first.id, second.id]).document()
    assert df["experiment"].tolist() == ["one", "two"]
    # A missing value: NA, in a nullable integer column (as db.df has it)
    assert df["param.b"].isna().tolist() == [False, True] and df["param.b"].iloc[0] == 2
    assert df["param.c"].isna().tolist() == [True, False] and df["param.c"].iloc[1] == 3
    assert str(df["param.b"].dtype) == "Int64"
    assert df.attrs["constant"]["param.a"] == 1 and df.attrs["constant"]["result.e"] == 1.0
    assert "param.c" not in document["runs"][0] and document["runs"][1]["param.c"] == 3


def test_values_are_compared_exactly(store: Path) -> None:
    values = [
        {"f": 0.1 + 0.2, "nan": float("nan"), "z": 0.0, "one": 1, "arr": np.zeros(3)},
        {"f": 0.3, "nan": float("nan"), "z": -0.0, "one": 1.0, "arr": np.zeros(3)},
        {"f": 0.3, "nan": float("nan"), "z": 0.0, "one": True, "arr": np.ones(3)},
    ]
    ids = []
    with rec.Recorder("exact", store=store, git=False) as r:
        for i, logged in enumerate(values):
            with r.run(i=i) as run:
                run.log(**logged)
            ids.append(run.id)
    with rec.open(store) as db:
        df = db.compare(ids)
    assert set(df.columns) == {"_run_id", "param.i", "result.f", "result.z", "result.one", "result.arr"}
    assert np.isnan(df.attrs["constant"]["result.nan"])  # NaN equals NaN
    assert [type(v) for v in df["result.one"]] == [int, float, bool]  # 1, 1.0 and True differ, kept as they are
    assert [str(v) for v in df["result.z"]] == ["0.0", "-0.0", "0.0"]
    arrays = df["result.arr"].tolist()
    assert arrays[0] == arrays[1] != arrays[2]


def test_failed_runs_show_status_and_error(store: Path) -> None:
    with rec.Recorder("lorenz", store=store, git=False) as r:
        with r.run(a=1) as done:
            done.log(e=1.0)
        failing = r.run(a=2)
        with pytest.raises(ValueError), failing:
            raise ValueError("diverged\nat step 7")
    with rec.open(store) as db:
        df = db.compare([done.id, failing.id])
    assert df["status"].tolist() == ["done", "failed"]
    assert df["error"].tolist() == [None, "ValueError: diverged at step 7"]
    assert df["result.e"].tolist()[0] == 1.0 and df["result.e"].isna().tolist() == [False, True]


def test_an_experiment_selected_by_where_and_status(store: Path) -> None:
    with rec.Recorder("lorenz", store=store, git=False) as r:
        for a in (1, 2, 3, 4):
            with r.run(a=a, b=a % 2) as run:
                run.log(e=a * 1.5)
        failing = r.run(a=5, b=1)
        with pytest.raises(ValueError), failing:
            raise ValueError("no")
    with rec.open(store) as db:
        every = db.compare(experiment="lorenz")
        odd = db.compare(experiment="lorenz", where="b = 1 AND a < 5")
        done = db.compare(experiment="lorenz", status="done")
        first = db.compare(experiment="lorenz", limit=2)
        with pytest.raises(rec.ExperimentNotFound):
            db.compare(experiment="nosuch")
    assert every["param.a"].tolist() == [1, 2, 3, 4, 5] and "status" in every
    assert odd["param.a"].tolist() == [1, 3] and "param.b" not in odd and odd.attrs["constant"]["param.b"] == 1
    assert done["param.a"].tolist() == [1, 2, 3, 4] and done.attrs["constant"]["status"] == "done"
    assert first["param.a"].tolist() == [1, 2]


def test_too_many_runs_are_refused_without_a_limit(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with rec.Recorder("lorenz", store=store, git=False) as r:
        r.sweep(lambda a: {"e": a}, rec.grid(a=[1, 2, 3, 4]), progress=False)
    monkeypatch.setattr(compare_module, "MAX_RUNS", 3)
    with rec.open(store) as db:
        with pytest.raises(rec.RecorderError, match=r"more than 3 runs of 'lorenz'.*limit"):
            db.compare(experiment="lorenz")
        assert len(db.compare(experiment="lorenz", limit=4)) == 4
        assert len(db.compare(experiment="lorenz", where="a > 1")) == 3


@pytest.mark.parametrize("where", ["1); DROP TABLE runs; --", "a = 1; DELETE FROM runs", "nosuch > 1"])
def test_a_hostile_where_is_refused_and_changes_nothing(store: Path, where: str) -> None:
    three_runs(store)
    before = dump(store)
    with rec.open(store) as db:
        with pytest.raises(rec.RecorderError, match="cannot select runs where"):
            db.compare(experiment="lorenz", where=where)
    assert dump(store) == before


def test_unknown_and_ambiguous_runs(store: Path) -> None:
    ids = three_runs(store)
    common = os.path.commonprefix(ids)  # noqa: RUF071 (ids: a character prefix)
    with rec.open(store) as db:
        with pytest.raises(rec.RunNotFound):
            db.compare([ids[0], "f" * 24 if not ids[0].startswith("f") else "0" * 24])
        with pytest.raises(rec.AmbiguousRunId):
            db.compare([ids[0], common])


def test_bad_arguments(store: Path) -> None:
    ids = three_runs(store)
    with rec.open(store) as db:
        with pytest.raises(rec.RecorderError, match="run ids or an experiment"):
            db.compare()
        with pytest.raises(rec.RecorderError, match="run ids or an experiment"):
            db.compare(ids, experiment="lorenz")
        with pytest.raises(rec.RecorderError, match="name the experiment"):
            db.compare(ids, where="a > 0")
        with pytest.raises(rec.RecorderError, match="limit"):
            db.compare(experiment="lorenz", limit=0)
        with pytest.raises(rec.RecorderError, match="status"):
            db.compare(experiment="lorenz", status="finished")


def test_packages_that_differ_are_columns(store: Path) -> None:
    """Two sessions whose recorded package lists differ in one version and one package (edited in the store)."""
    ids = []
    for a in (1, 2):
        with rec.Recorder("lorenz", store=store, git=False) as r, r.run(a=a) as run:
            run.log(e=1.0)
        ids.append(run.id)
    conn = sqlite3.connect(store / "recorder.sqlite")
    with conn:
        (text,) = conn.execute(
            "SELECT t.text FROM texts AS t JOIN sessions AS s ON s.packages = t.digest ORDER BY s.pk DESC"
        ).fetchone()
        packages = json.loads(text)
        same = len(packages)
        packages["numpy"] = "0.0.1"
        packages["extra-package"] = "1.0"
        conn.execute("INSERT INTO texts (digest, text) VALUES ('edited', ?)", (json.dumps(packages),))
        conn.execute("UPDATE sessions SET packages = 'edited' WHERE pk = (SELECT max(pk) FROM sessions)")
    conn.close()
    with rec.open(store) as db:
        df = db.compare(ids)
    assert df["package.numpy"].tolist()[1] == "0.0.1" and df["package.numpy"].tolist()[0] == np.__version__
    assert df["package.extra-package"].tolist() == [None, "1.0"]
    assert df.attrs["same_packages"] == same - 1
    assert "package.pytest" not in df and "package.pytest" not in df.attrs["constant"]


def test_the_code_columns(store: Path, repo: Path) -> None:
    """git='record' on a clean, then a modified work tree; then a snapshot: commit, dirty, diff and snapshot differ."""
    ids = []
    with rec.Recorder("lorenz", store=store, git="record", repo=repo) as r, r.run(a=1) as run:
        run.log(e=1.0)
    ids.append(run.id)
    (repo / "model.py").write_text("A = 2\n")
    with rec.Recorder("lorenz", store=store, git="record", repo=repo) as r, r.run(a=1) as run:
        run.log(e=1.0)
    ids.append(run.id)
    with rec.Recorder("lorenz", store=store, git="snapshot", repo=repo) as r, r.run(a=1) as run:
        run.log(e=1.0)
    ids.append(run.id)
    snapshot = r.git.snapshot_ref
    with rec.open(store) as db:
        df = db.compare(ids[:2])
        three = db.compare(ids)
    assert df["code.dirty"].tolist() == [False, True]
    diff = df["code.diff"].tolist()
    assert diff[0] is None and isinstance(diff[1], str) and len(diff[1]) >= 12
    assert df.attrs["constant"]["code.commit"] == git(repo, "rev-parse", "HEAD")
    assert "code.snapshot" not in df and "code.snapshot" not in df.attrs["constant"]  # None in both: left out
    assert three["code.snapshot"].tolist() == [None, None, snapshot] and snapshot
    assert "code.env_sha" in three


def test_the_limit_without_limit_is_ten_thousand() -> None:
    assert compare_module.MAX_RUNS == 10_000
