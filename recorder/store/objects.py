"""Content-addressed array store: ``objects/ab/cdef….npy`` named by SHA-256.

An object is a canonical ``.npy`` file (C order, the header ``numpy.save``
writes), named by the SHA-256 of its bytes. Files are written to a temp
file in the same folder and renamed into place, so a file under its final
name is always complete; an existing digest is never rewritten (dedup).
Several processes may put the same array at the same time: each writes its
own temp file and the renames are atomic.

A run's file (see :func:`recorder.current_run`) is an object too: its bytes
verbatim (:meth:`ObjectStore.put_file`), named by their SHA-256 under the
same ``ab/cdef….npy`` name (the suffix is the store's one object name, not a
promise of the format: its ``objects`` row has the dtype ``file``). An
``.npy`` file a run wrote is then the same object as the array it holds.

A store is untrusted input: nothing here follows a symbolic link inside
``objects/`` (or ``objects/`` itself being one) out of the store; such a
link is refused with :class:`~recorder.errors.ObjectOutsideStore`.

:class:`ObjectsLock` makes "an object a row is about to name" and "an
object nothing names, which gc may delete" exclusive: writers of such rows
(a session starting, a merge) hold it shared from writing or finding the
objects until their rows are committed, ``gc`` holds it exclusively.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import stat
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..codec.npy import c_order, data_view, npy_header
from ..errors import FileRefused, ObjectError, ObjectOutsideStore, StoreBusy, StoreError
from .layout import OBJECTS_LOCK, locks_folder

try:
    import fcntl
except ImportError:  # Windows: no flock; gc is then not kept from racing a merge
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    import numpy as np

__all__ = [
    "ObjectStore",
    "ObjectsLock",
    "FILE_DTYPE",
    "validate_digest",
    "OBJECT_NAME",
    "TEMP_NAME",
    "defer_sync",
    "deferring",
    "end_deferral",
    "make_durable",
    "unsynced",
]

_DIGEST = re.compile(r"[0-9a-f]{64}")
_TMP_PREFIX = ".tmp-"
#: The names recorder gives files under ``objects/``: fan-out folder, object file, temp files.
FOLDER_NAME = re.compile(r"[0-9a-f]{2}")
OBJECT_NAME = re.compile(r"[0-9a-f]{62}\.npy")
TEMP_NAME = re.compile(r"\.(?:tmp|merge)-.+")
#: The dtype of a run's file in the ``objects`` table: its bytes stored verbatim, not an array.
FILE_DTYPE = "file"
#: The lock file of :class:`ObjectsLock`, in the store's ``locks/`` folder (see liveness).
#: How long a session start or a merge waits for a gc to finish.
LOCK_WAIT_S = 60.0


#: Arrays of at least this many bytes are hashed in a helper thread while they are written.
_HASH_IN_THREAD = 1 << 20
#: Objects written and not yet synced, at most, before a put waits for the oldest (bounds open descriptors).
_MAX_UNSYNCED = 64
#: A stored object older than this (seconds) is on disk: the kernel writes dirty pages back within 30 s.
_RECENT_S = 600.0
#: Threads that run fsync: concurrent fsyncs share the disk's cache flushes, serial ones pay one each.
_SYNC_THREADS = 4


def _write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write less than asked)."""
    view = memoryview(data)
    while view.nbytes:
        view = view[os.write(fd, view) :]


def _discard(tmp: Path, fd: int) -> None:
    """Close and remove a temporary file that does not become an object."""
    os.close(fd)
    tmp.unlink(missing_ok=True)


def _fsync(fd: int, path: str) -> None:
    """Flush a file to disk: ``fd`` (closed after), or ``path`` opened for it when ``fd`` is -1."""
    if fd < 0:
        if os.name == "nt":  # fsync needs write access there, and run files are read-only
            return
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(path: str) -> None:
    """Flush a folder's entries to disk (a renamed object's name); a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (PermissionError, IsADirectoryError):  # Windows: renames are durable with the file
        return
    _fsync(fd, path)


class _Hasher:
    """One helper thread per process that hashes a large array while the putting thread writes it."""

    def __init__(self) -> None:
        self._busy = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def start(self, digest: Any, data: memoryview) -> Future[None] | None:
        """Hash ``data`` into ``digest`` in the helper thread; None when it is busy (hash with :meth:`finish`)."""
        if not self._busy.acquire(blocking=False):
            return None
        try:
            pool = self._pool
            if pool is None:
                from concurrent.futures import ThreadPoolExecutor

                pool = self._pool = ThreadPoolExecutor(1, thread_name_prefix="recorder-hash")
            return pool.submit(digest.update, data)
        except BaseException:
            self._busy.release()
            raise

    def finish(self, hashed: Future[None] | None, digest: Any, data: memoryview) -> Any:
        """Wait for :meth:`start`'s hash (or hash here when it returned None); return ``digest``."""
        if hashed is None:
            digest.update(data)
            return digest
        try:
            hashed.result()
        finally:
            self._busy.release()
        return digest

    def stop(self) -> None:
        """End the helper thread (before a fork); the next large put starts another."""
        with self._busy:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


class _Durability:
    """Objects this process renamed into place and has not yet made durable, synced by a few threads.

    Each object's file is fsync'd in the background as soon as it is
    placed; :meth:`wait` waits for them, then fsyncs their folders (each
    once, all at the same time: the disk flushes its cache once for them).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the lists below
        self._wait_lock = threading.Lock()  # one waiter at a time: a second one waits for the first's files
        self._files: list[tuple[Future[None], str]] = []
        self._folders: set[str] = set()
        # What could not be synced: kept for good, so that every later wait raises and no commit naming such
        # an object goes ahead (a failed fsync may have dropped the data, and a retry can "succeed" without it).
        self._failed: list[str] = []
        self._pool: ThreadPoolExecutor | None = None
        self.deferring: weakref.WeakSet[Any] = weakref.WeakSet()

    def add(self, fd: int, path: str, folder: str, parent: str | None) -> None:
        """Have the object at ``path`` (open as ``fd``, or -1) synced, with ``folder`` (and ``parent``)."""
        with self._lock:
            pool = self._pool
            if pool is None:
                from concurrent.futures import ThreadPoolExecutor

                pool = self._pool = ThreadPoolExecutor(_SYNC_THREADS, thread_name_prefix="recorder-sync")
            self._files.append((pool.submit(_fsync, fd, path), path))
            self._folders.add(folder)
            if parent is not None:
                self._folders.add(parent)
            oldest = self._files[0][0] if len(self._files) > _MAX_UNSYNCED else None
        if oldest is not None:  # the disk is behind: wait for it rather than hold ever more files open
            with contextlib.suppress(OSError):  # reported by wait()
                oldest.result()
            with self._lock:
                self._files = [f for f in self._files if not f[0].done() or f[0].exception() is not None]

    def count(self) -> int:
        """Files and folders waiting for :meth:`wait`."""
        with self._lock:
            return len(self._files) + len(self._folders)

    def wait(self, *, parallel: bool = True) -> None:
        """Return once every object placed so far is durable (its file and its name).

        :param parallel: sync the folders in the threads, all at once; false
            before a fork, where no new work may be given to a thread pool
            (``concurrent.futures`` holds its lock for the fork then).
        :raises ObjectError: naming the objects that could not be synced.
        """
        if not (self._files or self._folders or self._failed or self._wait_lock.locked()):
            return  # nothing written since the last wait, nor being synced by another waiter
        with self._wait_lock:
            with self._lock:
                files, self._files = self._files, []
                folders, self._folders = self._folders, set()
            failed: list[str] = []
            for future, path in files:
                try:
                    future.result()
                except OSError as e:
                    failed.append(f"{path} ({e})")
            pool = self._pool if parallel else None
            ordered = sorted(folders)
            syncs = [pool.submit(_fsync_folder, f) if pool is not None else None for f in ordered]
            for sync, folder in zip(syncs, ordered):
                try:
                    if sync is None:
                        _fsync_folder(folder)
                    else:
                        sync.result()
                except OSError as e:
                    failed.append(f"{folder} ({e})")
            with self._lock:
                self._failed.extend(failed)
                failed = list(self._failed)
        if failed:
            raise ObjectError(
                f"cannot write {len(failed)} object file(s) or folder(s) to disk: {'; '.join(failed[:3])}; "
                "the runs naming them are not committed; check the disk (full, failing, or removed), then start "
                "the process again"
            )

    def stop(self) -> None:
        """Make everything durable and end the threads (before a fork); the next put starts them again."""
        with contextlib.suppress(ObjectError):  # kept in _failed: every later wait (the commit's) raises it
            self.wait(parallel=False)
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def forget(self) -> None:
        """In a forked child: the parent's objects are the parent's to sync; nothing is deferred here."""
        self._lock = threading.Lock()
        self._wait_lock = threading.Lock()
        self._files = []
        self._folders = set()
        self._failed = []
        self._pool = None
        self.deferring = weakref.WeakSet()


_HASHER = _Hasher()
_DURABILITY = _Durability()


def defer_sync(owner: object) -> None:
    """Let objects this process writes be made durable in the background until ``owner`` ends it.

    ``owner`` (a session's run writer) promises to call :func:`make_durable`
    before it commits a row naming an object, and :func:`end_deferral`
    when it is closed (or to be garbage-collected). A process that sends
    its objects' digests to another one (a pool's worker) defers nothing:
    its puts return durable objects.
    """
    _DURABILITY.deferring.add(owner)


def end_deferral(owner: object) -> None:
    """Undo :func:`defer_sync` for ``owner`` (after its last :func:`make_durable`)."""
    _DURABILITY.deferring.discard(owner)


def deferring() -> bool:
    """Whether puts in this process leave the syncing to :func:`make_durable` (see :func:`defer_sync`)."""
    return len(_DURABILITY.deferring) > 0


def unsynced() -> int:
    """How many object files and folders this process has written and :func:`make_durable` has not yet synced."""
    return _DURABILITY.count()


def make_durable() -> None:
    """Return once every object this process has written is on disk, its file and its folder's entry.

    Called before a commit that may name objects; costs a lock and a look
    when there is nothing to sync.

    :raises ObjectError: when a file or folder could not be synced (the disk failed).
    """
    _DURABILITY.wait()


def _before_fork() -> None:
    _HASHER.stop()
    _DURABILITY.stop()


def _in_child() -> None:
    global _HASHER
    _HASHER = _Hasher()
    _DURABILITY.forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_in_child)


def validate_digest(digest: object) -> str:
    """Return ``digest`` if it is 64 lower-case hex digits, else raise :class:`ObjectError`.

    Checked before a digest is ever turned into a path, so that a value read
    from a store cannot point outside ``objects/``.
    """
    if type(digest) is not str or not _DIGEST.fullmatch(digest):
        raise ObjectError(f"{digest!r} is not an object digest (64 lower-case hex digits)")
    return digest


class ObjectStore:
    """The ``objects/`` folder of a store.

    :param root: the ``objects`` folder; created on the first :meth:`put`.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        # Fan-out folders seen to be real folders: checked once per instance, not per put.
        self._real_folders: set[str] = set()
        self._root_checked = False  # objects/ made and seen not to be a link

    def path(self, digest: str) -> Path:
        """Return the path of an object (which may not exist); the file system is not touched."""
        validate_digest(digest)
        return self.root / digest[:2] / f"{digest[2:]}.npy"

    def _check_folder(self, folder: Path) -> None:
        """Refuse ``objects/`` or a fan-out folder that is a symbolic link (or not a folder).

        A missing folder passes: nothing can be read through it, and
        :meth:`put` creates it as a real folder.
        """
        if folder.name in self._real_folders:
            return
        for path in (self.root, folder):
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                return
            if stat.S_ISLNK(mode):
                raise ObjectOutsideStore(
                    f"{path} is a symbolic link (to {os.readlink(path)!r}); recorder never follows a link "
                    "out of a store's objects/ folder: replace it with the folder it points to, or remove it"
                )
            if not stat.S_ISDIR(mode):
                raise ObjectError(f"{path} is not a folder; a store's objects/ holds only folders of objects")
        self._real_folders.add(folder.name)

    def file(self, digest: str) -> Path:
        """Return the path of an object after checking that it is not reached through a symbolic link.

        :raises ObjectError: when the digest is invalid.
        :raises ObjectOutsideStore: when ``objects/``, the object's folder or
            the object itself is a symbolic link.
        """
        path = self.path(digest)
        self._check_folder(path.parent)
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                raise ObjectOutsideStore(
                    f"object {digest} at {path} is a symbolic link (to {os.readlink(path)!r}); recorder never "
                    "follows a link out of a store: remove the link (run `recorder verify` to list them)"
                )
        except FileNotFoundError:
            pass
        return path

    def folder(self, digest: str) -> Path:
        """Create (if needed) and return the real folder an object goes in.

        :raises ObjectOutsideStore: when it, or ``objects/``, is a symbolic link.
        """
        folder = self.path(digest).parent
        self._check_folder(folder)
        if folder.name not in self._real_folders:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ObjectError(f"cannot create {folder}: {e}") from e
            self._check_folder(folder)  # created now: a real folder, unless something raced it in
        return folder

    def put(self, array: Any) -> tuple[str, int]:
        """Store an array and return ``(digest, size_in_bytes)`` of its ``.npy`` file.

        Writing a digest that exists already is a no-op (the bytes written
        meanwhile are dropped). The file is complete under its final name
        before this returns; it is durable (on disk, with its folder's entry)
        before this returns too, unless a session of this process commits
        the rows (see :func:`defer_sync`): then it is made durable in the
        background, and :func:`make_durable` waits for it before any row
        naming it commits.

        A large array is hashed in a helper thread while this one writes it
        to a temporary file (both release Python's interpreter lock), and
        the file is renamed to its digest's name only once both are done: a
        temporary file is never taken as an object.

        :raises ObjectOutsideStore: when the object's folder is a symbolic link.
        """
        import numpy as np

        array = c_order(np.asarray(array))
        if array.dtype.hasobject:
            raise ObjectError(f"arrays of dtype {array.dtype} hold Python objects and cannot be stored")
        header = npy_header(array)
        data = data_view(array)
        size = len(header) + data.nbytes
        digest = hashlib.sha256(header)
        if data.nbytes < _HASH_IN_THREAD:
            # Small: hash first, so that a stored one is found before anything is written.
            digest.update(data)
            name = digest.hexdigest()
            if self._stored(name, size):
                return name, size
            tmp, fd = self._temp()
            try:
                _write_all(fd, header)
                _write_all(fd, data)
            except OSError as e:
                _discard(tmp, fd)
                raise ObjectError(f"cannot write object {name} under {self.root}: {e}") from e
        else:
            tmp, fd = self._temp()
            hashed = _HASHER.start(digest, data)  # None when another thread hashes now: here, then
            try:
                _write_all(fd, header)
                _write_all(fd, data)
            except OSError as e:
                _discard(tmp, fd)
                name = _HASHER.finish(hashed, digest, data).hexdigest()
                raise ObjectError(f"cannot write object {name} under {self.root}: {e}") from e
            except BaseException:
                _discard(tmp, fd)
                _HASHER.finish(hashed, digest, data)
                raise
            name = _HASHER.finish(hashed, digest, data).hexdigest()
            try:
                stored = self._stored(name, size)
            except BaseException:
                _discard(tmp, fd)
                raise
            if stored:
                _discard(tmp, fd)  # found stored: the bytes written meanwhile go, unsynced
                return name, size
        self._place(tmp, fd, name)
        return name, size

    def _stored(self, name: str, size: int) -> bool:
        """Whether object ``name`` is stored with ``size`` bytes (a truncated file is written again).

        A stored object may be another process's, just renamed and not yet
        on disk: it is made durable like one written here.
        """
        final = self.path(name)
        self._check_folder(final.parent)
        try:
            info = os.lstat(final)  # a link there is replaced, never followed
        except FileNotFoundError:
            return False
        if not (stat.S_ISREG(info.st_mode) and info.st_size == size):
            return False
        if deferring():
            _DURABILITY.add(-1, str(final), str(final.parent), None)  # in the background: costs nothing here
        elif time.time() - info.st_ctime < _RECENT_S:
            _DURABILITY.add(-1, str(final), str(final.parent), None)
            make_durable()
        return True

    def adopt(self, digest: str) -> None:
        """Have an object another process wrote made durable by the next :func:`make_durable`.

        For the rows of a dead process (its journal): it may have renamed
        its objects into place without syncing them.

        :raises ObjectOutsideStore: when the object is reached through a symbolic link.
        """
        path = self.file(digest)
        _DURABILITY.add(-1, str(path), str(path.parent), str(self.root))

    def _temp(self) -> tuple[Path, int]:
        """Create a temporary file in ``objects/`` (made if needed); return its path and descriptor.

        Its name (``.tmp-file-…``) is never an object's, so whatever a
        crash leaves of it is never read as one; gc removes it once old.
        """
        if not self._root_checked:
            self._check_folder(self.root / "00")  # refuses objects/ being a link
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ObjectError(f"cannot create {self.root}: {e}") from e
            self._root_checked = True
        tmp = self.root / f"{_TMP_PREFIX}file-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileNotFoundError:
            self._root_checked = False  # objects/ was removed meanwhile: made again
            return self._temp()
        except OSError as e:
            raise ObjectError(f"cannot create a temporary file in {self.root}: {e}") from e
        return tmp, fd

    def _place(self, tmp: Path, fd: int, name: str) -> None:
        """Rename a complete temporary file to object ``name`` and have it made durable (see :meth:`put`)."""
        folder = self.path(name).parent
        try:
            created = self._make_folder(folder)
            os.replace(tmp, folder / f"{name[2:]}.npy")
        except BaseException as e:
            _discard(tmp, fd)
            if isinstance(e, OSError):
                raise ObjectError(f"cannot write object {name} under {folder}: {e}") from e
            raise
        _DURABILITY.add(fd, str(folder / f"{name[2:]}.npy"), str(folder), str(self.root) if created else None)
        if not deferring():
            make_durable()

    def _make_folder(self, folder: Path) -> bool:
        """Create (if needed) the real fan-out folder ``folder``; return whether it was created now."""
        if folder.name in self._real_folders:
            return False
        self._check_folder(folder)
        created = False
        if folder.name not in self._real_folders:
            try:
                folder.mkdir()
                created = True
            except FileExistsError:
                pass
            except OSError as e:
                raise ObjectError(f"cannot create {folder}: {e}") from e
            self._check_folder(folder)  # created now: a real folder, unless something raced it in
        return created

    def put_file(self, source: str | os.PathLike[str], *, max_bytes: int | None = None) -> tuple[str, int]:
        """Store a file's bytes verbatim (read once, hashed while copied) and return ``(digest, size)``.

        Durable as :meth:`put` says.

        :param max_bytes: refuse a file larger than this.
        :raises OSError: when the file cannot be read.
        :raises FileRefused: when it is larger than ``max_bytes``.
        :raises ObjectError: when it cannot be written here.
        """
        digest = hashlib.sha256()
        size = 0
        # O_NOFOLLOW: a file swapped for a link meanwhile is not followed out of the run's folder.
        source_fd = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(source_fd, "rb") as file:
            tmp, fd = self._temp()
            try:
                for chunk in iter(lambda: file.read(1 << 20), b""):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise FileRefused(
                            f"{source} holds more than max_file_bytes={max_bytes} bytes; raise the limit or write less"
                        )
                    digest.update(chunk)
                    try:
                        _write_all(fd, chunk)
                    except OSError as e:
                        raise ObjectError(f"cannot copy {source} into {self.root}: {e}") from e
                os.fchmod(fd, 0o444)  # a run's file, as db.file() gives it: read-only
                name = digest.hexdigest()
                stored = self._stored(name, size)
            except BaseException:
                _discard(tmp, fd)
                raise
        if stored:
            _discard(tmp, fd)
        else:
            self._place(tmp, fd, name)
        return name, size

    def get(self, digest: str, *, mmap: bool = True) -> np.ndarray:
        """Load an object; memory-mapped read-only by default, never unpickling.

        :raises ObjectError: when the digest is invalid or the file is missing.
        :raises ObjectOutsideStore: when the object is reached through a symbolic link.
        """
        import numpy as np

        path = self.file(digest)
        try:
            array: np.ndarray
            if mmap:
                try:
                    array = np.load(path, mmap_mode="r", allow_pickle=False)
                except ValueError:
                    # An empty array cannot be memory-mapped; reading it costs nothing.
                    array = np.load(path, allow_pickle=False)
            else:
                array = np.load(path, allow_pickle=False)
            return array
        except FileNotFoundError as e:
            raise ObjectError(
                f"object {digest} is missing from {self.root}; run `recorder verify` to list what else is missing"
            ) from e
        except ValueError as e:
            raise ObjectError(f"object {digest} is not a readable .npy file: {e}") from e

    def exists(self, digest: str) -> bool:
        """Return whether the object file exists (its content is not checked).

        :raises ObjectOutsideStore: when the object is reached through a symbolic link.
        """
        return self.file(digest).exists()

    def verify(self, digest: str) -> bool:
        """Return whether the object exists and its bytes hash to its digest.

        :raises ObjectOutsideStore: when the object is reached through a symbolic link.
        """
        path = self.file(digest)
        digest_now = hashlib.sha256()
        try:
            with open(path, "rb") as file:
                for chunk in iter(lambda: file.read(1 << 20), b""):
                    digest_now.update(chunk)
        except FileNotFoundError:
            return False
        return digest_now.hexdigest() == digest

    def lock(self, *, exclusive: bool = False) -> ObjectsLock:
        """Return the store's :class:`ObjectsLock` (not yet taken)."""
        return ObjectsLock(self.root.parent, exclusive=exclusive)


class ObjectsLock:
    """The lock between rows about to name objects and gc deleting unnamed ones (``locks/objects.lock``).

    Shared (a session starting, a merge, an extract): taken before the
    objects are written or found to exist, released once the rows naming
    them are committed; waits up to :data:`LOCK_WAIT_S` for a gc. Exclusive
    (gc): taken before gc decides what is unused, released after it deleted;
    never waits, so gc refuses while a session starts or a merge runs.
    The last holder out removes the file, so a store keeps none. Costs a few
    system calls per session start, merge or gc, never per run. Use it as a
    context manager, or :meth:`acquire` / :meth:`release`.

    :param store_root: the store's folder (``objects/``'s parent).
    """

    def __init__(self, store_root: str | os.PathLike[str], *, exclusive: bool = False) -> None:
        self._store_root = Path(store_root)
        self.path = self._store_root / OBJECTS_LOCK
        self.exclusive = exclusive
        self._fd: int | None = None

    def acquire(self, *, wait: float = LOCK_WAIT_S) -> ObjectsLock:
        """Take the lock (idempotent).

        :raises StoreBusy: when another process holds it in the way (gc for a
            shared lock, after ``wait`` seconds; anyone for the exclusive one).
        :raises LinkInStore: when the store's ``locks/`` is a symbolic link or not a folder.
        :raises StoreError: when the lock file cannot be created.
        """
        if self._fd is not None:
            return self
        deadline = time.monotonic() + wait
        while True:
            fd = self._open()
            if fcntl is None:
                break
            try:
                self._flock(fd, deadline)
                # The last holder out removes the file (see release): a lock taken on a
                # removed file keeps no one out; take the new file's instead.
                info = os.fstat(fd)
                try:
                    now = os.lstat(self.path)
                    same = (now.st_dev, now.st_ino) == (info.st_dev, info.st_ino)
                except FileNotFoundError:
                    same = False
            except BaseException:
                os.close(fd)
                raise
            if same:
                break
            os.close(fd)
        self._fd = fd
        return self

    def _open(self) -> int:

        try:
            locks_folder(self._store_root, create=True)  # refuses a link out of the store (LinkInStore)
            # O_NOFOLLOW: a link planted at the lock's name is refused, not followed.
            return os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as e:
            raise StoreError(f"cannot create the lock file {self.path}: {e}") from e

    def _flock(self, fd: int, deadline: float) -> None:
        assert fcntl is not None
        if self.exclusive:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreBusy(
                    f"a session is starting or a merge is writing into {self.path.parent.parent}; "
                    "run gc again when it has finished"
                ) from None
            return
        pause = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreBusy(
                        f"gc is removing objects from {self.path.parent.parent} and has not finished in time; "
                        "try again when it has finished"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.05)

    def release(self) -> None:
        """Release the lock (idempotent); the last holder out removes its file, so a store keeps no lock file."""

        if self._fd is None:
            return
        try:
            if fcntl is not None:
                # Exclusive now only when no one else holds it (a failed try may drop a shared
                # lock: it is being released anyway).
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locks_folder(self._store_root)  # still no link on the way: nothing is removed through one
                if stat.S_ISREG(os.lstat(self.path).st_mode):
                    self.path.unlink(missing_ok=True)
        except (OSError, StoreError):
            pass  # held by another process (BlockingIOError), a read-only folder, or a link now: it stays
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ObjectsLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
