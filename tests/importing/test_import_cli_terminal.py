"""``recorder import`` as a user types it: the installed console script on a pseudo-terminal."""

from __future__ import annotations

import errno
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import recorder as rec

pytestmark = pytest.mark.skipif(not hasattr(os, "openpty") or sys.platform == "win32", reason="needs a pty")

ROOT = Path(__file__).resolve().parents[2]

STUDY = """
import psweep as ps
ps.run(lambda pset: {"y_": pset["a"] * 2.0}, ps.plist("a", [1, 2, 3]))
"""


def on_terminal(*args: str, cwd: Path, timeout: float = 120.0) -> tuple[int, str]:
    """Run ``recorder ARGS`` with a new pseudo-terminal as stdin, stdout and stderr; its exit status and output."""
    here = os.path.dirname(sys.executable)
    exe = shutil.which("recorder", path=here + os.pathsep + os.environ.get("PATH", ""))
    if exe is None:
        pytest.skip("no installed `recorder` executable")
    master, slave = os.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color"}
    process = subprocess.Popen([exe, *args], cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                process.send_signal(signal.SIGKILL)
                process.wait()
                pytest.fail(f"`recorder {' '.join(args)}` did not end within {timeout} s")
            ready, _, _ = select.select([master], [], [], min(left, 1.0))
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError as e:  # EIO: the process ended and closed its end
                if e.errno != errno.EIO:
                    raise
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    return process.wait(timeout=timeout), b"".join(chunks).decode("utf-8", errors="replace")


def test_the_console_script_imports_a_psweep_study_and_says_what_went_where(tmp_path: Path) -> None:
    pytest.importorskip("psweep")
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "study.py").write_text(STUDY)
    subprocess.run([sys.executable, str(tmp_path / "study.py")], cwd=project, check=True, capture_output=True)
    status, text = on_terminal("import", "psweep", "calc", "--into", "store", cwd=project)
    assert status == 0, text
    assert "Traceback" not in text
    assert f"imported psweep study {project / 'calc' / 'database.pk'} into {project / 'store'}" in text
    assert "mapped: psweep columns a -> parameters (psets)" in text
    assert "runs: 3 read, 3 imported, 0 already there, 0 failed in the source" in text
    assert rec.open(project / "store").df("calc")["y_"].tolist() == [2.0, 4.0, 6.0]
    status, text = on_terminal("import", "psweep", "calc", "--into", "store", cwd=project)
    assert status == 0 and "3 read, 0 imported, 3 already there" in text


def test_the_console_script_refuses_a_pickle_of_something_else_in_one_line(tmp_path: Path) -> None:
    pd.Series([1, 2]).to_pickle(tmp_path / "database.pk")
    status, text = on_terminal("import", "psweep", "database.pk", "--into", "store", cwd=tmp_path)
    assert status == 15
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("recorder: error: ")
    assert "unpickles to a pandas.Series, not a pandas DataFrame" in lines[0]
    assert not (tmp_path / "store").exists()
