"""Constant inputs of a sweep (``fixed=``, and the keyword arguments of a ``functools.partial``).

They are passed to every call but are not parameters: they are not hashed
into psets, and the session's config records a digest of each
(``fixed.<name>``: the SHA-256 of an array's ``.npy`` bytes, of bytes, or of
a JSON-able value's canonical JSON; any other value by its type and
``repr``, with a warning that a rerun cannot check it).

A value that can be stored is stored too, so that ``recorder rerun`` passes
the same value back (:func:`stored_inputs` reads and checks them): a
JSON-able value inside its digest entry (``"value"``), an array or bytes as
the config value ``fixed.<name>.value`` (an array above the inline limit in
the object store, content-addressed: the same digest as its entry's).

They reach worker processes once per worker, not once per run: they are
pickled once, in the sweeping process; recorder's own pool hands the pickle
to each worker as it starts (a forked worker inherits it), and each worker
unpickles it once. On Dask the pickle is scattered to every worker once
(``client.scatter(..., broadcast=True)``; each batch names it); another
executor (loky, …) gets it with each batch of runs (bytes, not pickled
again). Either way each worker unpickles it once (see
:class:`recorder.sweep.pool.Shipment`).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from ..codec.canonical import canonical_pset
from ..errors import RecorderError, RecorderWarning

__all__ = ["split_partial", "digest_of", "fixed_config", "with_fixed", "VALUE_SUFFIX", "BYTES_TYPES", "check_stored"]

#: The config name of a fixed input's stored value (an array or bytes) is its entry's name and this.
VALUE_SUFFIX = ".value"
#: The ``type`` of a digest entry of bytes.
BYTES_TYPES = ("bytes", "bytearray", "memoryview")


def split_partial(
    func: Callable[..., Any], fixed: Mapping[str, Any] | None
) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The function a sweep calls and its constant inputs: a ``partial``'s arguments become fixed inputs.

    :raises RecorderError: for a name given both to the partial and in ``fixed``, or a positional
        argument of a partial that names no parameter.
    """
    given = dict(fixed or {})
    while isinstance(func, functools.partial):
        inner = func.func
        bound = dict(func.keywords)
        if func.args:
            try:
                names = list(inspect.signature(inner).parameters)
            except (TypeError, ValueError) as e:
                raise RecorderError(f"cannot read the parameters of {inner!r}: {e}") from e
            if len(func.args) > len(names):
                raise RecorderError(f"functools.partial of {inner!r} binds more positional arguments than it takes")
            bound.update(zip(names, func.args))
        both = sorted(bound.keys() & given.keys())
        if both:
            raise RecorderError(f"{both[0]!r} is both bound by functools.partial and given in fixed=; give it once")
        given.update(bound)
        func = inner
    return func, given


def digest_of(value: Any) -> tuple[dict[str, Any], bool]:
    """How the config records a constant input: its type and SHA-256 (or ``repr``), and whether it has a digest."""
    kind = type(value)
    if kind.__module__ == "numpy" or type(value).__mro__[-2].__module__ == "numpy":
        import numpy as np

        if isinstance(value, np.ndarray) and not value.dtype.hasobject:
            from ..codec.npy import c_order, data_view, npy_header

            array = c_order(value)
            digest = hashlib.sha256(npy_header(array))
            digest.update(data_view(array))
            return {
                "type": "ndarray",
                "dtype": array.dtype.str,
                "shape": list(array.shape),
                "sha256": digest.hexdigest(),
            }, True
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"type": kind.__name__, "bytes": len(value), "sha256": hashlib.sha256(value).hexdigest()}, True
    try:
        clean, text = canonical_pset({"value": value})
    except (RecorderError, TypeError, ValueError):
        return {"type": f"{kind.__module__}.{kind.__qualname__}", "repr": repr(value)[:200]}, False
    return {"type": "json", "sha256": hashlib.sha256(text.encode()).hexdigest(), "value": clean["value"]}, True


def fixed_config(fixed: Mapping[str, Any], func_name: str) -> dict[str, Any]:
    """The session's config entries of a sweep's constant inputs (``fixed.<name>``); warns for one without a digest."""
    config: dict[str, Any] = {}
    for name, value in fixed.items():
        entry, digested = digest_of(value)
        if not digested:
            warnings.warn(
                f"the fixed input {name!r} of {func_name} ({entry['type']}) cannot be digested, so it is recorded "
                "by its type and repr only: a rerun cannot check that it is the same",
                RecorderWarning,
                stacklevel=4,
            )
        config[f"fixed.{name}"] = entry
        if entry["type"] == "ndarray":  # the array itself (above the inline limit: an object)
            import numpy as np

            config[f"fixed.{name}{VALUE_SUFFIX}"] = np.asarray(value)
        elif entry["type"] in BYTES_TYPES:
            config[f"fixed.{name}{VALUE_SUFFIX}"] = bytes(value)
    return config


def check_stored(name: str, entry: Any, value: Any) -> Any:
    """The value a rerun passes for the fixed input ``name``, once checked against its recorded digest entry.

    :param entry: the decoded ``fixed.<name>`` config value (untrusted).
    :param value: the decoded ``fixed.<name>.value`` config value, or None when there is none.
    :raises RecorderError: saying why the input cannot be passed back (the caller names the run).
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
        raise RecorderError(f"its record {entry!r:.120} is not a digest entry recorder writes (a damaged store)")
    kind = entry["type"]
    if kind == "json":
        if "value" not in entry:
            raise RecorderError("only its digest was recorded (by a recorder that did not store fixed inputs)")
        value = entry["value"]
    elif kind == "ndarray" or kind in BYTES_TYPES:
        if value is None:
            raise RecorderError("only its digest was recorded (by a recorder that did not store fixed inputs)")
        if kind == "ndarray":
            import numpy as np

            if not isinstance(value, np.ndarray):
                raise RecorderError(f"its stored value is a {type(value).__name__}, not an array (a damaged store)")
            value = np.array(value)  # a copy in memory: the object file stays read-only
        elif not isinstance(value, bytes):
            raise RecorderError(f"its stored value is a {type(value).__name__}, not bytes (a damaged store)")
        elif kind == "bytearray":
            value = bytearray(value)
    else:
        raise RecorderError(
            f"it was a {kind} that recorder could not digest, so it was recorded by its type and repr only "
            "(not its value): a rerun cannot pass it back; rerun the session instead (recorder rerun --session)"
        )
    digest, _ = digest_of(value)
    if kind in BYTES_TYPES:
        digest["type"] = kind  # a memoryview comes back as bytes
    recorded = {k: v for k, v in entry.items() if k != "value"}
    if {k: v for k, v in digest.items() if k != "value"} != recorded:
        raise RecorderError("its stored value does not match its recorded digest (a damaged or crafted store)")
    return value


def with_fixed(func: Callable[..., Any], fixed: Mapping[str, Any]) -> Callable[..., Any]:
    """``func`` with the constant inputs bound (what a run in this process, or a thread, calls)."""
    return functools.partial(func, **fixed) if fixed else func
