"""Hostile ``locks/`` folders and journal files: links out of the store, huge, sparse and odd files.

A real child process records 5 runs with ``flush_interval=60`` (so they
are only in its journal) and SIGKILLs itself; the test then plants real
symbolic links, sparse files, folders and FIFOs where recorder looks, and
opens the store the way a user would (the CLI in a subprocess, or
:class:`~recorder.store.folder.Store`). Nothing here may be followed out of the
store, delete what is not the store's, or keep the store from opening.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from conftest import ROOT

from recorder.errors import LinkInStore, RecorderWarning
from recorder.store.folder import Store
from recorder.store.objects import ObjectsLock

TIMEOUT_S = 60
RUNS = 5

CRASH = r"""
import os, sys
import numpy as np
import recorder as rec

with rec.Recorder("exp", store=sys.argv[1], git=False, flush_interval=60) as r:
    for a in range(5):
        with r.run(a=a) as run:
            run.log(x=float(a))
            if a == 2:
                run.log(arr=np.arange(20_000, dtype=np.float64))  # beyond the inline limit: objects/
    os.kill(os.getpid(), 9)  # the runs are only in the journal
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def crashed(store: Path) -> Path:
    """Make ``store`` hold a session killed with its 5 finished runs only in its journal; return the journal."""
    child = subprocess.run(
        [sys.executable, "-c", CRASH, str(store)], env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    (journal,) = (store / "locks").glob("*.journal.*")
    return journal


def cli(*args: str, limit_memory: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``recorder`` CLI (this checkout's) in a subprocess (with an address-space limit when given)."""

    def limit() -> None:
        if limit_memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit_memory, limit_memory))

    return subprocess.run(
        [sys.executable, "-c", "from recorder.cli.commands import main; main()", *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        preexec_fn=limit,
    )


def run_states(store: Path) -> list[tuple[float, str]]:
    """``(a, status)`` of every run in the store, read without recorder."""
    with sqlite3.connect(f"file:{store / 'recorder.sqlite'}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT status FROM runs ORDER BY pk").fetchall()
    return [r[0] for r in rows]


def session_states(store: Path) -> list[str]:
    with sqlite3.connect(f"file:{store / 'recorder.sqlite'}?mode=ro", uri=True) as conn:
        return [r[0] for r in conn.execute("SELECT status FROM sessions")]


# -- 1: locks/ is a symbolic link ------------------------------------------------------------


def test_a_read_through_a_linked_locks_folder_never_takes_another_stores_journal(tmp_path: Path) -> None:
    b = tmp_path / "B"
    journal = crashed(b)
    a2 = tmp_path / "A2"
    a2.mkdir()
    for db in b.glob("recorder.sqlite*"):
        shutil.copy(db, a2 / db.name)
    (a2 / "locks").symlink_to(b / "locks")

    status = cli("status", "--store", str(a2))

    assert journal.exists(), "B's journal was replayed into A2 and deleted"
    assert "symbolic link" in status.stdout + status.stderr
    assert run_states(a2) == []  # nothing of B's replayed into A2
    with pytest.raises(LinkInStore, match="locks"):
        Store.open(a2, create=False)
    with pytest.raises(LinkInStore):
        Store.open(a2)
    with Store.open(b, create=False):  # B still has its runs, and recovers them itself
        pass
    assert run_states(b) == ["done"] * RUNS


def test_gc_never_removes_a_lock_file_through_a_linked_locks_folder(tmp_path: Path) -> None:
    a = tmp_path / "A"
    crashed(a)
    shutil.rmtree(a / "locks")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "objects.lock").write_text("not recorder's\n")
    (a / "locks").symlink_to(victim)

    gc = cli("gc", "--store", str(a))

    assert (victim / "objects.lock").read_text() == "not recorder's\n"
    assert gc.returncode != 0
    assert "symbolic link" in gc.stderr and "Traceback" not in gc.stderr
    with pytest.raises(LinkInStore):  # the lock itself refuses the link, whoever takes it
        ObjectsLock(a, exclusive=True).acquire()
    assert (victim / "objects.lock").read_text() == "not recorder's\n"


def test_the_objects_lock_never_removes_its_file_through_a_link_made_while_held(tmp_path: Path) -> None:
    a = tmp_path / "A"
    a.mkdir()
    lock = ObjectsLock(a, exclusive=True).acquire()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "objects.lock").write_text("not recorder's\n")
    (a / "locks").rename(tmp_path / "real-locks")
    (a / "locks").symlink_to(victim)

    lock.release()

    assert (victim / "objects.lock").read_text() == "not recorder's\n"


def test_a_locks_path_that_is_not_a_folder_is_refused_by_name(tmp_path: Path) -> None:
    a = tmp_path / "A"
    crashed(a)
    shutil.rmtree(a / "locks")
    (a / "locks").write_text("a file\n")
    with pytest.raises(LinkInStore, match="not a folder"):
        Store.open(a, create=False)
    assert (a / "locks").read_text() == "a file\n"


# -- 2: a journal file that is not a journal -------------------------------------------------


def test_a_huge_sparse_journal_file_is_skipped_not_read(tmp_path: Path) -> None:
    store = tmp_path / "store"
    journal = crashed(store)
    os.truncate(journal, 50 << 30)  # sparse: 50 GiB of nothing

    status = cli("status", "--store", str(store), limit_memory=2 << 30)

    assert status.returncode == 0, status.stderr
    assert journal.name in status.stderr and "skipped" in status.stderr
    assert session_states(store) == ["interrupted"]
    assert (journal.parent / f"{journal.name}.bad").stat().st_size == 50 << 30  # kept for the user
    assert not journal.exists()
    assert cli("status", "--store", str(store)).returncode == 0  # it never blocks the store again


@pytest.mark.slow
def test_a_large_journal_file_is_read_as_a_stream(tmp_path: Path) -> None:
    store = tmp_path / "store"
    journal = crashed(store)
    os.truncate(journal, 900 << 20)  # sparse zeros after the lines, below the size a journal may reach

    status = cli("status", "--store", str(store), limit_memory=768 << 20)

    assert status.returncode == 0, status.stderr
    assert run_states(store) == ["done"] * RUNS


def test_a_journal_name_linked_to_dev_zero_is_skipped(tmp_path: Path) -> None:
    store = tmp_path / "store"
    journal = crashed(store)
    link = journal.with_suffix(".1")
    link.symlink_to("/dev/zero")

    status = cli("status", "--store", str(store), limit_memory=2 << 30)

    assert status.returncode == 0, status.stderr
    assert link.name in status.stderr
    assert run_states(store) == ["done"] * RUNS  # the real journal is still replayed
    assert session_states(store) == ["interrupted"]


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_journal_name_that_is_not_a_file_never_blocks_the_store(tmp_path: Path, kind: str) -> None:
    store = tmp_path / "store"
    journal = crashed(store)
    odd = journal.with_suffix(".1")
    if kind == "folder":
        odd.mkdir()
    else:
        os.mkfifo(odd)

    status = cli("status", "--store", str(store))  # a subprocess: reading a FIFO would block for ever

    assert status.returncode == 0, status.stderr
    assert odd.name in status.stderr and "skipped" in status.stderr
    assert run_states(store) == ["done"] * RUNS
    assert session_states(store) == ["interrupted"]
    assert os.path.lexists(odd)  # left alone: not recorder's to remove
    again = cli("status", "--store", str(store))  # and the next opening is not blocked by it
    assert again.returncode == 0, again.stderr


# -- 3: a journal line naming an object that is not there ------------------------------------


def _object_of(journal: Path) -> str:
    import json

    for line in journal.read_bytes().rstrip(b"\0").splitlines():
        for _name, kind, value, _ in json.loads(line)[9]:
            if kind == "object":
                return value
    raise AssertionError("no object in the journal")


@pytest.mark.parametrize("how", ["missing", "link"])
def test_a_journaled_run_naming_a_missing_object_is_not_replayed(tmp_path: Path, how: str) -> None:
    store = tmp_path / "store"
    journal = crashed(store)
    digest = _object_of(journal)
    path = store / "objects" / digest[:2] / f"{digest[2:]}.npy"
    elsewhere = tmp_path / "elsewhere.npy"
    shutil.move(path, elsewhere)
    if how == "link":
        path.symlink_to(elsewhere)  # the right bytes, but outside the store

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Store.open(store, create=False).close()

    assert any(digest in str(w.message) for w in caught if issubclass(w.category, RecorderWarning))
    with sqlite3.connect(store / "recorder.sqlite") as conn:
        named = conn.execute("SELECT count(*) FROM objects WHERE digest = ?", (digest,)).fetchone()[0]
        done = conn.execute("SELECT count(*) FROM runs WHERE status = 'done'").fetchone()[0]
    assert named == 0  # no row points at an object that is not in the store
    assert done == RUNS - 1
