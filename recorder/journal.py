"""Runs on their way to the database, and the per-session journal that keeps them safe.

The writer commits finished runs in batches (see :mod:`recorder.writer`).
Until a run's batch is committed, the run is also appended, as one line of
JSON, to a journal file of its session in ``locks/`` (through a shared
memory map: the line is in the kernel's page cache as soon as it is
copied). It survives the process being killed (SIGKILL included), and the
next process that opens the store replays the journal of a dead session
into the database. A journal file is
removed once every run in it is committed; a clean session leaves none.
"""

from __future__ import annotations

import base64
import errno
import json
import mmap
import os
import re
import warnings
import weakref
from pathlib import Path
from typing import Any

from .errors import JournalError, RecorderWarning
from .values import Encoded

__all__ = ["PendingRun", "Journal", "read_journal", "journal_files", "valid_session_id"]

_SESSION_ID = re.compile(r"[0-9a-f]{24}")
_SEGMENT_BYTES = 1 << 20  # a journal file's first size; it doubles when full


def valid_session_id(session_id: object) -> bool:
    """Return whether a session id is safe to build a file name from (24 lower-case hex digits)."""
    return type(session_id) is str and _SESSION_ID.fullmatch(session_id) is not None


class PendingRun:
    """A run on its way to the database."""

    __slots__ = (
        "id", "pset_hash", "canonical", "seed", "t0", "status", "duration", "error",
        "comment", "results", "result_comments", "output", "pk", "names", "scalars", "scalar_names",
    )

    def __init__(
        self, id: str, pset_hash: str, canonical: str, seed: int, t0: float, names: tuple[str, ...] | None = None
    ) -> None:
        self.id = id
        self.pset_hash = pset_hash
        self.canonical = canonical
        self.seed = seed
        self.t0 = t0
        self.status = "running"
        self.duration: float | None = None
        self.error: str | None = None
        self.comment: str | None = None
        self.results: dict[str, Encoded] = {}
        self.result_comments: dict[str, str] | None = None
        #: Captured output as ``(digest, text)``, when the run's output was captured.
        self.output: tuple[str, str] | None = None
        #: Row key once a row of this run is committed.
        self.pk: int | None = None
        #: The parameter names (read from ``canonical`` when not given).
        self.names = names
        #: Results that are all plain numbers, as their ``runs.scalars`` JSON, made by a serial
        #: sweep instead of ``results`` (which then stays empty); ``scalar_names`` are their names.
        self.scalars: str | None = None
        self.scalar_names: tuple[str, ...] | None = None


_encode_json = json.JSONEncoder(separators=(",", ":")).encode


def _cell(value: Any) -> Any:
    return {"b": base64.b64encode(value).decode("ascii")} if type(value) is bytes else value


def _uncell(value: Any) -> Any:
    return base64.b64decode(value["b"]) if isinstance(value, dict) else value


def _record(run: PendingRun) -> bytes:
    results = [[n, e.kind, _cell(e.value), e.object] for n, e in run.results.items()]
    if run.scalars is not None:  # plain numbers: each is stored as Encoded(None, number) would be
        results += [[n, None, v, None] for n, v in json.loads(run.scalars).items()]
    record = [
        run.id, run.pset_hash, run.canonical, run.seed, run.t0, run.status, run.duration,
        run.error, run.comment, results, run.result_comments, run.output,
    ]
    return (_encode_json(record) + "\n").encode()


def _run_of(line: bytes) -> PendingRun:
    (id_, hash_, canonical, seed, t0, status, duration, error, comment, results,
     result_comments, output) = json.loads(line)
    run = PendingRun(id_, hash_, canonical, seed, t0)
    run.status, run.duration, run.error, run.comment = status, duration, error, comment
    run.results = {n: Encoded(k, _uncell(v), tuple(o) if o else None) for n, k, v, o in results}
    run.result_comments = result_comments
    run.output = tuple(output) if output else None  # type: ignore[assignment]
    return run


def journal_files(folder: Path, session_id: str) -> list[Path]:
    """Return a session's journal files, oldest first."""
    files = folder.glob(f"{session_id}.journal.*")
    return sorted(files, key=lambda p: int(p.suffix[1:]) if p.suffix[1:].isdigit() else -1)


def read_journal(folder: Path, session_id: str) -> list[PendingRun]:
    """Return the runs journaled by a session, in order; a line cut short by a crash is ignored."""
    runs = []
    for path in journal_files(folder, session_id):
        content = path.read_bytes().rstrip(b"\0")  # the unused end of the file is zeros
        for line in content.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # the process died inside this write: the run was never reported finished
            try:
                runs.append(_run_of(line))
            except (ValueError, TypeError, KeyError) as e:
                warnings.warn(
                    f"recorder: skipped an unreadable line of the journal {path} ({e}); "
                    "the run it held is not recovered",
                    RecorderWarning,
                    stacklevel=2,
                )
    return runs


_JOURNALS_HERE: weakref.WeakSet[Journal] = weakref.WeakSet()


def _reserve(fd: int, start: int, length: int) -> None:
    """Give bytes ``start`` to ``start + length`` of a file real disk blocks (the file grows to hold them).

    A mapped page without a block behind it is only allocated when it is
    first written; on a full disk that write kills the process with SIGBUS.
    Reserved first, a full disk is an ``OSError`` here instead.
    """
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, start, length)
        return
    zeros = bytes(min(length, 1 << 16))  # no posix_fallocate (macOS): writing the zeros allocates them
    end = start + length
    while start < end:
        start += os.pwrite(fd, zeros[: end - start], start)


def _cause(error: OSError) -> str:
    """The reason an ``OSError`` gives, said plainly when the disk is full."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk is full ({error.strerror})"
    if error.errno == errno.EFBIG:
        return f"the file size limit is reached ({error.strerror})"
    return error.strerror or str(error)


class _Segment:
    """One journal file, written through a shared memory map.

    Appending is a memory copy, not a system call: it never gives up
    Python's interpreter lock (which would make the recording thread wait
    for the writer thread), and the bytes are in the kernel's page cache at
    once, so they survive the process being killed. The file is made larger
    than its content, its blocks reserved before they are mapped; unused
    bytes are zeros, which readers ignore.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            self._size = _SEGMENT_BYTES
            _reserve(self._fd, 0, self._size)
            self._map = mmap.mmap(self._fd, self._size)
        except BaseException:
            os.close(self._fd)
            path.unlink(missing_ok=True)  # it holds nothing yet
            raise
        self._end = 0

    def append(self, line: bytes) -> None:
        """Copy a line after the last; :raises OSError: when the file cannot grow to hold it."""
        end = self._end + len(line)
        if end > self._size:
            size = max(2 * self._size, end)
            _reserve(self._fd, self._size, size - self._size)
            self._map.resize(size)
            self._size = size
        self._map[self._end : end] = line
        self._end = end

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


class Journal:
    """The journal files of one open session; used by its writer only.

    When the disk cannot take a journal file, the journal is unavailable:
    :meth:`append` raises :class:`~recorder.errors.JournalError` (an
    ``OSError``), and the writer goes on without it (runs are still
    committed; only the protection against a crash is lost).
    """

    def __init__(self, folder: Path, session_id: str) -> None:
        self._folder = folder
        self._session_id = session_id
        self._number = 0
        self._segment: _Segment | None = None
        self._retired: list[Path] = []
        #: Why there is no file to append to (None while there is one, or in a forked child).
        self._failure: OSError | None = None
        try:
            self._segment = _Segment(self._path(0))
        except OSError as e:
            self._failure = e  # reported by the first append, which the writer turns into a warning
        _JOURNALS_HERE.add(self)

    def _forget(self) -> None:
        """In a forked child: close the inherited map, never write or remove anything."""
        if self._segment is not None:
            self._segment.close()
            self._segment = None
        self._retired = []
        self._failure = None

    def _path(self, number: int) -> Path:
        return self._folder / f"{self._session_id}.journal.{number}"

    def _error(self, run: PendingRun, path: Path, error: OSError) -> JournalError:
        return JournalError(
            f"run {run.id} cannot be kept in the journal of session {self._session_id} ({path}): {_cause(error)}"
        )

    def append(self, run: PendingRun) -> None:
        """Write one finished run (a line ending in a newline: a kill never leaves a line that looks whole).

        :raises JournalError: when the journal cannot take the run (a full
            disk); the run itself is still queued for the database.
        """
        segment = self._segment
        if segment is None:
            if self._failure is None:
                raise OSError("the journal belongs to the parent process")
            raise self._error(run, self._path(self._number), self._failure)
        try:
            segment.append(_record(run))
        except OSError as e:
            raise self._error(run, segment.path, e) from e

    def rotate(self) -> None:
        """Start a new file; the current one holds the batch about to be committed."""
        if self._segment is None:
            return
        number = self._number + 1
        try:
            new: _Segment | None = _Segment(self._path(number))
        except OSError as e:
            new, self._failure = None, e  # the next append reports it
        old, self._segment = self._segment, new
        self._retired.append(old.path)
        self._number = number
        old.close()

    def committed(self) -> None:
        """Remove the files rotated out so far: every run in them is in the database."""
        for path in self._retired:
            path.unlink(missing_ok=True)
        self._retired.clear()

    def close(self) -> None:
        """Close and remove the journal (call once everything is committed)."""
        segment, self._segment = self._segment, None
        if segment is not None:
            segment.close()
            self._retired.append(segment.path)
        self.committed()


def _forget_journals_in_child() -> None:
    for journal in list(_JOURNALS_HERE):
        journal._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_journals_in_child)
