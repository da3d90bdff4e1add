"""Faults around the object store: gc racing merge and session starts, SIGKILLed merges and gcs, corrupt
objects, hostile symbolic links.

Every interleaving is forced, not hoped for: the other party runs at a chosen
point, by wrapping the function that marks it (in this process, or in a child
that writes an fsync'd marker there and waits to be killed). Every wait is
bounded.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import recorder as rec
from recorder.errors import ObjectOutsideStore, StoreBusy
from recorder.shards.maintenance import gc, verify
from recorder.store.objects import ObjectsLock, ObjectStore

merging = importlib.import_module("recorder.shards.merge")  # rec.merge is the function
recording = importlib.import_module("recorder.record.recorder")

EXP = "exp"
CONFIG = {"dt": 0.1}
TIMEOUT_S = 60


def model(a: float) -> dict:
    """A scalar and an array too large to be inline: it goes to objects/."""
    return {"y": 2 * a, "curve": np.full(10_000, a)}


def shard(store: Path, values: list[float], *, config: dict | None = None) -> Path:
    with rec.Recorder(EXP, store=store, git=False, config=CONFIG if config is None else config) as r:
        r.sweep(model, rec.plist("a", values), progress=False, return_df=False)
    return store


def runs(store: Path) -> int:
    with rec.open(store) as db:
        return int(db.sql("SELECT count(*) AS n FROM runs")["n"][0])


def arrays_load(store: Path) -> int:
    """Load every array of every run (proof that nothing dangles); return how many."""
    with rec.open(store) as db:
        df = db.df(EXP)
        return sum(len(db.array(run_id, "curve", mmap=False)) == 10_000 for run_id in df["_run_id"])


def gc_in_a_process(store: Path) -> subprocess.CompletedProcess[str]:
    """Run gc in another process, to the end (bounded)."""
    code = f"from recorder.shards.maintenance import gc\nprint(gc({str(store)!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def leftovers(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))


# -- gc racing a merge or a session start (issue: runs pointing at deleted arrays) ------------


def test_gc_cannot_delete_an_object_a_merge_has_found_in_the_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The destination has the array already, unreferenced: gc runs right after the merge counted on it."""
    source = shard(tmp_path / "source", [1.0, 2.0])
    dest = shard(tmp_path / "dest", [5.0])
    for value in (1.0, 2.0):  # left by an earlier run that was deleted, say: nothing refers to them
        ObjectStore(dest / "objects").put(np.full(10_000, value))
    found = merging._objects_to_copy
    outcomes: list[subprocess.CompletedProcess[str]] = []

    def then_gc(*args: Any, **kwargs: Any) -> list[str]:
        needed = found(*args, **kwargs)
        outcomes.append(gc_in_a_process(dest))
        return needed

    monkeypatch.setattr(merging, "_objects_to_copy", then_gc)
    report = rec.merge(source, dest, allow_code_mismatch=True, progress=False)
    assert report.runs == 2 and report.objects == 0  # the destination's copies are used
    (outcome,) = outcomes
    assert outcome.returncode != 0 and "merge is writing" in outcome.stderr, outcome
    assert verify(dest) == []
    assert arrays_load(dest) == 3


def test_gc_cannot_delete_the_config_array_of_a_session_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gc runs after the session wrote its config array and before its row names it."""
    store = shard(tmp_path / "store", [1.0])
    lock = recording.SessionLock
    outcomes: list[subprocess.CompletedProcess[str]] = []

    def gc_then_lock(*args: Any) -> Any:
        outcomes.append(gc_in_a_process(store))
        return lock(*args)

    monkeypatch.setattr(recording, "SessionLock", gc_then_lock)
    grid = np.linspace(0.0, 1.0, 20_000)
    with rec.Recorder("starting", store=store, git=False, config={"grid": grid}) as r, r.run(a=1) as run:
        run.log(y=1.0)
    (outcome,) = outcomes
    assert outcome.returncode != 0 and "session is starting" in outcome.stderr, outcome
    assert verify(store) == []
    with rec.open(store) as db:
        (digest,) = db.sql("SELECT value FROM config WHERE name = 'grid'")["value"]
        assert np.array_equal(db.objects.get(digest), grid)


def test_a_merge_and_a_session_start_wait_for_a_gc_and_gc_refuses_while_they_hold_the_lock(tmp_path: Path) -> None:
    store = shard(tmp_path / "store", [1.0])
    with ObjectsLock(store, exclusive=True):  # what gc holds from its check to its last deletion
        with pytest.raises(StoreBusy, match="gc"):
            ObjectsLock(store).acquire(wait=0.05)
    with ObjectsLock(store):  # what a merge or a session start holds
        with pytest.raises(StoreBusy, match="session is starting or a merge"):
            gc(store)
        with ObjectsLock(store):  # shared: any number of them at once
            pass
    assert gc(store).files == 0
    assert not (store / "locks" / "objects.lock").exists()  # the last holder out removes it


# -- SIGKILL in a merge -------------------------------------------------------------------

# A merge in a child process that stops at POINT: writes the marker (fsync'd) and waits to be killed.
MERGE_TO_KILL = """
import importlib, os, sys, time
import recorder as rec
merging = importlib.import_module("recorder.shards.merge")
sources, dest, point, marker = sys.argv[1:3], sys.argv[3], sys.argv[4], sys.argv[5]

def stop():
    with open(marker, "w") as file:
        file.write(point)
        file.flush()
        os.fsync(file.fileno())
    time.sleep(600)

def after(name):
    original = getattr(merging, name)
    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        stop()
        return result
    setattr(merging, name, wrapped)

after({"checked": "_objects_to_copy", "linked": "_link_objects", "committed": "_merge_into"}[point])
rec.merge(sources, dest, allow_code_mismatch=True, progress=False)
raise SystemExit("the merge never reached " + point)
"""


def kill_at(script: str, args: list[str], marker: Path, cwd: Path) -> None:
    """Run ``script`` until it writes ``marker``, then SIGKILL it."""
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not marker.exists():
            if child.poll() is not None:
                raise AssertionError(f"the child ended before its marker: {child.communicate()[1]}")
            assert time.monotonic() < deadline, "the child never reached its marker"
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=TIMEOUT_S)
    assert child.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Two shards and a destination that has runs of its own, made once (merges only read shards)."""
    folder = tmp_path_factory.mktemp("shards")
    return shard(folder / "a", [1.0, 2.0]), shard(folder / "b", [3.0, 4.0]), shard(folder / "dest", [5.0])


@pytest.mark.parametrize("trial", [0, 1])
@pytest.mark.parametrize("fresh", [False, True], ids=["existing", "fresh"])
@pytest.mark.parametrize("point", ["checked", "linked", "committed"])
def test_a_killed_merge_leaves_a_sound_destination(
    tmp_path: Path, shards: tuple[Path, Path, Path], point: str, fresh: bool, trial: int
) -> None:
    a, b, prepared = shards
    dest = tmp_path / "dest"
    if not fresh:
        shutil.copytree(prepared, dest)
    marker = tmp_path / "marker"
    kill_at(MERGE_TO_KILL, [str(a), str(b), str(dest), point, str(marker)], marker, tmp_path)

    if fresh:
        assert not dest.exists()  # built beside it, renamed only when complete
    else:
        assert verify(dest) == []  # 0 dangling references
        # All of the merge or none of it (the two shards go in one transaction).
        assert runs(dest) in ((1, 5) if point == "committed" else (1,))
        assert arrays_load(dest) == runs(dest)
    report = rec.merge([a, b], dest, allow_code_mismatch=True, progress=False)
    assert runs(dest) == (4 if fresh else 5) and report.skipped + report.runs == 4
    assert verify(dest) == [] and arrays_load(dest) == runs(dest)
    assert leftovers(tmp_path, "dest") == []  # the killed merge's folders and lock are gone
    with rec.Recorder(EXP, store=dest, git=False, config=CONFIG) as r, r.run(a=9.0) as run:
        run.log(y=1.0, curve=np.full(10_000, 9.0))  # and the destination takes new runs
    assert verify(dest) == [] and gc(dest).files in (0, 1, 2)  # linked by the killed merge, never used
    assert verify(dest) == [] and arrays_load(dest) == runs(dest)


# -- SIGKILL in a gc ------------------------------------------------------------------------

GC_TO_KILL = """
import importlib, os, sys, time
from recorder.shards.maintenance import gc
maintenance = importlib.import_module("recorder.shards.maintenance")
store, point, marker = sys.argv[1:4]

def stop():
    with open(marker, "w") as file:
        file.write(point)
        file.flush()
        os.fsync(file.fileno())
    time.sleep(600)

if point == "listed":  # objects/ listed, nothing deleted yet
    scan = maintenance._scan
    def listed(root):
        found = scan(root)
        stop()
        return found
    maintenance._scan = listed
else:  # one file deleted, the others and the rows not yet
    unlink = os.unlink
    def deleted(path, *args, **kwargs):
        unlink(path, *args, **kwargs)
        if "objects" in str(path):
            stop()
    os.unlink = deleted
gc(store)
raise SystemExit("gc never reached " + point)
"""


@pytest.mark.parametrize("trial", [0, 1])
@pytest.mark.parametrize("point", ["listed", "deleted"])
def test_a_killed_gc_leaves_a_sound_store(
    tmp_path: Path, shards: tuple[Path, Path, Path], point: str, trial: int
) -> None:
    store = tmp_path / "store"
    shutil.copytree(shards[2], store)
    strays = [ObjectStore(store / "objects").put(np.arange(10_000.0) + i)[0] for i in range(3)]
    marker = tmp_path / "marker"
    kill_at(GC_TO_KILL, [str(store), point, str(marker)], marker, tmp_path)
    gone = [d for d in strays if not ObjectStore(store / "objects").exists(d)]
    assert len(gone) == (0 if point == "listed" else 1)
    assert verify(store) == [] and arrays_load(store) == 1
    assert gc(store).files == 3 - len(gone)  # the next gc finishes the job
    assert verify(store) == [] and arrays_load(store) == 1
    with rec.Recorder(EXP, store=store, git=False, config=CONFIG) as r, r.run(a=9.0) as run:
        run.log(y=1.0, curve=np.full(10_000, 9.0))
    assert verify(store) == [] and arrays_load(store) == 2


# -- corrupt objects ------------------------------------------------------------------------


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-8])


def _reshape(store: Path, digest: str) -> None:
    import sqlite3

    conn = sqlite3.connect(store / "recorder.sqlite")
    with conn:
        conn.execute("UPDATE objects SET shape = '[100, 100]' WHERE digest = ?", (digest,))
    conn.close()


CORRUPTIONS: dict[str, tuple[Callable[[Path, Path, str], None], str]] = {
    "flipped byte": (lambda store, path, digest: _flip(path), "corrupt"),
    "truncated": (lambda store, path, digest: _truncate(path), "corrupt"),
    "deleted": (lambda store, path, digest: path.unlink(), "missing"),
    "wrong shape": (lambda store, path, digest: _reshape(store, digest), "wrong shape"),
}


@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_verify_reports_a_corrupt_object(tmp_path: Path, shards: tuple[Path, Path, Path], how: str) -> None:
    store = tmp_path / "store"
    shutil.copytree(shards[0], store)
    with rec.open(store) as db:
        run_id = db.df(EXP).sort_values("a")["_run_id"].iloc[0]
        (digest,) = db.sql(
            "SELECT x.value FROM results AS x JOIN runs AS r ON r.pk = x.run "
            "WHERE lower(hex(r.id)) = ? AND x.name = 'curve'",
            (run_id,),
        )["value"]
    path = ObjectStore(store / "objects").path(digest)
    damage, what = CORRUPTIONS[how]
    os.chmod(path, 0o644)
    damage(store, path, digest)
    problems = verify(store)
    assert [(p.what, p.digest, p.run_id, p.name) for p in problems] == [(what, digest, run_id, "curve")], problems
    if how != "wrong shape":  # (the bytes are sound then: a merge copies them as they are)
        with pytest.raises(rec.ObjectError, match=f"{run_id}.*verify"):  # merging it is refused, naming the run
            rec.merge(store, tmp_path / "dest", progress=False)
        assert not (tmp_path / "dest").exists()


# -- hostile symbolic links ------------------------------------------------------------------


def _victim(tmp_path: Path) -> dict[Path, bytes]:
    victim = tmp_path / "victim"
    (victim / "cd").mkdir(parents=True)
    files = {
        victim / ("ab" * 31 + ".npy"): b"x" * 100,
        victim / ".tmp-1": b"y",
        victim / "thesis.tex": b"z",
        victim / "cd" / ("ef" * 31 + ".npy"): b"w",
    }
    for path, data in files.items():
        path.write_bytes(data)
        old = path.stat().st_mtime - 7200
        os.utime(path, (old, old))
    return files


@pytest.mark.parametrize("link", ["objects", "folder", "file", "absolute folder"])
def test_hostile_links_never_cost_a_file_outside_the_store(
    tmp_path: Path, shards: tuple[Path, Path, Path], link: str
) -> None:
    store = tmp_path / "store"
    shutil.copytree(shards[2], store)
    files = _victim(tmp_path)
    victim = tmp_path / "victim"
    objects = store / "objects"
    if link == "objects":
        shutil.rmtree(objects)
        objects.symlink_to(victim)
    elif link == "folder":
        (objects / "ab").symlink_to(Path("..") / ".." / "victim")
    elif link == "absolute folder":
        (objects / "ab").symlink_to(victim)
    else:
        (objects / "ab").mkdir(exist_ok=True)
        (objects / "ab" / ("ab" * 31 + ".npy")).symlink_to(victim / ("ab" * 31 + ".npy"))
    if link == "objects":
        with pytest.raises(ObjectOutsideStore):
            gc(store)
    else:
        with pytest.warns(rec.RecorderWarning, match="symbolic link"):
            gc(store)
    problems = verify(store)
    assert problems and all(p.what == "link" for p in problems)
    for call in (
        lambda: rec.merge(store, tmp_path / "out", progress=False),
        lambda: rec.extract(store, tmp_path / "out2", progress=False),
    ):
        with contextlib.suppress(ObjectOutsideStore):  # an array of the runs is behind the link: refused
            call()
    assert {path: path.read_bytes() for path in files} == files
    assert sorted(p.name for p in victim.rglob("*")) == sorted({p.name for p in files} | {"cd"})
