""".npy bytes: the canonical bytes of an array (the header ``numpy.save`` writes, C order) and back.

What an inline array cell holds and what an object file holds
(:mod:`recorder.store.objects`), made the same way. Nothing is ever
unpickled. Pure functions of numpy: no database, no files.
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["NPY_MAGIC", "c_order", "data_view", "npy_header", "npy_bytes", "load_npy_bytes"]

#: The first bytes of every ``.npy`` file.
NPY_MAGIC = b"\x93NUMPY"


def c_order(array: np.ndarray) -> np.ndarray:
    """Return the array in C order (itself when it is already)."""
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


def data_view(array: np.ndarray) -> memoryview:
    """Return the bytes of a C-ordered array without copying them."""
    # numpy's stubs do not declare the buffer protocol that every ndarray has.
    return memoryview(array.reshape(-1).view("u1"))  # type: ignore[arg-type]


def npy_bytes(array: np.ndarray) -> bytes:
    """Return the canonical ``.npy`` bytes of an array (used for small, inline arrays)."""
    array = c_order(array)
    return npy_header(array) + data_view(array).tobytes()


def load_npy_bytes(data: bytes) -> np.ndarray:
    """Load an array from ``.npy`` bytes, never unpickling anything."""
    import numpy as np

    array: np.ndarray = np.load(io.BytesIO(data), allow_pickle=False)
    return array
