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

import hashlib
import os
import re
import secrets
import stat
import time
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
    import numpy as np

__all__ = [
    "ObjectStore",
    "ObjectsLock",
    "FILE_DTYPE",
    "validate_digest",
    "OBJECT_NAME",
    "TEMP_NAME",
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

        Writing a digest that exists already is a no-op. The file is complete
        under its final name before this returns, so a database row may then
        reference it.

        :raises ObjectOutsideStore: when the object's folder is a symbolic link.
        """
        import numpy as np

        array = c_order(np.asarray(array))
        if array.dtype.hasobject:
            raise ObjectError(f"arrays of dtype {array.dtype} hold Python objects and cannot be stored")
        header = npy_header(array)
        data = data_view(array)
        digest = hashlib.sha256(header)
        digest.update(data)
        name = digest.hexdigest()
        size = len(header) + data.nbytes
        final = self.path(name)
        folder = final.parent
        self._check_folder(folder)
        try:
            info = os.lstat(final)  # a link there is replaced below, never followed
            stored = info.st_size if stat.S_ISREG(info.st_mode) else -1
        except FileNotFoundError:
            stored = -1
        if stored == size:
            return name, size  # stored already (dedup); a truncated file is written again
        if folder.name not in self._real_folders:
            self.folder(name)
        tmp = folder / f"{_TMP_PREFIX}{name[2:10]}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            with open(tmp, "xb") as file:
                file.write(header)
                file.write(data)
                file.flush()
                # On disk before any row can name it: even a power cut leaves no row
                # pointing at an empty file.
                os.fsync(file.fileno())
            os.replace(tmp, final)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise ObjectError(f"cannot write object {name} under {folder}: {e}") from e
        return name, size

    def put_file(self, source: str | os.PathLike[str], *, max_bytes: int | None = None) -> tuple[str, int]:
        """Store a file's bytes verbatim (read once, hashed while copied) and return ``(digest, size)``.

        :param max_bytes: refuse a file larger than this.
        :raises OSError: when the file cannot be read.
        :raises FileRefused: when it is larger than ``max_bytes``.
        :raises ObjectError: when it cannot be written here.
        """
        folder_tmp = self.root / f"{_TMP_PREFIX}file-{os.getpid()}-{secrets.token_hex(4)}"
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_folder(self.root / "00")
        digest = hashlib.sha256()
        size = 0
        # O_NOFOLLOW: a file swapped for a link meanwhile is not followed out of the run's folder.
        fd = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        try:
            with os.fdopen(fd, "rb") as file, open(folder_tmp, "xb") as out:
                fd = -1
                for chunk in iter(lambda: file.read(1 << 20), b""):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise FileRefused(
                            f"{source} holds more than max_file_bytes={max_bytes} bytes; raise the limit or write less"
                        )
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(folder_tmp, 0o444)  # a run's file, as db.file() gives it: read-only
            name = digest.hexdigest()
            final = self.path(name)
            try:
                info = os.lstat(final)
                stored = info.st_size if stat.S_ISREG(info.st_mode) else -1
            except FileNotFoundError:
                stored = -1
            if stored != size:
                self.folder(name)
                os.replace(folder_tmp, final)
        finally:
            if fd >= 0:
                os.close(fd)
            folder_tmp.unlink(missing_ok=True)
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
