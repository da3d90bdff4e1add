"""SIGKILL a pooled sweep (workers=2) at chosen points, then rerun it: every pset done once, nothing dangling.

Each run writes fsync'd markers (its start, its return, with its worker's
pid), so the test knows where the sweep is when it kills it; runs from a
chosen pset on hold until killed, so that the point is where the test
wants it. After the kill, the pool's workers must exit on their own (they
watch the sweeping process), the rerun with ``skip="done"`` must complete
the sweep, and the store must have every pset done exactly once, no run
left ``running`` and every array a result refers to on disk and intact.
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

import recorder as rec

ROOT = Path(__file__).resolve().parent.parent.parent
PSETS = 24

SWEEP = """
import os, sys, time
import numpy as np
import recorder as rec

store, marks, hold = sys.argv[1], sys.argv[2], int(sys.argv[3])

def mark(name):
    fd = os.open(os.path.join(marks, name), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    os.write(fd, str(os.getpid()).encode())
    os.fsync(fd)
    os.close(fd)

def work(i):
    mark(f"start-{i}")
    if 0 <= hold <= i:
        time.sleep(120)  # killed before it returns
    curve = np.full(20_000, float(i))  # above the inline limit: the worker writes an object
    mark(f"return-{i}")
    return {"sq": i * i, "curve": curve}

if __name__ == "__main__":
    with rec.Recorder("pooled", store=store, git=False) as r:
        r.sweep(work, rec.plist("i", range({psets})), workers=2, skip="done")
""".replace("{psets}", str(PSETS))  # a script template: its own braces would need doubling in format()


def _wait(condition, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _marked(marks: Path, kind: str) -> set[int]:
    return {int(p.name.split("-", 1)[1]) for p in marks.glob(f"{kind}-*")}


def _workers(marks: Path) -> set[int]:
    return {int(p.read_text()) for p in marks.iterdir() if p.read_text()}


@pytest.mark.parametrize("point", ["no-run-returned", "half-returned", "all-but-one-returned"])
def test_sigkill_a_pooled_sweep_then_rerun(tmp_path: Path, point: str) -> None:
    store, marks, script = tmp_path / "store", tmp_path / "marks", tmp_path / "sweep.py"
    marks.mkdir()
    script.write_text(SWEEP)
    hold, returned = {
        "no-run-returned": (0, 0),
        "half-returned": (PSETS // 2, PSETS // 2),
        "all-but-one-returned": (PSETS - 1, PSETS - 1),
    }[point]
    proc = subprocess.Popen([sys.executable, str(script), str(store), str(marks), str(hold)], cwd=tmp_path)
    try:
        # The workers are inside held runs (both, unless one run is left): every run before has returned.
        held = min(2, PSETS - hold)
        _wait(
            lambda: (
                (
                    len(_marked(marks, "return")) >= returned
                    and len(_marked(marks, "start") - _marked(marks, "return")) == held
                )
                or proc.poll() is not None
            ),
            "the kill point",
        )
        assert proc.poll() is None, "the sweep ended before the kill point"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    workers = _workers(marks) - {proc.pid}
    assert len(workers) >= 1
    _wait(lambda: not any(_alive(pid) for pid in workers), "the pool's workers to exit with the sweep", timeout=30)

    for name in os.listdir(marks):
        os.unlink(marks / name)
    rerun = subprocess.run(
        [sys.executable, str(script), str(store), str(marks), "-1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr
    reran = _marked(marks, "start")
    assert reran <= set(range(PSETS)) and reran >= set(range(hold, PSETS))

    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        per_pset = dict(
            conn.execute(
                "SELECT json_extract(p.params, '$.i'), count(*) FROM runs r JOIN psets p ON p.pk = r.pset "
                "WHERE r.status = 'done' GROUP BY p.pk"
            ).fetchall()
        )
        assert per_pset == {i: 1 for i in range(PSETS)}
        assert conn.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone()[0] == 0
        sessions = [s for (s,) in conn.execute("SELECT status FROM sessions ORDER BY pk")]
        assert sessions == ["interrupted", "done"]
        squares = dict(
            conn.execute(
                "SELECT json_extract(p.params, '$.i'), res.value FROM results_all res JOIN runs r ON r.pk = res.run "
                "JOIN psets p ON p.pk = r.pset WHERE res.name = 'sq' AND r.status = 'done'"
            ).fetchall()
        )
        assert squares == {i: i * i for i in range(PSETS)}
        digests = [d for (d,) in conn.execute("SELECT value FROM results_all WHERE kind = 'object'")]
    finally:
        conn.close()
    objects = rec.ObjectStore(store / "objects")
    assert len(digests) >= PSETS and all(objects.verify(d) for d in digests)  # no dangling reference
    assert not [p for p in (store / "objects").rglob(".tmp-*")]
    assert not any(_alive(pid) for pid in workers)
