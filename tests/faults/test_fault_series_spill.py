"""Fault injection on series spills: a run SIGKILLed mid-way keeps its series up to its last flush.

A real child process runs a function that appends values to two series
(``loss``, float; ``step``, int) and watches its own spill file: after
each append it looks at the file's size, so it knows exactly how many
values the file holds (a flush writes every value appended so far). Once
the file has taken two flushes, and three more values were appended, the
child writes what it knows to an fsync'd marker and sleeps until it is
killed. The next opening of the store must record the run ``interrupted``
with exactly the flushed values, and remove the spill files.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

import recorder as rec
from recorder.errors import RecorderWarning
from recorder.store.folder import Store

CHILD = r"""
import glob, json, os, sys, time
import recorder as rec

store, markers, mode = sys.argv[1], sys.argv[2], sys.argv[3]


def mark(name, text):
    fd = os.open(os.path.join(markers, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, text.encode())
    os.fsync(fd)  # the test reads it after a SIGKILL
    os.close(fd)


def steps(n):
    run = rec.current_run()
    path, size, flushes, i = None, 0, [], 0

    def spilled():
        nonlocal path
        if path is None:
            found = glob.glob(os.path.join(store, "locks", "*.series", run.id + ".spill"))
            if not found:
                return 0
            path = found[0]
        return os.stat(path).st_size

    deadline = time.monotonic() + 60
    while len(flushes) < 2 and time.monotonic() < deadline:
        run.append(loss=i * 0.5, step=i)
        i += 1
        if spilled() != size:  # this append flushed: the file holds values 0 .. i-1
            size = spilled()
            flushes.append(i)
    for _ in range(3):  # after the last flush: lost with the process, unless a flush comes meanwhile
        run.append(loss=i * 0.5, step=i)
        i += 1
        if spilled() != size:
            size = spilled()
            flushes.append(i)
    mark("ready", json.dumps({"run": run.id, "flushes": flushes, "appended": i, "spill": path, "pid": os.getpid()}))
    time.sleep(600)  # killed here
    return {}


if __name__ == "__main__":
    with rec.Recorder("faults", store=store, git=False, flush_interval=0.05) as r:
        if mode == "sweep":
            r.sweep(steps, rec.plist("n", [3]), progress=False)
        elif mode == "pool":
            r.sweep(steps, rec.plist("n", [3]), workers=2, progress=False)
        elif mode == "worker":  # the worker is killed, the sweep goes on and the session ends
            r.sweep(steps, rec.plist("n", [3]), workers=2, progress=False)
            mark("ended", "")
            sys.exit(0)
        else:
            with r.run(n=3) as run:
                steps(3)
"""


def start(tmp_path: Path, store: Path, mode: str) -> subprocess.Popen[bytes]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    markers = tmp_path / "markers"
    markers.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, str(script), str(store), str(markers), mode],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
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


def killed_mid_run(tmp_path: Path, store: Path, mode: str = "sweep") -> dict:
    """Run the child until its run has flushed twice, SIGKILL its process; return what it said."""
    proc = start(tmp_path, store, mode)
    said = wait_ready(proc, tmp_path)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc.stderr.close()
    assert os.path.isfile(said["spill"])
    return said


def run_row(store: Path, run_id: str) -> tuple[str, str | None] | None:
    con = sqlite3.connect(store / "recorder.sqlite")
    try:
        return con.execute("SELECT status, error FROM runs WHERE lower(hex(id)) = ?", (run_id,)).fetchone()
    finally:
        con.close()


def check_series(store: Path, run_id: str, count: int) -> None:
    """The run is interrupted, with series of exactly its first ``count`` values, as the normal path stores them."""
    status, error = run_row(store, run_id)
    assert status == "interrupted"
    assert "series are stored up to their last flush" in error
    with rec.open(store) as db:
        loss, step = db.result(run_id, "loss_series"), db.result(run_id, "step_series")
        assert loss.dtype == np.float64 and step.dtype == np.int64
        assert np.array_equal(loss, np.arange(count) * 0.5)
        assert np.array_equal(step, np.arange(count))
        assert db.result(run_id, "loss") == (count - 1) * 0.5
        assert db.result(run_id, "step") == count - 1


@pytest.mark.parametrize("mode", ["sweep", "run", "pool"])
def test_sigkill_mid_run_keeps_series_up_to_last_flush(tmp_path: Path, store: Path, mode: str) -> None:
    said = killed_mid_run(tmp_path, store, mode)
    flushes = said["flushes"]
    assert len(flushes) >= 2 and flushes[-1] <= said["appended"]

    Store.open(store).close()  # the next opening recovers the dead session

    check_series(store, said["run"], flushes[-1])
    assert not any(p.name.endswith(".series") for p in (store / "locks").iterdir())  # spills removed


def test_crash_mid_flush_keeps_the_complete_flushes(tmp_path: Path, store: Path) -> None:
    said = killed_mid_run(tmp_path, store)
    spill = Path(said["spill"])
    with open(spill, "r+b") as file:  # the last flush cut short by a crash: its frame lacks a byte
        file.truncate(spill.stat().st_size - 1)

    with pytest.warns(RecorderWarning, match="ends early"):
        Store.open(store).close()

    check_series(store, said["run"], said["flushes"][-2])


def _frame(entries: list[tuple[int, bytes, bytes]]) -> bytes:
    """A spill frame as recorder writes one, with its checksum right: (dtype code, name, values)."""
    import struct
    import zlib

    body = b"".join(struct.pack("<BHI", code, len(name), len(data) // 8) + name + data for code, name, data in entries)
    return struct.pack("<2sII", b"SF", len(body), zlib.crc32(body)) + body


def _header_for(spill: Path, run_id: str) -> bytes:
    """The spill header of ``spill`` (the magic and the run's journal line), for another run id."""
    from recorder.store.spill import MAGIC

    data = spill.read_bytes()
    line = data[len(MAGIC) : data.index(b"\n", len(MAGIC))]
    record = json.loads(line)
    record[0] = run_id
    return MAGIC + json.dumps(record, separators=(",", ":")).encode() + b"\n"


def test_hostile_spill_files_are_refused_and_recovery_goes_on(tmp_path: Path, store: Path) -> None:
    said = killed_mid_run(tmp_path, store)
    spill = Path(said["spill"])
    folder = spill.parent
    outside = tmp_path / "outside.spill"
    outside.write_bytes(spill.read_bytes())
    values = np.arange(4, dtype="<f8").tobytes()
    hostile = {
        "evil.spill": spill.read_bytes(),  # not named by a run id
        "b" * 24 + ".spill": None,  # a link out of the store
        "c" * 24 + ".spill": _header_for(spill, "c" * 24) + _frame([(1, b"n", values)]),  # a parameter's name
        "d" * 24 + ".spill": _header_for(spill, "d" * 24) + _frame([(1, b"_id", values)]),  # a reserved name
        "e" * 24 + ".spill": _header_for(spill, "e" * 24) + _frame([(7, b"x", values)]),  # an unknown dtype
        "f" * 24 + ".spill": _header_for(spill, "f" * 24)
        + _frame([(1, b"x", values)])[:-8]
        + b"\0" * 8,  # a wrong checksum: nothing read
        "1" * 24 + ".spill": _header_for(spill, "2" * 24) + _frame([(1, b"x", values)]),  # another run's header
        "3" * 24 + ".spill": spill.read_bytes()[:5],  # not a spill file
    }
    for name, data in hostile.items():
        if data is None:
            os.symlink(outside, folder / name)
        else:
            (folder / name).write_bytes(data)
    # A frame whose series claims more values than the frame holds (a wrong length), checksum right.
    body_lie = _frame([(1, b"x", values)])
    lie = bytearray(body_lie)
    lie[10 + 3 : 10 + 7] = (1000).to_bytes(4, "little")  # the count of values in the entry's header
    import zlib

    lie[6:10] = zlib.crc32(bytes(lie[10:])).to_bytes(4, "little")
    (folder / ("4" * 24 + ".spill")).write_bytes(_header_for(spill, "4" * 24) + bytes(lie))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Store.open(store).close()  # recovery does not crash
    said_about = "\n".join(str(w.message) for w in caught if issubclass(w.category, RecorderWarning))
    for name in ("evil.spill", "b" * 24, "c" * 24, "d" * 24, "e" * 24, "1" * 24, "3" * 24, "4" * 24):
        assert name in said_about, name
    assert "symbolic link" in said_about and "more than its frame holds" in said_about

    check_series(store, said["run"], said["flushes"][-1])  # the real run is recovered all the same
    for run_id in ("c" * 24, "d" * 24, "e" * 24, "1" * 24, "2" * 24, "4" * 24, "b" * 24):
        assert run_row(store, run_id) is None
    assert run_row(store, "f" * 24) is None  # a header with no complete frame: no values, no run
    assert outside.read_bytes().startswith(b"RECORDER-SERIES-1")  # the link's target is untouched
    assert not folder.exists()


def test_a_spill_folder_that_is_a_link_is_not_entered(tmp_path: Path, store: Path) -> None:
    said = killed_mid_run(tmp_path, store)
    folder = Path(said["spill"]).parent
    elsewhere = tmp_path / "elsewhere"
    folder.rename(elsewhere)
    folder.symlink_to(elsewhere)

    with pytest.warns(RecorderWarning, match="not a folder"):
        Store.open(store).close()

    assert run_row(store, said["run"]) == ("interrupted", None)  # no series: none read through the link
    assert (elsewhere / f"{said['run']}.spill").is_file()  # nothing removed outside the store


def test_a_killed_pool_worker_s_run_keeps_its_series_while_the_sweep_goes_on(tmp_path: Path, store: Path) -> None:
    proc = start(tmp_path, store, "worker")
    said = wait_ready(proc, tmp_path)
    os.kill(said["pid"], signal.SIGKILL)  # the worker running the run, not the sweeping process
    assert proc.wait(timeout=60) == 0, proc.stderr.read().decode()
    proc.stderr.close()
    assert (tmp_path / "markers" / "ended").exists()

    check_series(store, said["run"], said["flushes"][-1])  # recorded by the sweeping process itself
    assert not any(p.name.endswith(".series") for p in (store / "locks").iterdir())
