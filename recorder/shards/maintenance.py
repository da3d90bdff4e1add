"""Keeping a store sound: verify every object and reference, remove objects nothing refers to.

Both need the store itself, not just a read-only connection: ``verify``
reads every object file; ``gc`` deletes files and rows, and refuses while
a session is recording (a worker may have written an object whose row is
not committed yet), or starting, or a merge is writing (see
:class:`~recorder.objects.ObjectsLock`).

Neither follows a symbolic link found in ``objects/``: ``gc`` leaves links
alone and deletes only files named as recorder names them; ``verify``
reports every link.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
import time
import warnings
from pathlib import Path
from typing import Any, NamedTuple

from ..codec.npy import load_npy_bytes
from ..errors import ObjectError, ObjectOutsideStore, RecorderWarning, SessionRecording
from ..store.db import transaction
from ..store.folder import Store
from ..store.layout import JAX_CACHE, folder_files
from ..store.objects import (
    FILE_DTYPE,
    FOLDER_NAME,
    OBJECT_NAME,
    TEMP_NAME,
    ObjectsLock,
    ObjectStore,
    validate_digest,
)
from ..sweep.progress import Progress

__all__ = ["Problem", "verify", "GcReport", "gc"]

# Every reference to an object: results of runs (arrays, and files a run left in its folder), and config values.
_REFERENCES = """
SELECT x.value, lower(hex(r.id)), x.name FROM results AS x JOIN runs AS r ON r.pk = x.run
WHERE x.kind IN ('object', 'file')
UNION ALL
SELECT c.value, 'session ' || s.id, 'config ' || c.name FROM config AS c JOIN sessions AS s ON s.pk = c.session
WHERE c.kind = 'object'
"""
# Arrays kept in the cell itself (.npy bytes), which must decode.
_INLINE = """
SELECT x.kind, x.value, lower(hex(r.id)), x.name FROM results AS x JOIN runs AS r ON r.pk = x.run
WHERE x.kind IN ('npy', 'npyscalar')
UNION ALL
SELECT c.kind, c.value, 'session ' || s.id, 'config ' || c.name FROM config AS c JOIN sessions AS s ON s.pk = c.session
WHERE c.kind IN ('npy', 'npyscalar')
"""
_OBJECT_ROWS = "SELECT digest FROM objects"
_OBJECT_RECORDS = "SELECT digest, size, dtype, shape FROM objects"
_DELETE_OBJECT_ROW = "DELETE FROM objects WHERE digest = ?"
_RUNNING = "SELECT id, host, pid FROM sessions WHERE status = 'running'"
_TMP_AGE_S = 3600  # a temporary file this old is left over from a crash


class Problem(NamedTuple):
    """Something wrong in a store."""

    # "missing", "corrupt", "link", "malformed digest", "wrong size", "wrong shape", "wrong dtype",
    # "corrupt inline array", "no object row", "database"
    what: str
    digest: str | None
    run_id: str | None  # or "session <id>" for a config value
    name: str | None  # the result (or "config <name>")
    detail: str


class _Scan(NamedTuple):
    """What ``objects/`` holds, found without following a link."""

    files: list[tuple[Path, os.stat_result]]  # regular files in fan-out folders, with their lstat
    links: list[Path]  # symbolic links: objects/ itself, a fan-out folder, or a file


def _scan(root: Path) -> _Scan:
    """List ``objects/`` two levels deep without following a symbolic link anywhere."""
    files: list[tuple[Path, os.stat_result]] = []
    links: list[Path] = []
    try:
        if stat.S_ISLNK(os.lstat(root).st_mode):
            return _Scan(files, [root])
        top = list(os.scandir(root))
    except (FileNotFoundError, NotADirectoryError):
        return _Scan(files, links)
    for folder in sorted(top, key=lambda e: e.name):
        if folder.is_symlink():
            links.append(Path(folder.path))
            continue
        if not folder.is_dir(follow_symlinks=False):
            if folder.name.startswith(".tmp-file-") and folder.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):  # a run's file on its way in (put_file)
                    files.append((Path(folder.path), folder.stat(follow_symlinks=False)))
            continue
        try:
            entries = sorted(os.scandir(folder.path), key=lambda e: e.name)
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.is_symlink():
                links.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                try:
                    files.append((Path(entry.path), entry.stat(follow_symlinks=False)))
                except FileNotFoundError:
                    continue  # removed meanwhile (a temporary file renamed into place)
    return _Scan(files, links)


def _link_detail(path: Path) -> str:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return f"{path} is a symbolic link (to {target!r}); recorder never follows links out of a store: remove it"


def _link_of(objects: ObjectStore, digest: str) -> Path:
    """The link on the way to an object: ``objects/`` itself, its fan-out folder, or its file."""
    path = objects.path(digest)
    for candidate in (objects.root, path.parent):
        if candidate.is_symlink():
            return candidate
    return path


def _same_shape(recorded: Any, shape: tuple[int, ...]) -> bool:
    try:
        return bool(json.loads(recorded) == list(shape))
    except (TypeError, ValueError):
        return False


def _check_object(
    objects: ObjectStore, digest: str, user: tuple[str, str], record: tuple[Any, Any, Any] | None
) -> list[Problem]:
    """The problems of one referenced object: missing, a link, corrupt, or unlike its objects row."""
    run_id, name = user
    try:
        path = objects.file(digest)
    except ObjectOutsideStore as e:
        return [Problem("link", digest, run_id, name, str(e))]
    if not path.exists():
        return [Problem("missing", digest, run_id, name, f"{path} does not exist")]
    if not objects.verify(digest):
        return [Problem("corrupt", digest, run_id, name, f"{path} does not hash to its name")]
    if record is None:
        return [Problem("no object row", digest, run_id, name, "the objects table lacks it")]
    size, dtype, shape = record
    problems = []
    actual = path.stat().st_size
    if size != actual:
        problems.append(
            Problem(
                "wrong size", digest, run_id, name, f"the objects table records {size!r} bytes, the file has {actual}"
            )
        )
    if dtype == FILE_DTYPE:
        return problems  # a run's file: bytes verbatim, checked by their digest above
    try:
        array = objects.get(digest)
    except ObjectError as e:
        return [*problems, Problem("corrupt", digest, run_id, name, str(e))]
    if not _same_shape(shape, array.shape):
        problems.append(
            Problem(
                "wrong shape",
                digest,
                run_id,
                name,
                f"the objects table records shape {shape!r}, the file holds {list(array.shape)}",
            )
        )
    if dtype != array.dtype.str:
        problems.append(
            Problem(
                "wrong dtype",
                digest,
                run_id,
                name,
                f"the objects table records dtype {dtype!r}, the file holds {array.dtype.str!r}",
            )
        )
    return problems


def _check_inline(kind: str, value: Any) -> str | None:
    """Why an inline array cell does not decode, or None when it does."""
    try:
        array = load_npy_bytes(value)
        if kind == "npyscalar":
            array[()]
    except Exception as e:  # any failure of a hostile cell is a finding, never a crash
        return f"its {kind} value does not decode ({type(e).__name__}: {e})"
    return None


def verify(store: str | os.PathLike[str] | None = None, *, progress: bool | None = None) -> list[Problem]:
    """Re-hash every object and check every reference; return what is wrong (an empty list when sound).

    Beyond the hash: each object's recorded size, shape and dtype, every
    inline array, malformed digests, and symbolic links anywhere in ``objects/``.
    """
    problems: list[Problem] = []
    with Store.open(store, create=False) as opened:
        conn = opened.conn
        for (detail,) in conn.execute("PRAGMA quick_check"):
            if detail != "ok":
                problems.append(Problem("database", None, None, None, detail))
        for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check"):
            problems.append(Problem("database", None, None, None, f"{table} row {rowid} refers to a missing {parent}"))
        records = {digest: (size, dtype, shape) for digest, size, dtype, shape in conn.execute(_OBJECT_RECORDS)}
        users: dict[str, tuple[str, str]] = {}
        for digest, run_id, name in conn.execute(_REFERENCES):
            try:
                validate_digest(digest)
            except ObjectError:
                problems.append(
                    Problem(
                        "malformed digest",
                        None,
                        run_id,
                        name,
                        f"{digest!r} is not an object digest (64 lower-case hex digits)",
                    )
                )
                continue
            users.setdefault(digest, (run_id, name))
        for kind, value, run_id, name in conn.execute(_INLINE):
            why = _check_inline(kind, value)
            if why is not None:
                problems.append(Problem("corrupt inline array", None, run_id, name, why))
        objects = opened.objects
        bar = Progress(len(users), progress, "verify", unit="arrays")
        try:
            for digest, user in sorted(users.items()):
                problems += _check_object(objects, digest, user, records.get(digest))
                bar.add("done")
        finally:
            bar.close()
        # Links nothing refers to (a reference through one is reported above, with its run).
        reported = {_link_of(objects, p.digest) for p in problems if p.what == "link" and p.digest}
        for link in _scan(objects.root).links:
            if link not in reported:
                problems.append(Problem("link", None, None, None, _link_detail(link)))
    return problems


class GcReport(NamedTuple):
    """What :func:`gc` removed (or would remove, in a dry run)."""

    files: int
    bytes: int
    rows: int
    dry_run: bool
    #: Files and bytes of the JAX compile cache removed (``jax_cache=True``; else 0).
    cache_files: int = 0
    cache_bytes: int = 0


def gc(store: str | os.PathLike[str] | None = None, *, dry_run: bool = False, jax_cache: bool = False) -> GcReport:
    """Remove object files and rows that no result or config value refers to; report bytes freed.

    Temporary files left by a crash (older than an hour) go too. Only
    regular files named as recorder names them are removed; symbolic links
    are never followed nor removed (a warning says how many were left).
    It all happens while holding the store's write lock and the objects
    lock exclusively, so no session can start and no merge can decide or
    commit meanwhile.

    With ``jax_cache``, the store's compile cache (``jax-cache/``, JAX's
    compiled programs kept by ``vsweep(compile_cache=True)``) is emptied too:
    a later vsweep compiles again. Its files are removed without following
    any link; a ``jax-cache`` that is itself a link is left alone.

    :raises SessionRecording: while a session is recording in the store.
    :raises StoreBusy: while a session is starting or a merge is writing into the store.
    :raises ObjectOutsideStore: when ``objects/`` itself is a symbolic link.
    """
    with Store.open(store, create=False) as opened, transaction(opened.conn) as conn:
        # Never waits (so taking it inside the write transaction cannot deadlock): refuses instead.
        # Released before the commit, after the last deletion: a session or merge then finds the
        # deleted files gone and writes them again, and its rows wait for this commit.
        guard = ObjectsLock(opened.root, exclusive=True).acquire()
        try:
            report = _collect(opened, conn, dry_run)
        finally:
            guard.release()
        if jax_cache:
            files = folder_files(opened.root / JAX_CACHE)
            if not dry_run:
                _empty(opened.root / JAX_CACHE, files)
            report = report._replace(cache_files=len(files), cache_bytes=sum(size for _, size in files))
        return report


def _empty(folder: Path, files: list[tuple[Path, int]]) -> None:
    """Remove ``files`` (from :func:`folder_files`) and the folders under ``folder`` left empty; keep ``folder``."""
    for path, _ in files:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a link is removed itself, never what it points to
    for parent, _, _ in sorted(os.walk(folder, followlinks=False), key=lambda entry: -len(entry[0])):
        if Path(parent) != folder:
            with contextlib.suppress(OSError):  # not empty (written meanwhile): left
                os.rmdir(parent)


def _collect(opened: Store, conn: sqlite3.Connection, dry_run: bool) -> GcReport:
    """gc's work, inside its write transaction and holding the objects lock exclusively."""
    running = conn.execute(_RUNNING).fetchone()
    if running is not None:
        raise SessionRecording(
            f"session {running[0]} (on {running[1]}, pid {running[2]}) is recording in {opened.root}; "
            "run gc when it has ended (its workers may have written arrays not yet recorded)"
        )
    root = opened.objects.root
    scan = _scan(root)
    if scan.links == [root]:
        raise ObjectOutsideStore(
            f"{root} is a symbolic link (to {os.readlink(root)!r}); gc deletes only inside a store's own "
            "objects/ folder: move the folder it points to there, then run gc"
        )
    used = {digest for digest, _, _ in conn.execute(_REFERENCES)}
    now = time.time()
    doomed: list[tuple[Path, int]] = []
    for path, info in scan.files:
        if path.parent == root and path.name.startswith(".tmp-file-"):  # a run's file on its way in (put_file)
            if now - info.st_mtime > _TMP_AGE_S:
                doomed.append((path, info.st_size))
            continue
        if not FOLDER_NAME.fullmatch(path.parent.name):
            continue  # not a folder recorder made: not recorder's files
        if TEMP_NAME.fullmatch(path.name):  # a temporary file: only if a crash left it long ago
            if now - info.st_mtime > _TMP_AGE_S:
                doomed.append((path, info.st_size))
        elif OBJECT_NAME.fullmatch(path.name) and path.parent.name + path.name.removesuffix(".npy") not in used:
            doomed.append((path, info.st_size))
    stale_rows = [d for (d,) in conn.execute(_OBJECT_ROWS) if d not in used]
    if not dry_run:
        conn.executemany(_DELETE_OBJECT_ROW, [(d,) for d in stale_rows])
        for path, _ in doomed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    if scan.links:
        warnings.warn(
            f"gc left {len(scan.links)} symbolic link{'s' if len(scan.links) != 1 else ''} in {root} alone "
            f"(first: {scan.links[0]}); `recorder verify` lists them",
            RecorderWarning,
            stacklevel=3,
        )
    return GcReport(len(doomed), sum(size for _, size in doomed), len(stale_rows), dry_run)
