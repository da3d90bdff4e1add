"""``@experiment(workdir=, keep_files=, max_file_bytes=)``: the runs it records (calls and sweeps) use them."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

import recorder as rec


def write(a: int, size: int = 3) -> dict[str, Any]:
    """Leave a file of ``size`` bytes in the run's folder; report the folder."""
    folder = rec.current_run().dir
    (folder / "out.txt").write_bytes(b"x" * size)
    return {"folder": str(folder)}


def statuses_and_errors(store: Path) -> list[tuple[str, str | None]]:
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        return conn.execute("SELECT status, error FROM runs ORDER BY pk").fetchall()
    finally:
        conn.close()


def test_workdir_and_keep_files_reach_calls_and_sweeps(store: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    exp = rec.experiment("files", store=store, git=False, workdir=work, keep_files="both")(write)
    called = Path(exp(a=1)["folder"])
    df = exp.sweep(rec.plist("a", [2, 3]), progress=False)
    swept = [Path(folder) for folder in df["folder"]]
    for folder in (called, *swept):
        assert folder.parent == work  # under workdir=, not the store's runs/
        assert (folder / "out.txt").read_bytes() == b"xxx"  # "both": kept
    with rec.open(store) as db:
        for run_id in db.df("files")["_run_id"]:
            assert db.file(run_id, "out.txt").read_bytes() == b"xxx"  # and stored
    # A sweep's own option wins over the experiment's.
    only_stored = exp.sweep(rec.plist("a", [4]), keep_files="store", progress=False)
    assert not Path(only_stored["folder"][0]).exists()


def test_keep_files_folder_only_lists_them(store: Path, tmp_path: Path) -> None:
    exp = rec.experiment("listed", store=store, git=False, keep_files="folder")(write)
    folder = Path(exp(a=1)["folder"])
    assert (folder / "out.txt").exists()
    with rec.open(store) as db:
        (run_id,) = db.df("listed")["_run_id"]
        assert db.result(run_id, "out.txt")["bytes"] == 3  # listed, with its size and digest


def test_max_file_bytes_fails_the_runs_of_calls_and_sweeps(store: Path) -> None:
    exp = rec.experiment("limited", store=store, git=False, max_file_bytes=5)(write)
    exp(a=1, size=5)
    exp(a=2, size=6)
    with pytest.warns(rec.RecorderWarning, match="1 of 2 runs failed"):
        exp.sweep([{"a": 3, "size": 4}, {"a": 4, "size": 9}], progress=False)
    runs = statuses_and_errors(store)
    assert [status for status, _ in runs] == ["done", "failed", "done", "failed"]
    assert all("max_file_bytes=5" in error for status, error in runs if status == "failed")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"keep_files": "elsewhere"}, "keep_files='elsewhere' is not one of 'store', 'both', 'folder'"),
        ({"keep_files": None}, "keep_files=None is not one of"),
        ({"max_file_bytes": -1}, r"max_file_bytes=-1 is not a number of bytes \(an int ≥ 0\) or None"),
        ({"max_file_bytes": 1.5}, "max_file_bytes=1.5 is not a number of bytes"),
        ({"max_file_bytes": True}, "max_file_bytes=True is not a number of bytes"),
    ],
)
def test_bad_options_are_refused_when_decorating(store: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(rec.RecorderError, match=message):
        rec.experiment("bad", store=store, git=False, **options)(write)
    with pytest.raises(rec.RecorderError, match=message):  # the very words Recorder says
        rec.Recorder("bad", store=store, git=False, **options)
    assert not (store / "recorder.sqlite").exists()  # refused before anything is written
