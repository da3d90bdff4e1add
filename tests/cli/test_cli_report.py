"""`recorder report`: one HTML file that opens offline; its options, its errors, and the missing extra."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

import recorder as rec
from recorder.cli.commands import main

pytest.importorskip("plotly", reason="the report needs plotly: pip install 'recorder[report]'")

ROOT = Path(__file__).resolve().parents[2]


def cli(store: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--store", str(store), *args])


def record(store: Path) -> None:
    """A 3 × 2 grid of runs (a, b) with two results and an array; one run failed."""
    with rec.Recorder("exp", store=store, git=False) as r:
        for a in (0.1, 0.2, 0.3):
            for b in (8, 9):
                with r.run(a=a, b=b) as run:
                    run.log(energy=a * b, loss=a - b, traj=np.linspace(0, a, 20))
        with pytest.raises(ValueError), r.run(a=0.4, b=8):
            raise ValueError("diverged")


def console(*args: str, cwd: Path, block: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the command line in a fresh interpreter with this worktree's recorder; ``block`` made unimportable."""
    prelude = f"import sys; sys.modules[{block!r}] = None\n" if block else ""
    return subprocess.run(
        [sys.executable, "-c", prelude + "from recorder.cli.commands import main; main()", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_report_writes_one_offline_file_with_every_name(tmp_path: Path) -> None:
    """The bar: no http(s) script or stylesheet source; every parameter and result name is in the file."""
    store = tmp_path / "store"
    record(store)
    done = console("--store", str(store), "report", "exp", "-o", "r.html", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    size = len(text.encode()) / 1e6
    assert done.stdout == f"wrote r.html ({size:.1f} MB): 7 runs of exp\n"
    sources = re.findall(r"<(?:script|link)\b[^>]*(?:src|href)\s*=[^>]*>", text, flags=re.IGNORECASE)
    assert not [s for s in sources if re.search(r"https?:|//", s)]
    assert "<script src" not in text and "<link" not in text
    for name in ("a", "b", "energy", "loss"):
        assert f'"label":"{name}"' in text.replace(" ", ""), name  # an axis of the parallel coordinates
        assert f'"{name}"' in text
    assert "Array traj" not in text  # arrays only with --array


def test_report_default_file_and_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    record(store)
    monkeypatch.chdir(tmp_path)
    result = cli(store, "report", "exp", "--color", "loss", "--array", "traj", "-n", "2", "--where", "b = 9")
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.output.startswith("wrote report.html (") and result.output.endswith(": 3 runs of exp\n")
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "(those where <code>b = 9</code>)" in text
    assert "Coloured by <code>loss</code>" in text
    assert '"title":{"text":"traj of 2 runs"}' in text


def test_report_notes_what_it_summarised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from recorder.read import report as report_module

    store = tmp_path / "store"
    record(store)
    monkeypatch.setattr(report_module, "TABLE_MAX_RUNS", 4)
    result = cli(store, "report", "exp", "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == [
        "  The table holds the newest 4 of 7 runs; recorder export writes them all to a file."
    ]


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["report", "nope"], 4, "no experiment 'nope'"),
        (["report", "exp", "--color", "traj"], 1, "cannot colour by 'traj'"),
        (["report", "exp", "--array", "energy"], 1, "no array result 'energy'"),
        (["report", "exp", "--where", "nonsense ="], 1, "cannot select runs where"),
    ],
)
def test_report_errors_are_one_line(tmp_path: Path, args: list[str], code: int, fragment: str) -> None:
    store = tmp_path / "store"
    record(store)
    result = cli(store, *args, "-o", str(tmp_path / "r.html"))
    assert result.exit_code == code, (result.output, result.exception)
    lines = result.stderr.rstrip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("recorder: error: ") and fragment in lines[0], result.stderr
    assert not (tmp_path / "r.html").exists()


def test_without_plotly_report_says_how_to_install_it(tmp_path: Path) -> None:
    """plotly unimportable (None in sys.modules): one line naming the extra, exit 12 (ExtraNotInstalled)."""
    store = tmp_path / "store"
    record(store)
    done = console("--store", str(store), "report", "exp", "-o", "r.html", cwd=tmp_path, block="plotly")
    assert done.returncode == rec.ExtraNotInstalled.exit_code == 12
    assert done.stdout == ""
    assert done.stderr == (
        "recorder: error: recorder report needs plotly, which is not installed: pip install 'recorder[report]'\n"
    )
    assert not (tmp_path / "r.html").exists()


def test_the_report_extra_is_declared() -> None:
    """pyproject's report extra holds what the report and db.plot import."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    extra = re.search(r"^report = \[(.*?)\]", text, flags=re.MULTILINE | re.DOTALL)
    assert extra is not None
    assert "plotly" in extra.group(1) and "matplotlib" in extra.group(1)
