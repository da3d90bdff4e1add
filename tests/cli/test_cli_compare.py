"""`recorder compare`: a table of the runs with the columns that differ, the constant ones on one line; --json."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

import recorder as rec
from recorder.cli.commands import main

ROOT = Path(__file__).resolve().parents[2]


def cli(store: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--store", str(store), *args])


def ok(store: Path, *args: str) -> Result:
    result = cli(store, *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def assert_error(result: Result, *fragments: str, code: int) -> str:
    """One line on stderr starting 'recorder: error:', nothing on stdout, exit ``code``, no traceback."""
    assert result.exit_code == code, (result.output, result.exception)
    assert result.stdout == ""
    lines = result.stderr.rstrip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("recorder: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def record(store: Path) -> dict[str, Any]:
    """Three runs of lorenz differing in a and energy; a run of a second session with another dt; a failed run."""
    ids = []
    with rec.Recorder("lorenz", store=store, git=False, config={"dt": 0.01}) as r:
        for a in (0.1, 0.2, 0.3):
            with r.run(a=a, b=8) as run:
                run.log(energy=a * 10, traj=np.arange(30000.0))
            ids.append(run.id)
        failing = r.run(a=0.4, b=8)
        with pytest.raises(ValueError), failing:
            raise ValueError("diverged")
    with rec.Recorder("lorenz", store=store, git=False, config={"dt": 0.02}) as r, r.run(a=0.1, b=8) as run:
        run.log(energy=1.0, traj=np.arange(30000.0))
    with rec.open(store) as db:
        shorts = [db.short_id(i) for i in [*ids, failing.id, run.id]]
    return {"three": ids, "failed": failing.id, "other_dt": run.id, "shorts": shorts}


@pytest.fixture
def recorded(store: Path) -> dict[str, Any]:
    return record(store)


def dump(store: Path) -> list[str]:
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_three_runs_show_only_the_differing_columns(store: Path, recorded: dict[str, Any]) -> None:
    lines = ok(store, "compare", *recorded["three"]).output.splitlines()
    assert lines[0].startswith("3 runs; constant: experiment=lorenz, status=done, param.b=8, config.dt=0.01, ")
    assert "result.traj=array <f8 (30000,) " in lines[0] and "env.python=" in lines[0]
    assert lines[1].startswith("packages: ") and "of the same version in every run" in lines[1]
    assert lines[2].split() == ["run", "param.a", "result.energy"]
    rows = [line.split() for line in lines[3:]]
    assert rows == [[s, repr(a), repr(a * 10)] for s, a in zip(recorded["shorts"], (0.1, 0.2, 0.3))]


def test_all_shows_every_column(store: Path, recorded: dict[str, Any]) -> None:
    lines = ok(store, "compare", *recorded["three"], "--all").output.splitlines()
    header = lines[2].split()
    assert header[:5] == ["run", "experiment", "status", "param.a", "param.b"]
    assert {"config.dt", "result.energy", "result.traj", "code.env_sha", "env.python", "env.host"} <= set(header)
    assert len(lines) == 6


def test_json_parses(store: Path, recorded: dict[str, Any]) -> None:
    document = json.loads(ok(store, "compare", *recorded["three"], "--json").output)
    assert document["columns"] == ["param.a", "result.energy"]
    assert document["constant"]["param.b"] == 8 and document["constant"]["config.dt"] == 0.01
    assert document["constant"]["result.traj"]["array"]["shape"] == [30000]
    assert document["same_packages"] > 0
    assert [run["run_id"] for run in document["runs"]] == recorded["three"]
    assert [run["short_id"] for run in document["runs"]] == recorded["shorts"][:3]
    assert [run["param.a"] for run in document["runs"]] == [0.1, 0.2, 0.3]
    assert set(document["runs"][0]) == {"run_id", "short_id", "param.a", "result.energy"}
    every = json.loads(ok(store, "compare", *recorded["three"], "--json", "--all").output)
    assert "param.b" in every["columns"] and every["runs"][0]["param.b"] == 8


def test_sessions_with_different_config(store: Path, recorded: dict[str, Any]) -> None:
    lines = ok(store, "compare", recorded["three"][0], recorded["other_dt"]).output.splitlines()
    header = lines[2].split()
    assert "config.dt" in header and "param.a" not in header
    assert lines[3].split()[header.index("config.dt")] == "0.01"
    assert lines[4].split()[header.index("config.dt")] == "0.02"


def test_an_experiment_with_where_and_a_failed_run(store: Path, recorded: dict[str, Any]) -> None:
    document = json.loads(ok(store, "compare", "--experiment", "lorenz", "--json").output)
    assert len(document["runs"]) == 5
    assert {"status", "error", "config.dt"} <= set(document["columns"])
    failed = next(run for run in document["runs"] if run["run_id"] == recorded["failed"])
    assert failed["status"] == "failed" and failed["error"] == "ValueError: diverged"
    assert "result.energy" not in failed  # the failed run has no such result
    text = ok(store, "compare", "-e", "lorenz", "--where", "a > 0.15 AND a < 0.35").output
    assert text.splitlines()[2].split() == ["run", "param.a", "result.energy"]
    picked = json.loads(ok(store, "compare", "-e", "lorenz", "--status", "failed", "--json").output)
    assert [run["run_id"] for run in picked["runs"]] == [recorded["failed"]]
    assert picked["columns"] == [] and picked["constant"]["status"] == "failed"
    first = json.loads(ok(store, "compare", "-e", "lorenz", "-n", "2", "--json").output)
    assert [run["run_id"] for run in first["runs"]] == recorded["three"][:2]


def test_unknown_run_is_exit_4(store: Path, recorded: dict[str, Any]) -> None:
    unknown = "f" * 24 if not any(i.startswith("f") for i in recorded["three"]) else "0" * 24
    assert_error(cli(store, "compare", recorded["three"][0], unknown), "no run", unknown, code=4)
    assert_error(cli(store, "compare", "-e", "nosuch"), "no experiment", code=4)


def test_ambiguous_prefix_is_exit_5(store: Path, recorded: dict[str, Any]) -> None:
    common = os.path.commonprefix(recorded["three"])  # noqa: RUF071 (ids: a character prefix)
    assert 1 <= len(common) < 24
    assert_error(cli(store, "compare", recorded["three"][0], common), "ambiguous", code=5)


@pytest.mark.parametrize("where", ["1); DROP TABLE runs; --", "a = 1; DELETE FROM psets", "a = 1) OR (1"])
def test_a_hostile_where_is_harmless(store: Path, recorded: dict[str, Any], where: str) -> None:
    before = dump(store)
    result = cli(store, "compare", "--experiment", "lorenz", "--where", where, "--json")
    if result.exit_code == 0:  # accepted: then it only narrowed the runs of lorenz
        runs = json.loads(result.output)["runs"]
        assert {run["run_id"] for run in runs} <= {*recorded["three"], recorded["failed"], recorded["other_dt"]}
    else:
        assert_error(result, "cannot select runs where", code=1)
    assert dump(store) == before


def test_usage_errors(store: Path, recorded: dict[str, Any]) -> None:
    for args in (
        [],
        [recorded["three"][0]],
        [*recorded["three"], "--experiment", "lorenz"],
        [*recorded["three"], "--where", "a > 0"],
    ):
        result = cli(store, "compare", *args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output


def test_too_many_runs_need_a_limit(store: Path, recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from recorder.read import compare as compare_module

    monkeypatch.setattr(compare_module, "MAX_RUNS", 3)
    assert_error(cli(store, "compare", "-e", "lorenz"), "more than 3 runs", "--limit", code=1)
    assert len(json.loads(ok(store, "compare", "-e", "lorenz", "--limit", "3", "--json").output)["runs"]) == 3


def test_console_script_as_a_whole_process(store: Path, recorded: dict[str, Any]) -> None:
    """The installed `recorder` script, this checkout on PYTHONPATH: --json parses; an unknown run is exit 4."""
    exe = Path(sys.executable).with_name("recorder")
    if not exe.exists():
        pytest.skip("no installed `recorder` executable")
    done = subprocess.run(
        [str(exe), "--store", str(store), "compare", *recorded["three"], "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["columns"] == ["param.a", "result.energy"]
    unknown = "f" * 24 if not any(i.startswith("f") for i in recorded["three"]) else "0" * 24
    missing = subprocess.run(
        [str(exe), "--store", str(store), "compare", recorded["three"][0], unknown],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert missing.returncode == 4 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and missing.stderr.startswith("recorder: error: no run")


def test_long_values_are_cut_in_the_table_whole_in_json(store: Path) -> None:
    ids = []
    with rec.Recorder("words", store=store, git=False) as r:
        for letter in "ab":
            with r.run(word=letter * 100) as run:
                run.log(n=1)
            ids.append(run.id)
    lines = ok(store, "compare", *ids).output.splitlines()
    assert lines[-1].split()[1] == "'" + "b" * 58 + "…"
    assert [run["param.word"] for run in json.loads(ok(store, "compare", *ids, "--json").output)["runs"]] == [
        "a" * 100,
        "b" * 100,
    ]


def test_a_missing_value_is_a_dash(store: Path, recorded: dict[str, Any]) -> None:
    lines = ok(store, "compare", recorded["three"][0], recorded["failed"]).output.splitlines()
    header = lines[2].split()
    failed = lines[4].split()
    assert failed[0] == recorded["shorts"][3]
    assert failed[header.index("status")] == "failed"
    assert lines[4].rstrip().endswith("-")  # its result.energy and result.traj: none
    assert header[-2:] == ["result.energy", "result.traj"]
