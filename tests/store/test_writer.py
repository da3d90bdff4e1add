"""The writer's own clock: finished runs reach the database within flush_interval, whatever comes next.

(Killed processes are in ``tests/faults/test_fault_sweep.py``.)
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

import recorder as rec

WAIT = 10.0  # bound of a wait for something due within flush_interval (a loaded machine is slow)


def _count(store: Path, status: str) -> int:
    """Runs of ``status`` in the store, read by another connection (what another process sees)."""
    con = sqlite3.connect(f"file:{store / 'recorder.sqlite'}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute("SELECT count(*) FROM runs WHERE status = ?", (status,)).fetchone()[0]
    finally:
        con.close()


def _until(store: Path, status: str, count: int) -> int:
    """Wait (at most WAIT s) until the store has ``count`` runs of ``status``; return how many it has."""
    deadline = time.monotonic() + WAIT
    while (seen := _count(store, status)) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return seen


def test_a_long_run_does_not_hold_back_the_runs_of_a_serial_sweep_before_it(store: Path) -> None:
    """While run 50 runs, the 50 before are committed and run 50 shows as running (no next call needed)."""
    seen: list[tuple[int, int]] = []

    def step(i: int) -> dict[str, int]:
        if i == 50:  # a long run: it looks at the store from the inside, then ends
            seen.append((_until(store, "done", 50), _until(store, "running", 1)))
        return {"y": i}

    with rec.Recorder("long", store=store, git=False, flush_interval=0.2) as r:
        r.sweep(step, rec.plist("i", list(range(60))), progress=False, return_df=False)
    assert seen == [(50, 1)]
    assert _count(store, "done") == 60 and _count(store, "running") == 0


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")  # JAX's, once a test imported it
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_cannot_commit_its_parents_runs(store: Path) -> None:
    """The queue a child inherits is its parent's: the child's flush is refused, the parent commits each run once."""
    with rec.Recorder("forked", store=store, git=False, flush_interval=60) as r:
        r.sweep(lambda i: {"y": i}, rec.plist("i", [0, 1]), progress=False)  # the writer's thread runs
        for i in range(5):  # queued, not committed for a minute
            with r.run(i=10 + i) as run:
                run.log(y=i)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: tell the parent what its flush did, and leave without cleaning up
            try:
                try:
                    r.flush()
                    said = b"flushed"
                except rec.errors.RecorderError as e:
                    said = b"refused: " + str(e).encode()
                os.write(write, said)
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            said = pipe.read().decode()
        os.waitpid(pid, 0)
        assert said.startswith("refused: the session belongs to the process that opened it"), said
    assert _count(store, "done") == 7


def test_a_slow_chunk_does_not_hold_back_the_runs_of_a_vsweep_before_it(store: Path) -> None:
    """While the third chunk computes, the runs recorded before are committed.

    Those are the first chunk's at least: the second is recorded once the
    third is dispatched, which on a CPU may compute it there and then.
    """
    jax = pytest.importorskip("jax")
    import numpy as np

    seen: list[int] = []

    def wait_in_third_chunk(a: np.ndarray) -> np.ndarray:
        if 25.0 in a:  # the chunk of psets 20..29: it looks at the store from the inside, then ends
            seen.append(_until(store, "done", 10))
        return np.asarray(a * 2, dtype=np.float32)

    def model(a: float) -> dict[str, object]:
        shape = jax.ShapeDtypeStruct(jax.numpy.shape(a), jax.numpy.float32)
        return {"y": jax.pure_callback(wait_in_third_chunk, shape, a, vmap_method="broadcast_all")}

    with rec.Recorder("slow_chunk", store=store, git=False, flush_interval=0.2) as r:
        r.vsweep(model, rec.plist("a", [float(i) for i in range(30)]), chunk_size=10, progress=False)
    assert len(seen) == 1 and seen[0] >= 10
    assert _count(store, "done") == 30


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")  # JAX's, once a test imported it
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_fork_waits_for_the_background_thread_to_end_and_the_parent_gets_a_new_one(store: Path) -> None:
    """No thread of the writer runs while the process forks (a pool's workers); the clock goes on after."""
    with rec.Recorder("forked", store=store, git=False, flush_interval=0.2) as r:
        r.sweep(lambda i: {"y": i}, rec.plist("i", [0, 1]), progress=False)
        writer = r.writing().writer
        assert writer is not None
        before = writer._thread
        assert before is not None and before.is_alive()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        assert not before.is_alive()  # it ended before the fork (it would run on in the parent otherwise)
        after = writer._thread
        assert after is not None and after is not before and after.is_alive()
        with r.run(i=5) as run:  # committed by the new thread, within the interval
            run.log(y=5)
        assert _until(store, "done", 3) == 3
