"""Faults of the store itself: read-only folders, full disks, damaged pages, foreign files, many writers.

Processes are real and killed with real signals; a crashed session is one
whose process got SIGKILL after an fsync'd marker said what it had
recorded. Read-only folders are read-only bind mounts (root) or modes
(anyone else); full disks are a small tmpfs (root only, else skipped).
Every wait has a timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import ROOT, read_only_view

import recorder as rec
from recorder.cli.commands import main
from recorder.errors import ForeignStoreError, RecorderWarning, RecoveryError
from recorder.store.folder import Store

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # subprocesses import this checkout's recorder


def cli(store: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--store", str(store), *args])


def wait_for(path: Path, process: subprocess.Popen[str] | None = None, timeout: float = 60) -> None:
    """Wait until ``path`` exists (failing early if ``process`` ends first)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"the child ended ({process.returncode}): {process.stderr.read() if process.stderr else ''}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.01)


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for a folder)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


# -- a crashed session --------------------------------------------------------------------

CRASH = """
import os, sys, time
import recorder as rec
store, marker = sys.argv[1], sys.argv[2]
r = rec.Recorder("crash", store=store, git=False, flush_interval=60)
r.open()
for a in range(5):
    with r.run(a=a) as run:
        run.log(y=a * 1.5)
r.flush()                       # these five are committed
for a in range(5, 8):
    with r.run(a=a) as run:     # these three are only in the journal
        run.log(y=a * 1.5)
r.run(a=99).__enter__()         # and this one is in flight
with open(marker, "w") as f:
    f.write("ready")
    f.flush()
    os.fsync(f.fileno())
time.sleep(120)
"""


def crash_a_session(store: Path, tmp: Path) -> None:
    """Record into ``store`` from a process killed with SIGKILL: 5 runs committed, 3 journaled, 1 in flight."""
    script = tmp / "crash.py"
    script.write_text(CRASH)
    marker = tmp / "crash.ready"
    child = subprocess.Popen(
        [sys.executable, str(script), str(store), str(marker)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(marker, child)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL


def assert_recovered(store: Path) -> None:
    """Opening for writing replayed the journal: 8 done runs, the session interrupted."""
    Store.open(store).close()
    with rec.open(store) as db:
        assert sorted(db.df("crash")["a"]) == list(range(8))
        assert db.rows("SELECT status FROM sessions")[1] == [("interrupted",)]


def assert_reads_without_recovering(store: Path) -> None:
    """rec.open, log, status and sql work and show the committed runs and the session left running."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecorderWarning)
        with rec.open(store) as db:
            assert db.df("crash")["y"].tolist() == [0.0, 1.5, 3.0, 4.5, 6.0]
            assert db.rows("SELECT status FROM sessions")[1] == [("running",)]
    for command in (["log", "--oneline"], ["status"], ["sql", "SELECT a FROM crash WHERE status = 'done' ORDER BY a"]):
        result = cli(store, *command)
        assert result.exit_code == 0, (command, result.output, result.exception)
        assert "Traceback" not in result.output
        assert all(
            line.startswith("recorder: warning: reading without recovering") for line in result.stderr.splitlines()
        ), result.stderr  # one line, if any
    assert len(cli(store, "log", "--oneline", "--status", "done").stdout.splitlines()) == 5
    assert cli(store, "sql", "--csv", "SELECT a FROM crash WHERE status = 'done' ORDER BY a").stdout.split() == [
        "a",
        "0",
        "1",
        "2",
        "3",
        "4",
    ]
    assert "crash" in cli(store, "status").stdout


def test_a_crashed_store_in_a_read_only_folder_is_read_and_recovered_later(tmp_path: Path) -> None:
    store = tmp_path / "store"
    crash_a_session(store, tmp_path)
    before = tree(store)
    with read_only_view(store, tmp_path / "ro") as ro:
        assert not os.access(ro, os.W_OK)
        assert_reads_without_recovering(ro)
    assert tree(store) == before  # nothing was (or could be) written
    assert_recovered(store)


@contextlib.contextmanager
def small_disk(at: Path, size: str = "8m") -> Iterator[Path]:
    """A small tmpfs at ``at`` (root only; skips otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    at.mkdir()
    if (
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(at)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield at
    finally:
        subprocess.run(["umount", "-l", str(at)], capture_output=True, check=False)


def fill(disk: Path) -> Path:
    """Fill the file system of ``disk`` to the last byte; return the filler file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 20, 1 << 12, 1):
            block = b"\0" * size
            while True:
                try:
                    os.write(fd, block)
                except OSError:
                    break
    finally:
        os.close(fd)
    return filler


def test_a_crashed_store_on_a_full_disk_is_read_and_recovered_later(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        store = disk / "store"
        crash_a_session(store, tmp_path)
        filler = fill(disk)
        with pytest.raises(OSError):
            (disk / "probe").write_bytes(b"x" * 4096)
        with pytest.warns(RecorderWarning, match="reading without recovering"):
            rec.open(store).close()
        assert_reads_without_recovering(store)
        filler.unlink()
        assert_recovered(store)


# -- damaged database pages -----------------------------------------------------------------


def test_damaged_database_pages_give_a_clear_error_and_destroy_nothing(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with rec.Recorder("e", store=store, git=False) as r:
        for a in range(400):
            with r.run(a=a, label="x" * 40) as run:
                run.log(y=a * 0.5, z=f"result {a}" * 4)
    db_path = store / "recorder.sqlite"
    page = sqlite3.connect(db_path).execute("PRAGMA page_size").fetchone()[0]
    pages = db_path.stat().st_size // page
    assert pages > 8
    with db_path.open("r+b") as f:  # the pages in the middle: tables and indexes of runs and results
        for number in range(pages // 2 - 2, pages // 2 + 2):
            f.seek(number * page)
            f.write(bytes([0xA5]) * page)
    before = tree(store)
    with pytest.raises(rec.StoreError) as damaged:  # on opening, or on reading the damaged pages
        with rec.open(store) as db:
            db.rows("SELECT * FROM runs")
            db.rows("SELECT * FROM results")
            db.rows("SELECT * FROM psets")
    message = str(damaged.value)
    assert "\n" not in message and str(store) in message and "malformed" in message, message
    assert "damaged: restore it from a copy" in message
    with pytest.raises(rec.RecorderError) as damaged:
        with rec.open(store) as db:
            db.df("e")
    assert "\n" not in str(damaged.value) and "malformed" in str(damaged.value)
    for command in (["log"], ["status"], ["sql", "SELECT * FROM results"], ["verify"]):
        result = cli(store, *command)
        assert result.exit_code != 0, (command, result.output)
        assert "Traceback" not in result.output, (command, result.output)
        assert result.stderr.startswith("recorder: error: ") or command == ["verify"], (command, result.stderr)
    assert tree(store) == before  # reading a damaged store changed nothing, removed nothing


def test_a_damaged_sessions_table_is_an_error_on_opening_not_a_recovery_left_for_later(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with rec.Recorder("e", store=store, git=False) as r, r.run(a=1) as run:
        run.log(y=1)
    db_path = store / "recorder.sqlite"
    conn = sqlite3.connect(db_path)
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    roots = [r for (r,) in conn.execute("SELECT rootpage FROM sqlite_schema WHERE tbl_name = 'sessions' AND rootpage")]
    conn.close()
    with db_path.open("r+b") as f:  # the table and its indexes, whichever the query reads
        for root in roots:
            f.seek((root - 1) * page)
            f.write(bytes([0xA5]) * page)
    before = tree(store)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecorderWarning)  # a damaged store is not "recover later"
        with pytest.raises(rec.StoreError, match="damaged") as damaged:
            rec.open(store)
    assert not isinstance(damaged.value, RecoveryError)
    result = cli(store, "log")
    assert result.exit_code == 1 and "damaged" in result.stderr and "Traceback" not in result.output
    assert tree(store) == before


# -- a foreign SQLite file ----------------------------------------------------------------


def test_a_foreign_file_is_refused_untouched_by_every_process(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    db = sqlite3.connect(store / "recorder.sqlite")
    db.execute("CREATE TABLE runs (id)")  # looks a little like a store
    db.execute("CREATE TABLE notes (text)")
    db.execute("INSERT INTO notes VALUES ('mine')")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    before = tree(store)
    write = (
        "import recorder as rec, sys\n"
        "with rec.Recorder('e', store=sys.argv[1], git=False) as r, r.run(a=1) as run:\n"
        "    run.log(y=1)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", write, str(store)], env=ENV, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0 and "ForeignStoreError" in done.stderr and "not a recorder store" in done.stderr
    for command in (["log"], ["status"], ["sql", "SELECT 1"], ["verify"], ["gc"]):
        result = cli(store, *command)
        assert result.exit_code == 1 and "not a recorder store" in result.stderr, (command, result.output)
    with pytest.raises(ForeignStoreError):
        rec.open(store)
    assert tree(store) == before


FOREIGN_WAL = """
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA journal_mode = WAL")
db.execute("CREATE TABLE t (x)")
db.commit()
db.execute("PRAGMA wal_autocheckpoint = 0")
db.execute("INSERT INTO t VALUES (1)")
db.commit()
os._exit(0)  # the application died: its last transactions are in the -wal only
"""


@pytest.mark.parametrize("who", ["log", "status", "sql", "rec.open", "Recorder", "Store.open readonly"])
def test_a_foreign_wal_file_with_a_live_wal_is_refused_untouched(tmp_path: Path, who: str) -> None:
    # Closing a read-write connection would checkpoint the other application's -wal into its
    # file and delete the -wal and -shm: the identity is checked on a read-only connection first.
    store = tmp_path / "store"
    store.mkdir()
    db = store / "recorder.sqlite"
    subprocess.run([sys.executable, "-c", FOREIGN_WAL, str(db)], check=True, timeout=60)
    wal = store / "recorder.sqlite-wal"
    assert wal.stat().st_size > 0
    main_before, wal_before = db.read_bytes(), wal.read_bytes()
    names = sorted(p.name for p in store.iterdir())
    if who in ("log", "status", "sql"):
        result = cli(store, *(["sql", "SELECT 1"] if who == "sql" else [who]))
        assert result.exit_code == 1 and "not a recorder store" in result.stderr, result.output
    else:
        with pytest.raises(ForeignStoreError, match="not a recorder store"):
            if who == "rec.open":
                rec.open(store)
            elif who == "Recorder":
                with rec.Recorder("e", store=store, git=False) as r, r.run(a=1) as run:
                    run.log(y=1)
            else:
                Store.open(store, readonly=True)
    # The -shm (SQLite's shared index of the -wal) may get a reader's marks; the data may not change.
    assert db.read_bytes() == main_before
    assert wal.read_bytes() == wal_before
    assert sorted(p.name for p in store.iterdir()) == names  # no objects/, .gitignore; -wal kept
    assert sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True).execute("SELECT x FROM t").fetchall() == [(1,)]


# -- many writers, and a reader meanwhile ---------------------------------------------------

WRITER = """
import os, sys, time
import recorder as rec
store, worker, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
open(go + f".ready{worker}", "w").close()
while not os.path.exists(go):
    time.sleep(0.005)
with rec.Recorder("w", store=store, git=False) as r:
    for i in range(500):
        with r.run(worker=worker, i=i) as run:
            run.log(y=worker * 1000 + i)
"""

READER = """
import os, sys
import recorder as rec
from recorder.read import show as history
store, stop, ready = sys.argv[1], sys.argv[2], sys.argv[3]
last = (0, 0)
first = True
with rec.open(store) as db:
    while True:
        ending = os.path.exists(stop)
        counts = (len(db.df("w")), sum(1 for _ in history.log(db, "w", status="done")))
        if counts[0] < last[0] or counts[1] < last[1]:
            sys.exit(f"counts went down: {last} then {counts}")
        last = counts
        print(*counts, flush=True)
        if first:
            open(ready, "w").close()
            first = False
        if ending:
            break
"""


def test_eight_writers_and_a_reader(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with rec.Recorder("w", store=store, git=False):
        pass  # the experiment exists before the reader looks for it
    go, stop, reader_ready = tmp_path / "go", tmp_path / "stop", tmp_path / "reader.ready"
    (tmp_path / "writer.py").write_text(WRITER)
    (tmp_path / "reader.py").write_text(READER)
    reader = subprocess.Popen(
        [sys.executable, str(tmp_path / "reader.py"), str(store), str(stop), str(reader_ready)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    writers = [
        subprocess.Popen(
            [sys.executable, str(tmp_path / "writer.py"), str(store), str(w), str(go)],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(8)
    ]
    try:
        for w, writer in enumerate(writers):
            wait_for(Path(f"{go}.ready{w}"), writer)
        wait_for(reader_ready, reader)
        go.touch()
        outcomes = [(writer.wait(timeout=240), writer.stderr.read()) for writer in writers]
        stop.touch()
        out, err = reader.communicate(timeout=120)
    finally:
        for process in (*writers, reader):
            if process.poll() is None:
                process.kill()
                process.wait()
        for process in writers:
            process.stdout.close()
            process.stderr.close()
    assert [code for code, _ in outcomes] == [0] * 8, [e for _, e in outcomes]
    assert not any("locked" in e for _, e in outcomes)
    assert reader.returncode == 0, err
    counts = [tuple(map(int, line.split())) for line in out.splitlines()]
    assert counts[-1] == (4000, 4000)  # its last read began after every writer had ended
    assert counts == sorted(counts)
    with rec.open(store) as db:
        df = db.df("w")
        assert len(df) == 4000
        assert set(zip(df["worker"], df["i"])) == {(w, i) for w in range(8) for i in range(500)}
        assert (df["y"] == df["worker"] * 1000 + df["i"]).all()
