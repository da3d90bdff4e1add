"""Which sessions are alive: one lock file per session, held while it runs.

A session holds an exclusive ``flock`` on ``locks/<session id>.lock`` from
before its row is written until it closes. The kernel drops the lock when
the process dies, however it dies (SIGKILL included), so the next process
that opens the store can tell a live session from a dead one without any
heartbeat and mark the dead one's runs ``interrupted``.

``locks/`` is reached only through :func:`locks_folder`, which refuses it
when it is a symbolic link or not a folder: a store is untrusted input,
and a link there would let recovery replay and delete another store's
journals, or gc remove a file outside the store.
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import warnings
import weakref
from pathlib import Path

from ..errors import ObjectError, RecorderWarning, StoreError
from .db import transaction
from .ids import iso_utc
from .journal import journal_files, read_journal, valid_session_id
from .layout import OBJECTS, locks_folder
from .objects import ObjectStore
from .pending import PendingRun
from .spill import read_spills, remove_spills, spill_folders

try:
    import fcntl
except ImportError:  # Windows: no flock; dead sessions are then not detected
    fcntl = None  # type: ignore[assignment]

__all__ = ["SessionLock", "is_alive", "recover_stale"]

# Sessions of this process that are open: flock would let this process take
# its own lock again through another file descriptor on some file systems.
_LIVE_HERE: set[str] = set()
_LOCKS_HERE: weakref.WeakSet[SessionLock] = weakref.WeakSet()


def _forget_locks_in_child() -> None:
    """In a forked child, drop the inherited lock descriptors.

    Otherwise a child (a pool worker) that outlives its parent keeps the
    parent's dead session looking alive, and its journal is never replayed.
    """
    for lock in list(_LOCKS_HERE):
        lock._forget()
    _LIVE_HERE.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_locks_in_child)


_OPEN_SESSIONS = "SELECT pk, id, time_start, experiment FROM sessions WHERE status = 'running'"
_SESSION_STATUS = "SELECT status FROM sessions WHERE pk = ?"
_STATUS_OF_SESSION = "SELECT status FROM sessions WHERE id = ?"
_INTERRUPT_RUNS = "UPDATE runs SET status = 'interrupted' WHERE session = ? AND status = 'running'"
_INTERRUPT_SESSION = """
UPDATE sessions SET status = 'interrupted', time_end = ? WHERE pk = ? AND status = 'running'
"""
_JOURNAL_FILE = re.compile(r"([0-9a-f]{24})\.journal\.[0-9]+")


# Lock and journal files are opened without following a link at their own name either.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _remove_file(path: Path) -> None:
    """Remove ``path`` if it is a regular file; anything else there (a folder, a FIFO, a link) is not ours."""
    try:
        if stat.S_ISREG(os.lstat(path).st_mode):
            path.unlink(missing_ok=True)
    except FileNotFoundError:
        pass


class SessionLock:
    """The lock that shows a session is alive; take it before writing the session's row."""

    def __init__(self, root: Path, session_id: str) -> None:
        self.session_id = session_id
        self.path = locks_folder(root, create=True) / f"{session_id}.lock"
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(self._fd)
                raise
        _LIVE_HERE.add(session_id)
        _LOCKS_HERE.add(self)

    def _forget(self) -> None:
        """Close the descriptor without unlocking or removing anything (for forked children)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def touch(self) -> None:
        """Mark the session as seen alive now (the lock file's mtime is its last sign of life)."""
        if self._fd is None:
            return
        try:
            os.utime(self._fd if os.utime in os.supports_fd else self.path)  # the file held, not a path
        except OSError:
            return  # best effort: only the end time a crash recovery would report is affected

    def abandon(self) -> None:
        """Unlock without removing the file: the session is left for recovery by the next opening."""
        if self._fd is None:
            return
        _LIVE_HERE.discard(self.session_id)
        os.close(self._fd)
        self._fd = None

    def release(self) -> None:
        """Release the lock and remove its file (idempotent)."""
        if self._fd is None:
            return
        _LIVE_HERE.discard(self.session_id)
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None
        # Spill files of runs whose workers died (the others removed their own): every run is recorded now.
        remove_spills(self.path.parent, self.session_id)


def is_alive(root: Path, session_id: str) -> bool:
    """Return whether the session's process still holds its lock.

    A missing lock file means the session is gone: a live session keeps its
    file from before its row was written.
    """
    claim = _claim(locks_folder(root), session_id)
    if claim is None:
        return True
    if claim >= 0:
        os.close(claim)
    return False


def _claim(folder: Path, session_id: str) -> int | None:
    """Take a dead session's lock (in the checked ``locks/`` folder), so that one process alone recovers it.

    :returns: None when the session is alive (or another process is
        recovering it), -1 when it has no lock file (or something recorder
        never makes there: a link, a FIFO), else the descriptor holding its lock.
    """
    if session_id in _LIVE_HERE or fcntl is None:
        return None
    try:
        # O_RDONLY is enough for flock, even on another user's file; O_NONBLOCK: a FIFO never blocks the open.
        fd = os.open(folder / f"{session_id}.lock", os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return -1
    except OSError:
        return -1  # a link at the lock's name (ELOOP): no live session's lock
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return -1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def recover_stale(conn: sqlite3.Connection, root: Path) -> list[str]:
    """Finish the sessions whose process died: replay their journals, then mark them ``interrupted``.

    Runs the dead process had finished (in its journal, not yet committed)
    are written as they ended; runs it had in flight become ``interrupted``,
    with their series up to their last flush (:mod:`recorder.store.spill`).

    :returns: the ids of the sessions recovered.
    """
    folder = locks_folder(root)
    try:
        sessions = conn.execute(_OPEN_SESSIONS).fetchall()
    except sqlite3.Error as e:
        raise StoreError(f"cannot read the sessions of {root}: {e}") from e
    recovered = []
    for pk, sid, start, experiment in sessions:
        if not valid_session_id(sid):
            continue  # not written by recorder: never turn it into a path
        claim = _claim(folder, sid)
        if claim is None:
            continue  # alive, or being recovered by another process
        try:
            _recover(conn, folder, pk, sid, start, experiment)
        except sqlite3.Error as e:
            raise StoreError(f"cannot recover the crashed session {sid} of {root}: {e}") from e
        finally:
            if claim >= 0:
                os.close(claim)
        recovered.append(sid)
    try:
        _remove_given_up_journals(conn, folder)
    except sqlite3.Error as e:
        raise StoreError(f"cannot read the sessions of {root}: {e}") from e
    return recovered


def _remove_given_up_journals(conn: sqlite3.Connection, folder: Path) -> None:
    """Remove the journal files and series spill folders of sessions that have ended.

    A session whose journal the disk could not take (full) goes on without
    it, and no longer removes its file. Once the session has ended, every
    run in the file is in the database (or the session would still be
    ``running``, left for recovery), so the file only takes room. The same
    holds for a spill folder a dying pool worker made again after its
    session was recovered (see :mod:`recorder.store.spill`).
    """
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    for sid in spill_folders(names):
        row = conn.execute(_STATUS_OF_SESSION, (sid,)).fetchone()
        if row is not None and row[0] != "running":
            remove_spills(folder, sid)
    files: dict[str, list[str]] = {}
    for name in names:
        match = _JOURNAL_FILE.fullmatch(name)
        if match is not None:
            files.setdefault(match[1], []).append(name)
    for sid, names_of_session in files.items():
        row = conn.execute(_STATUS_OF_SESSION, (sid,)).fetchone()
        if row is None or row[0] == "running":
            continue  # alive or left for recovery; or not a session of this store: not ours to judge
        for name in names_of_session:
            _remove_file(folder / name)


def _recover(conn: sqlite3.Connection, folder: Path, pk: int, sid: str, start: str, experiment: int) -> None:
    """Replay a dead session's journal and mark it interrupted (its lock is held by the caller)."""
    from .writer import RunWriter

    if conn.execute(_SESSION_STATUS, (pk,)).fetchone()[0] != "running":
        return  # another process recovered it before this one took the lock
    objects = ObjectStore(folder.parent / OBJECTS)
    journaled = [run for run in read_journal(folder, sid) if _objects_present(run, objects)]
    # Runs killed mid-way, with their series up to their last flush; a run the journal has finished is as it says.
    ended = {run.id for run in journaled}
    journaled += [run for run in read_spills(folder, sid, objects) if run.id not in ended]
    if journaled:
        RunWriter(conn, experiment, pk, interval=0).replay(journaled)
    path = folder / f"{sid}.lock"
    try:
        last_seen = iso_utc(os.lstat(path).st_mtime)  # touched at every commit of the session
    except FileNotFoundError:
        last_seen = start
    with transaction(conn):
        conn.execute(_INTERRUPT_RUNS, (pk,))
        conn.execute(_INTERRUPT_SESSION, (max(last_seen, start), pk))
    # read_journal moved the regular files it could not read aside; what is not a file stays.
    for leftover in journal_files(folder, sid):
        _remove_file(leftover)
    remove_spills(folder, sid)
    _remove_file(path)


def _objects_present(run: PendingRun, objects: ObjectStore) -> bool:
    """Whether every object a journaled run names is in the store, as a file of its recorded size.

    A live run writes its objects before the run ends, so a missing one
    means the store was damaged or the line crafted: replaying it would
    leave a row naming nothing. Such a run is skipped with a warning.
    """
    for name, encoded in run.results.items():
        if encoded.kind != "object":
            continue
        digest = encoded.value
        try:
            info = os.lstat(objects.file(digest))  # file() refuses a link in objects/
            problem = (
                None
                if (stat.S_ISREG(info.st_mode) and encoded.object is not None and info.st_size == encoded.object[1])
                else ("is not a file of its recorded size")
            )
        except FileNotFoundError:
            problem = "is missing"
        except ObjectError as e:
            problem = f"cannot be reached ({e})"
        if problem is not None:
            warnings.warn(
                f"recorder: skipped run {run.id} of the journal of a crashed session: its result {name!r} "
                f"names object {digest}, which {problem} in {objects.root}",
                RecorderWarning,
                stacklevel=4,
            )
            return False
        objects.adopt(digest)  # its process may not have synced it: the replay does, before its commit
    return True
