"""Every `recorder` command on real stores: log, show, diff, sql, export, status, verify, gc, checkout.

Stores are recorded with the library into ``tmp_path``; the commands run
through click's CliRunner (and once as the installed console script). An
error must be one line on stderr, ``recorder: error: …``, exit status 1 and
no traceback (unless ``--debug``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from conftest import git

import recorder as rec
from recorder.cli.commands import main

EXP = "lorenz"
CONFIG = {"dt": 0.01}


# -- helpers ---------------------------------------------------------------------


def cli(store: Path | None, *args: str, **kwargs: Any) -> Result:
    """Invoke the command line (with ``--store store`` unless it is None)."""
    prefix = ["--store", str(store)] if store is not None else []
    return CliRunner().invoke(main, [*prefix, *args], **kwargs)


def ok(store: Path | None, *args: str) -> Result:
    result = cli(store, *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def assert_error(result: Result, *fragments: str, code: int = 1) -> str:
    """A clean error: exit ``code`` (the error class's exit_code), one line on stderr starting 'recorder: error:', nothing on stdout, no traceback."""
    assert result.exit_code == code, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    lines = result.stderr.rstrip("\n").split("\n")
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("recorder: error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def record(store: Path) -> dict[str, str]:
    """The standard store: lorenz (a done run with an object array, a failed run) and a captured sweep.

    Returns the run ids by role: done, failed, sweep1, sweep2 (in that order of recording).
    """
    ids: dict[str, str] = {}
    with rec.Recorder(EXP, store=store, git=False, config=CONFIG) as r:
        with r.run(a=0.1, b=8) as run:
            run.log(energy=0.8, traj=np.arange(20000.0), comment="final energy")
        ids["done"] = run.id
        failing = r.run(a=0.2, b=8)
        with pytest.raises(ValueError, match="diverged"), failing:
            raise ValueError("diverged")
        ids["failed"] = failing.id

    def talk(x: int) -> dict[str, int]:
        print(f"hello from x={x}")
        return {"y": 2 * x}

    with rec.Recorder("other", store=store, git=False) as r:
        df = r.sweep(talk, rec.grid(x=[1, 2]), capture=True, progress=False)
    ids["sweep1"], ids["sweep2"] = list(df["_run_id"])
    return ids


def object_files(store: Path) -> list[Path]:
    return sorted(p for p in (store / "objects").rglob("*.npy") if p.is_file())


def count_rows(store: Path, table: str) -> int:
    conn = sqlite3.connect(f"file:{store / 'recorder.sqlite'}?mode=ro", uri=True)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def recorded(store: Path) -> dict[str, str]:
    return record(store)


def short(store: Path, run_id: str) -> str:
    """The short id of a run, as the library computes it."""
    with rec.open(store) as db:
        return db.short_id(run_id)


# -- log -------------------------------------------------------------------------


def test_log_lists_runs_newest_first(store: Path, recorded: dict[str, str]) -> None:
    text = ok(store, "log").output
    order = [short(store, recorded[k]) for k in ("sweep2", "sweep1", "failed", "done")]
    positions = [text.index(f"run {run_id}  ") for run_id in order]
    assert positions == sorted(positions)
    assert "experiment lorenz" in text and "experiment other" in text
    assert "a=0.1 b=8" in text and "energy=0.8" in text


def test_log_limit_status_and_experiment_filters(store: Path, recorded: dict[str, str]) -> None:
    s = {k: short(store, v) for k, v in recorded.items()}
    one = ok(store, "log", "-n", "1", "--oneline").output.splitlines()
    assert len(one) == 1 and one[0].startswith(s["sweep2"] + " ")
    failed = ok(store, "log", "--status", "failed", "--oneline").output.splitlines()
    assert [line.split()[0] for line in failed] == [s["failed"]]
    lorenz = ok(store, "log", EXP, "--oneline").output.splitlines()
    assert [line.split()[0] for line in lorenz] == [s["failed"], s["done"]]
    both = ok(store, "log", EXP, "--status", "done", "--oneline").output.splitlines()
    assert [line.split()[0] for line in both] == [s["done"]]


def test_log_since(store: Path, recorded: dict[str, str]) -> None:
    every = ok(store, "log", "--oneline", "--since", "2000-01-01").output.splitlines()
    assert len(every) == 4
    assert ok(store, "log", "--oneline", "--since", "2999-12-31T08:00").output.strip() == ""
    # The start of the newest run, to the millisecond: exactly the runs that started then or later.
    entries = [json.loads(line) for line in ok(store, "log", "--json").output.splitlines()]
    since = entries[0]["time_start"]
    kept = [json.loads(line)["run_id"] for line in ok(store, "log", "--json", "--since", since).output.splitlines()]
    assert kept == [e["run_id"] for e in entries if e["time_start"] >= since]
    assert recorded["sweep2"] in kept and recorded["done"] not in kept


def test_log_oneline_has_short_run_ids(store: Path, recorded: dict[str, str]) -> None:
    lines = ok(store, "log", "--oneline").output.splitlines()
    assert len(lines) == 4
    firsts = [line.split()[0] for line in lines]
    assert all(8 <= len(f) <= 12 and int(f, 16) >= 0 for f in firsts)
    assert {next(full for full in recorded.values() if full.endswith(f)) for f in firsts} == set(recorded.values())
    assert any(line.split()[1] == "failed" for line in lines)


def test_log_oneline_gives_parameters_and_results_in_the_functions_order(store: Path) -> None:
    def backwards(z: int, a: int) -> dict:
        return {"zz": z, "aa": a}

    with rec.Recorder("order", store=store, git=False) as r:
        r.sweep(backwards, [{"z": 3, "a": 0}], progress=False)
    (line,) = ok(store, "log", "--oneline").output.splitlines()
    assert "z=3 a=0" in line and "zz=3 aa=0" in line, line
    with rec.open(store) as db:
        assert list(db.df("order").columns[:4]) == ["z", "a", "zz", "aa"]


def test_log_json_lines_parse(store: Path, recorded: dict[str, str]) -> None:
    entries = [json.loads(line) for line in ok(store, "log", "--json").output.splitlines()]
    by_id = {e["run_id"]: e for e in entries}
    assert list(by_id) == [recorded[k] for k in ("sweep2", "sweep1", "failed", "done")]
    done = by_id[recorded["done"]]
    assert done["params"] == {"a": 0.1, "b": 8}
    assert done["results"] == {"energy": 0.8}
    assert done["status"] == "done" and done["experiment"] == EXP
    assert by_id[recorded["failed"]]["status"] == "failed"
    assert by_id[recorded["failed"]]["results"] == {}
    assert by_id[recorded["sweep1"]]["results"] == {"y": 2}


def test_log_unknown_experiment_names_known_ones(store: Path, recorded: dict[str, str]) -> None:
    assert_error(cli(store, "log", "nope"), "'nope'", "'lorenz'", "'other'", code=4)


def test_log_bad_since(store: Path, recorded: dict[str, str]) -> None:
    assert_error(cli(store, "log", "--since", "last tuesday"), "--since", "last tuesday")


def test_store_from_environment(store: Path, recorded: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECORDER_STORE", str(store))
    s = {k: short(store, v) for k, v in recorded.items()}
    lines = ok(None, "log", "--oneline", "-n", "2").output.splitlines()
    assert [line.split()[0] for line in lines] == [s["sweep2"], s["sweep1"]]
    result = CliRunner(env={"RECORDER_STORE": str(store)}).invoke(main, ["log", EXP, "--oneline"])
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines()] == [s["failed"], s["done"]]


# -- show ------------------------------------------------------------------------


def test_show_done_run_by_full_id_and_prefix(store: Path, recorded: dict[str, str]) -> None:
    run_id = recorded["done"]
    text = ok(store, "show", run_id).output
    with rec.open(store) as db:
        digest = db.sql("SELECT digest FROM objects")["digest"].tolist()
    assert len(digest) == 1
    assert text.startswith(f"run {short(store, run_id)}  done\nid           {run_id}\n")
    assert "experiment   lorenz" in text
    assert "  a = 0.1" in text and "  b = 8" in text
    assert "  energy = 0.8   # final energy" in text
    traj = next(line for line in text.splitlines() if line.startswith("  traj = "))
    assert "<f8" in traj and "shape (20000,)" in traj and f"object {digest[0][:16]}" in traj
    assert "# final energy" in traj
    assert "  code       (no git)" in text
    assert "traceback" not in text.splitlines() and "output" not in text.splitlines()
    # Any unique prefix shows the same run.
    prefix = run_id[:18]
    assert ok(store, "show", prefix).output == text
    assert ok(store, "show", run_id.upper()).output == text
    assert ok(store, "show", short(store, run_id)).output == text


def test_show_session_block(store: Path, recorded: dict[str, str]) -> None:
    import platform

    info = json.loads(ok(store, "show", recorded["done"], "--json").output)
    text = ok(store, "show", recorded["done"]).output
    session = info["session"]
    assert session["host"] == platform.node()
    assert f"session      {session['id']}  (done)" in text
    assert f"  host       {session['host']}   user {session['user']}" in text
    assert f"  python     {session['python']}   on {session['platform']}" in text
    assert platform.python_version() in session["python"]
    assert f"packages   {len(session['packages'])} (fingerprint {session['fingerprint']})" in text
    assert session["packages"].get("numpy") == np.__version__


def test_show_failed_run_has_traceback(store: Path, recorded: dict[str, str]) -> None:
    text = ok(store, "show", recorded["failed"]).output
    assert text.startswith(f"run {short(store, recorded['failed'])}  failed")
    assert "error        ValueError: diverged" in text.splitlines()
    lines = text.splitlines()
    at = lines.index("traceback")
    tail = lines[at + 1 :]
    assert tail[0] == "  Traceback (most recent call last):"
    assert "  ValueError: diverged" in tail
    assert "  a = 0.2" in text


def test_show_captured_output(store: Path, recorded: dict[str, str]) -> None:
    text = ok(store, "show", recorded["sweep2"]).output
    lines = text.splitlines()
    assert lines[lines.index("output") + 1] == "  hello from x=2"
    assert "hello from x=1" not in text
    assert "  y = 4" in text


def test_show_json(store: Path, recorded: dict[str, str]) -> None:
    info = json.loads(ok(store, "show", recorded["done"], "--json").output)
    assert info["run_id"] == recorded["done"]
    assert info["status"] == "done" and info["experiment"] == EXP
    assert info["params"] == {"a": 0.1, "b": 8}
    assert info["results"]["energy"] == {"value": 0.8, "comment": "final energy"}
    array = info["results"]["traj"]["array"]
    assert array["dtype"] == "<f8" and array["shape"] == [20000]
    digest = array["digest"]
    assert len(digest) == 64
    assert (store / "objects" / digest[:2] / f"{digest[2:]}.npy").is_file()
    assert info["error"] is None and info["output"] is None
    assert info["session"]["git_commit"] is None
    failed = json.loads(ok(store, "show", recorded["failed"], "--json").output)
    assert failed["status"] == "failed" and "ValueError: diverged" in failed["error"]
    swept = json.loads(ok(store, "show", recorded["sweep1"], "--json").output)
    assert swept["output"] == "hello from x=1\n"
    assert swept["results"] == {"y": {"value": 2}}


def test_show_other_result_kinds_and_run_comment(store: Path) -> None:
    with rec.Recorder(EXP, store=store, git=False) as r, r.run(a=1, label="x y") as run:
        run.log(small=np.arange(3, dtype=np.int32), blob=b"abc", word="hi", pair=[1, 2])
        run.log(comment="a note on the run")
    text = ok(store, "show", run.id).output
    lines = text.splitlines()
    assert "  label = 'x y'" in lines
    assert "  blob = 3 bytes" in lines
    assert "  word = 'hi'" in lines and "  pair = [1, 2]" in lines
    small = next(line for line in lines if line.startswith("  small = "))
    assert "int32" in small and "shape (3,)" in small and "inline" in small
    assert "comment      a note on the run" in lines
    info = json.loads(ok(store, "show", run.id, "--json").output)
    assert info["comment"] == "a note on the run"
    assert info["results"]["small"]["array"]["inline"] is True
    assert info["results"]["pair"] == {"value": [1, 2]}
    assert not object_files(store)


def test_show_ambiguous_and_unknown_ids(store: Path, recorded: dict[str, str]) -> None:
    common = os.path.commonprefix([recorded["sweep1"], recorded["sweep2"]])  # noqa: RUF071 (ids: a character prefix)
    assert 1 <= len(common) < 24
    line = assert_error(cli(store, "show", common), "ambiguous", code=5)
    assert recorded["sweep1"] in line and recorded["sweep2"] in line
    unknown = "f" * 24 if not any(v.startswith("f") for v in recorded.values()) else "0" * 24
    assert_error(cli(store, "show", unknown), "no run", unknown, code=4)
    assert_error(cli(store, "show", "not-an-id"), "not a run id")


def test_debug_lets_the_error_raise(store: Path, recorded: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["--store", str(store), "--debug", "show", "f" * 24])
    assert result.exit_code != 0
    assert isinstance(result.exception, rec.RecorderError)
    assert "no run with id" in str(result.exception)
    assert "recorder: error:" not in result.output


# -- diff ------------------------------------------------------------------------


def test_diff_params_and_results(store: Path, recorded: dict[str, str]) -> None:
    text = ok(store, "diff", recorded["done"], recorded["failed"]).output
    lines = text.splitlines()
    assert lines[0] == f"--- run {short(store, recorded['done'])}"
    assert lines[1] == f"+++ run {short(store, recorded['failed'])}"
    assert "status: 'done' → 'failed'" in lines or "status: done → failed" in lines
    assert "param a: 0.1 → 0.2" in lines
    assert "result energy: 0.8 → None" in lines
    assert not any(line.startswith("param b") for line in lines)
    assert any(line.startswith("result traj: 'array <f8 (20000,)") for line in lines)
    # Different sessions (and experiments): the env SHA differs, results differ.
    other = ok(store, "diff", recorded["sweep1"], recorded["sweep2"]).output.splitlines()
    assert "param x: 1 → 2" in other and "result y: 2 → 4" in other


def test_diff_json_sections(store: Path, recorded: dict[str, str]) -> None:
    changes = json.loads(ok(store, "diff", recorded["done"], recorded["sweep1"], "--json").output)
    assert changes["runs"] == [recorded["done"], recorded["sweep1"]]
    assert changes["experiments"] == [EXP, "other"]
    assert changes["params"] == {"a": [0.1, None], "b": [8, None], "x": [None, 1]}
    assert changes["results"]["y"] == [None, 2] and changes["results"]["energy"] == [0.8, None]
    assert set(changes["packages"]) == {"added", "removed", "changed"}
    assert changes["packages"] == {"added": {}, "removed": {}, "changed": {}}  # same interpreter
    assert "env_sha" in changes["environment"]  # two sessions without git: two fallback SHAs
    assert "code" not in changes


def test_diff_identical_runs(store: Path, recorded: dict[str, str]) -> None:
    lines = ok(store, "diff", recorded["done"], recorded["done"]).output.splitlines()
    assert lines[2:] == ["(no differences in status, parameters, results, config or environment)"]
    changes = json.loads(ok(store, "diff", recorded["done"], recorded["done"], "--json").output)
    assert changes["params"] == changes["results"] == changes["environment"] == {}


def test_diff_code_without_git_is_an_error(store: Path, recorded: dict[str, str]) -> None:
    assert_error(cli(store, "diff", recorded["done"], recorded["failed"], "--code"), "--code", "git")


def test_diff_unknown_run_is_an_error(store: Path, recorded: dict[str, str]) -> None:
    assert_error(cli(store, "diff", recorded["done"], "f" * 24), "no run", code=4)


def _git_runs(store: Path, repo: Path) -> tuple[str, str, str, str]:
    """Two sessions with git='commit': the second auto-commits a changed model.py. Returns ids and commits."""
    with rec.Recorder(EXP, store=store, git="commit", repo=repo) as r, r.run(a=1) as run:
        run.log(e=1.0)
    first, commit_a = run.id, r.git.commit
    (repo / "model.py").write_text("A = 1\nB = 'second version'\n")
    with rec.Recorder(EXP, store=store, git="commit", repo=repo) as r, r.run(a=2) as run:
        run.log(e=2.0)
    assert r.git.auto_committed
    return first, run.id, commit_a, r.git.commit


def test_diff_code_between_commits(store: Path, repo: Path) -> None:
    run_a, run_b, commit_a, commit_b = _git_runs(store, repo)
    assert commit_a != commit_b
    text = ok(store, "diff", run_a, run_b, "--code").output
    assert "param a: 1 → 2" in text
    assert "diff --git a/model.py b/model.py" in text
    assert "+B = 'second version'" in text
    changes = json.loads(ok(store, "diff", run_a, run_b, "--code", "--json").output)
    assert changes["commits"] == [commit_a, commit_b]
    assert "+B = 'second version'" in changes["code"]
    assert changes["environment"]["git_commit"] == [commit_a, commit_b]
    # The same commit on both sides: an empty patch, said so.
    same = ok(store, "diff", run_a, run_a, "--code").output
    assert same.rstrip().endswith("(no code differences)")


# -- sql -------------------------------------------------------------------------


def test_sql_table(store: Path, recorded: dict[str, str]) -> None:
    text = ok(store, "sql", "SELECT run_id, a, b, energy FROM lorenz ORDER BY a").output
    lines = text.splitlines()
    assert lines[0].split() == ["run_id", "a", "b", "energy"]
    assert lines[1].split() == [recorded["done"], "0.1", "8", "0.8"]
    assert lines[2].split() == [recorded["failed"], "0.2", "8", "NULL"]
    assert len(lines) == 3


def test_sql_csv(store: Path, recorded: dict[str, str]) -> None:
    text = ok(store, "sql", "SELECT run_id, status, a, energy FROM lorenz ORDER BY a", "--csv").output
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["run_id", "status", "a", "energy"],
        [recorded["done"], "done", "0.1", "0.8"],
        [recorded["failed"], "failed", "0.2", ""],
    ]


def test_sql_json_lines(store: Path, recorded: dict[str, str]) -> None:
    text = ok(store, "sql", "SELECT run_id, x, y FROM other ORDER BY x", "--json").output
    rows = [json.loads(line) for line in text.splitlines()]
    assert rows == [
        {"run_id": recorded["sweep1"], "x": 1, "y": 2},
        {"run_id": recorded["sweep2"], "x": 2, "y": 4},
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM runs",
        "DROP TABLE comments",
        "INSERT INTO comments (text) VALUES ('sneaky')",
        "UPDATE runs SET status = 'done'",
    ],
)
def test_sql_refuses_to_write(store: Path, recorded: dict[str, str], statement: str) -> None:
    before = {t: count_rows(store, t) for t in ("runs", "comments", "experiments", "objects")}
    statuses = ok(store, "sql", "SELECT status FROM runs ORDER BY pk", "--csv").output
    assert_error(cli(store, "sql", statement), "only reads")
    assert {t: count_rows(store, t) for t in before} == before
    assert ok(store, "sql", "SELECT status FROM runs ORDER BY pk", "--csv").output == statuses
    assert len(ok(store, "log", "--oneline").output.splitlines()) == 4


def test_sql_invalid_is_an_error(store: Path, recorded: dict[str, str]) -> None:
    assert_error(cli(store, "sql", "SELEKT * FROM runs"), "SQL error", "SELEKT")
    assert_error(cli(store, "sql", "SELECT * FROM no_such_table"), "SQL error", "no_such_table")


# -- export ----------------------------------------------------------------------


def _random_store(store: Path) -> list[dict[str, Any]]:
    """Runs with random floats (17 significant digits) as params and results."""
    rng = np.random.default_rng(20261123)
    logged = []
    with rec.Recorder(EXP, store=store, git=False) as r:
        for i in range(5):
            a = float(rng.random())
            energy, ratio = float(rng.normal() * 1e-7), float(rng.random() * 1e12)
            with r.run(a=a, i=i) as run:
                run.log(energy=energy, ratio=ratio)
            logged.append({"a": a, "i": i, "energy": energy, "ratio": ratio, "_run_id": run.id})
        failing = r.run(a=2.5, i=99)
        with pytest.raises(RuntimeError), failing:
            raise RuntimeError("boom")
    logged.append({"a": 2.5, "i": 99, "_run_id": failing.id, "_status": "failed"})
    return logged


def test_export_csv_exact_floats(store: Path, tmp_path: Path) -> None:
    logged = [e for e in _random_store(store) if "_status" not in e]
    target = tmp_path / "out.csv"
    result = ok(store, "export", EXP, "-o", str(target))
    assert f"wrote 5 runs of {EXP} to {target}" in result.output
    df = pd.read_csv(target)
    assert list(df["_run_id"]) == [e["_run_id"] for e in logged]
    for name in ("a", "i", "energy", "ratio"):
        assert df[name].tolist() == [e[name] for e in logged], name
    assert set(df["_status"]) == {"done"}
    # The text itself holds the exact floats (not only pandas' reading of it).
    with target.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [float(row["energy"]) for row in rows] == [e["energy"] for e in logged]
    assert not list(tmp_path.glob(".out.csv.tmp-*"))


def test_export_jsonl_exact_floats(store: Path, tmp_path: Path) -> None:
    logged = [e for e in _random_store(store) if "_status" not in e]
    target = tmp_path / "out.jsonl"
    ok(store, "export", EXP, "-o", str(target))
    records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 5
    for record, expected in zip(records, logged):
        assert record["_run_id"] == expected["_run_id"]
        for name in ("a", "i", "energy", "ratio"):
            assert record[name] == expected[name] and type(record[name]) is type(expected[name]), name
        assert record["_status"] == "done"


def test_export_status_all_includes_failed(store: Path, tmp_path: Path) -> None:
    logged = _random_store(store)
    target = tmp_path / "all.jsonl"
    result = ok(store, "export", EXP, "-o", str(target), "--status", "all")
    assert f"wrote 6 runs of {EXP}" in result.output
    records = {r["_run_id"]: r for r in map(json.loads, target.read_text().splitlines())}
    failed = records[logged[-1]["_run_id"]]
    assert failed["_status"] == "failed" and failed["a"] == 2.5
    assert failed["energy"] is None  # no result: NaN becomes null
    only_failed = tmp_path / "failed.csv"
    ok(store, "export", EXP, "-o", str(only_failed), "--status", "failed")
    assert pd.read_csv(only_failed)["_run_id"].tolist() == [logged[-1]["_run_id"]]


def test_export_parquet(store: Path, tmp_path: Path) -> None:
    logged = [e for e in _random_store(store) if "_status" not in e]
    target = tmp_path / "out.parquet"
    result = cli(store, "export", EXP, "-o", str(target))
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert_error(result, "pyarrow")
        assert not target.exists()
        return
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(target)
    assert df["energy"].tolist() == [e["energy"] for e in logged]


def test_export_bad_suffix_and_unknown_experiment(store: Path, tmp_path: Path, recorded: dict[str, str]) -> None:
    assert_error(cli(store, "export", EXP, "-o", str(tmp_path / "out.xlsx")), "out.xlsx", ".csv")
    assert not (tmp_path / "out.xlsx").exists()
    assert_error(cli(store, "export", "nope", "-o", str(tmp_path / "out.csv")), "'nope'", "'lorenz'", code=4)
    assert not (tmp_path / "out.csv").exists()


# -- status ----------------------------------------------------------------------


def test_status(store: Path, recorded: dict[str, str]) -> None:
    text = ok(store, "status").output
    lines = text.splitlines()
    assert lines[0].startswith(f"store    {store.resolve()}") or lines[0].startswith(f"store    {store}")
    from recorder.store.db import SCHEMA_VERSION

    assert f"(schema {SCHEMA_VERSION}," in lines[0]
    assert lines[1].startswith("objects  1 arrays, 0.2 MB")
    header = next(i for i, line in enumerate(lines) if line.startswith("experiment"))
    assert lines[header].split() == ["experiment", "runs", "done", "failed", "interrupted", "running"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[header + 1 :] if line.split()}
    assert rows["lorenz"] == ["2", "1", "1", "0", "0"]
    assert rows["other"] == ["2", "2", "0", "0", "0"]
    assert "recording:" not in text


def test_status_json(store: Path, recorded: dict[str, str]) -> None:
    from recorder.store.db import SCHEMA_VERSION

    info = json.loads(ok(store, "status", "--json").output)
    assert info["schema_version"] == SCHEMA_VERSION
    assert Path(info["store"]).resolve() == store.resolve()
    assert info["objects"] == 1
    assert info["object_bytes"] == sum(p.stat().st_size for p in object_files(store))
    assert info["experiments"] == [
        {"experiment": "lorenz", "runs": 2, "done": 1, "failed": 1, "interrupted": 0, "running": 0},
        {"experiment": "other", "runs": 2, "done": 2, "failed": 0, "interrupted": 0, "running": 0},
    ]
    assert info["open_sessions"] == []
    assert info["database_bytes"] > 0


def test_status_shows_an_open_session(store: Path, recorded: dict[str, str]) -> None:
    with rec.Recorder("live", store=store, git=False) as r:
        info = json.loads(ok(store, "status", "--json").output)
        assert [s["session_id"] for s in info["open_sessions"]] == [r.id]
        assert f"recording: session {r.id}" in ok(store, "status").output
    assert json.loads(ok(store, "status", "--json").output)["open_sessions"] == []


def test_missing_store_is_an_error(tmp_path: Path) -> None:
    assert_error(cli(tmp_path / "nowhere", "status"), "no store", code=3)
    assert_error(cli(tmp_path / "nowhere", "log"), "no store", code=3)


# -- verify ----------------------------------------------------------------------


def test_verify_sound_store(store: Path, recorded: dict[str, str]) -> None:
    result = ok(store, "verify")
    assert result.stdout.startswith("ok")
    assert result.stderr == ""


def test_verify_finds_a_corrupt_object(store: Path, recorded: dict[str, str]) -> None:
    (path,) = object_files(store)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0xFF
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))
    result = cli(store, "verify")
    assert result.exit_code == 11
    assert "Traceback" not in result.output
    assert "ok:" not in result.stdout
    (line,) = result.stderr.splitlines()
    assert line.startswith("corrupt:")
    assert recorded["done"] in line and "traj" in line
    assert path.parent.name + path.stem in line  # the digest


def test_verify_finds_a_missing_object(store: Path, recorded: dict[str, str]) -> None:
    (path,) = object_files(store)
    path.unlink()
    result = cli(store, "verify")
    assert result.exit_code == 11
    (line,) = result.stderr.splitlines()
    assert line.startswith("missing:")
    assert recorded["done"] in line and "traj" in line and "does not exist" in line


# -- gc --------------------------------------------------------------------------


def _stray(store: Path, size: int = 300_000) -> Path:
    folder = store / "objects" / "ab"
    folder.mkdir(exist_ok=True)
    path = folder / ("cd" * 31 + ".npy")
    assert len(path.stem) == 62
    path.write_bytes(b"\x00" * size)
    return path


def test_gc_dry_run_removes_nothing(store: Path, recorded: dict[str, str]) -> None:
    stray = _stray(store)
    before = object_files(store)
    result = ok(store, "gc", "--dry-run")
    assert result.output.strip() == "would remove 1 files (0.3 MB) and 0 object rows"
    assert object_files(store) == before and stray.exists()


def test_gc_removes_only_unreferenced(store: Path, recorded: dict[str, str]) -> None:
    kept = object_files(store)
    assert len(kept) == 1
    stray = _stray(store)
    assert ok(store, "gc").output.strip() == "removed 1 files (0.3 MB) and 0 object rows"
    assert not stray.exists()
    assert object_files(store) == kept
    ok(store, "verify")
    with rec.open(store) as db:
        assert db.array(recorded["done"], "traj", mmap=False).tolist() == np.arange(20000.0).tolist()
    assert ok(store, "gc").output.strip() == "removed 0 files (0.0 MB) and 0 object rows"


def test_gc_keeps_config_objects(store: Path) -> None:
    config = {"grid": np.linspace(0, 1, 20000)}
    with rec.Recorder(EXP, store=store, git=False, config=config) as r, r.run(a=1) as run:
        run.log(e=1.0)
    (kept,) = object_files(store)
    stray = _stray(store, 1000)
    assert ok(store, "gc").output.startswith("removed 1 files")
    assert object_files(store) == [kept] and not stray.exists()
    ok(store, "verify")


def test_gc_removes_only_old_temporary_files(store: Path, recorded: dict[str, str]) -> None:
    folder = store / "objects" / "ab"
    folder.mkdir(exist_ok=True)
    fresh, old = folder / ".tmp-fresh", folder / ".tmp-old"
    fresh.write_bytes(b"x" * 10)
    old.write_bytes(b"y" * 1000)
    two_hours_ago = old.stat().st_mtime - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert ok(store, "gc").output.strip() == "removed 1 files (0.0 MB) and 0 object rows"
    assert fresh.exists() and not old.exists()
    ok(store, "verify")


def test_gc_after_a_killed_session(store: Path, tmp_path: Path) -> None:
    """A session killed with SIGKILL is not 'recording': gc works, and keeps the arrays of its journaled runs."""
    code = (
        "import os, signal, numpy as np, recorder as rec\n"
        f"r = rec.Recorder('killed', store={str(store)!r}, git=False).open()\n"
        "with r.run(a=1) as run:\n    run.log(t=np.ones(20000))\n"
        "r.flush()\n"
        "with r.run(a=2) as run:\n    run.log(t=np.full(20000, 2.0))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == -9, done.stderr
    assert len(object_files(store)) == 2
    stray = _stray(store, 1000)
    assert ok(store, "gc").output.strip() == "removed 1 files (0.0 MB) and 0 object rows"
    assert len(object_files(store)) == 2 and not stray.exists()
    ok(store, "verify")
    assert json.loads(ok(store, "status", "--json").output)["open_sessions"] == []
    assert len(ok(store, "log", "killed", "--oneline").output.splitlines()) == 2


def test_gc_refuses_while_recording(store: Path, recorded: dict[str, str]) -> None:
    stray = _stray(store)
    with rec.Recorder(EXP, store=store, git=False, config=CONFIG) as r:
        with r.run(a=0.3, b=8) as run:
            run.log(energy=1.2)
        r.flush()
        assert_error(cli(store, "gc"), "recording", r.id, code=8)
        assert stray.exists()
    assert ok(store, "gc").output.startswith("removed 1 files")


def _victim(tmp_path: Path) -> dict[Path, bytes]:
    """A folder outside the store with files gc would take for stray objects, and others: name -> bytes."""
    victim = tmp_path / "victim"
    (victim / "ab").mkdir(parents=True)
    files = {
        victim / ("cd" * 31 + ".npy"): b"looks like an object",
        victim / ".tmp-old": b"looks like a temp file",
        victim / "notes.txt": b"my thesis",
        victim / "ab" / ("ef" * 31 + ".npy"): b"deeper",
    }
    for path, data in files.items():
        path.write_bytes(data)
        two_hours_ago = path.stat().st_mtime - 7200  # old enough for gc's temp-file rule
        os.utime(path, (two_hours_ago, two_hours_ago))
    return files


def test_gc_never_follows_a_symlink_out_of_the_store(store: Path, recorded: dict[str, str], tmp_path: Path) -> None:
    """Links inside objects/ (a fan-out folder, an object file) are left alone by gc and reported by verify."""
    files = _victim(tmp_path)
    victim = tmp_path / "victim"
    (store / "objects" / "zz").symlink_to(Path("..") / ".." / "victim")  # relative, as an attacker writes it
    (kept,) = object_files(store)
    linked_file = kept.parent / ("12" * 31 + ".npy")
    linked_file.symlink_to(victim / ("cd" * 31 + ".npy"))
    stray = _stray(store, 1000)
    with pytest.warns(rec.RecorderWarning, match="2 symbolic links"):
        result = ok(store, "gc")
    assert result.stdout.startswith("removed 1 files")  # the real stray object only
    assert not stray.exists()
    assert {path: path.read_bytes() for path in files} == files
    assert kept.exists() and (store / "objects" / "zz").is_symlink() and linked_file.is_symlink()
    result = cli(store, "verify")
    assert result.exit_code == 11 and "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith("link:") for line in lines), lines
    assert any("zz" in line for line in lines) and any(linked_file.name in line for line in lines)
    assert {path: path.read_bytes() for path in files} == files


def test_gc_refuses_an_objects_folder_that_is_a_link(store: Path, recorded: dict[str, str], tmp_path: Path) -> None:
    files = _victim(tmp_path)
    shutil.rmtree(store / "objects")
    (store / "objects").symlink_to(tmp_path / "victim")
    assert_error(cli(store, "gc"), "symbolic link", str(store / "objects"), code=11)  # ObjectOutsideStore
    assert {path: path.read_bytes() for path in files} == files
    result = cli(store, "verify")
    assert result.exit_code == 11
    assert any(line.startswith("link:") for line in result.stderr.splitlines())
    assert {path: path.read_bytes() for path in files} == files


def test_verify_reports_a_referenced_object_that_is_a_link(
    store: Path, recorded: dict[str, str], tmp_path: Path
) -> None:
    (kept,) = object_files(store)
    outside = tmp_path / "outside.npy"
    shutil.copyfile(kept, outside)  # the same bytes: only the link is wrong
    kept.unlink()
    kept.symlink_to(outside)
    result = cli(store, "verify")
    assert result.exit_code == 11 and "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("link:") and recorded["done"] in line and "traj" in line
    with rec.open(store) as db, pytest.raises(rec.ObjectError, match="symbolic link"):
        db.array(recorded["done"], "traj")
    assert outside.exists()


def _tamper(store: Path, sql: str, params: tuple = ()) -> None:
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        with conn:
            conn.execute(sql, params)
    finally:
        conn.close()


@pytest.mark.parametrize("digest", ["zz-not-a-digest", "../" * 3 + "etc/passwd", "A" * 64])
def test_verify_reports_a_malformed_digest_and_goes_on(store: Path, recorded: dict[str, str], digest: str) -> None:
    """A malformed digest is one problem among others, not the end of verify."""
    with rec.Recorder("more", store=store, git=False) as r, r.run(a=1) as run:
        run.log(bad=np.zeros(20000), fine=np.ones(20000))
    fine = scalar_value(store, "SELECT value FROM results WHERE name = 'fine'")
    _tamper(store, "UPDATE results SET value = ? WHERE name = 'bad'", (digest,))
    (store / "objects" / fine[:2] / f"{fine[2:]}.npy").unlink()  # an unrelated missing object is still found
    result = cli(store, "verify")
    assert result.exit_code == 11 and "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 2, lines
    assert any(line.startswith("malformed digest:") and run.id in line and "bad" in line for line in lines), lines
    assert any(line.startswith("missing:") and run.id in line and "fine" in line for line in lines), lines


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("size", 12, "size"),
        ("shape", "[3, 4]", "shape"),
        ("dtype", "<i4", "dtype"),
    ],
)
def test_verify_checks_the_recorded_size_shape_and_dtype(
    store: Path, recorded: dict[str, str], column: str, value: Any, problem: str
) -> None:
    _tamper(store, f"UPDATE objects SET {column} = ?", (value,))
    result = cli(store, "verify")
    assert result.exit_code == 11 and "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"wrong {problem}:") and recorded["done"] in line and "traj" in line, line
    assert str(value) in line


@pytest.mark.parametrize("kind", ["npy", "npyscalar"])
def test_verify_checks_that_inline_arrays_decode(store: Path, kind: str) -> None:
    with rec.Recorder("inline", store=store, git=False, config={"small": np.arange(3)}) as r, r.run(a=1) as run:
        run.log(vec=np.arange(4), c=np.complex64(1 + 2j))
    name = "vec" if kind == "npy" else "c"
    assert scalar_kind(store, name) == kind
    _tamper(store, "UPDATE results SET value = ? WHERE name = ?", (b"\x93NUMPY garbage", name))
    _tamper(store, "UPDATE config SET value = ? WHERE name = 'small'", (b"not npy",))
    result = cli(store, "verify")
    assert result.exit_code == 11 and "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 2, lines
    assert any(line.startswith("corrupt inline array:") and run.id in line and name in line for line in lines)
    assert any(line.startswith("corrupt inline array:") and r.id in line and "small" in line for line in lines)


def scalar_value(store: Path, sql: str, params: tuple = ()) -> Any:
    conn = sqlite3.connect(f"file:{store / 'recorder.sqlite'}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()


def scalar_kind(store: Path, name: str) -> str:
    return scalar_value(store, "SELECT kind FROM results WHERE name = ?", (name,))


# -- checkout --------------------------------------------------------------------
# (The default folder, git="record" runs and hostile repositories: tests/provenance/test_checkout.py
# and tests/faults/test_fault_git.py.)


def test_checkout_a_run_into_a_folder(store: Path, repo: Path, tmp_path: Path) -> None:
    with rec.Recorder(EXP, store=store, git="commit", repo=repo) as r, r.run(a=1) as run:
        run.log(e=1.0)
    run_id, commit = run.id, r.git.commit
    (repo / "model.py").write_text("A = 2\n")
    git(repo, "commit", "-q", "-am", "later")
    assert git(repo, "rev-parse", "HEAD") != commit
    target = tmp_path / "code"
    result = ok(store, "checkout", run_id[:20], str(target))
    assert f"checked out {commit}" in result.output and run_id in result.output
    assert (target / "model.py").read_text() == "A = 1\n"
    assert git(target, "rev-parse", "HEAD") == commit
    assert (repo / "model.py").read_text() == "A = 2\n"  # the user's work tree is untouched
    # A folder that is taken is refused.
    assert_error(cli(store, "checkout", run_id, str(target)), "not empty")


def test_checkout_a_snapshot_run(store: Path, repo: Path, tmp_path: Path) -> None:
    (repo / "model.py").write_text("A = 'uncommitted'\n")
    with rec.Recorder(EXP, store=store, git="snapshot", repo=repo) as r, r.run(a=1) as run:
        run.log(e=1.0)
    assert r.git.snapshot_ref
    target = tmp_path / "snap"
    result = ok(store, "checkout", run.id, str(target))
    assert r.git.snapshot_ref in result.output
    assert (target / "model.py").read_text() == "A = 'uncommitted'\n"
    assert (repo / "model.py").read_text() == "A = 'uncommitted'\n"
    assert git(repo, "status", "--porcelain", "--", "model.py") == "M model.py"  # still modified, not committed


def test_checkout_without_git_is_an_error(store: Path, recorded: dict[str, str], tmp_path: Path) -> None:
    assert_error(cli(store, "checkout", recorded["done"], str(tmp_path / "code")), recorded["done"], "without git")
    assert not (tmp_path / "code").exists()


# -- the console script ----------------------------------------------------------


def test_installed_console_script(store: Path, recorded: dict[str, str]) -> None:
    here = os.path.dirname(sys.executable)
    exe = shutil.which("recorder", path=here + os.pathsep + os.environ.get("PATH", ""))
    if exe is None:
        pytest.skip("no installed `recorder` executable")
    done = subprocess.run(
        [exe, "--store", str(store), "log", "-n", "1", "--oneline"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == short(store, recorded["sweep2"])
    failed = subprocess.run(
        [exe, "--store", str(store), "show", "f" * 24], capture_output=True, text=True, timeout=120, check=False
    )
    assert failed.returncode == 4
    assert failed.stderr.startswith("recorder: error: ") and "Traceback" not in failed.stderr


# -- short ids, --store after the command ----------------------------------------------------------


def test_short_ids_name_runs_in_every_command(store: Path, repo: Path, tmp_path: Path) -> None:
    with rec.Recorder(EXP, store=store, git="commit", repo=repo) as r:
        df = r.sweep(lambda a: {"e": a}, rec.grid(a=list(range(30))), progress=False)
    ids = list(df["_run_id"])
    assert len({i[:18] for i in ids}) < len(ids)  # a sweep's ids share long prefixes
    entries = [json.loads(line) for line in ok(store, "log", "--json").output.splitlines()]
    shorts = {e["run_id"]: e["short_id"] for e in entries}
    assert set(shorts) == set(ids) and len(set(shorts.values())) == len(ids)
    assert all(8 <= len(s) <= 12 and full.endswith(s) for full, s in shorts.items())
    lines = ok(store, "log", "--oneline").output.splitlines()
    assert [line.split()[0] for line in lines] == [shorts[i] for i in reversed(ids)]
    a, b = shorts[ids[3]], shorts[ids[4]]
    assert json.loads(ok(store, "show", a, "--json").output)["run_id"] == ids[3]
    assert ok(store, "diff", a, b).output.splitlines()[:3] == [f"--- run {a}", f"+++ run {b}", "param a: 3 → 4"]
    target = tmp_path / "code"
    assert ids[3] in ok(store, "checkout", a, str(target)).output
    assert (target / "model.py").is_file()
    with rec.open(store) as db:
        assert db.resolve(a) == ids[3] and db.array is not None
        assert db.result(a, "e") == 3


def test_store_after_the_command(store: Path, recorded: dict[str, str], tmp_path: Path) -> None:
    s = short(store, recorded["done"])
    for args in (
        ["log", "--oneline"],
        ["show", s],
        ["diff", s, s],
        ["sql", "SELECT 1 AS one"],
        ["status"],
        ["verify"],
        ["gc", "--dry-run"],
        ["export", EXP, "-o", str(tmp_path / "x.csv")],
    ):
        result = CliRunner().invoke(main, [*args, "--store", str(store)])
        assert result.exit_code == 0, (args, result.output)
        assert result.output == cli(store, *args).output, args
    # After the command it wins over the group's option and the environment.
    result = CliRunner(env={"RECORDER_STORE": str(tmp_path / "nowhere")}).invoke(
        main, ["--store", str(tmp_path / "nowhere"), "log", "--store", str(store), "--oneline"]
    )
    assert result.exit_code == 0 and len(result.output.splitlines()) == 4
    assert_error(cli(store, "checkout", s, str(tmp_path / "c"), "--store", str(store)), "without git")
    for name, command in main.commands.items():
        if name not in ("merge", "extract"):  # these name their stores as arguments
            assert any("--store" in p.opts for p in command.params), name


# -- failures, sessions, diff --------------------------------------------------------------------


def test_log_shows_the_error_of_failed_runs(store: Path, recorded: dict[str, str]) -> None:
    text = ok(store, "log", "--status", "failed").output
    assert "  error    ValueError: diverged" in text.splitlines()
    assert "  results  " not in text  # no empty results line
    (line,) = ok(store, "log", "--status", "failed", "--oneline").output.splitlines()
    assert line.endswith("ValueError: diverged")
    (entry,) = [json.loads(x) for x in ok(store, "log", "--status", "failed", "--json").output.splitlines()]
    assert entry["error"] == "ValueError: diverged"
    done = json.loads(ok(store, "log", "--status", "done", "--json", "-n", "1").output)
    assert done["error"] is None
    info = json.loads(ok(store, "show", recorded["failed"], "--json").output)
    assert info["error_line"] == "ValueError: diverged"


def test_show_has_the_sessions_config_message_and_comment(store: Path) -> None:
    grid = np.linspace(0, 1, 5)
    with (
        rec.Recorder(
            EXP, store=store, git=False, config={"dt": 0.01, "grid": grid, "method": "rk4"}, message="trying rk4"
        ) as r,
        r.run(a=1) as run,
    ):
        run.log(e=1.0)
    conn = sqlite3.connect(store / "recorder.sqlite")
    with conn:
        conn.execute("UPDATE sessions SET comment = 'a session note'")
    conn.close()
    info = json.loads(ok(store, "show", run.id, "--json").output)
    session = info["session"]
    assert session["message"] == "trying rk4" and session["comment"] == "a session note"
    assert session["config"]["dt"] == {"value": 0.01} and session["config"]["method"] == {"value": "rk4"}
    assert session["config"]["grid"]["array"]["shape"] == [5]
    lines = ok(store, "show", run.id).output.splitlines()
    assert "  message    trying rk4" in lines and "  comment    a session note" in lines
    assert "    dt = 0.01" in lines and "    method = 'rk4'" in lines
    assert any(line.startswith("    grid = array float64 shape (5,)") for line in lines)


def test_run_and_session_times_have_one_precision(store: Path, recorded: dict[str, str]) -> None:
    import re

    info = json.loads(ok(store, "show", recorded["done"], "--json").output)
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
    for moment in (info["time_start"], info["session"]["time_start"], info["session"]["time_end"]):
        assert stamp.fullmatch(moment), moment
    entry = json.loads(ok(store, "log", "-n", "1", "--json").output)
    assert stamp.fullmatch(entry["time_start"])
    text = ok(store, "show", recorded["done"]).output
    assert f"started {info['session']['time_start']}" in text


def test_diff_compares_status_and_config(store: Path) -> None:
    with rec.Recorder(EXP, store=store, git=False, config={"dt": 0.01, "solver": "rk4"}) as r, r.run(a=1) as one:
        one.log(e=1.0)
    with rec.Recorder(EXP, store=store, git=False, config={"dt": 0.02, "solver": "rk4"}) as r:
        two = r.run(a=1)
        with pytest.raises(ValueError), two:
            raise ValueError("no")
    changes = json.loads(ok(store, "diff", one.id, two.id, "--json").output)
    assert changes["status"] == ["done", "failed"]
    assert changes["config"] == {"dt": [0.01, 0.02]}
    lines = ok(store, "diff", one.id, two.id).output.splitlines()
    assert "status: done → failed" in lines and "config dt: 0.01 → 0.02" in lines
    same = json.loads(ok(store, "diff", one.id, one.id, "--json").output)
    assert same["status"] is None and same["config"] == {}


# -- sql formatting ----------------------------------------------------------------------------


def test_sql_prints_null_exact_floats_and_right_aligned_numbers(store: Path, recorded: dict[str, str]) -> None:
    text = ok(
        store,
        "sql",
        "SELECT 'x' AS t, 0.1 + 0.2 AS f, NULL AS n, 7 AS i UNION ALL SELECT 'longer', 1e300, NULL, 123456",
    ).output
    lines = text.splitlines()
    assert lines[1].split() == ["x", "0.30000000000000004", "NULL", "7"]
    assert lines[2].split() == ["longer", "1e+300", "NULL", "123456"]
    assert lines[1].endswith("      7") and lines[2].endswith("123456")  # right-aligned
    f_end = lines[0].index("f") + 1
    assert lines[1].index("0.30000000000000004") + len("0.30000000000000004") >= f_end
    assert lines[1].rindex("0.30000000000000004") + 19 == lines[2].index("1e+300") + 6  # same right edge
    csv_rows = list(csv.reader(io.StringIO(ok(store, "sql", "SELECT 0.1 + 0.2 AS f, NULL AS n", "--csv").output)))
    assert csv_rows == [["f", "n"], ["0.30000000000000004", ""]]


@pytest.mark.parametrize("query", ["", "   ", "\n"])
def test_sql_refuses_an_empty_statement(store: Path, recorded: dict[str, str], query: str) -> None:
    assert_error(cli(store, "sql", query), "no SQL statement")


def test_sql_refuses_a_statement_without_columns(store: Path, recorded: dict[str, str]) -> None:
    assert_error(cli(store, "sql", "/* only a comment */"), "returns no columns")


@pytest.mark.parametrize(
    "args", [["log", b"\xff"], ["export", b"\xffexp", "-o", "x.csv"], ["sql", b"SELECT '\xff'"], ["show", b"\xff"]]
)
def test_undecodable_arguments_are_one_line(
    store: Path, recorded: dict[str, str], tmp_path: Path, args: list[Any]
) -> None:
    """Bytes a shell cannot decode reach Python as lone surrogates: a clear error, not a UnicodeEncodeError."""
    exe = shutil.which("recorder", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if exe is None:
        pytest.skip("no installed `recorder` executable")
    done = subprocess.run(
        [exe, "--store", str(store), *args],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(rec.__file__).parent.parent)},
    )
    assert done.returncode == 1, done.stderr
    err = done.stderr.decode()
    assert "Traceback" not in err and "not UTF-8 text" in err and "\\udcff" in err
    assert len(err.strip().splitlines()) == 1


def test_diff_tells_two_small_arrays_of_one_shape_apart(store: Path) -> None:
    """Arrays kept inline (below the inline limit) are compared by digest too, as those in objects/ are."""
    import numpy as np

    with rec.Recorder("inline", store=store, git=False) as r:
        with r.run(i=0) as run:
            run.log(w=np.zeros(3))
            first = run.id
        with r.run(i=1) as run:
            run.log(w=np.ones(3), same=np.arange(2))
            second = run.id
        with r.run(i=2) as run:
            run.log(w=np.ones(3), same=np.arange(2))
            third = run.id
    assert first is not None and second is not None and third is not None
    changes = json.loads(ok(store, "diff", first, second, "--json").output)
    assert set(changes["results"]) == {"w", "same"}  # w differs in value only; same is new
    assert "w" not in json.loads(ok(store, "diff", second, third, "--json").output)["results"]
    shown = json.loads(ok(store, "show", second, "--json").output)["results"]["w"]["array"]
    from recorder.codec.npy import npy_bytes

    # the digest the array would have as a file in objects/: that of its .npy bytes
    assert shown["digest"] == hashlib.sha256(npy_bytes(np.ones(3))).hexdigest() and shown["inline"] is True


def test_gc_jax_cache_empties_the_compile_cache_and_status_shows_its_size(
    store: Path, recorded: dict[str, str], tmp_path: Path
) -> None:
    assert "jax " not in ok(store, "status").output  # no cache folder: no line
    assert json.loads(ok(store, "status", "--json").output)["jax_cache_bytes"] is None
    cache = store / "jax-cache"
    (cache / "sub").mkdir(parents=True)
    (cache / "jit_one-abc").write_bytes(b"x" * 300_000)
    (cache / "sub" / "entry").write_bytes(b"y" * 200_000)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"z" * 1000)
    (cache / "link").symlink_to(outside)  # never followed: counted and removed as itself
    info = json.loads(ok(store, "status", "--json").output)
    assert info["jax_cache_bytes"] == 500_000 + os.lstat(cache / "link").st_size
    assert "jax      compile cache 0.5 MB" in ok(store, "status").output
    dry = ok(store, "gc", "--jax-cache", "--dry-run").output.splitlines()
    assert dry[1] == "would remove 3 files (0.5 MB) of the JAX compile cache"
    assert (cache / "sub" / "entry").exists()
    assert ok(store, "gc").output.count("\n") == 1  # without the option, the cache is left
    assert (cache / "jit_one-abc").exists()
    done = ok(store, "gc", "--jax-cache").output.splitlines()
    assert done[1] == "removed 3 files (0.5 MB) of the JAX compile cache"
    assert cache.is_dir() and list(cache.iterdir()) == [] and outside.read_bytes() == b"z" * 1000
    assert "jax      compile cache 0.0 MB" in ok(store, "status").output
    cache.rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_bytes(b"k")
    cache.symlink_to(elsewhere)  # a cache folder that is a link: neither measured nor emptied
    assert json.loads(ok(store, "status", "--json").output)["jax_cache_bytes"] is None
    assert ok(store, "gc", "--jax-cache").output.splitlines()[1].startswith("removed 0 files")
    assert (elsewhere / "keep").exists()
