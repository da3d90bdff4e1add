"""SIGKILL around the object store's batched syncing: no committed row ever names a missing or partial object.

Large arrays are hashed while written to a temporary file, renamed to their
digest's name, and synced to disk in the background; the session's writer
waits for them (``make_durable``) before the rows naming them commit. A
child process stores one distinct 2 MB array per run (large enough to be
hashed in the helper thread) and stops at a chosen point of the third
array's way in, where it writes an fsync'd marker and waits to be killed:

- ``temp``: its temporary file is complete, not yet renamed;
- ``placed``: renamed into place, not yet synced;
- ``durable``: synced, at the commit of its run, before the commit;
- ``committed``: its run's row committed;
- ``journaled``: (``with r.run()``) its run finished and journaled, not committed.

After the kill the store is opened (which replays a journal), and every
committed row's array must load with the bytes the child stored; every
file under an object's name must hash to that name (a temporary file is
never taken as an object); ``gc`` removes what the crash left, and keeps
every object a row names.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

import recorder as rec
from recorder.shards.maintenance import gc
from recorder.store.objects import OBJECT_NAME, ObjectStore

TIMEOUT_S = 60
N = 5  # runs the child means to record; it is killed at the third
KILLED_AT = 2

CHILD = r"""
import os, sys, time
import numpy as np
import recorder as rec
from recorder.store import objects, writer

store, marker, mode, point = sys.argv[1:5]
KILLED_AT = 2
seen = {"place": 0, "add": 0}


def stop(tag):
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.write(fd, tag.encode())
    os.fsync(fd)
    os.close(fd)
    time.sleep(600)  # until killed


def array(i):
    return np.full(1 << 18, float(i))  # 2 MB: hashed in the helper thread while written


place = objects.ObjectStore._place


def placing(self, tmp, fd, name):
    seen["place"] += 1
    if point == "temp" and seen["place"] == KILLED_AT + 1:
        stop(f"temp {tmp}")
    place(self, tmp, fd, name)
    if point == "placed" and seen["place"] == KILLED_AT + 1:
        stop(f"placed {name}")


objects.ObjectStore._place = placing
commit = writer.RunWriter._commit


def committing(self, finished, in_flight, **options):
    third = any("a" in getattr(r, "results", {}) and r.results["a"].kind == "object"
                and r.results["y"].value == KILLED_AT for r in finished)
    if third and point == "durable":
        objects.make_durable()
        stop("durable")
    commit(self, finished, in_flight, **options)
    if third and point == "committed":
        stop("committed")


writer.RunWriter._commit = committing


def model(i):
    return {"a": array(i), "y": i}


if mode == "sweep":
    with rec.Recorder("exp", store=store, git=False, flush_interval=0) as r:
        r.sweep(model, rec.plist("i", list(range(5))), progress=False, return_df=False)
else:
    with rec.Recorder("exp", store=store, git=False, flush_interval=60) as r:
        for i in range(5):
            with r.run(i=i) as run:
                run.log(a=array(i), y=i)
            if point == "journaled" and i == KILLED_AT:
                stop("journaled")
stop("never")
"""


def run_child_until_killed(tmp_path: Path, mode: str, point: str) -> tuple[Path, str]:
    """Start the child, wait for its marker, SIGKILL it; return the store and what the marker said."""
    store = tmp_path / "store"
    marker = tmp_path / "marker"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store), str(marker), mode, point],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not (marker.exists() and marker.read_text()):
            if proc.poll() is not None:
                raise AssertionError(f"the child ended early ({proc.returncode}): {proc.stderr.read().decode()}")
            assert time.monotonic() < deadline, "the child never reached its kill point"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(TIMEOUT_S)
        assert proc.stderr is not None
        proc.stderr.close()
    said = marker.read_text()
    assert said != "never", "the child finished without reaching its kill point"
    return store, said


def stored_arrays(store: Path) -> dict[int, np.ndarray]:
    """The array of every done run, by its ``i``, read through the rows (opening the store replays a journal)."""
    with rec.open(store) as db:
        df = db.df("exp")
        done = df[df["_status"] == "done"] if "_status" in df else df
        return {int(i): db.array(run_id, "a", mmap=False) for i, run_id in zip(done["i"], done["_run_id"])}


def object_files(store: Path) -> list[Path]:
    root = store / "objects"
    return sorted(p for p in root.glob("*/*") if OBJECT_NAME.fullmatch(p.name))


def temp_files(store: Path) -> list[Path]:
    return sorted(p for p in (store / "objects").rglob(".tmp-*"))


def check_sound(store: Path, expected_done: set[int]) -> None:
    """Every done run's array is the one stored; every object file hashes to its name."""
    arrays = stored_arrays(store)
    assert set(arrays) == expected_done
    for i, array in arrays.items():
        np.testing.assert_array_equal(array, np.full(1 << 18, float(i)))
    for path in object_files(store):
        digest = path.parent.name + path.stem
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{path} is not the object it is named"


def collect_garbage(store: Path) -> None:
    """Age what the crash left (gc keeps young temporary files: they may be on their way in) and run gc."""
    old = time.time() - 2 * 3600
    for path in temp_files(store):
        os.utime(path, (old, old))
    gc(store)
    assert temp_files(store) == []


@pytest.mark.parametrize("point", ["temp", "placed", "durable", "committed"])
def test_a_sweep_killed_around_an_array_leaves_no_row_naming_a_missing_or_partial_object(
    tmp_path: Path, point: str
) -> None:
    store, said = run_child_until_killed(tmp_path, "sweep", point)
    # flush_interval=0: each run is committed when it ends, so the runs before the third are done.
    done = set(range(KILLED_AT + 1)) if point == "committed" else set(range(KILLED_AT))
    check_sound(store, done)
    temps = temp_files(store)
    if point == "temp":
        # The third array's temporary file is complete, and never taken as an object.
        assert [str(p) for p in temps] == [said.split(" ", 1)[1]]
        buffer = io.BytesIO()
        np.save(buffer, np.full(1 << 18, float(KILLED_AT)))
        assert temps[0].read_bytes() == buffer.getvalue()
        assert len(object_files(store)) == KILLED_AT
    else:
        assert temps == []
        assert len(object_files(store)) == KILLED_AT + 1  # the third array's object, named or not
    collect_garbage(store)
    check_sound(store, done)
    assert len(object_files(store)) == len(done)  # gc removed the object no row names, if any
    # The sweep run again completes what the crash left out.
    with rec.Recorder("exp", store=store, git=False) as r:
        r.sweep(lambda i: {"a": np.full(1 << 18, float(i)), "y": i}, rec.plist("i", list(range(N))), progress=False)
    check_sound(store, set(range(N)))


@pytest.mark.parametrize("point", ["temp", "placed", "journaled"])
def test_recorded_runs_killed_around_an_array_replay_with_every_object_sound(tmp_path: Path, point: str) -> None:
    store, _said = run_child_until_killed(tmp_path, "record", point)
    # Nothing was committed (flush_interval=60): the runs that ended are in the journal, replayed now.
    done = set(range(KILLED_AT + 1)) if point == "journaled" else set(range(KILLED_AT))
    check_sound(store, done)
    assert len(temp_files(store)) == (1 if point == "temp" else 0)
    collect_garbage(store)
    check_sound(store, done)
    assert len(object_files(store)) == len(done)


def test_every_object_is_synced_before_the_commit_that_names_it(tmp_path: Path) -> None:
    """At the ``durable`` point the third array's object is complete; its row comes only after."""
    store, said = run_child_until_killed(tmp_path, "sweep", "durable")
    assert said == "durable"
    objects = ObjectStore(store / "objects")
    files = object_files(store)
    assert len(files) == KILLED_AT + 1
    assert all(objects.verify(p.parent.name + p.stem) for p in files)
