"""One run of an experiment function, wherever it runs: call, encode, report.

This is what a worker process executes. It sends back an :class:`Outcome`:
scalars and digests, never a large array (those it writes to the object
store itself).
"""

from __future__ import annotations

import contextvars
import os
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ..codec.hashing import claim_names
from ..codec.values import Encoded, encode
from ..errors import RecorderError
from ..store.objects import ObjectStore
from .capture import captured

__all__ = [
    "Outcome",
    "Interrupted",
    "Called",
    "call",
    "execute",
    "failure",
    "finish",
    "current_seed",
    "seed_of_run",
    "reset_seed",
    "user_traceback",
]

_SEED: contextvars.ContextVar[int | None] = contextvars.ContextVar("recorder_seed", default=None)


def current_seed() -> int:
    """Return the seed of the run in progress (its ``run.seed``), for functions run by a sweep.

    :raises RecorderError: outside a recorded run.
    """
    seed = _SEED.get()
    if seed is None:
        raise RecorderError("recorder.current_seed() is only known inside a recorded run")
    return seed


def seed_of_run(seed: int | None) -> contextvars.Token[int | None]:
    """Make ``seed`` the current run's seed; returns the token for :func:`reset_seed`."""
    return _SEED.set(seed)


def reset_seed(token: contextvars.Token[int | None]) -> None:
    """Undo :func:`seed_of_run`."""
    _SEED.reset(token)


class Outcome(NamedTuple):
    """What a run sends back to the writing process: small, never a large array."""

    status: str
    t0: float
    duration: float
    results: dict[str, Encoded]
    error: str | None
    output: str | None


class Interrupted(KeyboardInterrupt):
    """A run was interrupted; carries its outcome to be recorded, and the original in ``__cause__``."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome)
        self.outcome = outcome


_now, _clock = time.time, time.perf_counter
_OBJECT_STORES: dict[str, ObjectStore] = {}
# (parameter names, result names) already checked against each other.
_CHECKED: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()


def _object_store(root: str) -> ObjectStore:
    """One ObjectStore per root and process (workers run many runs)."""
    store = _OBJECT_STORES.get(root)
    if store is None:
        store = _OBJECT_STORES[root] = ObjectStore(root)
    return store


#: What one call of a run's function gave, before its results are encoded (see :func:`call`):
#: ``(returned, t0, duration, output, failed)``, where ``output`` is the captured output (None when
#: not captured or empty) and ``failed`` the ``failed`` outcome when the function raised, else None.
#: A plain tuple: a NamedTuple's constructor would be a Python call more per run.
Called = tuple[Any, float, float, str | None, Outcome | None]


def call(func: Callable[..., Any], kwargs: dict[str, Any], seed: int, capture: bool = False) -> Called:
    """Call a run's function with its seed current, timed, its output captured if asked: the one rule for every run.

    :func:`execute` (a worker's run) and the serial loop (:func:`recorder.sweep.serial.run_serial`)
    both call the function this way; what they do with the result differs.

    :raises Interrupted: for Ctrl-C and SIGTERM during the call (see :func:`failure`).
    """
    token = _SEED.set(seed)
    t0 = _now()
    start = _clock()
    output = None
    try:
        if capture:
            with captured() as buffer:
                try:
                    returned = func(**kwargs)
                finally:
                    output = buffer.getvalue() or None
        else:
            returned = func(**kwargs)
        duration = _clock() - start
    except BaseException as e:  # failure() tells a failed run from an interrupted one
        failed = failure(e, t0, _clock() - start, output)
        return None, t0, failed.duration, output, failed
    finally:
        _SEED.reset(token)
    return returned, t0, duration, output, None


def execute(
    func: Callable[..., Any],
    kwargs: dict[str, Any],
    seed: int,
    objects_root: str,
    inline_limit: int,
    capture: bool,
    func_name: str,
) -> Outcome:
    """Run one pset, encode its results (arrays to the object store) and return an :class:`Outcome`.

    Runs in a worker process (or in the sweeping process when serial).
    Exceptions of the function become a ``failed`` outcome; Ctrl-C and
    SIGTERM become ``interrupted`` and are raised again (as
    :class:`Interrupted`) after encoding.
    """
    returned, t0, duration, output, failed = call(func, kwargs, seed, capture)
    if failed is not None:
        return failed
    return finish(returned, tuple(kwargs), t0, duration, output, objects_root, inline_limit, func_name)


def failure(error: BaseException, t0: float, duration: float, output: str | None = None) -> Outcome:
    """Return the ``failed`` outcome of a run that raised ``error``; call it where ``error`` is handled.

    :raises Interrupted: for Ctrl-C and SIGTERM (:class:`KeyboardInterrupt`,
        :class:`SystemExit`), with the ``interrupted`` outcome.
    """
    if isinstance(error, (KeyboardInterrupt, SystemExit)):
        raise Interrupted(Outcome("interrupted", t0, duration, {}, None, output)) from error
    return Outcome("failed", t0, duration, {}, user_traceback(error), output)


#: Where recorder's own code is: frames there are left out of a run's stored traceback.
_OWN = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # the recorder package


def user_traceback(error: BaseException) -> str:
    """The traceback of a run's error from the user's code on: recorder's own calling frames left out.

    Only the leading frames are dropped (the sweep that called the
    function); recorder's frames the user's code called (``run.log``) stay.
    """
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_OWN):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb))


def finish(
    returned: Any,
    param_names: tuple[str, ...],
    t0: float,
    duration: float,
    output: str | None,
    objects_root: str,
    inline_limit: int,
    func_name: str,
) -> Outcome:
    """Encode what the function of a run returned into its :class:`Outcome` (``failed`` if it cannot be stored).

    :raises Interrupted: when Ctrl-C or SIGTERM arrive meanwhile.
    """
    results: dict[str, Encoded] = {}
    try:
        if returned is not None:
            if not isinstance(returned, Mapping):
                raise RecorderError(
                    f"{func_name} returned {type(returned).__name__}; an experiment function "
                    "returns a dict of results (name → value) or None"
                )
            objects = _object_store(objects_root)
            names = (param_names, tuple(returned))
            if names not in _CHECKED:  # names are checked once per layout, not per run
                claim_names("result", names[1], {n.lower(): n for n in names[0]})
                if len(_CHECKED) < 1024:
                    _CHECKED.add(names)
            for name, value in returned.items():
                results[name] = encode(name, value, objects, inline_limit=inline_limit)
    except (KeyboardInterrupt, SystemExit) as e:
        raise Interrupted(Outcome("interrupted", t0, duration, results, None, output)) from e
    except Exception as e:
        return Outcome("failed", t0, duration, results, user_traceback(e), output)
    return Outcome("done", t0, duration, results, None, output)
