"""Reading a pypet HDF5 file (``recorder import pypet``): the fixture made by real pypet, and bad input.

``tests/data/pypet_study.hdf5`` was written by pypet 0.6.1 (see
``tests/data/make_pypet_fixture.py``, which says what it holds); the tests here
assert the values that script wrote.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import recorder as rec
from recorder.cli.commands import main
from recorder.errors import ExtraNotInstalled, ImportSourceError

h5py = pytest.importorskip("h5py")

from recorder.importing.pypet import read_pypet  # noqa: E402

FIXTURE = Path(__file__).resolve().parent.parent / "data" / "pypet_study.hdf5"
STUDY_GRID = [(1, 0.5), (1, 1.0), (2, 0.5), (2, 1.0), (3, 0.5), (3, 1.0)]


def _runs_table(trajectory: str) -> np.ndarray:
    """The trajectory's run information table, read straight with h5py."""
    with h5py.File(FIXTURE, "r") as f:
        return f[trajectory]["overview"]["runs"][()]


def _one_line(e: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(e.value)
    assert "\n" not in message
    return message


def test_fixture_is_small_and_made_by_pypet() -> None:
    assert FIXTURE.stat().st_size < 1_000_000
    with h5py.File(FIXTURE, "r") as f:
        assert f["study"]["overview"]["info"][0]["version"] == b"0.6.1"


def test_study_reads_with_its_explored_parameters_and_results() -> None:
    study = read_pypet(FIXTURE, trajectory="study")
    assert study.tool == "pypet"
    assert study.experiment == "study"
    assert study.location == FIXTURE
    time = _runs_table("study")[0]["time"].decode()
    assert [r.source_id for r in study.runs] == [f"study@{time}/run_{i:08d}" for i in range(6)]
    assert {r.session_key for r in study.runs} == {f"study@{time}"}
    assert [(r.params["x"], r.params["y"]) for r in study.runs] == STUDY_GRID
    assert all(set(r.params) == {"x", "y"} for r in study.runs)
    assert all(type(r.params["x"]) is int and type(r.params["y"]) is float for r in study.runs)
    # the parameters not explored are the study's config
    assert study.config["n"] == 10
    assert study.config["model.name"] == "linear"
    assert study.config["total"] == 6  # a derived parameter added before the runs

    table = _runs_table("study")
    for run, (x, y), row in zip(study.runs[:5], STUDY_GRID, table[:5]):
        assert run.status == "done"
        # info (a PickleResult) and d (a dict, stored as a table) are not read
        assert set(run.results) == {"z", "arr", "stats.mean", "stats.n", "q", "w"}
        assert run.results["z"] == x * y and type(run.results["z"]) is float
        np.testing.assert_array_equal(run.results["arr"], np.arange(x) * y)
        assert run.results["stats.mean"] == x * y / 2 and run.results["stats.n"] == x
        assert run.results["q"] == x + y  # stored in pypet's run set group run_set_00000
        assert run.results["w"] == x + 1 and type(run.results["w"]) is int  # a derived parameter of the run
        assert run.start == row["timestamp"]
        assert run.duration == pytest.approx(row["finish_timestamp"] - row["timestamp"])
        assert run.duration >= 0
    # x=3, y=1.0 never ran (Ctrl+C during x=3, y=0.5 with graceful_exit): pypet left it not completed
    last = study.runs[5]
    assert last.status == "interrupted"
    assert last.results == {} and last.start is None and last.duration is None
    assert any("not completed" in note for note in last.notes)


def test_git_commit_comments_and_versions() -> None:
    study = read_pypet(FIXTURE, trajectory="study")
    meta = study.config["pypet"][study.runs[0].session_key]
    commits = [v for k, v in meta["config"].items() if k.startswith("git.commit_") and k.endswith(".hexsha")]
    assert len(commits) == 1 and re.fullmatch(r"[0-9a-f]{40}", commits[0])
    assert {r.git_commit for r in study.runs} == {commits[0]}
    assert meta["comment"] == "x times y, interrupted at x=3, y=0.5"
    assert meta["parameter_comments"] == {
        "x": "the first factor",
        "model.name": "which model",
        "total": "how many runs",
    }
    assert meta["pypet_version"] == "0.6.1"
    assert meta["python"] == "3.10.13"
    assert any(k.endswith("versions.numpy") and v == "1.26.4" for k, v in meta["config"].items())
    assert not any(".wildcards." in k for k in meta["config"])  # pypet's own run naming code: said, left out
    assert any("wildcards (10 values" in line for line in study.unmapped)
    # pypet keeps a result's comment on its first instance only
    assert "pypet comment on result z: the product" in study.runs[0].notes
    assert not any("comment" in note for note in study.runs[1].notes)


def test_pickled_results_are_reported_not_read() -> None:
    study = read_pypet(FIXTURE, trajectory="study")
    assert all("info" not in r.results for r in study.runs)
    lines = [line for line in study.unmapped if "'info'" in line]
    assert len(lines) == 1
    assert "PickleResult" in lines[0] and "pickled" in lines[0] and "(x5)" in lines[0]
    assert any("'d'" in line and "DICT" in line and "(x5)" in line for line in study.unmapped)
    assert any("explored parameters (x, y) -> run parameters" in line for line in study.mapped)


def test_whole_file_reads_every_stored_trajectory_without_collisions() -> None:
    study = read_pypet(FIXTURE)
    assert study.experiment == "pypet_study"  # several trajectories: the file's name
    ids = [r.source_id for r in study.runs]
    assert len(ids) == len(set(ids)) == 8
    second = [r for r in study.runs if r.source_id.startswith("second@")]
    assert [r.source_id.rpartition("/")[2] for r in second] == ["run_00000000", "run_00000001"]
    # y is constant in second but explored in study: a parameter of second's runs, not config
    assert [r.params for r in second] == [{"x": 4, "y": 2.0}, {"x": 5, "y": 2.0}]
    assert [r.results for r in second] == [{"z": 8.0}, {"z": 10.0}]
    assert all(r.git_commit is None for r in second)
    # n, model.name and total exist only in study: its runs' parameters, since second's runs did not have them
    assert not {"n", "model.name", "total"} & set(study.config)
    studied = [r for r in study.runs if r.source_id.startswith("study@")]
    assert all(r.params["n"] == 10 and r.params["model.name"] == "linear" for r in studied)
    assert all(r.params["total"] == 6 for r in studied)
    assert len({r.session_key for r in study.runs}) == 2
    # the crashed trajectory was never stored by pypet: said, not imported, not silently dropped
    crashed = [line for line in study.unmapped if "'crashed'" in line]
    assert len(crashed) == 1 and "never stored" in crashed[0]


def test_a_trajectory_pypet_never_stored_is_refused_by_name() -> None:
    with pytest.raises(ImportSourceError) as e:
        read_pypet(FIXTURE, trajectory="crashed")
    assert "'crashed'" in _one_line(e) and "never stored" in str(e.value)


def test_an_unknown_trajectory_is_refused_naming_those_there() -> None:
    with pytest.raises(ImportSourceError) as e:
        read_pypet(FIXTURE, trajectory="nope")
    message = _one_line(e)
    assert "'nope'" in message and "'study'" in message and "'second'" in message


def test_a_path_that_is_not_hdf5_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.hdf5"
    text.write_text("not an HDF5 file\n")
    with pytest.raises(ImportSourceError) as e:
        read_pypet(text)
    assert "not an HDF5 file" in _one_line(e)
    with pytest.raises(ImportSourceError) as e:
        read_pypet(tmp_path / "missing.hdf5")
    assert "does not exist" in _one_line(e)
    with pytest.raises(ImportSourceError) as e:
        read_pypet(tmp_path)
    assert "not a file" in _one_line(e)


def test_an_hdf5_file_that_is_not_a_pypet_trajectory_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_group("experiment").create_dataset("data", data=np.arange(3))
        f.create_group("overview_only").create_group("overview")
    with pytest.raises(ImportSourceError) as e:
        read_pypet(other)
    assert "holds no pypet trajectory" in _one_line(e)


def _only(tmp_path: Path, trajectory: str) -> tuple[Path, h5py.File]:
    """A new file holding a copy of one trajectory of the fixture, open for writing."""
    path = tmp_path / f"{trajectory}.hdf5"
    f = h5py.File(path, "w")
    with h5py.File(FIXTURE, "r") as src:
        src.copy(src[trajectory], f, name=trajectory)
    return path, f


def test_a_pypet_file_without_runs_is_refused(tmp_path: Path) -> None:
    path, f = _only(tmp_path, "second")
    with f:
        overview = f["second"]["overview"]
        dtype = overview["runs"].dtype
        del overview["runs"]
        overview.create_dataset("runs", shape=(0,), dtype=dtype)
    with pytest.raises(ImportSourceError) as e:
        read_pypet(path)
    message = _one_line(e)
    assert "'second'" in message and "has no runs" in message


def test_a_file_holding_only_a_crashed_trajectory_is_refused(tmp_path: Path) -> None:
    path, f = _only(tmp_path, "crashed")
    f.close()
    with pytest.raises(ImportSourceError) as e:
        read_pypet(path)
    assert "no runs that can be imported" in _one_line(e) and "never stored" in str(e.value)


def test_the_copy_of_one_trajectory_reads_like_the_fixture(tmp_path: Path) -> None:
    path, f = _only(tmp_path, "study")
    f.close()
    copied, original = read_pypet(path), read_pypet(FIXTURE, trajectory="study")
    assert [r.params for r in copied.runs] == [r.params for r in original.runs]
    assert copied.config["n"] == 10 and copied.experiment == "study"


def test_without_h5py_the_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "h5py", None)  # what an environment without h5py does on import
    with pytest.raises(ExtraNotInstalled) as e:
        read_pypet(FIXTURE)
    assert "pip install 'recorder[import]'" in _one_line(e)


def test_importing_the_reader_does_not_import_h5py(tmp_path: Path) -> None:
    code = "import sys, recorder, recorder.importing.pypet; print('h5py' in sys.modules, 'numpy' in sys.modules, recorder.__file__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    h5py_loaded, numpy_loaded, where = out.stdout.split()
    assert Path(where).resolve().parent.parent == Path(__file__).resolve().parent.parent.parent  # this checkout
    assert (h5py_loaded, numpy_loaded) == ("False", "False")


def test_fixture_script_is_documented() -> None:
    script = FIXTURE.with_name("make_pypet_fixture.py").read_text()
    for needed in ("pypet 0.6.1", "numpy 1.26.4", "tables 3.10.1", "python3.10 -m venv", "ptrepack"):
        assert needed in script


# -- into a store (the writer, the API and the command) -----------------------------------------------


def _dump(store: Path) -> list[str]:
    """Every row of the store's database as SQL text, to compare a store before and after."""
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_the_fixture_imports_into_a_store_with_its_runs_and_values(store: Path) -> None:
    report = rec.import_pypet(FIXTURE, into=store)
    assert (report.read, report.imported, report.already, report.sessions) == (8, 8, 0, 2)
    assert report.experiment == "pypet_study"
    assert any("PickleResult" in line for line in report.unmapped)
    assert any("'crashed'" in line for line in report.unmapped)
    db = rec.open(store)
    df = db.df("pypet_study", status=None).sort_values(["x", "y"])
    assert list(zip(df["x"], df["y"])) == [*STUDY_GRID, (4, 2.0), (5, 2.0)]
    assert df["_status"].tolist() == ["done"] * 5 + ["interrupted"] + ["done"] * 2
    z = df["z"].tolist()
    assert z[:5] + z[6:] == [0.5, 1.0, 1.0, 2.0, 1.5, 8.0, 10.0] and np.isnan(z[5])
    for run_id, x, y, status in zip(df["_run_id"], df["x"], df["y"], df["_status"]):
        if x <= 3 and status == "done":
            np.testing.assert_array_equal(db.array(run_id, "arr"), np.arange(x) * y)
    origins = {o for (o,) in db.conn.execute("SELECT origin FROM runs")}
    time = _runs_table("study")[0]["time"].decode()
    assert f"pypet:study@{time}/run_00000000" in origins and len(origins) == 8
    commit = read_pypet(FIXTURE, trajectory="study").runs[0].git_commit
    assert commit in {c for (c,) in db.conn.execute("SELECT git_commit FROM sessions")}


def test_importing_twice_adds_nothing(store: Path) -> None:
    rec.import_pypet(FIXTURE, into=store)
    before = _dump(store)
    again = rec.import_pypet(FIXTURE, into=store)
    assert (again.imported, again.already, again.sessions) == (0, 8, 0)
    assert _dump(store) == before


def test_one_trajectory_imports_with_its_constants_as_config_and_a_sweep_skips_its_done_psets(
    store: Path, tmp_path: Path
) -> None:
    path, f = _only(tmp_path, "study")
    f.close()
    report = rec.import_pypet(path, into=store)
    assert (report.imported, report.experiment) == (6, "study")
    db = rec.open(store)
    config = dict(
        db.conn.execute("SELECT name, value FROM config WHERE name IN ('n', 'model.name', 'total')").fetchall()
    )
    assert config == {"n": 10, "model.name": "linear", "total": 6}
    assert set(db.df("study").columns) >= {"x", "y", "z"} and "n" not in db.df("study").columns
    calls: list[tuple[int, float]] = []

    def multiply(x: int, y: float) -> dict[str, float]:
        calls.append((x, y))
        return {"z": x * y}

    with rec.Recorder("study", store=store, git=False) as r:
        r.config(n=10, total=6, **{"model.name": "linear"})
        r.sweep(multiply, rec.grid(x=[1, 2, 3], y=[0.5, 1.0]))
    assert calls == [(3, 1.0)]  # the five done in pypet are done here; the one pypet never ran runs


def test_the_command_imports_the_fixture_and_again_adds_nothing(store: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["import", "pypet", str(FIXTURE), "--into", str(store)])
    assert first.exit_code == 0, first.output
    assert "8 read, 8 imported, 0 already there" in first.output
    assert "PickleResult" in first.output  # what was not mapped is said
    second = runner.invoke(main, ["import", "pypet", str(FIXTURE), "--into", str(store)])
    assert second.exit_code == 0, second.output
    assert "8 read, 0 imported, 8 already there" in second.output


@pytest.mark.parametrize("bad", ["not_hdf5", "not_pypet", "no_runs", "crashed_only"])
def test_bad_input_is_one_line_exit_15_and_the_store_unchanged(bad: str, store: Path, tmp_path: Path) -> None:
    rec.import_pypet(FIXTURE, into=store)
    before = _dump(store)
    source = tmp_path / f"{bad}.hdf5"
    if bad == "not_hdf5":
        source.write_bytes(b"\x89HDF\r\n not really\n")
    elif bad == "not_pypet":
        with h5py.File(source, "w") as f:
            f.create_dataset("data", data=np.arange(3))
    elif bad == "no_runs":
        source, f = _only(tmp_path, "second")
        with f:
            dtype = f["second"]["overview"]["runs"].dtype
            del f["second"]["overview"]["runs"]
            f["second"]["overview"].create_dataset("runs", shape=(0,), dtype=dtype)
    else:
        source, f = _only(tmp_path, "crashed")
        f.close()
    with pytest.raises(ImportSourceError):
        rec.import_pypet(source, into=store)
    out = CliRunner().invoke(main, ["import", "pypet", str(source), "--into", str(store)])
    assert out.exit_code == 15
    assert out.output.count("\n") == 1 and out.output.startswith("recorder: error: ")
    assert _dump(store) == before


def test_a_file_that_grew_a_trajectory_adds_only_its_runs(store: Path, tmp_path: Path) -> None:
    path, f = _only(tmp_path, "study")
    f.close()
    first = rec.import_pypet(path, into=store, experiment="pypet_study")
    assert (first.imported, first.sessions) == (6, 1)
    grown = rec.import_pypet(FIXTURE, into=store)  # the same trajectory, and second beside it
    assert (grown.read, grown.imported, grown.already, grown.sessions) == (8, 2, 6, 1)
    (count,) = rec.open(store).conn.execute("SELECT count(*) FROM runs").fetchone()
    assert count == 8


def test_one_trajectory_is_picked_by_name_through_the_api_and_the_command(store: Path, tmp_path: Path) -> None:
    """--trajectory / trajectory= import only that trajectory's runs; --trajectory is refused for another tool."""
    report = rec.import_pypet(FIXTURE, into=store, trajectory="second")
    with rec.open(store) as db:
        origins = db.sql("SELECT origin FROM runs")["origin"].tolist()
    assert origins and all("second@" in origin for origin in origins)
    assert report.as_dict()["imported"] == len(origins)
    other = tmp_path / "other"
    out = CliRunner().invoke(main, ["import", "pypet", str(FIXTURE), "--into", str(other), "--trajectory", "study"])
    assert out.exit_code == 0, out.output
    with rec.open(other) as db:
        assert all("study@" in o for o in db.sql("SELECT origin FROM runs")["origin"])
    wrong = CliRunner().invoke(main, ["import", "psweep", str(FIXTURE), "--into", str(other), "--trajectory", "x"])
    assert wrong.exit_code == 2 and "--trajectory is not an option of importing from psweep" in wrong.output


def test_a_run_pypet_never_started_shows_its_start_as_unknown(store: Path) -> None:
    """A source run without a start time is stored at 0 but shown as unknown, never as 1970."""
    from recorder.read.show import show

    rec.import_pypet(FIXTURE, into=store, trajectory="study")
    with rec.open(store) as db:
        (run_id,) = db.sql("SELECT lower(hex(id)) AS id FROM runs WHERE time_start_ms = 0")["id"].tolist()
        assert show(db, run_id)["time_start"] is None
        started = db.sql("SELECT lower(hex(id)) AS id FROM runs WHERE time_start_ms > 0")["id"].tolist()[0]
        assert show(db, started)["time_start"].startswith("20")
    out = CliRunner().invoke(main, ["--store", str(store), "show", run_id])
    assert out.exit_code == 0, out.output
    assert "started      unknown" in out.output and "1970" not in out.output
