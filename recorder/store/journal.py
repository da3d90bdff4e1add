"""Runs on their way to the database, and the per-session journal that keeps them safe.

The writer commits finished runs in batches (see :mod:`recorder.writer`).
Until a run's batch is committed, the run is also appended, as one line of
JSON, to a journal file of its session in ``locks/`` (through a shared
memory map: the line is in the kernel's page cache as soon as it is
copied). It survives the process being killed (SIGKILL included), and the
next process that opens the store replays the journal of a dead session
into the database. A journal file is
removed once every run in it is committed; a clean session leaves none.

A journal file is read as untrusted input: only a regular file (never
through a link), at most :data:`MAX_FILE_BYTES` long (the writer never
makes one longer), read as a stream up to its unused zeros. A file that
is not one is skipped with a warning naming it and never keeps the store
from opening; a regular one is kept beside, as ``<name>.bad``.
"""

from __future__ import annotations

import base64
import errno
import json
import mmap
import os
import re
import stat
import warnings
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from ..codec.canonical import INT64_MAX, INT64_MIN, canonical_pset, read_json
from ..codec.hashing import (
    PSET_HASH_LENGTH,
    claim_names,
    is_utf8,
    pset_hash,
    text_digest,
)
from ..codec.npy import NPY_MAGIC
from ..codec.values import Encoded
from ..errors import JournalError, RecorderError, RecorderWarning
from .objects import validate_digest
from .pending import PendingRun

__all__ = ["BadLine", "Journal", "read_journal", "journal_files", "valid_session_id"]

_SESSION_ID = re.compile(r"[0-9a-f]{24}")  # run ids too (see recorder.ids)
_PSET_HASH = re.compile(f"[0-9a-f]{{{PSET_HASH_LENGTH}}}")
_FIELDS = 17  # items of a journal line (see _record)
# Lines of earlier versions: before runs had a host, pid and pset_seq (14 items), and before that a
# function and a rerun_of (12): the missing items are read as None.
_OLD_FIELDS = (12, 14)
_PID_LIMIT = 2**32  # process ids are positive 32-bit numbers (on every system recorder runs on)
_HOST_BYTES = 255  # the longest host name (POSIX HOST_NAME_MAX, DNS names)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ENDED = frozenset({"done", "failed", "interrupted"})  # a run is journaled when it ends
_SEED_LIMIT = 2**31  # seeds are 31 bits (see recorder.hashing.run_seed)
_NUMPY_KIND = re.compile(r"np:[<>|=][biuf][0-9]{1,2}")  # a numpy number's dtype (see recorder.values)
_BIG_INT = re.compile(r"-?[0-9]+")
_OBJECT_DTYPE = re.compile(r"[<>|=]?[A-Za-z][A-Za-z0-9\[\],]{0,31}")  # a dtype's str (object store rows)
_SEGMENT_BYTES = 1 << 20  # a journal file's first size; it doubles when full
#: The largest a journal file grows (1 GiB: 20,000 queued runs of 50 kB each); beyond it the writer goes
#: on without its journal, and a reader skips a longer file unread (a sparse or crafted one).
MAX_FILE_BYTES = 1024 * _SEGMENT_BYTES
_READ_BYTES = 1 << 20  # read this much at a time: a journal is never held whole in memory
_JOURNAL_NAME = r"\.journal\.[0-9]+"  # after the session id; never ``….bad``, a file set aside
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def valid_session_id(session_id: object) -> bool:
    """Return whether a session id is safe to build a file name from (24 lower-case hex digits)."""
    return type(session_id) is str and _SESSION_ID.fullmatch(session_id) is not None


_encode_json = json.JSONEncoder(separators=(",", ":")).encode


def _cell(value: Any) -> Any:
    return {"b": base64.b64encode(value).decode("ascii")} if type(value) is bytes else value


def _record(run: PendingRun) -> bytes:
    results = [[n, e.kind, _cell(e.value), e.object] for n, e in run.results.items()]
    if run.scalars is not None:  # plain numbers: each is stored as Encoded(None, number) would be
        results += [[n, None, v, None] for n, v in read_json(run.scalars).items()]
    record = [
        run.id,
        run.pset_hash,
        run.canonical,
        run.seed,
        run.t0,
        run.status,
        run.duration,
        run.error,
        run.comment,
        results,
        run.result_comments,
        run.output,
        run.function,
        run.rerun_of,
        run.host,
        run.pid,
        run.pset_seq,
    ]
    return (_encode_json(record) + "\n").encode()


class BadLine(ValueError):
    """A journal line that is not a run recorder wrote: it is skipped, never replayed."""


# What reading a line may raise: whatever it holds, a line never keeps the store from opening.
_UNREADABLE = (ValueError, TypeError, LookupError, AttributeError, ArithmeticError, RecursionError, RecorderError)


def _text(what: str, value: Any, *, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if type(value) is not str or not is_utf8(value):
        raise BadLine(f"{what} {value!r:.80} is not text")
    return value


def _number(what: str, value: Any) -> float:
    if type(value) not in (int, float) or value - value != 0:  # bools, NaN and ±inf refused
        raise BadLine(f"{what} {value!r:.80} is not a finite number")
    number: float = value
    return number


def _blob(what: str, value: Any) -> bytes:
    if type(value) is not dict or list(value) != ["b"] or type(value["b"]) is not str:
        raise BadLine(f"{what} {value!r:.80} is not a base64 cell")
    try:
        return base64.b64decode(value["b"], validate=True)
    except ValueError as e:
        raise BadLine(f"{what} is not valid base64: {e}") from None


def _value(name: str, kind: Any, value: Any, obj: Any) -> Encoded:
    """Check one result cell as :func:`recorder.values.encode` makes them; return it decoded from JSON."""
    what = f"result {name!r}"
    if kind != "object" and obj is not None:
        raise BadLine(f"{what} of kind {kind!r} names an object")
    if kind is None:
        if value is None or (type(value) is str and is_utf8(value)):
            return Encoded(None, value)
        if type(value) is int and INT64_MIN <= value <= INT64_MAX:
            return Encoded(None, value)
        if type(value) is float and value == value:  # NaN has its own kind
            return Encoded(None, value)
    elif type(kind) is not str:
        pass
    elif kind == "nan":
        if value is None:
            return Encoded(kind, None)
    elif kind == "bool":
        if type(value) is int and value in (0, 1):
            return Encoded(kind, value)
    elif kind == "int":
        if type(value) is str and _BIG_INT.fullmatch(value):
            return Encoded(kind, value)
    elif kind == "json":
        if type(value) is str and is_utf8(value):
            try:
                json.loads(value)
            except (ValueError, RecursionError):
                raise BadLine(f"{what} of kind 'json' is not JSON") from None
            return Encoded(kind, value)
    elif kind == "bytes":
        return Encoded(kind, _blob(what, value))
    elif kind in ("npy", "npyscalar"):
        blob = _blob(what, value)
        if blob.startswith(NPY_MAGIC):
            return Encoded(kind, blob)
    elif kind == "object":
        digest = validate_digest(value)
        if type(obj) is not list or len(obj) != 4:
            raise BadLine(f"{what} names no object row (digest, size, dtype, shape)")
        if (
            obj[0] != digest
            or type(obj[1]) is not int
            or not 0 <= obj[1] <= INT64_MAX
            or type(obj[2]) is not str
            or not _OBJECT_DTYPE.fullmatch(obj[2])
            or not _shape(obj[3])
        ):
            raise BadLine(f"{what}: the object row {obj!r:.200} does not describe the array {digest}")
        return Encoded(kind, digest, tuple(obj))
    elif _NUMPY_KIND.fullmatch(kind):
        if value is None or (type(value) is int and INT64_MIN <= value <= INT64_MAX):
            return Encoded(kind, value)
        if type(value) is float and value == value:
            return Encoded(kind, value)
        if type(value) is str and _BIG_INT.fullmatch(value):  # a uint64 beyond int64
            return Encoded(kind, value)
    else:
        raise BadLine(f"{what} has the unknown kind {kind!r:.80}")
    raise BadLine(f"{what}: {value!r:.80} is not a value of kind {kind!r:.80}")


def _shape(text: Any) -> bool:
    """Whether ``text`` is the JSON of an array's shape (a list of sizes)."""
    if type(text) is not str:
        return False
    try:
        shape = json.loads(text)
    except ValueError:
        return False
    return type(shape) is list and all(type(n) is int and n >= 0 for n in shape)


def _run_of(line: bytes) -> PendingRun:
    """Read one journal line, checked as strictly as a live run is.

    :raises BadLine: (or another ``ValueError``, or a :class:`RecorderError`)
        for anything :func:`_record` does not write.
    """
    try:
        record = json.loads(line.decode("utf-8"))  # decoded first: json.loads would guess UTF-16/32 from NULs
    except ValueError:
        raise BadLine("not a journal record (not JSON text)") from None
    if type(record) is not list or (len(record) != _FIELDS and len(record) not in _OLD_FIELDS):
        raise BadLine(f"not a list of {_FIELDS} items")
    record += [None] * (_FIELDS - len(record))
    (
        id_,
        hash_,
        canonical,
        seed,
        t0,
        status,
        duration,
        error,
        comment,
        results,
        result_comments,
        output,
        function,
        rerun_of,
        host,
        pid,
        pset_seq,
    ) = record
    if type(id_) is not str or not _SESSION_ID.fullmatch(id_):
        raise BadLine(f"run id {id_!r:.80} is not 24 lower-case hex digits")
    if type(canonical) is not str:
        raise BadLine(f"parameters {canonical!r:.80} are not JSON text")
    params = read_json(canonical)
    if type(params) is not dict:
        raise BadLine(f"parameters {canonical!r:.80} are not a JSON object")
    if canonical_pset(params)[1] != canonical:  # checks the names and values too
        raise BadLine(f"parameters {canonical!r:.80} are not canonical JSON")
    if type(hash_) is not str or not _PSET_HASH.fullmatch(hash_) or hash_ != pset_hash(canonical):
        raise BadLine(f"pset hash {hash_!r:.80} is not the hash of its parameters")
    if type(seed) is not int or not 0 <= seed < _SEED_LIMIT:
        raise BadLine(f"seed {seed!r:.80} is not a 31-bit int")
    _number("start time", t0)
    if status not in _ENDED:
        raise BadLine(f"status {status!r:.80} is not one a run ends with ({', '.join(sorted(_ENDED))})")
    if duration is not None and _number("duration", duration) < 0:
        raise BadLine(f"duration {duration!r} is negative")
    if function is not None and (type(function) is not int or not 1 <= function <= INT64_MAX):
        raise BadLine(f"function {function!r:.80} is not a row key (an int ≥ 1)")
    if rerun_of is not None and (type(rerun_of) is not str or not _SESSION_ID.fullmatch(rerun_of)):
        raise BadLine(f"rerun_of {rerun_of!r:.80} is not a run id (24 lower-case hex digits)")
    if host is not None and (
        type(host) is not str
        or not 0 < len(host) <= _HOST_BYTES
        or not is_utf8(host)
        or _CONTROL.search(host) is not None
    ):
        raise BadLine(f"host {host!r:.80} is not a host name (1 to {_HOST_BYTES} printable characters)")
    if pid is not None and (type(pid) is not int or not 0 < pid < _PID_LIMIT):
        raise BadLine(f"pid {pid!r:.80} is not a process id (an int from 1 to {_PID_LIMIT - 1})")
    if pset_seq is not None and (type(pset_seq) is not int or not 0 <= pset_seq <= INT64_MAX):
        raise BadLine(f"pset_seq {pset_seq!r:.80} is not a position in a sweep (an int ≥ 0)")
    run = PendingRun(id_, hash_, canonical, seed, t0, tuple(params), function, pset_seq)
    run.rerun_of = rerun_of
    run.host, run.pid = host, pid  # None from a line written before runs had them: unknown
    run.status, run.duration = status, duration
    run.error, run.comment = _text("error", error), _text("comment", comment)
    if type(results) is not list:
        raise BadLine(f"results {results!r:.80} are not a list")
    taken = {name.lower(): name for name in params}
    for item in results:
        if type(item) is not list or len(item) != 4:
            raise BadLine(f"result {item!r:.80} is not [name, kind, value, object]")
        name = item[0]
        claim_names("result", (name,), taken)  # valid, not reserved, not a parameter's, not twice
        run.results[name] = _value(name, *item[1:])
    if result_comments is not None:
        if type(result_comments) is not dict or not result_comments.keys() <= run.results.keys():
            raise BadLine(f"result comments {result_comments!r:.80} are not comments on its results")
        for name, text in result_comments.items():
            _text(f"comment on {name!r}", text, optional=False)
        run.result_comments = result_comments
    if output is not None:
        if type(output) is not list or len(output) != 2:
            raise BadLine(f"output {output!r:.80} is not [digest, text]")
        digest, text = validate_digest(output[0]), _text("output", output[1], optional=False)
        if text_digest(text) != digest:  # type: ignore[arg-type]
            raise BadLine(f"output digest {digest} is not the digest of its text")
        run.output = (digest, text)  # type: ignore[assignment]
    return run


def journal_files(folder: Path, session_id: str) -> list[Path]:
    """Return a session's journal files (whatever is at their names), oldest first."""
    name = re.compile(re.escape(session_id) + _JOURNAL_NAME)
    files = [p for p in folder.glob(f"{session_id}.journal.*") if name.fullmatch(p.name)]
    return sorted(files, key=lambda p: int(p.suffix[1:]))


def _skip_file(path: Path, problem: str, *, set_aside: bool) -> None:
    """Warn that a journal file is not read; a regular one is renamed ``<name>.bad`` for the user."""
    kept = ""
    if set_aside:
        aside = path.with_name(f"{path.name}.bad")
        try:
            os.replace(path, aside)
            kept = f"; it is kept as {aside.name}"
        except OSError:
            pass  # left where it is: recovery does not remove what it could not read
    warnings.warn(
        f"recorder: skipped the journal file {path}: {problem}; the runs it held are not recovered{kept}",
        RecorderWarning,
        stacklevel=4,
    )


def _open_journal(path: Path) -> BinaryIO | None:
    """Open a journal file for reading, or warn and return None when it is not one recorder wrote.

    Never through a link (``O_NOFOLLOW``), never blocking on a FIFO
    (``O_NONBLOCK``); a regular file only, at most :data:`MAX_FILE_BYTES` long.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None  # removed meanwhile: nothing to recover from it
    except OSError as e:
        link = os.path.islink(path)
        _skip_file(
            path,
            "it is a symbolic link" if link else f"it cannot be read ({e.strerror})",
            set_aside=not link and os.path.isfile(path),
        )
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            _skip_file(path, "it is not a regular file", set_aside=False)
        elif info.st_size > MAX_FILE_BYTES:
            _skip_file(
                path,
                f"it is {info.st_size} bytes long, more than a journal file ever is ({MAX_FILE_BYTES})",
                set_aside=True,
            )
        else:
            fd, file = -1, os.fdopen(fd, "rb", buffering=0)
            return file
        return None
    finally:
        if fd >= 0:
            os.close(fd)


def _lines(file: BinaryIO) -> Iterator[bytes]:
    """The whole lines of a journal file, without their newlines, read a piece at a time.

    The file's unused end is zeros, which are not lines: a piece of zeros is
    only counted, never kept (a sparse file costs no memory), and zeros
    followed by more bytes stand in the line they are in as one NUL (no
    line recorder writes holds one: JSON escapes it). What follows the last
    newline is a line a crash cut short, and is not returned.
    """
    pieces: list[bytes] = []
    zeros = False  # pieces of zeros read since the last bytes that were not zeros
    while chunk := file.read(_READ_BYTES):
        if chunk.count(0) == len(chunk):
            zeros = True
            continue
        if zeros:
            pieces.append(b"\0")
            zeros = False
        start = 0
        while (newline := chunk.find(b"\n", start)) >= 0:
            pieces.append(chunk[start:newline])
            yield b"".join(pieces)
            pieces = []
            start = newline + 1
        pieces.append(chunk[start:])


def read_journal(folder: Path, session_id: str) -> list[PendingRun]:
    """Return the runs journaled by a session, in order.

    A line cut short by a crash (the last, without its newline) is ignored:
    its run was never reported finished. Any other line that is not a run
    as recorder writes it (garbage, a bad id, name, kind or digest, a run
    twice) is skipped with a :class:`RecorderWarning` naming the file and
    the line; the others are kept.
    """
    runs = []
    seen: dict[str, str] = {}  # run id → where it was read
    for path in journal_files(folder, session_id):
        file = _open_journal(path)
        if file is None:
            continue
        with file:
            runs += _runs_of_file(path, file, seen)
    return runs


def _runs_of_file(path: Path, file: BinaryIO, seen: dict[str, str]) -> list[PendingRun]:
    """The runs of one journal file (see :func:`read_journal`); ``seen`` gathers their ids."""
    runs = []
    try:
        for number, line in enumerate(_lines(file), 1):
            try:
                run = _run_of(line)
                if run.id in seen:
                    raise BadLine(f"run {run.id} is journaled already, on {seen[run.id]}")
            except _UNREADABLE as e:
                warnings.warn(
                    f"recorder: skipped unreadable line {number} of the journal {path}: {e}; the run it held is not recovered",
                    RecorderWarning,
                    stacklevel=3,
                )
                continue
            seen[run.id] = f"line {number} of {path.name}"
            runs.append(run)
    except OSError as e:  # the disk fails under the file: keep the runs read so far
        warnings.warn(
            f"recorder: stopped reading the journal {path} after {len(runs)} runs: {e.strerror or e}; "
            "the runs after them are not recovered",
            RecorderWarning,
            stacklevel=3,
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
            if end > MAX_FILE_BYTES:  # a reader skips a longer file: it cannot be one recorder wrote
                raise OSError(errno.EFBIG, f"a journal file is at most {MAX_FILE_BYTES} bytes")
            size = min(max(2 * self._size, end), MAX_FILE_BYTES)
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
