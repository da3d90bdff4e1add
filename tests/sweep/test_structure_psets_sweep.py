"""Sweeps over list-valued parameters, ``rec.stargrid``, builtin ``zip`` of plists and plain lists of dicts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import recorder as rec


def net(layers: list[int], act: str = "relu") -> dict:
    return {"width": sum(layers), "kind": type(layers).__name__}


def add(a: int, b: int = 0) -> dict:
    return {"s": a + b}


def test_a_grid_of_lists_sweeps_and_the_view_shows_the_lists(store: Path) -> None:
    with rec.Recorder("n", store=store, git=False) as r:
        df = r.sweep(net, rec.grid(layers=[[64, 64], [128]]))
        again = r.sweep(net, rec.grid(layers=[(64, 64), (128,)]))  # the same psets: skipped as done
        rerun = r.sweep(net, rec.plist("layers", [(64, 64)]), skip=None)
    assert df["_status"].tolist() == ["done", "done"] and df["width"].tolist() == [128, 128]
    assert df["layers"].tolist() == [[64, 64], [128]]
    assert again["_run_id"].tolist() == df["_run_id"].tolist()  # a tuple and a list hash the same
    assert rerun["_pset_hash"].tolist() == df["_pset_hash"].tolist()[:1] and rerun["kind"].tolist() == ["list"]
    with sqlite3.connect(store / "recorder.sqlite") as conn:
        rows = conn.execute("SELECT DISTINCT layers, typeof(layers), act FROM n ORDER BY width, layers").fetchall()
        assert rows == [("[128]", "text", "relu"), ("[64,64]", "text", "relu")]
        assert conn.execute("SELECT count(*) FROM n WHERE layers = '[64,64]'").fetchone() == (2,)  # two runs of it
    with rec.open(store) as db:
        assert sorted(map(str, db.df("n")["layers"])) == ["[128]", "[64, 64]", "[64, 64]"]


def test_stargrid_varies_one_parameter_at_a_time() -> None:
    psets = rec.stargrid({"a": 1, "b": 2}, a=[1, 5], b=[7])
    assert psets == [{"a": 1, "b": 2}, {"a": 5, "b": 2}, {"a": 1, "b": 7}]
    assert rec.stargrid({"a": 1}, a=[1, 1]) == [{"a": 1}]
    with pytest.raises(rec.RecorderError, match="base pset"):
        rec.stargrid([{"a": 1}], a=[2])  # type: ignore[arg-type]


def test_builtin_zip_and_plain_lists_of_dicts_are_pset_sequences(store: Path) -> None:
    with rec.Recorder("z", store=store, git=False) as r:
        zipped = r.sweep(add, zip(rec.plist("a", [1, 2]), rec.plist("b", [10, 20])))
        listed = r.sweep(add, [{"a": 3}, {"a": 4, "b": 1}])
        starred = r.sweep(add, rec.stargrid({"a": 0, "b": 0}, a=[5], b=[6]))
    assert zipped["s"].tolist() == [11, 22] and listed["s"].tolist() == [3, 5] and starred["s"].tolist() == [5, 6]
    assert list(rec.pgrid(zip(rec.plist("a", [1]), rec.plist("b", [2])), rec.plist("c", [3]))) == [
        {"a": 1, "b": 2, "c": 3}
    ]
    with rec.Recorder("z", store=store, git=False) as r, pytest.raises(rec.RecorderError, match="appears twice"):
        r.sweep(add, zip(rec.plist("a", [1]), rec.plist("a", [2])))
