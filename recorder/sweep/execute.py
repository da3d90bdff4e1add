"""One run of an experiment function, wherever it runs: call, encode, report.

This is what a worker process executes. It sends back an :class:`Outcome`:
scalars and digests, never a large array (those it writes to the object
store itself).
"""

from __future__ import annotations

import array
import contextvars
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..codec.hashing import claim_names
from ..codec.values import Encoded, encode
from ..errors import FileRefused, NameRefused, NoRunInVsweep, NotInRun, RecorderError, RecorderWarning, SeriesRefused
from ..store.layout import work_folders
from ..store.objects import FILE_DTYPE, ObjectStore
from ..store.spill import SERIES_SUFFIX
from .capture import captured

if TYPE_CHECKING:
    from ..store.spill import SpillFile

__all__ = [
    "Outcome",
    "Interrupted",
    "Called",
    "call",
    "execute",
    "failure",
    "finish",
    "current_seed",
    "current_run",
    "RunContext",
    "store_file",
    "Where",
    "enter_run",
    "context_of",
    "SERIES_SUFFIX",
    "KEEP_FILES",
    "series_array",
    "with_context",
    "leave_run",
    "user_traceback",
]


class Where(NamedTuple):
    """What every run of a session shares, for :func:`current_run`: the experiment and where run folders go."""

    experiment: str
    #: The store's folder.
    store: str | Path
    #: The folder holding the runs' work folders, when not the store's ``runs/`` (``workdir=``).
    workdir: str | None
    #: What becomes of the files a run leaves in its folder: one of :data:`KEEP_FILES`.
    keep_files: str = "store"
    #: A file larger than this fails its run (None: no limit).
    max_file_bytes: int | None = None
    #: The session's id: a run's series are spilled to its folder (None: never spilled).
    session: str | None = None
    #: Longest time between two spills of a run's series (the writer's ``flush_interval``).
    flush_interval: float = 0.2
    #: Key of the function the runs call, and the run they repeat: for the row recovery writes.
    function: int | None = None
    rerun_of: str | None = None


#: ``keep_files=`` values: files stored and the folder removed; stored and kept; kept and only listed.
KEEP_FILES = ("store", "both", "folder")


# The run in progress in this thread (or task): a list ``[seed, run id, pset hash, params, where,
# context]``. A list, not an object: a sweep sets it per run, and a list is the cheapest thing to
# make; the RunContext in its last slot is made only when the function asks (current_run()).
_RUN: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("recorder_run", default=None)


def store_file(objects: ObjectStore, path: Path, *, max_bytes: int | None = None) -> Encoded:
    """Store the file at ``path`` as a result of kind "file": its bytes an object, named by their SHA-256.

    The one rule for a run's files, whether a run left them in its folder or an import brought them.

    :raises FileRefused: for a file larger than ``max_bytes``, or not a regular file.
    """
    digest, size = objects.put_file(path, max_bytes=max_bytes)
    return Encoded("file", digest, (digest, size, FILE_DTYPE, "[]"))


class RunContext:
    """The run in progress, as :func:`current_run` gives it inside a recorded run.

    :ivar id: the run's id (24 hex digits), as recorded.
    :ivar pset_hash: the hash of its pset.
    :ivar seed: its seed (as :func:`current_seed`).
    :ivar params: its parameters.
    :ivar experiment: the experiment's name.
    """

    __slots__ = (
        "_dir",
        "_due",
        "_flushed",
        "_series",
        "_spill",
        "_where",
        "experiment",
        "id",
        "params",
        "pset_hash",
        "seed",
    )

    def __init__(self, slot: list[Any]) -> None:
        seed, run_id, pset_hash, params, where, _ = slot
        self.seed: int = seed
        self.id: str | None = run_id
        self.pset_hash: str | None = pset_hash
        self.params: dict[str, Any] = dict(params) if params is not None else {}
        self.experiment: str | None = where.experiment if where is not None else None
        self._where: Where | None = where
        self._dir: Path | None = None
        self._series: dict[str, list[Any]] | None = None
        self._due = _NEVER  # when the series are next spilled (monotonic), once they start
        self._spill: SpillFile | None = None
        self._flushed: dict[str, int] | None = None  # values of each series in the spill file (-1: not spillable)

    @property
    def dir(self) -> Path:
        """The run's work folder (``<store>/runs/<run id>/``, or under ``workdir=``), made on first use.

        :raises NotInRun: when the run was started without a store to put it in.
        """
        folder = self._dir
        if folder is None:
            where = self._where
            if where is None or self.id is None:
                raise NotInRun("this run has no work folder: it was not started by a Recorder session or a sweep")
            folder = work_folders(where.store, where.workdir) / self.id
            folder.mkdir(parents=True, exist_ok=True)
            self._dir = folder
        return folder

    def append(self, **values: Any) -> None:
        """Add one value to each named series (one call per step): ``append(loss=0.3, acc=0.9)``.

        When the run ends, each series is stored as two results: its last
        value as a scalar named like the series (``loss``; SQL sees the final
        value), and all its values as a 1-D array named ``<name>_series``
        (``loss_series``; int64 when every value is an int, else float64).
        Values are checked when the run ends, not per call (10^6 appends
        stay fast): a value that is not a real number fails the run with
        :class:`~recorder.errors.SeriesRefused`.

        At the first call at least ``flush_interval`` seconds after the
        previous flush (or the run's first append), the values appended since
        are written to the run's spill file (:mod:`recorder.store.spill`): a
        run killed mid-way is recorded ``interrupted`` with its series up to
        that flush when the store is next opened.
        """
        series = self._series
        if series is None:
            series = self._start_series()
        for name, value in values.items():
            column = series.get(name)
            if column is None:
                column = series[name] = []
            column.append(value)
        if _monotonic() >= self._due:
            self._flush()

    def _start_series(self) -> dict[str, list[Any]]:
        """The run's first append: start its series, and the clock of their flushes when they can be spilled."""
        where = self._where
        if where is not None and where.session is not None and self.id is not None:
            self._due = _monotonic() + where.flush_interval
        self._series, self._flushed = {}, {}
        return self._series

    def _flush(self) -> None:
        """Write the values appended since the last flush to the run's spill file (made on first use).

        The run goes on whatever happens here: a series holding a value that
        is not a number stops being spilled (the run fails with it when it
        ends), and a disk that refuses the file stops the spills, with a warning.
        """
        where, series = self._where, self._series
        assert where is not None and series is not None
        self._due = _monotonic() + where.flush_interval
        flushed = self._flushed
        assert flushed is not None
        blocks = []
        for name, column in list(series.items()):
            start, end = flushed.get(name, 0), len(column)
            if start < 0 or end == start:
                continue
            values = _spill_values(column[start:end])
            if values is None:
                flushed[name] = -1
            else:
                blocks.append((name, values, end))
        if not blocks:
            return
        try:
            spill = self._spill
            if spill is None:
                spill = self._spill = self._open_spill(where)
            spill.write([(name, array) for name, array, _ in blocks])
        except BaseException as e:
            # No more spills: a frame cut short here (a full disk, Ctrl-C) must stay the file's last. The
            # flushes before it stay readable (the file is removed when the run ends).
            self._due = _NEVER
            if self._spill is not None:
                self._spill.close()
            if not isinstance(e, Exception):
                raise
            import warnings

            warnings.warn(
                f"recorder: cannot spill the series of run {self.id} ({type(e).__name__}: {e}); they are "
                "stored when the run ends, but a crash before that now loses the values appended from here",
                RecorderWarning,
                stacklevel=3,
            )
            return
        for name, _, end in blocks:
            flushed[name] = end

    def _open_spill(self, where: Where) -> SpillFile:
        """The run's spill file, its header the row recovery writes for it."""
        from ..codec.canonical import canonical_pset
        from ..store.layout import locks_folder
        from ..store.pending import PendingRun
        from ..store.spill import SpillFile, spill_folder

        assert self.id is not None and self.pset_hash is not None and where.session is not None
        clean, canonical = canonical_pset(self.params)
        run = PendingRun(self.id, self.pset_hash, canonical, self.seed, _now(), tuple(clean), where.function)
        run.rerun_of = where.rerun_of
        run.status = "interrupted"
        folder = spill_folder(locks_folder(where.store), where.session)
        return SpillFile(folder, run)

    def stop_spills(self) -> None:
        """Spill no more and close the run's spill file, which stays (an interrupted run's series are salvaged from it)."""
        self._due = _NEVER
        if self._spill is not None:
            self._spill.close()

    def end_series(self) -> None:
        """The run ended and its series are results now: remove its spill file, and spill no more."""
        self._due = _NEVER
        if self._spill is not None:
            self._spill.remove()

    def files(self, objects_root: str) -> dict[str, Encoded]:
        """Store the files left in the run's folder (if it has one) and return them as results, by relative path.

        A file becomes a ``file`` result (its object's digest; the bytes
        stored verbatim, see :meth:`recorder.store.objects.ObjectStore.put_file`),
        a symbolic link a ``link`` result (its target, never followed); with
        ``keep_files="folder"`` a file is only listed, as a ``json`` result of
        its size and SHA-256. With ``keep_files="store"`` the folder is
        removed, once everything in it is stored.

        :raises OSError: for a file that cannot be read (the folder is kept).
        :raises FileRefused: for a file larger than ``max_file_bytes``, or not a regular file (the folder is kept).
        """
        folder, where = self._dir, self._where
        if folder is None or where is None:
            return {}
        objects = _object_store(objects_root)
        results: dict[str, Encoded] = {}
        for relative, path, target in _walk(folder):
            if target is not None:
                results[relative] = Encoded("link", target)
            elif where.keep_files == "folder":
                digest, size = _hash_file(path, where.max_file_bytes)
                results[relative] = encode(relative, {"bytes": size, "sha256": digest}, objects)
            else:
                results[relative] = store_file(objects, path, max_bytes=where.max_file_bytes)
        if where.keep_files == "store":
            import shutil

            shutil.rmtree(folder)
        return results

    def results(self) -> dict[str, Any]:
        """The results this run's context adds to what its function returned: its series (see :meth:`append`).

        :raises SeriesRefused: for a series holding a value that is not a real number.
        """
        if not self._series:
            return {}
        results: dict[str, Any] = {}
        for name, values in self._series.items():
            array = series_array(name, values)
            results[name] = array[-1].item()
            results[name + SERIES_SUFFIX] = array
        return results

    def __repr__(self) -> str:
        return f"RunContext({self.id}, {self.params!r})"


def _walk(folder: Path) -> list[tuple[str, Path, str | None]]:
    """Every file and link under ``folder``: ``(relative path with '/', path, link target or None)``, sorted.

    Links are not followed (a link to a folder is not entered); empty folders are left out.
    """
    found: list[tuple[str, Path, str | None]] = []
    pending = [(folder, "")]
    while pending:
        here, prefix = pending.pop()
        with os.scandir(here) as entries:
            for entry in entries:
                relative = prefix + entry.name
                if entry.is_symlink():
                    found.append((relative, Path(entry.path), os.readlink(entry.path)))
                elif entry.is_dir(follow_symlinks=False):
                    pending.append((Path(entry.path), relative + "/"))
                elif entry.is_file(follow_symlinks=False):
                    found.append((relative, Path(entry.path), None))
                else:
                    raise FileRefused(
                        f"{entry.path} in the run's folder is not a regular file (a FIFO, socket or device), so "
                        "it cannot be stored; remove it before the run ends (the folder is kept)"
                    )
    return sorted(found)


def _hash_file(path: Path, max_bytes: int | None) -> tuple[str, int]:
    """The SHA-256 and size of a file, read without following a link."""
    import hashlib

    digest, size = hashlib.sha256(), 0
    with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise FileRefused(f"{path} holds more than max_file_bytes={max_bytes} bytes; raise the limit")
            digest.update(chunk)
    return digest.hexdigest(), size


def series_array(name: str, values: list[Any]) -> Any:
    """The values of a series as a 1-D int64 array (all ints) or float64 array (real numbers).

    :raises SeriesRefused: for a value that is not a real number (bool, text, None, an array, …).
    """
    import numbers

    import numpy as np

    kinds = set(map(type, values))
    if kinds <= {int}:
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError as e:
            raise SeriesRefused(f"series {name!r} holds an int beyond 64 bits ({e}); append it as a float") from None
    for kind in kinds:
        if kind is bool or issubclass(kind, np.bool_) or not issubclass(kind, numbers.Real):
            index, value = next((i, v) for i, v in enumerate(values) if type(v) is kind)
            raise SeriesRefused(
                f"series {name!r} got {value!r} ({kind.__name__}) at step {index}; a series holds real numbers "
                "(int or float, one per step): log other values with run.log(...) or return them"
            )
    if all(issubclass(kind, (int, np.integer)) for kind in kinds):
        return np.array(values, dtype=np.int64)
    return np.array(values, dtype=np.float64)


def _spill_values(values: list[Any]) -> array.array[Any] | None:
    """Values of a series as spilled: int64 when all are ints, else float64; None when one is not a number.

    ``array.array`` converts in C, without numpy: the flush happens inside an
    ``append``. (It takes a bool as an int; such a series fails its run when it ends.)
    """
    try:
        return array.array("q", values)
    except (TypeError, OverflowError):
        pass
    try:
        return array.array("d", values)
    except (TypeError, OverflowError):
        return None


def current_seed() -> int:
    """Return the seed of the run in progress (its ``run.seed``), for functions run by a sweep.

    :raises RecorderError: outside a recorded run.
    """
    slot = _RUN.get()
    if slot is None:
        _refuse_in_vsweep("current_seed")
        raise NotInRun("recorder.current_seed() is only known inside a recorded run")
    seed: int = slot[0]
    return seed


def current_run() -> RunContext:
    """Return the run in progress: its id, pset hash, seed, params, experiment and work folder (``dir``).

    Inside any recorded run: a decorated function's call, ``with r.run(...)``,
    a sweep's function, in this process or a worker.

    :raises NotInRun: outside a recorded run.
    """
    slot = _RUN.get()
    if slot is None:
        _refuse_in_vsweep("current_run")
        raise NotInRun(
            "recorder.current_run() is only known inside a recorded run (a decorated function's call, "
            "`with r.run(...)`, or a function run by a sweep)"
        )
    return context_of(slot)


def _refuse_in_vsweep(called: str) -> None:
    """Say why there is no run while vsweep traces a function, and what to use instead.

    vsweep (:mod:`recorder.sweep.vectorised`, imported only with jax) marks
    the tracing by its per-pset seed; asked only on this error path.

    :raises NoRunInVsweep: inside a function that vsweep traces.
    """
    vectorised = sys.modules.get("recorder.sweep.vectorised")
    if vectorised is None or vectorised._TRACED_SEED.get() is None:
        return
    raise NoRunInVsweep(
        f"recorder.{called}() is not available in a function run by vsweep: vsweep traces the function once "
        "for a whole chunk of psets (jax.vmap), so there is no run of one pset while it runs. For per-pset "
        "randomness use rec.jax.key() (each pset's own key, from its recorded seed); return the results "
        "(arrays and numbers) instead of writing files or appending series; or run the function with "
        ".sweep(), which calls it once per pset, inside its run"
    )


def enter_run(
    seed: int, run_id: str | None, pset_hash: str | None, params: dict[str, Any], where: Where | None
) -> tuple[list[Any], contextvars.Token[list[Any] | None]]:
    """Make a run current (for :class:`recorder.Run`); return its slot (for :func:`context_of`) and the token for :func:`leave_run`."""
    slot = [seed, run_id, pset_hash, params, where, None]
    return slot, _RUN.set(slot)


def context_of(slot: list[Any]) -> RunContext:
    """The :class:`RunContext` of a run made current by :func:`enter_run`, made on first use."""
    context: RunContext | None = slot[5]
    if context is None:
        context = slot[5] = RunContext(slot)
    return context


def leave_run(token: contextvars.Token[list[Any] | None]) -> None:
    """Undo :func:`enter_run`."""
    _RUN.reset(token)


class Outcome(NamedTuple):
    """What a run sends back to the writing process: small, never a large array."""

    status: str
    t0: float
    duration: float
    results: dict[str, Encoded]
    error: str | None
    output: str | None
    #: The id of the process that ran the run, and its host name, as :func:`execute` (a worker's run)
    #: reports them; None where the process recording the run ran it.
    pid: int | None = None
    host: str | None = None


class Interrupted(KeyboardInterrupt):
    """A run was interrupted; carries its outcome to be recorded, and the original in ``__cause__``."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome)
        self.outcome = outcome


_now, _clock, _monotonic = time.time, time.perf_counter, time.monotonic
_NEVER = float("inf")
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
#: ``(returned, t0, duration, output, failed, context)``, where ``output`` is the captured output (None when
#: not captured or empty), ``failed`` the ``failed`` outcome when the function raised, else None, and
#: ``context`` the run's :class:`RunContext` when the function asked for it (:func:`current_run`), else None.
#: A plain tuple: a NamedTuple's constructor would be a Python call more per run.
Called = tuple[Any, float, float, str | None, Outcome | None, RunContext | None]


def call(
    func: Callable[..., Any],
    kwargs: dict[str, Any],
    seed: int,
    capture: bool = False,
    run_id: str | None = None,
    pset_hash: str | None = None,
    where: Where | None = None,
) -> Called:
    """Call a run's function with its run current, timed, its output captured if asked: the one rule for every run.

    :func:`execute` (a worker's run) and the serial loop (:func:`recorder.sweep.serial.run_serial`)
    both call the function this way; what they do with the result differs.

    :raises Interrupted: for Ctrl-C and SIGTERM during the call (see :func:`failure`).
    """
    slot: list[Any] = [seed, run_id, pset_hash, kwargs, where, None]
    token = _RUN.set(slot)
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
        context = slot[5]
        if context is not None and isinstance(e, (KeyboardInterrupt, SystemExit)):
            context.stop_spills()  # its file stays, for the recording process to salvage; its descriptor goes
        failed = failure(e, t0, _clock() - start, output)
        return None, t0, failed.duration, output, failed, context
    finally:
        _RUN.reset(token)
    return returned, t0, duration, output, None, slot[5]


def execute(
    func: Callable[..., Any],
    kwargs: dict[str, Any],
    seed: int,
    objects_root: str,
    inline_limit: int,
    capture: bool,
    func_name: str,
    run_id: str | None = None,
    pset_hash: str | None = None,
    where: Where | None = None,
) -> Outcome:
    """Run one pset, encode its results (arrays to the object store) and return an :class:`Outcome`.

    Runs in a worker process (or in the sweeping process when serial).
    Exceptions of the function become a ``failed`` outcome; Ctrl-C and
    SIGTERM become ``interrupted`` and are raised again (as
    :class:`Interrupted`) after encoding.
    """
    try:
        returned, t0, duration, output, failed, context = call(func, kwargs, seed, capture, run_id, pset_hash, where)
        if failed is not None:
            outcome = failed if context is None else with_context(failed, context, objects_root, inline_limit)
        else:
            outcome = finish(
                returned, tuple(kwargs), t0, duration, output, objects_root, inline_limit, func_name, context
            )
    except Interrupted as e:
        e.outcome = _ran_here(e.outcome)
        raise
    return _ran_here(outcome)


_HOST: list[str] = []  # this process's host name, once asked (it does not change while a worker lives)


def _ran_here(outcome: Outcome) -> Outcome:
    """``outcome`` with this process's id and host name: where the run ran (``runs.pid``, ``runs.host``)."""
    if not _HOST:
        import socket

        _HOST.append(socket.gethostname())
    return outcome._replace(pid=os.getpid(), host=_HOST[0])


def _with_results(returned: Any, extra: dict[str, Any], func_name: str) -> Any:
    """What the function returned, with its run context's results (series) added.

    :raises NameRefused: when the function returned a result of a series' name.
    """
    if not extra:
        return returned
    if returned is None:
        return extra
    if not isinstance(returned, Mapping):
        return returned  # finish() refuses it, with its own message
    both = sorted(set(returned) & set(extra))
    if both:
        raise NameRefused(
            f"{func_name} returned {both[0]!r}, which is also a series it appended (or its array "
            f"{both[0]}{SERIES_SUFFIX!s}); give the result another name"
        )
    return {**returned, **extra}


def with_context(outcome: Outcome, context: RunContext | None, objects_root: str, inline_limit: int) -> Outcome:
    """A failed run's outcome, with what its context holds (series) stored too: a failed run's data is often what one needs.

    What cannot be stored is noted at the end of the run's error instead.
    """
    if context is None:
        return outcome
    results: dict[str, Encoded] = {}
    try:
        results.update(context.files(objects_root))
        extra = context.results()
        objects = _object_store(objects_root)
        results.update({name: encode(name, value, objects, inline_limit=inline_limit) for name, value in extra.items()})
    except Exception as e:
        note = f"\n(its files or series could not all be stored: {type(e).__name__}: {e})"
        return outcome._replace(error=(outcome.error or "") + note, results={**outcome.results, **results})
    finally:
        context.end_series()
    return outcome._replace(results={**outcome.results, **results})


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
    context: RunContext | None = None,
) -> Outcome:
    """Encode what the function of a run returned into its :class:`Outcome` (``failed`` if it cannot be stored).

    :raises Interrupted: when Ctrl-C or SIGTERM arrive meanwhile.
    """
    results: dict[str, Encoded] = {}
    try:
        if context is not None:
            results = context.files(objects_root)  # first: a run failing below keeps its files
            returned = _with_results(returned, context.results(), func_name)
            if results and returned is None:
                returned = {}
        if returned is not None:
            if not isinstance(returned, Mapping):
                raise RecorderError(
                    f"{func_name} returned {type(returned).__name__}; an experiment function "
                    "returns a dict of results (name → value) or None"
                )
            objects = _object_store(objects_root)
            names = (param_names, tuple(returned) + tuple(results))
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
    finally:
        if context is not None:
            context.end_series()
    return Outcome("done", t0, duration, results, None, output)
