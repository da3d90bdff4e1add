"""Whether two runs agree: each result side by side, the status and the exception (what a rerun checks).

Integers, strings, bools and other exact values must be equal (and of the
same type); floats equal bit for bit, or within ``rtol``/``atol`` when
either is given; arrays by the digest of their ``.npy`` bytes first, then,
with a tolerance, numerically (same shape, :func:`numpy.allclose` with NaNs
equal). A result only one run has, a changed status and a changed exception
line are differences too.
"""

from __future__ import annotations

import math
import struct
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import RecorderError
from .show import show

if TYPE_CHECKING:
    from .database import Database

__all__ = ["Difference", "differences", "check_tolerances"]


class Difference(NamedTuple):
    """One way two runs differ: ``name`` is a result's name, or ``(status)`` / ``(error)``."""

    name: str
    #: The original run's value (as :func:`recorder.read.show.show` gives it), None when it has none.
    original: Any
    #: The rerun's value, None when it has none.
    rerun: Any
    #: ``missing`` (only the original has it), ``extra`` (only the rerun), ``changed``.
    what: str


def check_tolerances(rtol: object, atol: object) -> tuple[float, float]:
    """Return ``(rtol, atol)`` once checked to be finite numbers ≥ 0.

    :raises RecorderError: when one is not.
    """
    checked = []
    for label, value in (("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise RecorderError(f"{label}={value!r} is not a tolerance (a finite number ≥ 0)")
        checked.append(float(value))
    return checked[0], checked[1]


def differences(
    db: Database,
    original: str,
    rerun: str,
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
    rerun_db: Database | None = None,
) -> list[Difference]:
    """Return how run ``rerun`` differs from run ``original`` (empty when they agree).

    :param rerun_db: the store of ``rerun`` when it is not ``db`` (a session's rerun records into a scratch store).
    :raises RunNotFound: when a run is not in the store.
    :raises UnreadableValue: when a value cannot be read back (a damaged store).
    """
    rtol, atol = check_tolerances(rtol, atol)
    other = db if rerun_db is None else rerun_db
    a, b = show(db, original), show(other, rerun)
    found: list[Difference] = []
    if a["status"] != b["status"]:
        found.append(Difference("(status)", a["status"], b["status"], "changed"))
    if a["error_line"] != b["error_line"]:
        found.append(Difference("(error)", a["error_line"], b["error_line"], "changed"))
    left, right = a["results"], b["results"]
    for name in sorted(left.keys() | right.keys()):
        if name not in right:
            found.append(Difference(name, _shown(left[name]), None, "missing"))
        elif name not in left:
            found.append(Difference(name, None, _shown(right[name]), "extra"))
        elif not _agree(db, other, a["run_id"], b["run_id"], name, left[name], right[name], rtol, atol):
            found.append(Difference(name, _shown(left[name]), _shown(right[name]), "changed"))
    return found


def _shown(entry: dict[str, Any]) -> Any:
    """A result as the comparison shows it: the value, or an array's dtype, shape and digest."""
    if "array" in entry:
        array = entry["array"]
        return {"dtype": array["dtype"], "shape": array["shape"], "digest": array["digest"]}
    if "bytes" in entry:
        return {"bytes": entry["bytes"]}
    return entry.get("value")


def _agree(
    db: Database,
    db_b: Database,
    run_a: str,
    run_b: str,
    name: str,
    a: dict[str, Any],
    b: dict[str, Any],
    rtol: float,
    atol: float,
) -> bool:
    if "array" in a or "array" in b:
        if "array" not in a or "array" not in b:
            return False
        if a["array"]["digest"] == b["array"]["digest"]:
            return True
        if rtol == 0 and atol == 0:
            return False
        return _arrays_close(db.result(run_a, name, mmap=False), db_b.result(run_b, name, mmap=False), rtol, atol)
    if "bytes" in a or "bytes" in b:  # compared by value: read both
        return bool(db.result(run_a, name, mmap=False) == db_b.result(run_b, name, mmap=False))
    return _values_agree(a.get("value"), b.get("value"), rtol, atol)


def _values_agree(x: Any, y: Any, rtol: float, atol: float) -> bool:
    if type(x) is not type(y):
        return False
    if type(x) is float:
        if rtol == 0 and atol == 0:
            return struct.pack("<d", x) == struct.pack("<d", y)  # bitwise: -0.0 is not 0.0
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        return bool(x == y or abs(x - y) <= atol + rtol * abs(y))
    if type(x) is list:
        return len(x) == len(y) and all(_values_agree(p, q, rtol, atol) for p, q in zip(x, y))
    if type(x) is dict:
        return x.keys() == y.keys() and all(_values_agree(x[k], y[k], rtol, atol) for k in x)
    return bool(x == y)


def _arrays_close(x: Any, y: Any, rtol: float, atol: float) -> bool:
    import numpy as np

    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape:
        return False
    if not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
        return bool(np.array_equal(x, y))
    return bool(np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True))
