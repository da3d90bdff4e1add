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


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(example: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    done = subprocess.run(
        [sys.executable, str(example), str(store)], capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "RECORDER_STORE": str(store)}, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    con = sqlite3.connect(store / "recorder.sqlite")
    assert con.execute("SELECT count(*) FROM runs WHERE status = 'done'").fetchone()[0] > 0


def test_quickstart_prints_what_it_recorded(tmp_path: Path) -> None:
    store = tmp_path / "qs"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), str(store)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("recorded session ")
    assert sum('"a":' in line and "done" in line and "energy=" in line for line in lines) == 4
    assert "4 arrays in objects/" in done.stdout
    con = sqlite3.connect(store / "recorder.sqlite")
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 4
    assert len(list((store / "objects").glob("*/*.npy"))) == 4
