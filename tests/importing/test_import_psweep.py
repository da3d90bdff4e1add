"""Importing studies run by the real psweep 0.16: values, files, git, failures, idempotence, bad input."""

from __future__ import annotations

import json
import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import git, make_repo

import recorder as rec
from recorder.cli import main

pytest.importorskip("psweep")

# A study as psweep's docs run one: a pset's array saved with np.save into its calc dir, a failing
# pset recorded the way psweep's examples/repeat_failed.py records one (_failed, _exc_txt), git=True.
STUDY = """
import json, os, sys, traceback
import numpy as np
import psweep as ps

def work(pset):
    a, b = pset["a"], pset["b"]
    if (a, b) == (3, 9):
        raise ValueError("a=3, b=9 fails")
    folder = os.path.join(pset["_calc_dir"], pset["_pset_id"])
    os.makedirs(folder, exist_ok=True)
    np.save(os.path.join(folder, "traj.npy"), np.arange(5.0) * a)
    return {"energy_": a * b * 1.5, "label": f"a{a}b{b}"}

def safe(pset):
    try:
        return {**work(pset), "_failed": False, "_exc_txt": None}
    except Exception:
        return {"_failed": True, "_exc_txt": traceback.format_exc()}

params = ps.pgrid(ps.plist("a", json.loads(sys.argv[1])), ps.plist("b", [8, 9]))
ps.run(safe, params, git=True)
"""

# Any study: params and a function given as code (for the bad-input cases).
ANY_STUDY = """
import psweep as ps
params = {params}
def func(pset):
    return {returns}
ps.run(func, params)
"""


def run_psweep(project: Path, a: list[int]) -> Path:
    """Run the study with psweep in ``project`` (a git repository) for a in ``a``, b in 8, 9; return its database."""
    script = project.parent / "study.py"
    script.write_text(STUDY)
    subprocess.run([sys.executable, str(script), json.dumps(a)], cwd=project, check=True, capture_output=True)
    return project / "calc" / "database.pk"


def run_any(folder: Path, params: str, returns: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder.parent / f"{folder.name}.py"
    script.write_text(ANY_STUDY.format(params=params, returns=returns))
    subprocess.run([sys.executable, str(script)], cwd=folder, check=True, capture_output=True)
    return folder / "calc" / "database.pk"


def dump(store: Path) -> list[str]:
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "project")


@pytest.fixture
def study(project: Path) -> tuple[Path, str]:
    """psweep's database of a in 1..4, b in 8, 9, and the commit the study ran."""
    head = git(project, "rev-parse", "HEAD")
    return run_psweep(project, [1, 2, 3, 4]), head


def test_a_psweep_study_imports_with_the_same_rows_and_values(study: tuple[Path, str], store: Path) -> None:
    database, code_commit = study
    source = pd.read_pickle(database)
    report = rec.import_psweep(database, into=store)
    assert (report.read, report.imported, report.already, report.failed) == (8, 8, 0, 1)
    assert any("a, b -> parameters" in line for line in report.mapped)
    assert any("energy_, label -> results" in line for line in report.mapped)

    db = rec.open(store)
    df = db.df("calc", status=None)
    assert len(df) == 8
    by_id = {row["_pset_id"]: row for _, row in source.iterrows()}
    runs = db.conn.execute(
        "SELECT lower(hex(id)), origin, time_start_ms, duration_us, host, pset_seq, error FROM runs ORDER BY pk"
    ).fetchall()
    for (run_id, origin, start_ms, duration_us, host, seq, error), (_, row) in zip(runs, df.iterrows()):
        psweep_row = by_id[origin.removeprefix("psweep:")]
        assert row["_run_id"] == run_id
        assert (row["a"], row["b"]) == (psweep_row["a"], psweep_row["b"])
        assert start_ms == round(psweep_row["_time_utc"].value / 1e6)
        assert duration_us == round(psweep_row["_pset_runtime"] * 1e6)
        assert seq == psweep_row["_pset_seq"]
        assert host is None  # the session's host, which is psweep's _exec_host
        if psweep_row["_failed"]:
            assert row["_status"] == "failed"
            assert "ValueError: a=3, b=9 fails" in error
            assert pd.isna(row["energy_"]) and pd.isna(row["label"])
        else:
            assert row["_status"] == "done"
            assert row["energy_"] == psweep_row["energy_"]
            assert row["label"] == psweep_row["label"]
            traj = np.load(db.file(run_id, "traj.npy"))
            assert traj.tolist() == (np.arange(5.0) * psweep_row["a"]).tolist()
    (session_host, session_commit) = db.conn.execute("SELECT host, git_commit FROM sessions").fetchone()
    assert session_host == source["_exec_host"].iloc[0]
    assert session_commit == code_commit  # the code the runs ran: before psweep committed its results


def test_a_recorder_sweep_of_the_same_grid_finds_the_imported_psets_done(study: tuple[Path, str], store: Path) -> None:
    rec.import_psweep(study[0], into=store)
    calls: list[tuple[int, int]] = []

    @rec.experiment("calc", store=store, git=False)
    def calc(a: int, b: int) -> dict[str, Any]:
        calls.append((a, b))
        return {"energy_": a * b * 1.5, "label": f"a{a}b{b}"}

    calc.sweep(rec.grid(a=[1, 2, 3, 4], b=[8, 9]), skip="done+failed")
    assert calls == []  # every pset is there, done or failed
    calc.sweep(rec.grid(a=[1, 2, 3, 4], b=[8, 9]), skip="done")
    assert calls == [(3, 9)]  # only the pset that failed in psweep runs again


def test_importing_twice_adds_nothing_and_an_extended_study_adds_only_its_new_runs(
    project: Path, study: tuple[Path, str], store: Path
) -> None:
    database, _ = study
    rec.import_psweep(database, into=store)
    before = dump(store)
    again = rec.import_psweep(database, into=store)
    assert (again.imported, again.already) == (0, 8)
    assert dump(store) == before

    run_psweep(project, [5])  # psweep appends a run (a new _run_id) to the same database
    more = rec.import_psweep(project / "calc", into=store)
    assert (more.read, more.imported, more.already, more.sessions) == (10, 2, 8, 1)
    df = rec.open(store).df("calc", status=None)
    assert sorted(zip(df["a"], df["b"])) == sorted([(a, b) for a in range(1, 6) for b in (8, 9)])
    assert df["label"].dropna().map(type).eq(str).all()  # still a result, though psweep rehashed old rows with it


def test_the_command_line_prints_the_mapping_and_counts(study: tuple[Path, str], store: Path) -> None:
    runner = CliRunner()
    dry = runner.invoke(main, ["import", "psweep", str(study[0]), "--into", str(store), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "8 would import" in dry.output and not store.exists()
    done = runner.invoke(main, ["import", "psweep", str(study[0]), "--into", str(store), "-e", "lorenz"])
    assert done.exit_code == 0, done.output
    assert "mapped: psweep column _time_utc -> the run's start time" in done.output
    assert "runs: 8 read, 8 imported, 0 already there, 1 failed in the source" in done.output
    assert len(rec.open(store).df("lorenz", status=None)) == 8
    run_id, origin = rec.open(store).conn.execute("SELECT lower(hex(id)), origin FROM runs LIMIT 1").fetchone()
    shown = runner.invoke(main, ["show", run_id, "--store", str(store)])
    assert shown.exit_code == 0, shown.output
    assert f"imported     from {origin}" in shown.output and origin.startswith("psweep:")
    again = runner.invoke(main, ["import", "psweep", str(study[0]), "--into", str(store), "-e", "lorenz", "--json"])
    assert json.loads(again.output)["already"] == 8


# -- bad input: one line, its exit code, the destination unchanged -------------------------------------


@pytest.fixture
def filled(store: Path, tmp_path: Path) -> Path:
    """A store with one imported psweep run, to check that bad input leaves it unchanged."""
    rec.import_psweep(run_any(tmp_path / "first", "ps.plist('a', [1])", "{'y_': 1.0}"), into=store)
    return store


@pytest.mark.parametrize("case", ["text file", "empty folder", "missing", "pickled dict", "frame without _pset_id"])
def test_a_source_that_is_not_a_psweep_database_is_refused_and_nothing_is_written(
    filled: Path, tmp_path: Path, case: str
) -> None:
    source = tmp_path / "source"
    if case == "text file":
        source.write_text("a,b\n1,2\n")
    elif case == "empty folder":
        source.mkdir()
    elif case == "pickled dict":
        source.write_bytes(pickle.dumps({"a": [1, 2]}))
    elif case == "frame without _pset_id":
        pd.DataFrame({"a": [1, 2]}).to_pickle(source)
    before = dump(filled)
    with pytest.raises(rec.ImportSourceError) as caught:
        rec.import_psweep(source, into=filled)
    message = str(caught.value)
    assert "\n" not in message and str(source) in message
    expected = {"pickled dict": "unpickles to a builtins.dict", "frame without _pset_id": "no _pset_id column"}
    assert expected.get(case, "") in message
    result = CliRunner().invoke(main, ["import", "psweep", str(source), "--into", str(filled)])
    assert result.exit_code == 15
    assert result.output.startswith("recorder: error: ") and result.output.count("\n") == 1
    assert dump(filled) == before


def test_names_recorder_reserves_are_renamed_with_a_prefix_and_reported(tmp_path: Path, store: Path) -> None:
    database = run_any(
        tmp_path / "reserved",
        "ps.pgrid(ps.plist('status', [1, 2]), ps.plist('b', [3]))",
        "{'run_id': 'r', '_custom': 7, 'tags_': 'x'}",
    )
    report = rec.import_psweep(database, into=store)
    renames = "\n".join(report.renames)
    assert "parameter 'status' -> 'psweep_status'" in renames
    assert "result 'run_id' -> 'psweep_run_id'" in renames
    assert "result '_custom' -> 'psweep_custom'" in renames
    assert any("_custom is not one psweep writes" in line for line in report.unmapped)
    df = rec.open(store).df("calc")
    assert sorted(df["psweep_status"]) == [1, 2]
    assert df["psweep_run_id"].tolist() == ["r", "r"] and df["psweep_custom"].tolist() == [7, 7]
    assert df["tags_"].tolist() == ["x", "x"]  # a trailing '_' is no reserved name


def test_values_of_mixed_types_are_imported_as_the_widest_and_reported(tmp_path: Path, store: Path) -> None:
    database = run_any(
        tmp_path / "mixed",
        "ps.plist('a', [1, 'two'])",
        "{'y_': 1 if pset['a'] == 1 else 'one'}",
    )
    report = rec.import_psweep(database, into=store)
    assert any("parameter 'a' has int and str values" in line and "as str" in line for line in report.widened)
    assert any("result 'y_' has int and str values" in line and "as str" in line for line in report.widened)
    df = rec.open(store).df("calc").sort_values("a")
    assert df["a"].tolist() == ["1", "two"]
    assert df["y_"].tolist() == ["1", "one"]


def test_a_failure_while_writing_leaves_the_store_unchanged(filled: Path, tmp_path: Path) -> None:
    # A result named like a parameter of the store's experiment: refused by the store, inside the transaction.
    database = run_any(tmp_path / "clash", "ps.plist('b', [1, 2])", "{'a': 1.0}")
    before = dump(filled)
    with pytest.raises(rec.NameRefused, match="result 'a' is already a param"):
        rec.import_psweep(database, into=filled)
    assert dump(filled) == before
