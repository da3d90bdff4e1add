"""Series of a run in flight, made durable as they grow: one spill file per run, read back after a crash.

A run's series (``run.append(loss=x)``) live in memory and are stored as
results when the run ends. So that a run killed mid-way (SIGKILL, a crash,
the machine's OOM killer) keeps them, the values appended since the last
flush are appended to the run's spill file, ``locks/<session id>.series/<run
id>.spill``, at most every ``flush_interval`` seconds (the writer's
interval): at the first ``append`` at least that long after the previous
flush (with ``flush_interval=0``, every append). A flush is one ``write()``
of the new values, already binary (``array.array``, no numpy): in the
kernel's page cache when it returns, so it survives the process being
killed, SIGKILL included, as the session's journal does. It is not
``fsync``ed: that would make the run wait for the disk (milliseconds, more
on a busy machine) at every flush, for the one case of the machine itself
stopping. A run shorter than the interval never opens a file: a run with
no series, or a short one, pays nothing.

The file starts with :data:`MAGIC` and the run as a journal line (the
record :mod:`recorder.store.journal` writes, status ``interrupted``): what
recovery needs to write a row for a run that had none yet (a pool's runs
get their rows when they end). Then come frames, one per flush: ``SF``,
the length and the CRC-32 of its body; the body holds, for each series with
new values, a dtype code, the name's length, the count of values, the name
(UTF-8) and the values (little-endian int64 or float64). A frame is
complete or cut short, never rewritten, so every series of a run is read
back to the same flush.

The run's own process removes its file when the run ends (its series are
then results on their way to the database); a session that closes removes
its folder (files of workers that died). When the store is next opened
after the session's process died, recovery (:mod:`recorder.store.liveness`)
reads the files, stores each series as the normal path does (a 1-D array
``<name>_series`` and its last value ``<name>``) on the run, now
``interrupted``, and removes the folder. A run the journal has as finished
is written as the journal has it instead.

A spill file is untrusted input, read as strictly as a journal line: only
regular files (``O_NOFOLLOW``, never a FIFO), named ``<run id>.spill``, at
most :data:`MAX_FILE_BYTES` long, whose header is a valid journal record of
this session; names must be result names the run may take, dtype codes
known, lengths within the file (a series in a frame holds values), checksums
right. It is read in memory about its size, whatever it holds. A file that breaks a rule
is skipped with a :class:`~recorder.errors.RecorderWarning` naming it;
frames after a cut-short or corrupt one are dropped (a crash mid-flush
keeps the complete flushes before it).
"""

from __future__ import annotations

import array
import contextlib
import os
import re
import shutil
import stat
import struct
import sys
import warnings
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..codec.hashing import claim_names
from ..codec.values import DEFAULT_INLINE_LIMIT, Encoded, encode
from ..errors import RecorderError, RecorderWarning
from .journal import _UNREADABLE, _record, _run_of  # the journal's own line format and its checks
from .pending import PendingRun

if TYPE_CHECKING:
    from .objects import ObjectStore

__all__ = [
    "MAGIC",
    "MAX_FILE_BYTES",
    "SERIES_SUFFIX",
    "SpillFile",
    "read_spills",
    "remove_spills",
    "salvage",
    "spill_folder",
    "spill_folders",
]

#: The first bytes of a spill file (the format's version is in it).
MAGIC = b"RECORDER-SERIES-1\n"
#: The suffix of the array result of a series (``loss`` → ``loss_series``); its last value is ``loss``.
SERIES_SUFFIX = "_series"
#: The largest a spill file grows (2 GiB: 2.7·10^8 values); beyond it a run's series stay in memory only.
MAX_FILE_BYTES = 2 << 30
_MAX_HEADER = 1 << 20  # the run's journal line: its parameters, mainly
_FRAME = struct.Struct("<2sII")  # b"SF", body length, CRC-32 of the body
_FRAME_MAGIC = b"SF"
_ENTRY = struct.Struct("<BHI")  # dtype code, name length, value count
_DTYPES = {0: "<i8", 1: "<f8"}  # dtype code → numpy dtype
_TYPECODES = {"q": 0, "d": 1}  # array.array's typecode → dtype code
_BIG_ENDIAN = sys.byteorder == "big"
_FOLDER_SUFFIX = ".series"
_FOLDER = re.compile(r"([0-9a-f]{24})\.series")
_FILE = re.compile(r"([0-9a-f]{24})\.spill")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NOTE = "its process died while it ran; its series are stored up to their last flush"


def spill_folder(locks: str | os.PathLike[str], session_id: str) -> Path:
    """The folder of a session's spill files, in the store's (checked) ``locks/`` folder."""
    return Path(locks) / f"{session_id}{_FOLDER_SUFFIX}"


class SpillFile:
    """The spill file of one run in flight, written by the process running it.

    :param folder: the session's spill folder (see :func:`spill_folder`; made when missing).
    :param run: the run as recovery would write it (its results are not read).
    :raises OSError: when the file cannot be made (the run goes on without it).
    """

    def __init__(self, folder: Path, run: PendingRun) -> None:
        self.path = folder / f"{run.id}.spill"
        try:
            folder.mkdir()
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(folder).st_mode):  # a link or a file: never written through
                raise NotADirectoryError(f"{folder} is not a folder") from None
        header = MAGIC + _record(run)
        if len(header) > _MAX_HEADER:
            raise OSError(f"the run's parameters take more than {_MAX_HEADER} bytes")
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
        self._size = 0
        try:
            self._write(header)
        except BaseException:
            self.remove()
            raise

    def write(self, series: list[tuple[str, array.array[Any]]]) -> None:
        """Append one frame of ``(name, values)`` (an ``array.array`` of typecode ``q`` or ``d``).

        :raises OSError: when the disk refuses it, or the file would grow past :data:`MAX_FILE_BYTES`.
        """
        parts = []
        for name, values in series:
            name_bytes = name.encode("utf-8")
            if _BIG_ENDIAN:
                values = array.array(values.typecode, values)
                values.byteswap()
            parts += [_ENTRY.pack(_TYPECODES[values.typecode], len(name_bytes), len(values)), name_bytes]
            parts.append(values.tobytes())
        body = b"".join(parts)
        self._write(_FRAME.pack(_FRAME_MAGIC, len(body), zlib.crc32(body)) + body)

    def _write(self, data: bytes) -> None:
        fd = self._fd
        if fd is None:
            raise OSError("the spill file is closed")
        if self._size + len(data) > MAX_FILE_BYTES:
            raise OSError(f"a spill file is at most {MAX_FILE_BYTES} bytes")
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
            self._size += written

    def close(self) -> None:
        """Stop writing (idempotent): what was written stays for recovery."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def remove(self) -> None:
        """Close and remove the file (idempotent): the run ended, its series are results now."""
        self.close()
        with contextlib.suppress(OSError):  # else the folder goes when the session closes
            os.unlink(self.path)


def _skip(path: Path, problem: str) -> None:
    warnings.warn(
        f"recorder: skipped the series spill file {path}: {problem}; the series it held are not recovered",
        RecorderWarning,
        stacklevel=4,
    )


def _folder(locks: Path, session_id: str) -> Path | None:
    """The session's spill folder if it is a real folder (a link there is never entered)."""
    folder = spill_folder(locks, session_id)
    try:
        mode = os.lstat(folder).st_mode
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(mode):
        warnings.warn(
            f"recorder: {folder} is not a folder (a link, or a file), so the series spilled by the session "
            f"{session_id} are not recovered from it; recorder never follows a link out of a store",
            RecorderWarning,
            stacklevel=3,
        )
        return None
    return folder


def read_spills(locks: Path, session_id: str, objects: ObjectStore) -> list[PendingRun]:
    """The runs a dead session spilled series of, as ``interrupted`` runs holding their series as results.

    Each series becomes the results the normal path makes: its values as a
    1-D array ``<name>_series`` (int64 when every flush of it was, else float64;
    its ``.npy`` to ``objects`` when large) and its last value ``<name>``.
    Files that are not spill files of this session are skipped with a warning.

    :raises OSError: when the series cannot be stored (a full disk): the
        session is then left for the next recovery, its files kept.
    """
    folder = _folder(locks, session_id)
    if folder is None:
        return []
    runs = []
    with os.scandir(folder) as entries:
        names = sorted(entry.name for entry in entries)
    for name in names:
        path = folder / name
        match = _FILE.fullmatch(name)
        if match is None:
            _skip(path, "its name is not <run id>.spill")
            continue
        try:
            run, series = _read(path, match[1])
        except (OSError, *_UNREADABLE) as e:
            _skip(path, str(e) if not isinstance(e, OSError) else f"it cannot be read ({e.strerror or e})")
            continue
        if series:  # outside the try: a disk that refuses them is not a bad file
            run.error = _note(series)
            run.results.update(_results(series, objects))
            runs.append(run)
    return runs


def _note(series: dict[str, Any]) -> str:
    return f"{_NOTE} ({', '.join(f'{n}: {len(v)} values' for n, v in series.items())})"


def _results(series: dict[str, Any], objects: ObjectStore) -> dict[str, Encoded]:
    """Series as the results the normal path makes: ``<name>_series`` (the array) and ``<name>`` (its last value)."""
    results = {}
    for name, values in series.items():
        results[name] = encode(name, values[-1].item(), objects)
        results[name + SERIES_SUFFIX] = encode(name + SERIES_SUFFIX, values, objects, inline_limit=DEFAULT_INLINE_LIMIT)
    return results


def salvage(locks: Path, session_id: str, run_id: str, objects: ObjectStore) -> tuple[dict[str, Encoded], str] | None:
    """The series a run whose worker process died had spilled, as results and a note for its error; None when none.

    For the sweeping process, which records such a run ``interrupted`` while
    its session goes on. The file is read as strictly as recovery reads one
    (a bad one is skipped with a warning) and removed.
    """
    folder = _folder(locks, session_id)  # a link there is never entered: nothing read or removed through it
    if folder is None:
        return None
    path = folder / f"{run_id}.spill"
    try:
        _, series = _read(path, run_id)
    except FileNotFoundError:
        return None
    except (OSError, *_UNREADABLE) as e:
        _skip(path, str(e) if not isinstance(e, OSError) else f"it cannot be read ({e.strerror or e})")
        return None
    if not series:
        return None
    found = _results(series, objects), _note(series)
    with contextlib.suppress(OSError):
        os.unlink(path)
    return found


class _Bad(ValueError):
    """A spill file that recorder did not write: skipped."""


def _read(path: Path, run_id: str) -> tuple[PendingRun, dict[str, Any]]:
    """One spill file: its run and its series (name → values), or :class:`_Bad` when it is not one."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        if os.path.islink(path):
            raise _Bad("it is a symbolic link") from None
        raise e
    with os.fdopen(fd, "rb", buffering=0) as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _Bad("it is not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise _Bad(f"it is {info.st_size} bytes long, more than a spill file ever is ({MAX_FILE_BYTES})")
        size = info.st_size
        head = file.read(min(size, _MAX_HEADER + len(MAGIC)))
        if not head.startswith(MAGIC):
            raise _Bad("it does not start as a spill file")
        end = head.find(b"\n", len(MAGIC))
        if end < 0:
            raise _Bad("its header is cut short")
        run = _run_of(head[len(MAGIC) : end])
        if run.id != run_id:
            raise _Bad(f"it holds run {run.id}, not the run its name says")
        if run.status != "interrupted" or run.results:
            raise _Bad("its header is not a run in flight")
        file.seek(end + 1)
        series = _frames(path, file, size - end - 1, dict.fromkeys(p.lower() for p in run.names or ()))
    return run, series


def _frames(path: Path, file: Any, left: int, params: dict[str, None]) -> dict[str, Any]:
    """The series in the frames of a spill file, up to the first frame cut short or corrupt.

    :raises _Bad: for a frame whose checksum holds but whose content recorder never writes.
    """
    import numpy as np

    taken = {key: key for key in params}  # the run's parameters: no series may take their names
    # Each series' values so far, as bytes (int64 until a flush of floats, then float64): no object per
    # entry, so that reading a file takes memory in proportion to its size (a file of a million one-value
    # flushes took ten times its size as as many arrays; a crafted one, more).
    parts: dict[str, tuple[bool, bytearray]] = {}
    while left > 0:
        head = file.read(_FRAME.size)
        if len(head) < _FRAME.size:
            _cut(path, "a frame's header is cut short")
            break
        magic, length, crc = _FRAME.unpack(head)
        if magic != _FRAME_MAGIC or length > left - _FRAME.size:
            _cut(path, "a frame is cut short, or not a frame")
            break
        body = file.read(length)
        if len(body) < length or zlib.crc32(body) != crc:
            _cut(path, "a frame's checksum is wrong (cut short by a crash)")
            break
        left -= _FRAME.size + length
        at = 0
        while at < length:
            if length - at < _ENTRY.size:
                raise _Bad("a frame ends inside a series' header")
            code, name_length, count = _ENTRY.unpack_from(body, at)
            at += _ENTRY.size
            if code not in _DTYPES:
                raise _Bad(f"a series has the unknown dtype code {code}")
            if name_length + 8 * count > length - at:
                raise _Bad(f"a series claims {count} values, more than its frame holds")
            if count == 0:
                raise _Bad("a series holds no values in a frame (recorder writes a series only with new values)")
            try:
                name = body[at : at + name_length].decode("utf-8")
            except UnicodeDecodeError:
                raise _Bad("a series name is not UTF-8") from None
            at += name_length
            part = parts.get(name)
            if part is None:
                try:
                    claim_names("result", (name, name + SERIES_SUFFIX), taken)
                except RecorderError as e:
                    raise _Bad(f"series name {name!r:.80}: {e}") from None
                part = parts[name] = (False, bytearray())
            floats, data = part
            values = memoryview(body)[at : at + 8 * count]
            if code == 1 and not floats:  # the first flush of floats: the ints before become floats too
                data = bytearray(np.frombuffer(data, dtype="<i8").astype("<f8").tobytes())
                parts[name] = (True, data)
            elif code == 0 and floats:
                values = memoryview(np.frombuffer(values, dtype="<i8").astype("<f8").tobytes())
            data += values
            at += 8 * count
    series = {}
    for name, (floats, data) in parts.items():
        # As the normal path: int64 when every flush was, else float64; native order.
        series[name] = np.frombuffer(data, dtype="<f8" if floats else "<i8").astype(
            np.float64 if floats else np.int64, copy=False
        )
    return series


def _cut(path: Path, problem: str) -> None:
    warnings.warn(
        f"recorder: the series spill file {path} ends early ({problem}); the complete flushes before it are kept",
        RecorderWarning,
        stacklevel=5,
    )


def remove_spills(locks: Path, session_id: str) -> None:
    """Remove a session's spill folder, if it is a real folder (a link there is left alone, never followed)."""
    folder = spill_folder(locks, session_id)
    try:
        if stat.S_ISDIR(os.lstat(folder).st_mode):
            shutil.rmtree(folder, ignore_errors=True)  # rmtree removes links inside, never follows them
    except FileNotFoundError:
        pass


def spill_folders(names: list[str]) -> dict[str, str]:
    """Among the names in ``locks/``, the spill folders: session id → name."""
    found = {}
    for name in names:
        match = _FOLDER.fullmatch(name)
        if match is not None:
            found[match[1]] = name
    return found
