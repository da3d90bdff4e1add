"""SIGKILL while a run hangs (or at any point): runs that finished before are in the store.

Finished runs reach the database within ``flush_interval`` of finishing,
whatever the next run does: the writer's own clock commits them, not the
sweeping thread's next call. Each script runs in a real subprocess, writes
fsync'd markers (a run started, a run finished, with the monotonic time),
and is killed with SIGKILL at a point the test chooses. The store is then
read as any other process would read it (read-only, no recovery).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60.0  # bound of every wait for the subprocess or the store to reach a point (a loaded machine is slow)

# A run writes "start I" or "end I T" (T: time.monotonic(), for a reader of a failure; no test
# asserts on it), fsync'd, so the test knows what ran whatever the kill cuts short.
COMMON = """
import os, sys, time
import recorder as rec

STORE, MARKS, HANG = sys.argv[1], sys.argv[2], int(sys.argv[3])

def mark(text):
    fd = os.open(MARKS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (text + "\\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)

def step(i):
    if i == HANG:
        mark(f"start {i}")
        time.sleep(600)  # hangs: the test kills the process meanwhile
    return {"y": i * 2}
"""

SCRIPTS = {
    "serial": COMMON
    + """
with rec.Recorder("hang", store=STORE, git=False, flush_interval=0.2) as r:
    r.sweep(step, rec.plist("i", list(range(400))), progress=False, return_df=False)
""",
    "run_loop": COMMON
    + """
with rec.Recorder("hang", store=STORE, git=False, flush_interval=0.2) as r:
    for i in range(400):
        with r.run(i=i) as run:
            run.log(**step(i))
""",
    "pool": COMMON
    + """
def marked(i):
    out = step(i)
    mark(f"end {i} {time.monotonic()}")
    return out

if __name__ == "__main__":
    with rec.Recorder("hang", store=STORE, git=False, flush_interval=0.2) as r:
        r.sweep(marked, rec.plist("i", list(range(40))), workers=2, progress=False, return_df=False)
""",
    "executor": COMMON
    + """
import concurrent.futures as cf

def marked(i):
    out = step(i)
    mark(f"end {i} {time.monotonic()}")
    return out

with rec.Recorder("hang", store=STORE, git=False, flush_interval=0.2) as r, cf.ThreadPoolExecutor(2) as ex:
    r.sweep(marked, rec.plist("i", list(range(40))), executor=ex, progress=False, return_df=False)
""",
}


def _start(tmp_path: Path, code: str, *args: str) -> subprocess.Popen[bytes]:
    script = tmp_path / "script.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own group: workers too
    )


def _marks(path: Path) -> list[list[str]]:
    """The complete marker lines written so far."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [line.split() for line in text.splitlines(keepends=True) if line.endswith("\n")]


def _wait_for(proc: subprocess.Popen[bytes], marks: Path, ready: object) -> list[list[str]]:
    """Wait (at most WAIT s) until ``ready(lines)`` holds for the marker lines; fail if the script ends."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        lines = _marks(marks)
        if ready(lines):  # type: ignore[operator]
            return lines
        if proc.poll() is not None:
            pytest.fail(f"the script ended (code {proc.returncode}): {proc.stderr.read().decode()}")  # type: ignore[union-attr]
        time.sleep(0.01)
    pytest.fail(f"the script did not get there in {WAIT} s; marks: {_marks(marks)[-3:]}")


def _done(store: Path) -> set[int]:
    """The ``i`` of every done run in the store, read as another process would (read-only, no recovery)."""
    path = store / "recorder.sqlite"
    if not path.exists():
        return set()
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute(
            "SELECT json_extract(p.params, '$.i') FROM runs r JOIN psets p ON p.pk = r.pset WHERE r.status = 'done'"
        ).fetchall()
    except sqlite3.OperationalError:  # the schema is not there yet
        return set()
    finally:
        con.close()
    return {int(i) for (i,) in rows}


def _wait_for_store(store: Path, expected: set[int]) -> set[int]:
    """Poll the store (at most WAIT s) until every run of ``expected`` is done in it.

    The script is hung meanwhile (or still sweeping), so what shows up was committed by the
    writer's own flush, not by the end of the sweep; how soon is not asserted (a shared
    machine can delay the flush thread by seconds).
    """
    deadline = time.monotonic() + WAIT
    while True:
        done = _done(store)
        if expected <= done or time.monotonic() > deadline:
            return done
        time.sleep(0.02)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the script and every process it started (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.stderr is not None
    proc.stderr.close()


@pytest.mark.parametrize("mode", ["serial", "run_loop"])
def test_sigkill_while_a_run_hangs_keeps_every_run_before_it(tmp_path: Path, mode: str) -> None:
    """400 psets, pset 300 hangs: killed once it has hung a while, the 300 finished runs are in the store."""
    store, marks = tmp_path / "store", tmp_path / "marks"
    proc = _start(tmp_path, SCRIPTS[mode], str(store), str(marks), "300")
    try:
        _wait_for(proc, marks, lambda lines: ["start", "300"] in lines)
        # Runs 0..299 ended before run 300 started: within flush_interval they are committed.
        _wait_for_store(store, set(range(300)))
    finally:
        _kill(proc)
    done = _done(store)
    assert len(done) >= 300 and set(range(300)) <= done, f"{len(done)} of 300 finished runs in the store"


@pytest.mark.parametrize("mode", ["pool", "executor"])
def test_sigkill_while_a_worker_hangs_keeps_every_finished_run(tmp_path: Path, mode: str) -> None:
    """40 psets on 2 workers, pset 5 hangs: the 39 others finish on the other worker and are all in the store."""
    store, marks = tmp_path / "store", tmp_path / "marks"
    proc = _start(tmp_path, SCRIPTS[mode], str(store), str(marks), "5")
    try:
        lines = _wait_for(
            proc, marks, lambda lines: ["start", "5"] in lines and sum(line[0] == "end" for line in lines) == 39
        )
        finished = {int(line[1]) for line in lines if line[0] == "end"}
        _wait_for_store(store, finished)
    finally:
        _kill(proc)
    done = _done(store)
    assert finished <= done, f"finished but not in the store: {sorted(finished - done)}"


RANDOM = """
import os, sys, time, random
import recorder as rec

STORE, MARKS, SEED = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(MARKS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
rng = random.Random(SEED)
# Mostly short runs, now and then one longer than the flush interval (a kill often lands in one).
pauses = [rng.choice([0.0, 0.001, 0.002, 0.005] * 2 + [1.5]) for _ in range(2000)]

def step(i):
    time.sleep(pauses[i])
    os.write(fd, f"end {i} {time.monotonic()}\\n".encode())
    os.fsync(fd)
    return {"y": i}

with rec.Recorder("random", store=STORE, git=False, flush_interval=0.2) as r:
    r.sweep(step, rec.plist("i", list(range(2000))), progress=False, return_df=False)
"""


@pytest.mark.slow  # runs of 1.5 s now and then, by design
@pytest.mark.parametrize("trial", range(4))
def test_sigkill_at_a_random_point_of_a_serial_sweep(tmp_path: Path, trial: int) -> None:
    """A SIGKILL at a random point of a sweep keeps every run the writer had committed, and shows none unfinished.

    No clock is asserted on: the runs that had finished at the chosen point must reach the store
    while the sweep goes on (bounded by WAIT), then the kill lands mid-sweep.
    """
    rng = random.Random(1234 + trial)
    store, marks = tmp_path / "store", tmp_path / "marks"
    proc = _start(tmp_path, RANDOM, str(store), str(marks), str(trial))
    try:
        after = rng.randrange(5, 30)
        _wait_for(proc, marks, lambda lines: len(lines) >= after)
        time.sleep(rng.uniform(0.0, 1.5))  # a random point; the sweep goes on meanwhile
        finished = {int(line[1]) for line in _marks(marks)}
        committed = _wait_for_store(store, finished)
        assert finished <= committed, f"{len(finished - committed)} finished runs never reached the store mid-sweep"
        assert proc.poll() is None, "the sweep ended: the kill would not land mid-sweep"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        _kill(proc)
    done = _done(store)
    ended = {int(line[1]) for line in _marks(marks)}
    assert finished <= done, f"{len(finished - done)} of {len(finished)} committed runs lost by the kill"
    assert done <= ended, f"recorded done but never finished: {sorted(done - ended)}"
