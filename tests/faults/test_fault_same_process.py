"""A process that records and also reads its store keeps SQLite's locks: its commits stay in the live WAL.

Closing any descriptor of a file drops every POSIX lock the process holds
on it, SQLite's included. If opening a store read a few bytes of
``recorder.sqlite`` with a plain ``open()``, a session in the same process
would lose its locks; another process closing its connection would then
take the database for unused, checkpoint it and delete the ``-wal`` the
session still writes to, and every later commit of that session would be
lost on a crash (and invisible to readers until the session closed).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

SESSION = r"""
import sys
import recorder as rec

store = sys.argv[1]
with rec.Recorder("e", store=store, git=False) as r:
    with r.run(a=1) as run:
        run.log(y=1.0)
    r.flush()
    with rec.open(store) as db:  # a read of its own store, in the recording process
        assert len(db.df("e")) == 1
    rec.Store.open(store).close()  # and an opening for writing
    print("opened", flush=True)
    sys.stdin.readline()  # another process connects and disconnects meanwhile
    with r.run(a=2) as run:
        run.log(y=2.0)
    r.flush()
    print("flushed", flush=True)
    sys.stdin.readline()  # killed here
"""


def test_a_session_keeps_its_wal_when_its_process_reads_the_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SESSION, str(store)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "opened"
        other = sqlite3.connect(store / "recorder.sqlite")  # a plain client: Datasette, the sqlite3 shell
        assert other.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
        other.close()  # were the session's locks gone, this would checkpoint and delete its -wal
        assert (store / "recorder.sqlite-wal").exists()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "flushed"
        reader = sqlite3.connect(f"file:{store / 'recorder.sqlite'}?mode=ro", uri=True)
        assert reader.execute("SELECT count(*) FROM runs WHERE status = 'done'").fetchone()[0] == 2  # visible now
        reader.close()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    conn = sqlite3.connect(store / "recorder.sqlite")
    assert conn.execute("SELECT count(*) FROM runs WHERE status = 'done'").fetchone()[0] == 2
    conn.close()
