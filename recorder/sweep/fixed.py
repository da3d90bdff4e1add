"""Constant inputs of a sweep (``fixed=``, and the keyword arguments of a ``functools.partial``).

They are passed to every call but are not parameters: they are not hashed
into psets, and the session's config records a digest of each
(``fixed.<name>``: the SHA-256 of an array's ``.npy`` bytes, of bytes, or of
a JSON-able value's canonical JSON; any other value by its type and
``repr``, with a warning that a rerun cannot check it).

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

__all__ = ["split_partial", "digest_of", "fixed_config", "with_fixed"]


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
        text = canonical_pset({"value": value})[1]
    except (RecorderError, TypeError, ValueError):
        return {"type": f"{kind.__module__}.{kind.__qualname__}", "repr": repr(value)[:200]}, False
    return {"type": "json", "sha256": hashlib.sha256(text.encode()).hexdigest()}, True


def fixed_config(fixed: Mapping[str, Any], func_name: str) -> dict[str, Any]:
    """The session's config entries of a sweep's constant inputs (``fixed.<name>``); warns for one without a digest."""
    config = {}
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
    return config


def with_fixed(func: Callable[..., Any], fixed: Mapping[str, Any]) -> Callable[..., Any]:
    """``func`` with the constant inputs bound (what a run in this process, or a thread, calls)."""
    return functools.partial(func, **fixed) if fixed else func
