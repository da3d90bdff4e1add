"""``recorder runs``: an experiment's runs as a table, CSV or JSON, through click's CliRunner."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import recorder as rec
from recorder.cli.commands import main


def cli(store: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--store", str(store), *args])


def ok(store: Path, *args: str) -> Result:
    result = cli(store, *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.fixture
def ids(store: Path) -> list[str]:
    """lorenz: four done runs (a in 1..2, b in 8..9), a failed one; then a failed one."""
    out = []
    with rec.Recorder("lorenz", store=store, git=False) as r:
        for a in (1, 2):
            for b in (8, 9):
                with r.run(a=a, b=b) as run:
                    run.log(energy=a * b / 3, steps=a * 10)
                out.append(run.id)
        failing = r.run(a=3, b=9)
        with pytest.raises(ValueError), failing:
            raise ValueError("diverged")
        out.append(failing.id)
    return out


def lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_json_lists_params_and_results_per_run(store: Path, ids: list[str]) -> None:
    rows = lines(ok(store, "runs", "lorenz", "--json"))
    assert [r["run_id"] for r in rows] == ids[::-1]
    assert rows[1]["params"] == {"a": 2, "b": 9} and rows[1]["results"] == {"energy": 6.0, "steps": 20}
    assert rows[0]["status"] == "failed" and rows[0]["error"] == "ValueError: diverged"
    assert rows[0]["results"] == {} and rows[0]["short_id"] == ids[-1][-8:]
    assert set(rows[0]) == {
        "run_id",
        "short_id",
        "status",
        "time_start",
        "duration_s",
        "params",
        "results",
        "error",
        "tags",
        "note",
    }
    assert rows[0]["tags"] == [] and rows[0]["note"] is None


def test_json_is_exact(store: Path) -> None:
    with rec.Recorder("exact", store=store, git=False) as r, r.run(x=0.1) as run:
        run.log(y=2 / 3)
    (row,) = lines(ok(store, "runs", "exact", "--json"))
    assert row["results"]["y"] == 2 / 3


def test_table_has_the_columns_numbers_right_aligned(store: Path, ids: list[str]) -> None:
    text = ok(store, "runs", "lorenz").stdout
    header, *rows = text.splitlines()
    assert header.split() == ["run", "status", "start", "duration", "a", "b", "energy", "steps", "error"]
    assert rows[0].startswith(ids[-1][-8:]) and "failed" in rows[0] and rows[0].endswith("ValueError: diverged")
    done = rows[1]  # (2, 9): energy 6.0, steps 20
    assert done.split()[6:9] == ["9", "6", "20"]  # the start is a date and a time
    # right-aligned: the energies end in the same column
    ends = {len(row[: header.index("steps")].rstrip()) for row in rows[1:]}
    assert len(ends) == 1 and [row.split()[7] for row in rows[1:]] == ["6", "5.33333", "3", "2.66667"]


def test_precision(store: Path, ids: list[str]) -> None:
    assert "2.67" in ok(store, "runs", "lorenz", "--precision", "3").stdout
    assert repr(8 / 3) in ok(store, "runs", "lorenz", "--precision", "full").stdout
    assert "2.66667" in ok(store, "runs", "lorenz").stdout
    result = cli(store, "runs", "lorenz", "--precision", "many")
    assert result.exit_code == 2 and "'many' is not a number of digits" in result.output


def test_where_sort_desc_status_limit(store: Path, ids: list[str]) -> None:
    rows = lines(ok(store, "runs", "lorenz", "--json", "--where", "b = 9", "--sort", "energy", "--desc"))
    assert [r["run_id"] for r in rows] == [ids[3], ids[1], ids[4]]  # the failed run has no energy: last
    rows = lines(ok(store, "runs", "lorenz", "--json", "--sort", "energy"))
    assert [r["run_id"] for r in rows] == ids
    rows = lines(ok(store, "runs", "lorenz", "--json", "--status", "failed"))
    assert [r["run_id"] for r in rows] == [ids[4]]
    result = ok(store, "runs", "lorenz", "--json", "-n", "2")
    assert [r["run_id"] for r in lines(result)] == [ids[4], ids[3]]
    assert "showing 2 of 5 runs" in result.stderr
    assert len(lines(ok(store, "runs", "lorenz", "--json", "-n", "0"))) == 5


def test_csv(store: Path, ids: list[str]) -> None:
    rows = list(csv.reader(io.StringIO(ok(store, "runs", "lorenz", "--csv", "--sort", "a").stdout)))
    assert rows[0] == ["run_id", "short_id", "status", "time_start", "duration_s", "a", "b", "energy", "steps", "error"]
    assert rows[1][0] in (ids[0], ids[1]) and rows[1][5] == "1"
    assert rows[-1][2] == "failed" and rows[-1][7] == "" and rows[-1][-1] == "ValueError: diverged"
    assert float(rows[1][7]) in (8 / 3, 3.0)


def test_errors_are_one_line(store: Path, ids: list[str]) -> None:
    result = cli(store, "runs", "lorenz", "--sort", "nope")
    assert result.exit_code == 1 and "cannot sort by 'nope'" in result.output
    result = cli(store, "runs", "lorenz", "--where", "nope = 1")
    assert result.exit_code == 1 and "cannot select runs where" in result.output
    result = cli(store, "runs", "nope")
    assert result.exit_code != 0 and "no experiment 'nope'" in result.output
    result = cli(store, "runs", "lorenz", "--desc")
    assert result.exit_code == 2 and "--sort" in result.output


def test_hostile_values_are_escaped(store: Path) -> None:
    with rec.Recorder("evil", store=store, git=False) as r, r.run(p="\x1b[31mred") as run:
        run.log(note="\x1b]0;pwned\x07\u202e")
    text = ok(store, "runs", "evil").stdout
    assert "\x1b" not in text and "\\x1b" in text and "\u202e" not in text and "\\u202e" in text


def test_help() -> None:
    result = CliRunner().invoke(main, ["runs", "--help"])
    assert result.exit_code == 0 and "--sort" in result.output and "--precision" in result.output
