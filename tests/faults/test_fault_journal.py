"""Fault injection on the session journal: SIGKILL at chosen points, corrupted journal lines, a full disk, fork.

A real child process records runs with ``with r.run()`` and, after each
block exits, appends ``<i> <run id>`` to an fsync'd marker file: the runs
listed there had finished when the child was killed, so each must be in
the store, done, with its results, after the next opening. The child says
it reached the chosen kill point by creating a ``ready`` marker, then
sleeps until it is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import ROOT

import recorder as rec
from recorder.errors import RecorderWarning
from recorder.store.folder import Store

CHILD = r"""
import json, os, sqlite3, sys, time, warnings
import numpy as np
import recorder as rec

store, markers, n, interval, point = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]


def mark(name, text):
    fd = os.open(os.path.join(markers, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, text.encode())
    os.fsync(fd)  # the test reads it after a SIGKILL
    os.close(fd)


def log(run, i):
    run.log(y=i, s=f"text {i}", b=bytes([i % 256]) * 3)
    run.log(comment=f"comment {i}", z=i * 0.5)
    if i % 5 == 0:
        run.log(arr=np.arange(20_000, dtype=np.float64) + i)  # beyond the inline limit: objects/


def wait(point):
    mark("ready", json.dumps(point))
    time.sleep(600)  # killed here


if point == "small":  # a few small runs, then the session ends normally
    with rec.Recorder("faults", store=store, git=False, flush_interval=interval) as r:
        warnings.showwarning = lambda message, *args, **kwargs: mark("warnings", f"{message}\n")
        for i in range(n):
            with r.run(i=i) as run:
                run.log(y=i)
            mark("finished", f"{i} {run.id}\n")
    sys.exit(0)

with rec.Recorder("faults", store=store, git=False, flush_interval=interval) as r:
    for i in range(n):
        with r.run(i=i) as run:
            log(run, i)
        mark("finished", f"{i} {run.id}\n")
    if point == "after":
        wait({})
    if point == "fork":
        pid = os.fork()
        if pid == 0:
            time.sleep(600)  # a child that outlives its parent (a pool worker, a daemon)
            os._exit(0)
        wait({"child": pid})
    if point == "disk":  # 1 MB results until the disk is full
        noted = []

        def note(message, category, *args, **kwargs):
            noted.append(message)
            mark("warnings", f"{i} {message}\n")

        warnings.showwarning = note
        i = after = 0
        while after < 2:  # the run the journal could not take, and one more
            with r.run(i=i) as run:
                run.log(s="x" * 1_000_000)
            mark("finished", f"{i} {run.id}\n")
            after += bool(noted)
            i += 1
        sys.exit(0)  # the session's end commits the runs: the disk has no room for them
    with r.run(i=n) as run:  # the run in flight when killed
        log(run, n)
        if point == "inside-row":  # once the writer has given it a 'running' row
            con = sqlite3.connect(f"file:{store}/recorder.sqlite?mode=ro", uri=True)
            deadline = time.time() + 60
            while time.time() < deadline:
                row = con.execute("SELECT status FROM runs WHERE lower(hex(id)) = ?", (run.id,)).fetchone()
                if row == ("running",):
                    break
                time.sleep(0.01)
            con.close()
        wait({"in_flight": run.id})
"""


def start(tmp_path: Path, store: Path, n: int, interval: float, point: str, **popen: object) -> subprocess.Popen[bytes]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    markers = tmp_path / "markers"
    markers.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, str(script), str(store), str(markers), str(n), str(interval), point],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **popen,  # type: ignore[arg-type]
    )


def wait_ready(proc: subprocess.Popen[bytes], tmp_path: Path, timeout: float = 60) -> dict:
    """Wait for the child to reach its kill point; return what it said there."""
    ready = tmp_path / "markers" / "ready"
    deadline = time.monotonic() + timeout
    while not ready.exists() or not ready.read_text():
        if proc.poll() is not None:
            raise AssertionError(f"the child ended early ({proc.returncode}): {proc.stderr.read().decode()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the child never reached its kill point")
        time.sleep(0.01)
    return json.loads(ready.read_text())


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc.stderr.close()


def finished(tmp_path: Path) -> dict[str, int]:
    """The runs the child had finished (run id → i), from its fsync'd markers."""
    path = tmp_path / "markers" / "finished"
    lines = path.read_text().splitlines() if path.exists() else []
    return {run_id: int(i) for i, run_id in (line.split() for line in lines)}


def db(store: Path) -> sqlite3.Connection:
    return sqlite3.connect(store / "recorder.sqlite")


def statuses(store: Path) -> dict[str, str]:
    return dict(db(store).execute("SELECT lower(hex(id)), status FROM runs"))


def check_finished_runs(store: Path, done: dict[str, int]) -> None:
    """Every finished run is in the store, done, with all its results and their comments."""
    import numpy as np

    state = statuses(store)
    lost = [run_id for run_id in done if state.get(run_id) != "done"]
    assert lost == [], f"{len(lost)} of {len(done)} finished runs lost or not done: {lost}"
    con = db(store)
    with rec.open(store) as opened:
        for run_id, i in done.items():
            pk, _ = opened.run_key(run_id)
            params = con.execute("SELECT p.params FROM runs r JOIN psets p ON p.pk = r.pset WHERE r.pk = ?", (pk,))
            assert json.loads(params.fetchone()[0]) == {"i": i}
            got = {name: opened.result(run_id, name) for name in ("y", "s", "b", "z")}
            assert got == {"y": i, "s": f"text {i}", "b": bytes([i % 256]) * 3, "z": i * 0.5}
            comment = con.execute(
                "SELECT c.text FROM results s JOIN comments c ON c.pk = s.comment WHERE s.run = ? AND s.name = 'z'",
                (pk,),
            ).fetchone()
            assert comment == (f"comment {i}",)
            if i % 5 == 0:
                assert np.array_equal(opened.array(run_id, "arr"), np.arange(20_000, dtype=np.float64) + i)
            else:
                with pytest.raises(rec.RecorderError, match="no result 'arr'"):
                    opened.result(run_id, "arr")


def dead_session(tmp_path: Path, store: Path, n: int, interval: float = 60.0, point: str = "after") -> dict:
    """Record ``n`` runs in a child process and SIGKILL it at ``point``; return what the child said there."""
    proc = start(tmp_path, store, n, interval, point)
    said = wait_ready(proc, tmp_path)
    kill(proc)
    assert db(store).execute("SELECT status FROM sessions ORDER BY pk DESC").fetchone() == ("running",)
    return said


# -- SIGKILL at chosen points of a `with r.run()` loop ------------------------------------------------------


@pytest.mark.parametrize(
    "n, interval, point",
    [
        (12, 60.0, "after"),  # every finished run only in the journal
        (30, 0.02, "after"),  # some committed, the last ones only in the journal
        (30, 0.02, "after"),
        (8, 0.02, "inside-row"),  # a run in flight with its 'running' row
        (0, 0.02, "inside-row"),  # the first run in flight
        (8, 60.0, "inside"),  # a run in flight without a row yet
    ],
)
def test_sigkill_in_a_run_loop_loses_no_finished_run(
    tmp_path: Path, store: Path, n: int, interval: float, point: str
) -> None:
    said = dead_session(tmp_path, store, n, interval, point)
    done = finished(tmp_path)
    assert len(done) == n

    Store.open(store).close()  # the next opening recovers the dead session

    check_finished_runs(store, done)
    state = statuses(store)
    in_flight = said.get("in_flight")
    if point == "inside-row":
        assert state.pop(in_flight) == "interrupted"
    else:
        state.pop(in_flight, None)  # without a row, a run in flight leaves nothing
    assert set(state) == set(done)  # nothing else, nothing twice
    assert db(store).execute("SELECT status, time_end IS NOT NULL FROM sessions").fetchone() == ("interrupted", 1)
    assert list((store / "locks").iterdir()) == []
    before = db(store).execute("SELECT count(*) FROM results").fetchone()
    Store.open(store).close()  # a second opening changes nothing
    assert db(store).execute("SELECT count(*) FROM results").fetchone() == before


# -- fork: a child that outlives its killed parent does not keep the session alive (14.10) --------------------


@pytest.fixture
def children() -> Iterator[list[int]]:
    """Pids of grandchildren a test must kill when it ends."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_forked_child_does_not_keep_its_killed_parents_session_alive(
    tmp_path: Path, store: Path, children: list[int]
) -> None:
    said = dead_session(tmp_path, store, 6, 60.0, "fork")
    child = said["child"]
    children.append(child)
    os.kill(child, 0)  # the forked child still lives
    done = finished(tmp_path)

    Store.open(store).close()

    os.kill(child, 0)  # still alive: recovery did not wait for it
    assert db(store).execute("SELECT status FROM sessions").fetchone() == ("interrupted",)
    check_finished_runs(store, done)
    assert list((store / "locks").iterdir()) == []


# -- corrupted journal lines (13.4) ------------------------------------------------------------------------------


def test_bad_journal_lines_of_a_killed_session_are_reported_and_the_store_opens(tmp_path: Path, store: Path) -> None:
    """A killed session's journal with bad lines: the good ones are replayed, each bad one is reported by line."""
    from click.testing import CliRunner

    from recorder.cli.commands import main

    # Another session, alive, with a run in flight that has its 'running' row.
    other = rec.Recorder("other", store=store, git=False, flush_interval=0.02).open()
    try:
        with other.run(k=1) as in_flight:
            deadline = time.monotonic() + 30
            while statuses(store).get(in_flight.id) != "running":
                assert time.monotonic() < deadline, "the run in flight never got its row"
                time.sleep(0.01)
            dead_session(tmp_path, store, 8, 60.0, "after")  # 8 finished runs, in the journal only
            done = finished(tmp_path)
            ids = list(done)

            (path,) = [p for p in (store / "locks").glob("*.journal.*") if not p.name.startswith(other.id)]
            lines = path.read_bytes().rstrip(b"\0").split(b"\n")[:-1]
            assert len(lines) == 8
            lines[2] = lines[2].replace(ids[2].encode(), b"zz-not-hex")
            record = json.loads(lines[4])
            record[9][0][0] = "y\x00"  # a result name holding a NUL
            lines[4] = json.dumps(record).encode()
            lines[5] = lines[5].replace(ids[5].encode(), in_flight.id.encode())  # another session's run
            lines.append(b"\xff\xfe garbage \x00")
            path.write_bytes(b"\n".join(lines) + b"\n" + lines[0][:40])  # and a last line cut short

            with pytest.warns(RecorderWarning) as caught:
                rec.open(store).close()  # recovers the dead session
            reported = [str(w.message) for w in caught if issubclass(w.category, RecorderWarning)]
            assert any(f"line 3 of the journal {path}" in m and "zz-not-hex" in m for m in reported), reported
            assert any(f"line 5 of the journal {path}" in m and "control character" in m for m in reported), reported
            assert any(in_flight.id in m and "another session" in m for m in reported), reported
            assert any(f"line 9 of the journal {path}" in m for m in reported), reported
            assert len(reported) == 4, reported

            good = {run_id: i for run_id, i in done.items() if i not in (2, 4, 5)}
            check_finished_runs(store, good)
            state = statuses(store)
            assert state.pop(in_flight.id) == "running"  # untouched: its session is alive
            assert set(state) == set(good)
            assert db(store).execute("SELECT status FROM sessions ORDER BY pk").fetchall() == [
                ("running",),
                ("interrupted",),
            ]
            for command in (["status"], ["verify"], ["log"]):
                result = CliRunner().invoke(main, ["--store", str(store), *command])
                assert result.exit_code == 0, (command, result.output)
    finally:
        other.close()
    assert statuses(store)[in_flight.id] == "done"
    assert list((store / "locks").iterdir()) == []


# -- the function and rerun_of of journaled runs (schema 5) ----------------------------------------------------


def test_a_killed_sessions_journal_replays_function_and_rerun_of_and_drops_an_unknown_function(
    tmp_path: Path, store: Path
) -> None:
    """Lines carry a run's function key and rerun_of; one naming no function row replays without it; old lines too."""
    dead_session(tmp_path, store, 4, 60.0, "after")  # 4 finished runs, in the journal only
    ids = list(finished(tmp_path))
    conn = db(store)
    conn.execute("INSERT INTO functions (pk, module, qualname, path, how) VALUES (1, 'm', 'f', 'm.py', 'import')")
    conn.commit()
    conn.close()
    (path,) = (store / "locks").glob("*.journal.*")
    lines = path.read_bytes().rstrip(b"\0").split(b"\n")[:-1]
    records = [json.loads(line) for line in lines]
    records[0][12] = 1  # a function the store has
    records[1][12] = 999  # a function the store does not have (a crafted line): replayed without it
    records[2][13] = ids[0]  # a rerun of the first run
    records[3] = records[3][:12]  # a line as recorder wrote it before schema 5
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records))

    Store.open(store).close()  # recovers the dead session

    rows = dict(
        (i.hex(), (function, rerun_of.hex() if rerun_of else None))
        for i, function, rerun_of in db(store).execute("SELECT id, function, rerun_of FROM runs")
    )
    assert rows == {ids[0]: (1, None), ids[1]: (None, None), ids[2]: (None, ids[0]), ids[3]: (None, None)}


# -- a full disk (13.3) ----------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[str], tuple[Path, dict]]]:
    """Make a folder on a file system of a given size (``"20m"``), and say how to start a child there.

    A real tmpfs when this process may mount one (root), else the child's
    files are limited to that size with ``RLIMIT_FSIZE``.
    """
    mounted: list[Path] = []

    def make(size: str) -> tuple[Path, dict]:
        folder = tmp_path / f"small-{size}"
        folder.mkdir()
        if os.geteuid() == 0 and shutil.which("mount"):
            command = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]
            done = subprocess.run(command, capture_output=True)
            if done.returncode == 0:
                mounted.append(folder)
                return folder, {}
        import resource

        limit = int(size[:-1]) << {"k": 10, "m": 20}[size[-1]]

        def limited() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        return folder, {"preexec_fn": limited}

    try:
        yield make
    finally:
        for folder in mounted:
            subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_full_disk_is_an_error_not_a_crash(tmp_path: Path, small_disk: Callable[[str], tuple[Path, dict]]) -> None:
    """Runs of 1 MB each, all journaled (nothing committed before the end), until the disk is full.

    The journal is a memory map: without its space reserved first, the page
    that hits the full disk kills the process with SIGBUS.
    """
    folder, popen = small_disk("20m")
    store = folder / "store"
    proc = start(tmp_path, store, 0, 60.0, "disk", **popen)
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    err_text = err.decode()
    assert proc.returncode in (0, 1), f"ended by signal {-proc.returncode}" if proc.returncode < 0 else err_text
    # The journal could not take a run: a warning names it and the cause, and recording went on.
    noted = (tmp_path / "markers" / "warnings").read_text()
    assert "JournalError" not in noted and "cannot be kept in the journal" in noted, noted
    assert "full" in noted or "size limit" in noted, noted
    unsafe_from = int(noted.split()[0])  # the first run the journal could not take
    run_id = noted.split("run ")[1].split()[0]
    done = finished(tmp_path)
    assert done[run_id] == unsafe_from
    assert unsafe_from > 3 and len(done) == unsafe_from + 2
    if proc.returncode == 0:  # the database could take the runs (each file limited, not the disk)
        Store.open(store).close()
        assert statuses(store) == dict.fromkeys(done, "done")
        assert list((store / "locks").iterdir()) == []  # the journal the session gave up is removed
        return
    # The end of the session could not commit the runs: one line, a recorder error naming the cause.
    last = err_text.strip().splitlines()[-1]
    assert last.startswith("recorder.errors.StoreError") and "full" in last, err_text

    # The store is opened where there is room (the files of the dead session copied as they are).
    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    Store.open(copy).close()
    state = statuses(copy)
    journaled = {run_id for run_id, i in done.items() if i < unsafe_from}
    assert {r for r, s in state.items() if s == "done"} == journaled  # every run journaled is back
    with rec.open(copy) as opened:
        for run_id in journaled:
            assert opened.result(run_id, "s") == "x" * 1_000_000
    assert list((copy / "locks").iterdir()) == []


def test_a_disk_too_full_for_the_journal_records_without_it(
    tmp_path: Path, small_disk: Callable[[str], tuple[Path, dict]]
) -> None:
    """Room for the database but not for the journal's first file: the session records, warned, without it."""
    folder, popen = small_disk("700k")
    store = folder / "store"
    proc = start(tmp_path, store, 5, 0.05, "small", **popen)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    done = finished(tmp_path)
    assert len(done) == 5
    (noted,) = (tmp_path / "markers" / "warnings").read_text().splitlines()
    first = next(iter(done))
    assert f"run {first} cannot be kept in the journal" in noted and ("full" in noted or "size limit" in noted), noted
    assert statuses(store) == dict.fromkeys(done, "done")
    assert list((store / "locks").iterdir()) == []
