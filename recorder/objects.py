"""Content-addressed array store: ``objects/ab/cdef….npy`` named by SHA-256.

An object is a canonical ``.npy`` file (C order, the header ``numpy.save``
writes), named by the SHA-256 of its bytes. Files are written to a temp
file in the same folder and renamed into place, so a file under its final
name is always complete; an existing digest is never rewritten (dedup).
Several processes may put the same array at the same time: each writes its
own temp file and the renames are atomic.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ObjectError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ObjectStore", "npy_header", "npy_bytes", "load_npy_bytes", "validate_digest"]

_DIGEST = re.compile(r"[0-9a-f]{64}")
_TMP_PREFIX = ".tmp-"


def validate_digest(digest: object) -> str:
    """Return ``digest`` if it is 64 lower-case hex digits, else raise :class:`ObjectError`.

    Checked before a digest is ever turned into a path, so that a value read
    from a store cannot point outside ``objects/``.
    """
    if type(digest) is not str or not _DIGEST.fullmatch(digest):
        raise ObjectError(f"{digest!r} is not an object digest (64 lower-case hex digits)")
    return digest


def _c_order(array: np.ndarray) -> np.ndarray:
    return array if array.flags.c_contiguous else array.copy(order="C")


def npy_header(array: np.ndarray) -> bytes:
    """Return the ``.npy`` header ``numpy.save`` writes for a C-ordered array.

    Format 1.0 when it fits, else 2.0 (long headers), else 3.0 (field names
    beyond Latin-1), as ``numpy.save`` chooses.
    """
    from numpy.lib import format as npy_format

    header = npy_format.header_data_from_array_1_0(array)
    for write in (npy_format.write_array_header_1_0, npy_format.write_array_header_2_0):
        buffer = io.BytesIO()
        try:
            write(buffer, header)
        except (ValueError, UnicodeEncodeError):  # too long for 1.0; not Latin-1 for either
            continue
        return buffer.getvalue()
    # Format 3.0 (UTF-8) has no public header writer: take the header numpy.save writes.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "can only be read by NumPy >= 1.17"
        buffer = io.BytesIO()
        npy_format.write_array(buffer, array, allow_pickle=False)
    data = buffer.getvalue()
    return data[: len(data) - array.nbytes]


def _data_view(array: np.ndarray) -> memoryview:
    """Return the bytes of a C-ordered array without copying them."""
    return memoryview(array.reshape(-1).view("u1"))


def npy_bytes(array: np.ndarray) -> bytes:
    """Return the canonical ``.npy`` bytes of an array (used for small, inline arrays)."""
    array = _c_order(array)
    return npy_header(array) + _data_view(array).tobytes()


def load_npy_bytes(data: bytes) -> np.ndarray:
    """Load an array from ``.npy`` bytes, never unpickling anything."""
    import numpy as np

    return np.load(io.BytesIO(data), allow_pickle=False)


class ObjectStore:
    """The ``objects/`` folder of a store.

    :param root: the ``objects`` folder; created on the first :meth:`put`.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        """Return the path of an object (which may not exist)."""
        validate_digest(digest)
        return self.root / digest[:2] / f"{digest[2:]}.npy"

    def put(self, array: Any) -> tuple[str, int]:
        """Store an array and return ``(digest, size_in_bytes)`` of its ``.npy`` file.

        Writing a digest that exists already is a no-op. The file is complete
        under its final name before this returns, so a database row may then
        reference it.
        """
        import numpy as np

        array = _c_order(np.asarray(array))
        if array.dtype.hasobject:
            raise ObjectError(f"arrays of dtype {array.dtype} hold Python objects and cannot be stored")
        header = npy_header(array)
        data = _data_view(array)
        digest = hashlib.sha256(header)
        digest.update(data)
        name = digest.hexdigest()
        size = len(header) + data.nbytes
        final = self.path(name)
        try:
            stored = final.stat().st_size
        except FileNotFoundError:
            stored = -1
        if stored == size:
            return name, size  # stored already (dedup); a truncated file is written again
        folder = final.parent
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{_TMP_PREFIX}{name[2:10]}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            with open(tmp, "wb") as file:
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

    def get(self, digest: str, *, mmap: bool = True) -> np.ndarray:
        """Load an object; memory-mapped read-only by default, never unpickling.

        :raises ObjectError: when the digest is invalid or the file is missing.
        """
        import numpy as np

        path = self.path(digest)
        try:
            if mmap:
                try:
                    return np.load(path, mmap_mode="r", allow_pickle=False)
                except ValueError:
                    # An empty array cannot be memory-mapped; reading it costs nothing.
                    return np.load(path, allow_pickle=False)
            return np.load(path, allow_pickle=False)
        except FileNotFoundError as e:
            raise ObjectError(
                f"object {digest} is missing from {self.root}; run `recorder verify` "
                "to list what else is missing"
            ) from e
        except ValueError as e:
            raise ObjectError(f"object {digest} is not a readable .npy file: {e}") from e

    def exists(self, digest: str) -> bool:
        """Return whether the object file exists (its content is not checked)."""
        return self.path(digest).exists()

    def verify(self, digest: str) -> bool:
        """Return whether the object exists and its bytes hash to its digest."""
        path = self.path(digest)
        digest_now = hashlib.sha256()
        try:
            with open(path, "rb") as file:
                for chunk in iter(lambda: file.read(1 << 20), b""):
                    digest_now.update(chunk)
        except FileNotFoundError:
            return False
        return digest_now.hexdigest() == digest
