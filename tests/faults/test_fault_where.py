"""Where a run ran survives a SIGKILL: runs replayed from a dead session's journal keep their process id.

A real child process records runs with ``with r.run()`` (committed only
every 60 s, so they are in its journal alone), says so through an fsync'd
marker, and is killed with SIGKILL. The next opening replays the journal:
each run has the child's pid, no host of its own and no position in a
sweep. A journal of the format before schema 7 (lines of 14 items, no
host, pid or position) still replays, its runs' pid unknown.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

import recorder as rec

CHILD = r"""
import os, sys, time
import recorder as rec

store, ready = sys.argv[1], sys.argv[2]
with rec.Recorder("where", store=store, git=False, flush_interval=60) as r:
    for i in range(3):
        with r.run(i=i) as run:
            run.log(y=i)
    fd = os.open(ready, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, str(os.getpid()).encode())
    os.fsync(fd)  # read after the SIGKILL
    os.close(fd)
    time.sleep(600)  # killed here
"""


def killed_child(tmp_path: Path, store: Path) -> int:
    """Run the child until its three runs are journaled, SIGKILL it; return its pid."""
    script, ready = tmp_path / "child.py", tmp_path / "ready"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store), str(ready)], cwd=ROOT, env=env, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while not ready.exists() or not ready.read_text():
        if proc.poll() is not None:
            raise AssertionError(f"the child ended early ({proc.returncode}): {proc.stderr.read().decode()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the child never journaled its runs")
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc.stderr.close()
    assert int(ready.read_text()) == proc.pid
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)  # in the journal only
    finally:
        conn.close()
    return proc.pid


def journal_lines(store: Path) -> tuple[Path, list[list[object]]]:
    (path,) = (store / "locks").glob("*.journal.*")
    content = path.read_bytes().rstrip(b"\0")
    return path, [json.loads(line) for line in content.split(b"\n")[:-1]]


def replayed(store: Path) -> list[tuple[object, ...]]:
    """``(i, host, pid, pset_seq)`` of each run, once the next opening has replayed the journal."""
    import pandas as pd

    with rec.open(store) as db:
        df = db.df("where", status=None).sort_values("i")
        rows = list(zip(df["i"], df["_exec_host"], df["_exec_pid"].astype(object), df["_pset_seq"].astype(object)))
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        assert conn.execute("SELECT count(*) FROM runs WHERE host IS NOT NULL").fetchone() == (0,)
    finally:
        conn.close()
    return [tuple(None if v is pd.NA else v for v in row) for row in rows]


def test_replayed_runs_keep_the_pid_of_the_killed_process(tmp_path: Path) -> None:
    store = tmp_path / "store"
    pid = killed_child(tmp_path, store)
    _, lines = journal_lines(store)
    assert [line[14:] for line in lines] == [[None, pid, None]] * 3  # as journaled: no host, the pid, no sweep
    host = socket.gethostname()
    assert replayed(store) == [(0, host, pid, None), (1, host, pid, None), (2, host, pid, None)]
    assert pid != os.getpid()  # not the pid of the process that replayed them


@pytest.mark.parametrize("items", [12, 14])
def test_a_journal_written_before_schema_7_still_replays(tmp_path: Path, items: int) -> None:
    store = tmp_path / "store"
    killed_child(tmp_path, store)
    path, lines = journal_lines(store)
    path.write_bytes(b"".join(json.dumps(line[:items]).encode() + b"\n" for line in lines) + b"\0" * 4096)
    host = socket.gethostname()
    # Every run recovered; where it ran is unknown beyond its session's host.
    assert replayed(store) == [(0, host, None, None), (1, host, None, None), (2, host, None, None)]
