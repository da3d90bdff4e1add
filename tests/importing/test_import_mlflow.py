"""recorder import mlflow: stores made by the real mlflow (mlflow-skinny), read without it.

Both of MLflow's local backends are made once per module by ``tests/mlflow_study.py`` run with
the real mlflow from inside a git repository (see that file for the study: 20 runs with a
``loss`` history, an artifact each, one failed run, one deleted run, a second experiment).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow_study as study_def
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import ROOT

import recorder as rec
from recorder.cli import main
from recorder.importing.mlflow import KNOWN_REVISIONS, read_mlflow
from recorder.importing.source import SourceRun, SourceStudy
from recorder.importing.write import import_study

BACKENDS = ("sqlite", "file")


@dataclass(frozen=True)
class Made:
    """An MLflow store the real mlflow made: its backend, what to import, its folder, the git commit."""

    backend: str
    source: Path
    folder: Path
    commit: str


@pytest.fixture(scope="module")
def made(mlflow_made: tuple[Path, str]) -> dict[str, Made]:
    """Both backends' stores (made once per test session: mlflow takes many seconds)."""
    root, commit = mlflow_made
    out = {}
    for backend in BACKENDS:
        folder = root / backend
        source = folder / ("mlflow.db" if backend == "sqlite" else "mlruns")
        out[backend] = Made(backend, source, folder, commit)
    return out


@pytest.fixture(params=BACKENDS)
def mlflow_store(request: pytest.FixtureRequest, made: dict[str, Made]) -> Made:
    """Each backend's store in turn."""
    return made[request.param]


def dump(store: Path) -> list[str]:
    """Every row of the store's database, as SQL text (to compare a store before and after)."""
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def _by_params(study: SourceStudy) -> dict[tuple[int, float], SourceRun]:
    return {(r.params["n"], r.params["lr"]): r for r in study.runs}


@pytest.mark.slow
def test_the_reader_maps_params_metrics_history_status_git_tags_and_artifacts(mlflow_store: Made) -> None:
    study = read_mlflow(mlflow_store.source, experiment="study")
    assert study.tool == "mlflow"
    assert study.experiment == "study"
    assert len(study.runs) == 20
    runs = _by_params(study)
    assert set(runs) == {(n, lr) for n in study_def.N_VALUES for lr in study_def.LR_VALUES}
    for (n, lr), run in runs.items():
        # MLflow keeps params as text: numbers and bools come back typed, text that only looks like a number stays text
        assert run.params == {"n": n, "lr": lr, "flag": n % 2 == 0, "name": f"run {n}", "width": "03"}
        history = [study_def.loss(n, lr, step) for step in range(study_def.LOSS_STEPS)]
        assert run.series == {"loss": history}
        assert run.results["loss"] == history[-1]
        assert run.git_commit == mlflow_store.commit
        assert run.start is not None and run.duration is not None and run.duration >= 0
        assert sorted(run.files) == ["arr.npy", "logs/out.txt"]
        assert np.load(run.files["arr.npy"]).tolist() == study_def.array(n, lr)
        assert "good" in run.tags  # an MLflow tag without a value is a recorder tag
        assert f"n{n}-lr{lr}" in run.tags  # so is a short run name, also kept as a note
        assert "kind=sweep" in run.notes
        assert f"mlflow.runName=n{n}-lr{lr}" in run.notes
        assert any(note.startswith("mlflow.source.name=") for note in run.notes)
        if (n, lr) == study_def.FAILING:
            assert (run.status, "acc" in run.results) == ("failed", False)
            assert run.error is not None and "FAILED" in run.error
        else:
            assert (run.status, run.results["acc"]) == ("done", study_def.acc(n, lr))
    assert any("deleted" in line and "skipped" in line for line in study.unmapped)
    assert any("to int" in line and "to float" in line and "to bool" in line for line in study.mapped)
    assert any("series" in line for line in study.mapped)


@pytest.mark.slow
def test_every_experiment_is_read_into_its_own_session_unless_one_is_picked(mlflow_store: Made) -> None:
    study = read_mlflow(mlflow_store.source)
    assert len(study.runs) == 23
    keys = {r.session_key for r in study.runs}
    assert len(keys) == 2
    others = {r.params["n"]: r for r in study.runs if "lr" not in r.params}
    assert sorted(others) == [1, 2, 3]
    assert all("mlflow.experiment=other" in r.notes for r in others.values())
    assert [others[n].status for n in (1, 2, 3)] == ["done", "interrupted", "interrupted"]
    assert any("RUNNING when imported" in note for note in others[2].notes)
    assert (others[2].duration, others[3].duration is not None) == (None, True)
    assert study.config == {"other:purpose": "second experiment"}
    other = read_mlflow(mlflow_store.source, experiment="other")
    assert (other.experiment, len(other.runs), other.config) == ("other", 3, {"purpose": "second experiment"})
    with pytest.raises(rec.ImportSourceError, match=r"no MLflow experiment named 'nope'.*'study'"):
        read_mlflow(mlflow_store.source, experiment="nope")


@pytest.mark.slow
def test_the_reader_needs_no_mlflow(mlflow_store: Made, tmp_path: Path) -> None:
    code = f"""
import json, sys

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("mlflow", "alembic"):
            raise ImportError("blocked for this test: " + name)
        return None

sys.meta_path.insert(0, Blocker())
try:
    import mlflow
except ImportError:
    blocked = True
else:
    blocked = False
from recorder.importing.mlflow import read_mlflow
study = read_mlflow({str(mlflow_store.source)!r})
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in ("mlflow", "alembic"))
print(json.dumps([blocked, len(study.runs), sum(len(r.series) for r in study.runs), loaded]))
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [True, 23, 20, []]


@pytest.mark.slow
def test_an_import_keeps_the_history_as_a_series_and_the_artifact_as_a_file_and_is_idempotent(
    mlflow_store: Made, store: Path
) -> None:
    report = rec.import_mlflow(mlflow_store.source, into=store, experiment="study")
    assert (report.read, report.imported, report.already, report.failed, report.sessions) == (23, 23, 0, 1, 2)
    db = rec.open(store)
    df = db.df("study", status=None)
    assert len(df) == 23
    assert sorted(df["_status"]) == ["done"] * 20 + ["failed"] + ["interrupted"] * 2
    swept = df[df["lr"].notna()]
    assert len(swept) == 20
    for _, row in swept.iterrows():
        n, lr, run_id = int(row["n"]), float(row["lr"]), row["_run_id"]
        history = [study_def.loss(n, lr, step) for step in range(study_def.LOSS_STEPS)]
        assert db.array(run_id, "loss_series").tolist() == history
        assert row["loss"] == study_def.loss(n, lr, study_def.LOSS_STEPS - 1)  # the last value, as a scalar
        assert np.load(db.file(run_id, "arr.npy")).tolist() == study_def.array(n, lr)
        assert Path(db.file(run_id, "logs/out.txt")).read_text() == f"n={n}\n"
        assert row["_env_sha"] == mlflow_store.commit
        assert row["_status"] == ("failed" if (n, lr) == study_def.FAILING else "done")
        assert row["flag"] == (n % 2 == 0) and row["width"] == "03"
    origins = {o for (o,) in db.conn.execute("SELECT origin FROM runs")}
    assert len(origins) == 23 and all(o.startswith("mlflow:") for o in origins)
    tags = {t for (t,) in db.conn.execute("SELECT DISTINCT tag FROM run_tags")}
    assert "good" in tags
    notes = [t for (t,) in db.conn.execute("SELECT text FROM run_notes")]
    assert notes.count("kind=sweep") == 20
    db.close()

    before = dump(store)
    again = rec.import_mlflow(mlflow_store.source, into=store, experiment="study")
    assert (again.read, again.imported, again.already) == (23, 0, 23)
    assert dump(store) == before


@pytest.mark.slow
def test_the_command_imports_and_reports_what_went_where(mlflow_store: Made, store: Path) -> None:
    result = CliRunner().invoke(main, ["import", "mlflow", str(mlflow_store.source), "--into", str(store), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "runs: 23 read, 23 would import" in result.output
    assert "series" in result.output and "deleted MLflow runs" in result.output
    assert not store.exists()
    result = CliRunner().invoke(main, ["import", "mlflow", str(mlflow_store.source), "--into", str(store)])
    assert result.exit_code == 0, result.output
    assert "runs: 23 read, 23 imported, 0 already there, 1 failed in the source" in result.output


# ---------------------------------------------------------------- bad input


@pytest.fixture
def destination(tmp_path: Path) -> Iterator[Path]:
    """A store that already holds a run, to show a refused import leaves it unchanged."""
    into = tmp_path / "dest"
    run = SourceRun(source_id="r0", params={"a": 1}, results={"x": 1.0}, start=1_700_000_000.0)
    import_study(SourceStudy("mlflow", tmp_path / "earlier", "earlier", [run]), into=into)
    yield into


def _not_mlflow_stores(tmp_path: Path) -> dict[str, Path | str]:
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    other_db = tmp_path / "other.db"
    conn = sqlite3.connect(other_db)
    conn.execute("CREATE TABLE runs (id INTEGER)")
    conn.commit()
    conn.close()
    return {
        "a text file": text,
        "an empty folder": empty,
        "an SQLite database of something else": other_db,
        "a missing path": tmp_path / "missing",
        "a remote tracking URI": "http://mlflow.example.com:5000",
    }


@pytest.mark.parametrize(
    "what",
    [
        "a text file",
        "an empty folder",
        "an SQLite database of something else",
        "a missing path",
        "a remote tracking URI",
    ],
)
def test_a_source_that_is_not_an_mlflow_store_is_refused_and_the_store_unchanged(
    what: str, tmp_path: Path, destination: Path
) -> None:
    source = _not_mlflow_stores(tmp_path)[what]
    before = dump(destination)
    with pytest.raises(rec.ImportSourceError) as caught:
        rec.import_mlflow(source, into=destination)
    assert str(source) in str(caught.value)
    assert dump(destination) == before
    result = CliRunner().invoke(main, ["import", "mlflow", str(source), "--into", str(destination)])
    assert result.exit_code == 15
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert dump(destination) == before


@pytest.mark.slow
def test_a_database_of_a_newer_mlflow_schema_is_refused_naming_both_revisions(
    made: dict[str, Made], tmp_path: Path, destination: Path
) -> None:
    newer = tmp_path / "newer" / "mlflow.db"
    newer.parent.mkdir()
    shutil.copy(made["sqlite"].source, newer)
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE alembic_version SET version_num = 'f00dfeedbeef'")
    conn.commit()
    conn.close()
    before = dump(destination)
    with pytest.raises(rec.ImportSourceTooNew, match=f"'f00dfeedbeef'.*newest it reads is '{KNOWN_REVISIONS[-1]}'"):
        rec.import_mlflow(newer, into=destination)
    result = CliRunner().invoke(main, ["import", "mlflow", str(newer), "--into", str(destination)])
    assert result.exit_code == 15
    assert "f00dfeedbeef" in result.output and len(result.output.strip().splitlines()) == 1
    assert dump(destination) == before


def test_known_revisions_include_the_installed_mlflows_head() -> None:
    """The list in the reader is data taken from mlflow's migrations folder: it must hold the installed head."""
    mlflow = pytest.importorskip("mlflow")
    versions = Path(mlflow.__file__).parent / "store" / "db_migrations" / "versions"
    revisions = set()
    for path in versions.glob("*.py"):
        for line in path.read_text().splitlines():
            if line.startswith("revision"):
                revisions.add(line.split("=", 1)[1].strip().strip("\"'"))
    assert revisions and revisions <= set(KNOWN_REVISIONS), sorted(revisions - set(KNOWN_REVISIONS))


def test_params_become_numbers_only_when_their_text_is_exactly_one() -> None:
    from recorder.importing.mlflow import _param_value

    assert [_param_value(t) for t in ("3", "-2", "0.5", "1e-05", "True", "False")] == [3, -2, 0.5, 1e-05, True, False]
    kept = ("03", "1.50", "+1", " 1", "1_000", "nan", "inf", "None", "true", "", "[1, 2]", "0x10")
    assert [_param_value(t) for t in kept] == list(kept)


@pytest.mark.slow
def test_a_copied_store_finds_its_artifacts_in_the_copy(made: dict[str, Made], tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(made["sqlite"].folder, copy)
    study = read_mlflow(copy / "mlflow.db", experiment="study")
    for run in study.runs:
        assert sorted(run.files) == ["arr.npy", "logs/out.txt"]
        assert all(path.is_relative_to(copy) for path in run.files.values())
    assert any("artifact locations of 20 runs are not where the store was made" in line for line in study.mapped)


@pytest.mark.slow
def test_mixed_param_types_are_widened_and_reserved_names_renamed_and_both_reported(
    made: dict[str, Made], tmp_path: Path, store: Path
) -> None:
    source = tmp_path / "mixed" / "mlflow.db"
    source.parent.mkdir()
    shutil.copy(made["sqlite"].source, source)
    conn = sqlite3.connect(source)
    (run_id,) = conn.execute("SELECT run_uuid FROM runs WHERE name = 'n4-lr0.1'").fetchone()
    conn.execute("UPDATE params SET value = 'four' WHERE run_uuid = ? AND \"key\" = 'n'", (run_id,))
    conn.execute("UPDATE params SET \"key\" = 'status' WHERE \"key\" = 'name'")
    conn.commit()
    conn.close()
    report = rec.import_mlflow(source, into=store, experiment="study")
    assert report.imported == 23
    assert any("'n'" in line for line in report.widened), report.widened
    assert any("status" in line and "mlflow_status" in line for line in report.renames), report.renames
    df = rec.open(store).df("study", status=None)
    assert set(df["n"]) == {str(n) for n in study_def.N_VALUES} | {"four"}  # all text now: the widest type
    assert set(df["mlflow_status"].dropna()) == {f"run {n}" for n in study_def.N_VALUES}


def test_one_mlflow_experiment_is_picked_through_the_api_and_the_command(mlflow_store: Made, tmp_path: Path) -> None:
    """mlflow_experiment= / --mlflow-experiment import only that MLflow experiment's runs."""
    first = tmp_path / "a"
    rec.import_mlflow(mlflow_store.source, into=first, mlflow_experiment="other")
    whole = read_mlflow(mlflow_store.source, experiment="other")
    with rec.open(first) as db:
        assert sorted(db.sql("SELECT origin FROM runs")["origin"]) == sorted(
            f"mlflow:{r.source_id}" for r in whole.runs
        )
    second = tmp_path / "b"
    args = ["import", "mlflow", str(mlflow_store.source), "--into", str(second), "--mlflow-experiment", "other"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert dump(second) != [] and len(whole.runs) > 0
    with rec.open(second) as db:
        assert len(db.sql("SELECT origin FROM runs")) == len(whole.runs)
