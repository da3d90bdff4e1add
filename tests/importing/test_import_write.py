"""The one writer of every importer: a SourceStudy into a store, idempotent, in one transaction."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import recorder as rec
from recorder.importing.source import SourceRun, SourceStudy
from recorder.importing.write import import_study, run_id_of

T0 = 1_700_000_000.0


def _study(n: int = 4, *, tool: str = "psweep") -> SourceStudy:
    runs = [
        SourceRun(
            source_id=f"run-{i}",
            params={"a": i + 1, "b": 8},
            results={"energy": (i + 1) * 1.5, "label": f"L{i}"},
            start=T0 + i,
            duration=0.25,
            host="node1",
            pset_seq=i,
            session_key="s1",
        )
        for i in range(n)
    ]
    runs[1].status = "failed"
    runs[1].error = "ValueError: boom"
    return SourceStudy(tool, Path("/nowhere/calc/database.pk"), "calc", runs)


def dump(store: Path) -> list[str]:
    """Every row of the store's database, as SQL text (to compare a store before and after)."""
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_a_minimal_study_imports_with_its_params_results_times_and_status(store: Path) -> None:
    report = import_study(_study(), into=store)
    assert (report.read, report.imported, report.already, report.failed) == (4, 4, 0, 1)
    db = rec.open(store)
    df = db.df("calc", status=None).sort_values("a")
    assert df["a"].tolist() == [1, 2, 3, 4]
    assert df["b"].tolist() == [8, 8, 8, 8]
    assert df["energy"].tolist() == [1.5, 3.0, 4.5, 6.0]
    assert df["label"].tolist() == ["L0", "L1", "L2", "L3"]
    assert df["_status"].tolist() == ["done", "failed", "done", "done"]
    rows = db.conn.execute(
        "SELECT origin, time_start_ms, duration_us, pset_seq, error FROM runs ORDER BY pset_seq"
    ).fetchall()
    assert rows[0] == ("psweep:run-0", round(T0 * 1000), 250_000, 0, None)
    assert rows[1][4] == "ValueError: boom"
    ids = [i for (i,) in db.conn.execute("SELECT lower(hex(id)) FROM runs ORDER BY pset_seq")]
    assert ids == [run_id_of(f"psweep:run-{i}", T0 + i) for i in range(4)]
    assert ids == sorted(ids)  # time-ordered like recorder's own ids


def test_importing_twice_adds_nothing_and_an_extended_study_adds_only_its_new_runs(store: Path) -> None:
    import_study(_study(4), into=store)
    before = dump(store)
    again = import_study(_study(4), into=store)
    assert (again.imported, again.already, again.sessions) == (0, 4, 0)
    assert dump(store) == before
    more = import_study(_study(6), into=store)
    assert (more.imported, more.already, more.sessions) == (2, 4, 0)
    (count,) = rec.open(store).conn.execute("SELECT count(*) FROM runs").fetchone()
    assert count == 6


def test_a_dry_run_writes_nothing_not_even_the_store(store: Path) -> None:
    report = import_study(_study(), into=store, dry_run=True)
    assert report.imported == 4 and report.dry_run
    assert not store.exists()
    import_study(_study(2), into=store)
    before = dump(store)
    report = import_study(_study(), into=store, dry_run=True)
    assert (report.imported, report.already) == (2, 2)
    assert dump(store) == before


def test_arrays_series_files_tags_notes_and_output(store: Path, tmp_path: Path) -> None:
    data = tmp_path / "out.txt"
    data.write_text("hello\n")
    run = SourceRun(
        source_id="x",
        params={"a": 1},
        results={"traj": np.arange(100_000, dtype=np.float64)},
        series={"loss": [3.0, 2.0, 1.0]},
        files={"out/out.txt": data},
        tags=["good", "has space"],
        notes=["a remark"],
        output="printed\n",
        start=T0,
    )
    import_study(SourceStudy("mlflow", tmp_path / "mlruns", "exp", [run]), into=store)
    db = rec.open(store)
    (run_id,) = [i for (i,) in db.conn.execute("SELECT lower(hex(id)) FROM runs")]
    assert np.array_equal(db.array(run_id, "traj"), np.arange(100_000, dtype=np.float64))
    assert db.array(run_id, "loss_series").tolist() == [3.0, 2.0, 1.0]
    assert db.df("exp")["loss"].tolist() == [1.0]
    assert Path(db.file(run_id, "out/out.txt")).read_text() == "hello\n"
    assert [t for (t,) in db.conn.execute("SELECT tag FROM run_tags")] == ["good"]
    notes = sorted(t for (t,) in db.conn.execute("SELECT text FROM run_notes"))
    assert notes == ["a remark", "tag has space"]
    (output,) = db.conn.execute("SELECT t.text FROM runs AS r JOIN texts AS t ON t.digest = r.output").fetchone()
    assert output == "printed\n"


def test_a_run_that_cannot_be_stored_leaves_the_store_unchanged(store: Path) -> None:
    import_study(_study(2), into=store)
    before = dump(store)
    bad = _study(4)
    bad.runs[3].params["a"] = float("nan")  # a NaN parameter cannot be hashed
    with pytest.raises(rec.ImportSourceError, match="run-3"):
        import_study(bad, into=store)
    assert dump(store) == before


def test_numbers_of_mixed_types_are_widened_to_float_and_reported(store: Path) -> None:
    study = _study(2)
    study.runs[0].params["a"] = 1
    study.runs[1].params["a"] = 2.5
    study.runs[0].results["energy"] = 3
    report = import_study(study, into=store)
    assert any("parameter 'a' has float and int values" in w and "as float" in w for w in report.widened)
    assert any("result 'energy' has float and int values" in w and "as float" in w for w in report.widened)
    df = rec.open(store).df("calc", status=None).sort_values("a")
    assert [type(v) for v in df["a"]] == [float, float] and df["a"].tolist() == [1.0, 2.5]
    assert df["energy"].tolist() == [3.0, 3.0]


def test_a_result_named_like_a_parameter_gets_a_suffix(store: Path) -> None:
    study = _study(2)
    for run in study.runs:
        run.results["b"] = 0.5
    report = import_study(study, into=store)
    assert "result 'b' -> 'b_result' ('b' is a parameter's name)" in report.renames
    assert rec.open(store).df("calc", status=None)["b_result"].tolist() == [0.5, 0.5]


def test_a_status_the_store_does_not_know_is_refused(store: Path) -> None:
    study = _study(2)
    study.runs[0].status = "FINISHED"
    with pytest.raises(rec.ImportSourceError, match="status 'FINISHED'"):
        import_study(study, into=store)
    assert not store.exists()  # not even made
    import_study(_study(2), into=store)
    before = dump(store)
    with pytest.raises(rec.ImportSourceError, match="status 'FINISHED'"):
        import_study(study, into=store)
    assert dump(store) == before


def test_an_unknown_tool_or_a_missing_reader_is_a_clear_error(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from recorder.importing import api

    with pytest.raises(rec.RecorderError, match="cannot import from 'sacred'"):
        api.read_source("sacred", store)
    monkeypatch.setitem(api.READERS, "pypet", ("recorder.importing.not_written_yet", "read_pypet"))
    with pytest.raises(rec.RecorderError, match="has no pypet importer yet"):
        rec.import_pypet(store / "x.hdf5", into=store)
    assert not store.exists()


def test_a_file_that_cannot_be_read_leaves_the_store_unchanged(store: Path, tmp_path: Path) -> None:
    import_study(_study(2), into=store)
    before = dump(store)
    study = _study(4)
    present = tmp_path / "here.txt"
    present.write_text("stored before the failure, referenced by nothing after it\n")
    study.runs[2].files = {"here.txt": present}
    study.runs[3].files = {"gone.txt": tmp_path / "gone.txt"}
    with pytest.raises(rec.ImportSourceError, match=r"cannot read the file .*gone\.txt.* of run run-3"):
        import_study(study, into=store)
    assert dump(store) == before


def test_the_study_config_is_each_new_session_config(store: Path) -> None:
    study = _study(2)
    study.config = {"dt": 0.01, "solver": "rk4", "sizes": [1, 2]}
    import_study(study, into=store)
    rows = rec.open(store).conn.execute("SELECT name, kind, value FROM config ORDER BY name").fetchall()
    assert rows == [("dt", None, 0.01), ("sizes", "json", "[1, 2]"), ("solver", None, "rk4")]
    (argv, platform, message) = rec.open(store).conn.execute("SELECT argv, platform, message FROM sessions").fetchone()
    assert json.loads(argv)[:3] == ["recorder", "import", "psweep"]
    assert platform == "unknown (imported from psweep)"
    assert message == "imported from psweep: /nowhere/calc/database.pk"


def test_a_reserved_name_renamed_to_a_name_the_source_has_too_loses_neither(store: Path) -> None:
    # '_x' is renamed 'psweep_x', the name of another parameter of the source: both must be kept.
    study = _study(2)
    for i, run in enumerate(study.runs):
        run.params.update({"_x": 10 + i, "psweep_x": 20 + i})
        run.results.update({"_y": 1.5, "psweep_y": 2.5})
    report = import_study(study, into=store)
    df = rec.open(store).df("calc", status=None).sort_values("a")
    assert df["psweep_x"].tolist() == [20, 21]  # the source's own column keeps its name
    assert df["psweep_x_"].tolist() == [10, 11]  # the renamed one takes another
    assert df["psweep_y"].tolist() == [2.5, 2.5] and df["psweep_y_"].tolist() == [1.5, 1.5]
    assert "parameter '_x' -> 'psweep_x_' ('_x' is a name recorder reserves)" in report.renames
    assert not any("'psweep_x'" in line.split("->")[0] for line in report.renames)  # not renamed


def test_a_result_named_like_a_series_array_is_kept_beside_the_series(store: Path) -> None:
    # A series 'loss' is stored as 'loss' and 'loss_series': a result of the source named 'loss_series' is
    # another value, which must not be replaced by the series' array.
    run = SourceRun(source_id="x", params={"a": 1}, results={"loss_series": 7.0}, series={"loss": [3.0, 1.0]}, start=T0)
    report = import_study(SourceStudy("mlflow", Path("/nowhere/mlruns"), "exp", [run]), into=store)
    db = rec.open(store)
    (run_id,) = [i for (i,) in db.conn.execute("SELECT lower(hex(id)) FROM runs")]
    assert db.array(run_id, "loss_series").tolist() == [3.0, 1.0]
    assert db.result(run_id, "loss_series_") == 7.0
    assert any(line.startswith("result 'loss_series' -> 'loss_series_'") for line in report.renames), report.renames


def test_a_series_whose_array_would_take_a_parameter_s_name_is_renamed(store: Path) -> None:
    run = SourceRun(source_id="x", params={"a": 1, "loss_series": 2}, series={"loss": [3.0, 1.0]}, start=T0)
    report = import_study(SourceStudy("mlflow", Path("/nowhere/mlruns"), "exp", [run]), into=store)
    db = rec.open(store)
    (run_id,) = [i for (i,) in db.conn.execute("SELECT lower(hex(id)) FROM runs")]
    assert db.array(run_id, "loss__series").tolist() == [3.0, 1.0] and db.result(run_id, "loss_") == 1.0
    assert db.df("exp")["loss_series"].tolist() == [2]
    assert any(line.startswith("result 'loss' -> 'loss_'") for line in report.renames), report.renames


def test_an_import_never_adds_its_runs_to_a_session_recorder_recorded(store: Path) -> None:
    # Imported sessions are found again by the last 12 hex digits of their id (a hash of the source's
    # session key). A recorded session whose id ends so (48 bits: found by a search, or a store crafted
    # so) must not take the imported runs.
    from recorder.importing.write import _session_tail

    with rec.Recorder("calc", store=store, git=False) as r:
        with r.run(a=100, b=8):
            pass
        native = r.id
    tail = _session_tail("psweep", "s1")
    conn = sqlite3.connect(store / "recorder.sqlite")
    conn.execute("UPDATE sessions SET id = ? WHERE id = ?", (native[:12] + tail, native))
    conn.commit()
    conn.close()

    report = import_study(_study(2), into=store)

    assert report.sessions == 1
    db = rec.open(store)
    counts = dict(
        db.conn.execute("SELECT s.id, count(*) FROM runs AS r JOIN sessions AS s ON s.pk = r.session GROUP BY s.id")
    )
    assert counts[native[:12] + tail] == 1  # only its own run
    assert sum(counts.values()) == 3


def test_a_session_key_imported_into_another_experiment_gets_a_session_of_its_own(store: Path) -> None:
    # The same source session (its key and first start) imported into a second experiment: its session id
    # would be the first one's, which the store refuses (ids are unique); it takes the next free one.
    import_study(_study(2), into=store)
    other = _study(2)
    for run in other.runs:
        run.source_id = "other-" + run.source_id
    report = import_study(other, into=store, experiment="other")
    assert (report.imported, report.sessions) == (2, 1)
    db = rec.open(store)
    sessions = db.conn.execute(
        "SELECT e.name, count(*) FROM sessions AS s JOIN experiments AS e ON e.pk = s.experiment GROUP BY e.name"
    ).fetchall()
    assert sorted(sessions) == [("calc", 1), ("other", 1)]
