"""The README's set-up section: what its test commands promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_not_slow_leaves_out_the_slow_tests() -> None:
    every = _pytest("--collect-only", "-q", "tests/test_examples.py")
    quick = _pytest("--collect-only", "-q", "-m", "not slow", "tests/test_examples.py")
    assert every.returncode == 0 and quick.returncode in (0, 5), quick.stdout + quick.stderr
    assert "deselected" in quick.stdout and "deselected" not in every.stdout, quick.stdout


def test_the_tests_run_on_workers_and_n0_runs_them_in_one_process() -> None:
    test = "tests/test_setup.py::test_not_slow_leaves_out_the_slow_tests"
    parallel = _pytest("-q", "-n", "2", test)
    single = _pytest("-q", "-n0", test)
    assert parallel.returncode == 0 and single.returncode == 0, parallel.stdout + single.stdout
    assert "bringing up nodes" in parallel.stdout and "bringing up nodes" not in single.stdout, parallel.stdout
    assert "addopts" in (ROOT / "pyproject.toml").read_text() and "-n auto" in (ROOT / "pyproject.toml").read_text()
