"""Ctrl-C and SIGTERM during a batched pool sweep: every run that finished is recorded, none is lost with its batch.

Each worker runs a batch of 10 runs (``batch_size=10``) and holds in its
fourth run until stopped; the three runs before it have finished, but
their outcomes are still in the worker (they go back with the batch, and
the script turns off the early sending of a long batch's runs, so only the
stop can bring them back). Each run writes fsync'd markers (its start, its
end); the test signals the sweeping process once both workers hold, then
checks the store: every run that ended is ``done``, the held ones are
``interrupted``, the ones that never started are not recorded.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HELD = {3, 13}

SWEEP = """
import os, sys, time
import recorder as rec
import recorder.sweep.pool

recorder.sweep.pool._EARLY_S = 3600.0  # a long batch sends nothing early: only the stop brings its runs back

store, marks = sys.argv[1], sys.argv[2]

def mark(name):
    fd = os.open(os.path.join(marks, name), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    os.write(fd, str(os.getpid()).encode())
    os.fsync(fd)
    os.close(fd)

def work(i):
    mark(f"start-{i}")
    if i in (3, 13):
        time.sleep(120)  # held until the sweep is stopped
    mark(f"end-{i}")
    return {"sq": i * i}

if __name__ == "__main__":
    with rec.Recorder("batched", store=store, git=False) as r:
        r.sweep(work, rec.plist("i", range(40)), workers=2, batch_size=10)
"""


def _marked(marks: Path, kind: str) -> set[int]:
    return {int(p.name.split("-", 1)[1]) for p in marks.glob(f"{kind}-*")}


def _wait(condition, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "SIGINT to the group"])
def test_stopping_a_batched_pool_sweep_keeps_every_finished_run(tmp_path: Path, how: str) -> None:
    store, marks, script = tmp_path / "store", tmp_path / "marks", tmp_path / "sweep.py"
    marks.mkdir()
    script.write_text(SWEEP)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store), str(marks)],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group: a terminal's Ctrl-C reaches the workers too
    )
    try:
        _wait(
            lambda: _marked(marks, "start") >= HELD and _marked(marks, "end") >= {0, 1, 2, 10, 11, 12},
            "both workers to hold in their batches",
        )
        assert proc.poll() is None
        if how == "SIGTERM":
            os.kill(proc.pid, signal.SIGTERM)
        elif how == "SIGINT":
            os.kill(proc.pid, signal.SIGINT)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.stderr is not None
        errors = proc.stderr.read()
        proc.stderr.close()
    if how == "SIGTERM":
        assert code == 128 + signal.SIGTERM, errors
    else:
        assert code in (-signal.SIGINT, 128 + signal.SIGINT, 1), errors
    workers = {int(text) for p in marks.iterdir() if (text := p.read_text())}  # one may be half-written
    _wait(lambda: not any(_alive(pid) for pid in workers), "the pool's workers to exit", timeout=30)

    started, ended = _marked(marks, "start"), _marked(marks, "end")
    assert {0, 1, 2, 10, 11, 12} <= ended and started >= HELD
    if how != "SIGINT to the group":
        # The workers were told to start no run before they were interrupted: nothing else ran.
        assert ended == {0, 1, 2, 10, 11, 12} and started == ended | HELD
    with sqlite3.connect(store / "recorder.sqlite") as conn:
        statuses = dict(
            conn.execute(
                "SELECT json_extract(p.params, '$.i'), r.status FROM runs r JOIN psets p ON p.pk = r.pset"
            ).fetchall()
        )
        squares = dict(
            conn.execute(
                "SELECT json_extract(p.params, '$.i'), res.value FROM results_all res JOIN runs r ON r.pk = res.run "
                "JOIN psets p ON p.pk = r.pset WHERE res.name = 'sq'"
            ).fetchall()
        )
        session = conn.execute("SELECT status FROM sessions").fetchone()[0]
    # Finished in the workers, their outcomes still in the batches when the stop came: all recorded done.
    finished = {0, 1, 2, 10, 11, 12}
    assert {i: statuses.get(i) for i in finished | HELD} == {
        **{i: "done" for i in finished},
        **{i: "interrupted" for i in HELD},
    }, errors
    # A terminal's Ctrl-C reaches the workers before the sweeping process stops them: a worker whose
    # batch it ended may start the next one meanwhile; that run is cut (interrupted), or ends (done).
    later = set(statuses) - finished - HELD
    assert later <= started - finished - HELD
    assert all(statuses[i] == "interrupted" for i in later - ended)
    assert all(statuses[i] in ("done", "interrupted") for i in later)
    if how != "SIGINT to the group":
        assert not later
    assert {i: squares[i] for i in finished} == {i: i * i for i in finished}
    assert set(squares) == {i for i, status in statuses.items() if status == "done"}
    assert session == "interrupted"


HUNG = """
import concurrent.futures as cf
import os, sys, time
import recorder as rec

store, marks, how = sys.argv[1], sys.argv[2], sys.argv[3]

def mark(name):
    fd = os.open(os.path.join(marks, name), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    os.write(fd, str(os.getpid()).encode())
    os.fsync(fd)
    os.close(fd)

def work(i):
    mark(f"start-{i}")
    if i == 3:
        time.sleep(600)  # hangs: the test kills the sweep meanwhile
    mark(f"end-{i}")
    return {"sq": i * i}

if __name__ == "__main__":
    with rec.Recorder("hung", store=store, git=False, flush_interval=0.2) as r:
        if how == "pool":
            r.sweep(work, rec.plist("i", range(20)), workers=2, batch_size=10)
        else:
            with cf.ThreadPoolExecutor(2) as executor:
                r.sweep(work, rec.plist("i", range(20)), executor=executor, batch_size=10)
"""


def _done(store: Path) -> set[int]:
    """The ``i`` of every done run in the store, read as another process would (read-only)."""
    path = store / "recorder.sqlite"
    if not path.exists():
        return set()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute(
            "SELECT json_extract(p.params, '$.i') FROM runs r JOIN psets p ON p.pk = r.pset WHERE r.status = 'done'"
        ).fetchall()
    except sqlite3.OperationalError:  # the schema is not there yet
        return set()
    finally:
        conn.close()
    return {int(i) for (i,) in rows}


@pytest.mark.parametrize("how", ["pool", "threads"])
def test_a_hung_run_holds_back_no_finished_run_of_its_batch(tmp_path: Path, how: str) -> None:
    """Runs 0-2 finish, run 3 of the same batch hangs: 0-2 reach the store while it hangs (sent early)."""
    store, marks, script = tmp_path / "store", tmp_path / "marks", tmp_path / "hung.py"
    marks.mkdir()
    script.write_text(HUNG)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store), str(marks), how],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait(lambda: {0, 1, 2} <= _marked(marks, "end") and 3 in _marked(marks, "start"), "run 3 to hang")
        # The other worker ran the second batch meanwhile; the first is held in its fourth run.
        _wait(lambda: {0, 1, 2} <= _done(store), "the finished runs of the hung batch to reach the store")
        assert proc.poll() is None, "the sweep ended: run 3 did not hang"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert 3 not in _done(store)
