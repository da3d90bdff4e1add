"""Purge while another process's sweep is recording into the store: refused, store unchanged; then it works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import scalar

import recorder as rec
from recorder.cli.commands import main

# A sweep in another process: it writes a marker once its session is recording, then waits for a go file.
SWEEP = """
import os, sys, time
from pathlib import Path
import recorder as rec
store, marker, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

def model(a):
    if not marker.exists():
        fd = os.open(marker, os.O_CREAT | os.O_WRONLY)
        os.fsync(fd)
        os.close(fd)
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return {"y": a * 2.0}

with rec.Recorder("exp", store=store, git=False) as r:
    r.sweep(model, rec.plist("a", [100]), progress=False)
"""


def test_purge_is_refused_while_a_sweep_of_another_process_records(store: Path, tmp_path: Path) -> None:
    with rec.Recorder("exp", store=store, git=False) as r:
        for i in range(2):
            with r.run(a=i) as run:
                run.log(arr=np.arange(20_000, dtype=np.float64) + i)
    with rec.open(store) as db:
        ids = list(db.df("exp")._run_id)
    rec.rm(ids[0], store=store)
    marker, go = tmp_path / "recording", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(Path(rec.__file__).resolve().parents[1])}
    child = subprocess.Popen(
        [sys.executable, "-c", SWEEP, str(store), str(marker), str(go)], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "the sweep never started"
            time.sleep(0.01)
        with pytest.raises(rec.SessionRecording, match="recording"):
            rec.purge(store)
        result = CliRunner().invoke(main, ["--store", str(store), "purge"])
        assert result.exit_code == rec.SessionRecording.exit_code and "recording" in result.stderr
        assert scalar(store, "SELECT count(*) FROM runs WHERE deleted IS NOT NULL") == 1
        go.touch()
        assert child.wait(timeout=60) == 0, child.stderr.read() if child.stderr else ""
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
    assert rec.purge(store).runs == 1
    assert scalar(store, "SELECT count(*) FROM runs") == 2  # the two left: a=1 and the sweep's a=100
