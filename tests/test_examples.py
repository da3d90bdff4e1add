"""Every example in examples/ runs, as a new user would run it, against a temp store."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def test_there_are_examples() -> None:
    assert EXAMPLES


@pytest.mark.slow  # whole scripts, each in a fresh interpreter (jax_vsweep compiles)
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(example: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    done = subprocess.run(
        [sys.executable, str(example), str(store)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "RECORDER_STORE": str(store)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    con = sqlite3.connect(store / "recorder.sqlite")
    assert con.execute("SELECT count(*) FROM runs WHERE status = 'done'").fetchone()[0] > 0


def test_quickstart_prints_what_it_recorded(tmp_path: Path) -> None:
    store = tmp_path / "qs"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), str(store)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("recorded session ")
    header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["a", "b", "energy"])
    table = [line.split() for line in lines[header + 1 : header + 5]]
    assert [(row[0], row[1]) for row in table] == [("0.1", "8"), ("0.1", "9"), ("0.2", "8"), ("0.2", "9")]
    assert all(len(row[3]) == 24 and float(row[2]) > 0 for row in table)  # run id, energy
    assert "largest energy at b=8: a=0.2, trajectory of shape (20000, 3)" in done.stdout
    assert "4 of 4 runs done; 4 arrays in objects/" in done.stdout
    con = sqlite3.connect(store / "recorder.sqlite")
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 4
    assert len(list((store / "objects").glob("*/*.npy"))) == 4
