"""Reading a pypet HDF5 file (``recorder import pypet``): the fixture made by real pypet, and bad input.

``tests/data/pypet_study.hdf5`` was written by pypet 0.6.1 (see
``tests/data/make_pypet_fixture.py``, which says what it holds); the tests here
assert the values that script wrote.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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

    table = _runs_table("study")
    for run, (x, y), row in zip(study.runs[:5], STUDY_GRID, table[:5]):
        assert run.status == "done"
        assert set(run.results) == {"z", "arr"}  # info is a PickleResult: not read
        assert run.results["z"] == x * y and type(run.results["z"]) is float
        np.testing.assert_array_equal(run.results["arr"], np.arange(x) * y)
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
    assert meta["parameter_comments"] == {"x": "the first factor", "model.name": "which model"}
    assert meta["pypet_version"] == "0.6.1"
    assert meta["python"] == "3.10.13"
    assert any(k.endswith("versions.numpy") and v == "1.26.4" for k, v in meta["config"].items())
    # pypet keeps a result's comment on its first instance only
    assert "pypet comment on result z: the product" in study.runs[0].notes
    assert not any("comment" in note for note in study.runs[1].notes)


def test_pickled_results_are_reported_not_read() -> None:
    study = read_pypet(FIXTURE, trajectory="study")
    assert all("info" not in r.results for r in study.runs)
    lines = [line for line in study.unmapped if "'info'" in line]
    assert len(lines) == 1
    assert "PickleResult" in lines[0] and "pickled" in lines[0] and "(x5)" in lines[0]
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
    # n and model.name exist only in study: its runs' parameters, since second's runs did not have them
    assert "n" not in study.config and "model.name" not in study.config
    studied = [r for r in study.runs if r.source_id.startswith("study@")]
    assert all(r.params["n"] == 10 and r.params["model.name"] == "linear" for r in studied)
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
