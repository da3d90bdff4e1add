"""Encoding of results and config values into ``(kind, value)`` database cells.

A cell is stored in a column without type affinity, so SQLite keeps ints,
floats, text and NULL as they are and plain SQL sees plain values. ``kind``
is NULL for those and names the encoding otherwise:

=============  ==============================================================
kind           value
=============  ==============================================================
NULL           int (64-bit), float (±inf included), str, or NULL for None
``nan``        NULL; the float NaN (SQLite turns NaN into NULL)
``bool``       0 or 1
``int``        decimal text of an int beyond 64 bits, stored exactly
``bytes``      a BLOB
``json``       JSON text of a list or dict (tuples become lists; ±inf written as
               ±1e999, so that it stays standard JSON; NaN inside is refused)
``np:<dtype>`` a numpy scalar of that dtype; the number (NULL for NaN)
``npy``        a BLOB of ``.npy`` bytes: an array at or below the inline limit
``npyscalar``  a BLOB of ``.npy`` bytes of a 0-d array: a numpy scalar of another
               kind (complex, datetime, long double, bytes, …)
``object``     the SHA-256 digest of an array in the object store
=============  ==============================================================

Nothing is ever pickled, so loading a store never runs code.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ..errors import ValueRefused
from .canonical import INT64_MAX, INT64_MIN, plain_scalar, read_json, structure_json
from .canonical import refused as _refuse
from .hashing import is_utf8
from .npy import load_npy_bytes, npy_bytes, npy_header

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

__all__ = [
    "ArrayStore",
    "DEFAULT_INLINE_LIMIT",
    "NAN_ENCODED",
    "Encoded",
    "encode",
    "decode",
    "is_scalar_kind",
    "plain_scalar",
]

#: Arrays whose ``.npy`` bytes are at most this size live in the database.
DEFAULT_INLINE_LIMIT = 64 * 1024

_NAN = float("nan")


class ArrayStore(Protocol):
    """Where arrays above the inline limit go: what :func:`encode` and :func:`decode` need of an object store.

    :class:`recorder.store.objects.ObjectStore` is one; it is handed in, so that
    this layer never imports the store.
    """

    def put(self, array: Any) -> tuple[str, int]:
        """Store an array; return the ``(digest, size)`` of its ``.npy`` bytes."""
        ...

    def get(self, digest: str, *, mmap: bool = True) -> np.ndarray:
        """Return the array of a digest (memory-mapped read-only unless ``mmap`` is false)."""
        ...

    def file(self, digest: str) -> Path:
        """Return the path of an object's file (a run's file: its bytes verbatim)."""
        ...


class Encoded(NamedTuple):
    """One value ready for a database cell, and the object it references, if any."""

    kind: str | None
    value: Any
    #: ``(digest, size, dtype, shape)`` when the value is an array in the object store.
    object: tuple[str, int, str, str] | None = None


#: How NaN is stored.
NAN_ENCODED = Encoded("nan", None)


def encode(
    name: str,
    value: Any,
    objects: ArrayStore,
    *,
    inline_limit: int = DEFAULT_INLINE_LIMIT,
    what: str = "result",
) -> Encoded:
    """Encode one value; a large array is put into ``objects`` first.

    :param name: the value's name, for error messages.
    :param what: "result" or "config value", for error messages.
    :raises ValueRefused: for a type recorder does not store, naming the
        value, its type and what to do instead.
    """
    kind = type(value)
    if kind is float:
        return Encoded("nan", None) if value != value else Encoded(None, value)
    if kind is int:
        if INT64_MIN <= value <= INT64_MAX:
            return Encoded(None, value)
        return Encoded("int", str(value))
    if value is None:
        return Encoded(None, None)
    if kind is str:
        if not is_utf8(value):
            raise _refuse(what, name, value, "the str holds a lone surrogate, which is not text; fix its encoding")
        return Encoded(None, value)
    if kind is bool:
        return Encoded("bool", int(value))
    module = kind.__module__
    if module == "numpy" or module.startswith("numpy."):
        return _encode_numpy(name, value, objects, inline_limit, what)
    if module.startswith("jax") and hasattr(value, "__array__"):
        import numpy as np

        array = np.asarray(value)
        if array.ndim == 0:  # JAX's numbers: see plain_scalar
            scalar = plain_scalar(array[()])
            if type(scalar).__module__ != "numpy":
                return encode(name, scalar, objects, inline_limit=inline_limit, what=what)
            return _encode_numpy(name, scalar, objects, inline_limit, what)
        return _encode_numpy(name, array, objects, inline_limit, what)
    if isinstance(value, (list, tuple, dict)):
        text = structure_json(what, name, value)
        if not is_utf8(text):
            raise _refuse(what, name, value, "a str inside holds a lone surrogate, which is not text; fix its encoding")
        return Encoded("json", text)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Encoded("bytes", bytes(value))
    if isinstance(value, bool):
        return Encoded("bool", int(value))
    if isinstance(value, int):
        return encode(name, int(value), objects, inline_limit=inline_limit, what=what)
    if isinstance(value, float):
        return encode(name, float(value), objects, inline_limit=inline_limit, what=what)
    if isinstance(value, str):
        return encode(name, str(value), objects, inline_limit=inline_limit, what=what)
    hint = (
        "convert it to a numpy array with numpy.asarray() first"
        if hasattr(value, "__array__")
        else "log a bool, int, float, str, None, list, dict, numpy scalar or array, or a JAX array"
    )
    raise _refuse(what, name, value, hint)


def _encode_numpy(name: str, value: Any, objects: ArrayStore, inline_limit: int, what: str) -> Encoded:
    import numpy as np

    if isinstance(value, np.ndarray):
        if isinstance(value, np.ma.MaskedArray):
            raise _refuse(what, name, value, "log the data and the mask as two arrays (value.data, value.mask)")
        if value.dtype.hasobject:
            raise ValueRefused(
                f"{what} {name!r} is an array of dtype {value.dtype}, which holds Python "
                "objects; convert it to a numeric or string dtype, or log its items separately"
            )
        if value.nbytes < inline_limit and len(npy_header(value)) + value.nbytes <= inline_limit:
            return Encoded("npy", npy_bytes(value))  # small: the one copy is the cell itself
        digest, size = objects.put(value)
        shape = json.dumps(list(value.shape))
        return Encoded("object", digest, (digest, size, value.dtype.str, shape))
    if isinstance(value, np.generic):
        dtype = value.dtype
        if dtype.kind == "f" and dtype == np.float64:
            return encode(name, float(value), objects, inline_limit=inline_limit, what=what)
        if dtype.kind in "iu":
            number = int(value)
            stored = number if INT64_MIN <= number <= INT64_MAX else str(number)
            return Encoded(f"np:{dtype.str}", stored)
        if dtype.kind == "f" and dtype.itemsize <= 8:
            real = float(value)
            return Encoded(f"np:{dtype.str}", None if real != real else real)
        if dtype.kind == "b":
            return Encoded(f"np:{dtype.str}", int(value))
        if dtype.kind == "U":
            return encode(name, str(value), objects, inline_limit=inline_limit, what=what)
        if dtype.hasobject:
            raise _refuse(what, name, value, "numpy object scalars hold Python objects; log the object's value instead")
        # Complex, datetime, long double and other scalars keep their dtype exactly.
        return Encoded("npyscalar", npy_bytes(np.asarray(value)))
    raise _refuse(what, name, value, "log a numpy array or scalar; other numpy types are not stored")


def decode(kind: str | None, value: Any, objects: ArrayStore, *, mmap: bool = True) -> Any:
    """Return the Python value a ``(kind, value)`` cell stands for.

    Arrays in the object store are memory-mapped read-only unless ``mmap`` is false.
    """
    if kind is None:
        return value
    if kind == "nan":
        return _NAN
    if kind == "bool":
        return bool(value)
    if kind == "json":
        return read_json(value)
    if kind == "npy":
        return load_npy_bytes(value)
    if kind == "npyscalar":
        return load_npy_bytes(value)[()]
    if kind == "file":  # a file a run left in its folder: the path of its bytes, read-only
        return objects.file(value)
    if kind == "link":  # a symbolic link a run left in its folder: its target, never followed
        return value
    if kind == "object":
        return objects.get(value, mmap=mmap)
    if kind == "int":
        return int(value)
    if kind == "bytes":
        return bytes(value)
    if kind.startswith("np:"):
        import numpy as np

        dtype = np.dtype(kind[3:])
        if value is None:
            return dtype.type(_NAN)
        if isinstance(value, str):
            value = int(value)
        return dtype.type(value)
    raise ValueRefused(f"unknown value kind {kind!r}; this store may come from a newer recorder")


def is_scalar_kind(kind: str | None) -> bool:
    """Return whether a cell of this kind is a scalar (shown as a column in tables)."""
    return kind is None or kind in ("nan", "bool", "int") or kind.startswith("np:")
