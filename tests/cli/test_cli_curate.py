"""`recorder tag`, `untag`, `note`, `rm`, `restore`, `purge`, and `log --tag/--deleted/--curation`, `runs --tag`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from click.testing import CliRunner, Result
from conftest import scalar

import recorder as rec
from recorder.cli.commands import main

EXP = "exp"


def cli(store: Path, *args: str, **kwargs: Any) -> Result:
    return CliRunner().invoke(main, ["--store", str(store), *args], **kwargs)


def ok(store: Path, *args: str, **kwargs: Any) -> str:
    result = cli(store, *args, **kwargs)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def error(store: Path, code: int, *args: str) -> str:
    result = cli(store, *args)
    assert result.exit_code == code, (result.output, result.exception)
    assert result.stdout == "" and result.stderr.startswith("recorder: error: ")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    return result.stderr


def record(store: Path, n: int = 5) -> list[str]:
    with rec.Recorder(EXP, store=store, git=False) as r:
        for i in range(n):
            with r.run(a=i) as run:
                run.log(y=float(i), arr=np.arange(20_000, dtype=np.float64) + i)
    return [json.loads(line)["short_id"] for line in ok(store, "log", "--json").splitlines()][::-1]


def log_ids(store: Path, *args: str) -> list[str]:
    return [json.loads(line)["short_id"] for line in ok(store, "log", "--json", *args).splitlines()]


def test_the_bar_on_the_command_line(store: Path) -> None:
    ids = record(store)
    assert "ok" in ok(store, "verify")
    assert "tagged 2 runs" in ok(store, "tag", "good", "-r", ids[0], "-r", ids[1])
    assert sorted(log_ids(store, "--tag", "good")) == sorted(ids[:2])
    assert "deleted 1 run" in ok(store, "rm", ids[4])
    assert "ok" in ok(store, "verify")
    assert len(ok(store, "runs", EXP, "--json").splitlines()) == 4
    assert log_ids(store, "--deleted") == [ids[4]]
    assert "restored 1 run" in ok(store, "restore", ids[4])
    assert len(log_ids(store)) == 5
    assert "ok" in ok(store, "verify")
    ok(store, "rm", ids[4])
    out = ok(store, "purge")
    assert out.startswith("removed 1 run and 1 array files")
    assert scalar(store, "SELECT count(*) FROM runs") == 4
    assert "ok" in ok(store, "verify")


def test_tag_by_where_dry_run_counts_and_changes_nothing(store: Path) -> None:
    record(store)
    assert ok(store, "tag", "late", "-e", EXP, "--where", "a >= 3", "--dry-run").startswith("would tag 2 runs")
    assert scalar(store, "SELECT count(*) FROM run_tags") == 0
    assert "tagged 2 runs" in ok(store, "tag", "late", "x", "-e", EXP, "--where", "a >= 3")
    rows = [json.loads(line) for line in ok(store, "runs", EXP, "--tag", "late", "--json").splitlines()]
    assert [r["tags"] for r in rows] == [["late", "x"], ["late", "x"]]
    table = ok(store, "runs", EXP)
    assert "tags" in table.splitlines()[0] and "late,x" in table
    assert "untagged 2 runs" in ok(store, "untag", "x", "-e", EXP, "--where", "a >= 3")


def test_a_where_matching_nothing_says_so_and_exits_0(store: Path) -> None:
    record(store, 2)
    assert ok(store, "tag", "t", "-e", EXP, "--where", "a > 100").startswith("no run matched in experiment exp")
    assert ok(store, "rm", "-e", EXP, "--where", "a > 100").startswith("no run matched")


def test_a_where_matching_everything_needs_all(store: Path) -> None:
    record(store, 2)
    assert "--all" in error(store, 14, "tag", "t", "-e", EXP, "--where", "a >= 0")
    assert "tagged 2 runs" in ok(store, "tag", "t", "-e", EXP, "--where", "a >= 0", "--all")


def test_rm_of_an_experiment_asks_for_confirmation_unless_yes(store: Path) -> None:
    record(store, 3)
    result = cli(store, "rm", "-e", EXP, "--all", input="n\n")
    assert result.exit_code == 1 and "delete 3 runs of exp?" in result.output
    assert scalar(store, "SELECT count(*) FROM runs WHERE deleted IS NOT NULL") == 0
    assert "deleted 3 runs" in ok(store, "rm", "-e", EXP, "--all", input="y\n")
    assert "restored 3 runs" in ok(store, "restore", "-e", EXP, "--all")
    assert "deleted 3 runs" in ok(store, "rm", "-e", EXP, "--all", "--yes")


def test_bad_input_is_one_line_and_changes_nothing(store: Path) -> None:
    ids = record(store, 2)
    assert "space or comma" in error(store, 6, "tag", "a b", "-r", ids[0])
    assert "space or comma" in error(store, 6, "tag", "a,b", "-r", ids[0])
    error(store, 6, "tag", "a\x01", "-r", ids[0])
    assert "no run" in error(store, 4, "tag", "good", "-r", "ffffffffffff")
    result = cli(store, "note", "-", "-r", ids[0], input="x" * (1 << 20))
    assert result.exit_code == 6 and "64 KiB" in result.stderr
    assert scalar(store, "SELECT count(*) FROM curation_events") == 0


def test_note_is_shown_by_show_log_and_runs(store: Path) -> None:
    ids = record(store, 1)
    ok(store, "note", "first", "-r", ids[0])
    ok(store, "note", "overfits", "-r", ids[0])
    shown = ok(store, "show", ids[0])
    assert "first" in shown and "overfits" in shown
    assert "note     overfits" in ok(store, "log")
    assert "overfits" in ok(store, "runs", EXP)


def test_log_curation_lists_the_events(store: Path) -> None:
    ids = record(store, 2)
    ok(store, "tag", "good", "-r", ids[0])
    ok(store, "rm", ids[1])
    lines = ok(store, "log", "--curation").splitlines()
    assert "rm" in lines[0] and "tag" in lines[1] and "good" in lines[1]
    events = [json.loads(line) for line in ok(store, "log", "--curation", "--json").splitlines()]
    assert [e["action"] for e in events] == ["rm", "tag"]


def test_purge_dry_run_and_older_than(store: Path) -> None:
    ids = record(store, 2)
    ok(store, "rm", ids[0])
    assert ok(store, "purge", "--dry-run").startswith("would remove 1 run and 1 array files")
    assert ok(store, "purge", "--older-than", "30d").startswith("removed 0 runs")
    assert scalar(store, "SELECT count(*) FROM runs") == 2
    assert cli(store, "purge", "--older-than", "soon").exit_code == 2


def test_every_curation_command_has_help() -> None:
    for command in ("tag", "untag", "note", "rm", "restore", "purge"):
        result = CliRunner().invoke(main, [command, "--help"])
        assert result.exit_code == 0 and len(result.output) > 200
