"""Running many psets: serially, in a process pool, or on any Executor; resume; dry run.

One writer: only this process writes the database. The experiment function
runs wherever the executor puts it; there its results are encoded, arrays
above the inline limit are written to the object store (atomic and
content-addressed, so concurrent writers are safe), and only a small
record comes back: scalars, digests, the traceback of a failure. The
sweeping process commits them in batches (see :meth:`RunWriter.inline`).
Pools and executors are in :mod:`recorder.pool`.
"""

from __future__ import annotations

import functools
import inspect
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..codec.canonical import PsetLayout, canonical_pset, plain_numbers, pset_layout
from ..codec.hashing import check_name, pset_identity, text_digest
from ..errors import NameRefused, RecorderError, RecorderWarning, RunFailed, StoreError
from ..read.failures import exception_line
from ..read.frame import ERROR, META
from ..store.catalog import find_experiment
from ..store.ids import iso_utc, new_id
from ..store.pending import PendingRun
from ..store.rows import DoneChunk, check_pset
from .execute import Outcome, Where
from .params import merged_pset
from .progress import Progress
from .serial import Recording, older_objects_frozen, run_serial
from .session import Session
from .skip import Fills, Reader, done_hashes, look_up, scalars_of
from .tasks import Table, Task, new_task

if TYPE_CHECKING:
    import concurrent.futures as cf

    import pandas as pd

    from ..store.catalog import Fields
    from ..store.objects import ObjectStore
    from ..store.writer import RunWriter

__all__ = [
    "SKIP_MODES",
    "Binder",
    "RunFailed",
    "sweep",
    "dry_run",
    "function_key",
    "check_keep_files",
    "check_max_file_bytes",
]

SKIP_MODES = {None: (), "done": ("done",), "done+failed": ("done", "failed")}
ON_ERROR = ("record", "raise")
_CHUNK = 500  # psets validated and checked against the store at a time
_SESSION_REPO = "SELECT git_repo FROM sessions WHERE pk = ?"

#: Runs the psets of a sweep its own way: ``runner(blocks, record)``, given the runs to run in blocks
#: (lists of ``(task, row)``), see :func:`sweep`.
Runner = Callable[[Iterator[list[tuple["Task", PendingRun]]], Recording], None]


class Binder:
    """Turn a pset into the call of a function: arguments bound, defaults applied.

    The recorded parameters are every bound argument, defaults included, so
    that a run records what it really ran with.
    """

    def __init__(self, func: Callable[..., Any], fixed: Iterable[str] = ()) -> None:
        self.func = func
        self.name = getattr(func, "__qualname__", repr(func))
        #: Constant inputs (``fixed=``): passed to every call, never parameters.
        self.fixed = frozenset(fixed)
        try:
            self.signature = inspect.signature(func)
        except (TypeError, ValueError) as e:
            raise RecorderError(f"cannot read the parameters of {self.name}: {e}") from e
        self._var_keyword = None
        for parameter in self.signature.parameters.values():
            if parameter.kind is parameter.VAR_POSITIONAL:
                raise RecorderError(f"{self.name} takes *{parameter.name}; an experiment's parameters must be named")
            if parameter.kind is parameter.POSITIONAL_ONLY:
                raise RecorderError(
                    f"{self.name} has the positional-only parameter {parameter.name!r}; an experiment "
                    "is called with named parameters, so remove the '/' from its signature"
                )
            if parameter.kind is parameter.VAR_KEYWORD:
                self._var_keyword = parameter.name
            else:
                check_name("parameter", parameter.name)
        unknown = sorted(self.fixed - set(self.signature.parameters))
        if unknown and self._var_keyword is None:
            raise RecorderError(f"fixed input {unknown[0]!r} is not a parameter of {self.name}")
        parameters = [
            p for p in self.signature.parameters.values() if p.kind is not p.VAR_KEYWORD and p.name not in self.fixed
        ]
        self._names = frozenset(p.name for p in parameters)
        self._positions = {p.name: i for i, p in enumerate(parameters)}
        # Defaults first, in signature order; a pset's values then replace them.
        self._defaults = {p.name: p.default for p in parameters if p.default is not p.empty}
        self._required = frozenset(p.name for p in parameters if p.default is p.empty)
        # Pset names (in the order given) → the layout of the recorded parameters, and whether
        # the bound dict already has their canonical order (see prepare).
        self._layouts: dict[tuple[str, ...], tuple[PsetLayout, bool]] = {}

    def bind(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Return the parameters of a call with these arguments, defaults applied.

        The function is then called as ``func(**params)``.
        """
        if not args and self._var_keyword is None and kwargs.keys() <= self._names and self._required <= kwargs.keys():
            # The common case of a sweep, without inspect's general (and slow) binding; in the signature's order.
            params = {**self._defaults, **kwargs}
            names = tuple(params)
            ordered = self.order(names)
            return params if ordered == names else {name: params[name] for name in ordered}
        if self.fixed:
            both = sorted(self.fixed & kwargs.keys())
            if both:
                raise RecorderError(
                    f"{both[0]!r} is a fixed input of {self.name}, not a parameter; leave it out of the psets"
                )
            kwargs = {**kwargs, **dict.fromkeys(self.fixed)}  # bound as placeholders, dropped below
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as e:
            raise RecorderError(f"cannot call {self.name} with {kwargs or args}: {e}") from e
        bound.apply_defaults()
        params = dict(bound.arguments)
        if self._var_keyword is not None:
            params.update(params.pop(self._var_keyword))
        for name in self.fixed:
            params.pop(name, None)
        return params

    def known(self, names: Iterable[str]) -> list[str]:
        """Return those of ``names`` that the signature names (not ``**kwargs``)."""
        return [name for name in names if name in self._positions]

    def order(self, names: tuple[str, ...], given: Iterable[str] = ()) -> tuple[str, ...]:
        """Return parameter names in the function's order: as its signature has them, then the others as given.

        The others are those of ``**kwargs``; ``given`` is the order they came in (default: by name).
        """
        positions, last = self._positions, len(self._positions)
        rank = {name: i for i, name in enumerate(given)}
        return tuple(sorted(names, key=lambda n: (positions.get(n, last), rank.get(n, len(rank)), n)))

    def prepare(self, pset: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        """Return the recorded parameters of a call with ``pset`` and their canonical JSON.

        The same as ``canonical_pset(self.bind(**pset))``; psets of plain
        numbers whose names were seen before take a shortcut (a sweep
        prepares every pset, so this is worth its few lines).
        """
        names = tuple(pset)
        known = self._layouts.get(names)
        if known is None:
            clean, canonical = canonical_pset(self.bind(**pset))  # checks the names
            if self._var_keyword is None and self._names.issuperset(names) and self._required.issubset(names):
                bound = tuple({**self._defaults, **dict.fromkeys(names)})  # bind's order: defaults first
                layout = pset_layout(bound)
                if len(self._layouts) < 1024:
                    self._layouts[names] = (layout, bound == layout.order)
            return clean, canonical
        layout, in_order = known
        params = {**self._defaults, **pset}
        values = tuple(params.values()) if in_order else tuple([params[name] for name in layout.order])
        if plain_numbers(values):
            return (params if in_order else dict(zip(layout.order, values))), layout.template % values
        return canonical_pset(params)


def _tasks(
    binder: Binder,
    params: Iterable[Mapping[str, Any]],
    experiment_seed: int | None,
    fields: Fields | None = None,
    start: int = 0,
) -> Iterator[Task]:
    """Validate and hash the psets; with ``fields``, claim their names as the experiment's parameters.

    :param start: the index of the first pset (in the sweep's table).
    """
    # The names of psets (as prepared) → in the function's order, which the experiment's columns take.
    layouts: dict[tuple[str, ...], tuple[str, ...]] = {}
    identity = pset_identity(experiment_seed)
    prepare = binder.prepare
    for index, pset in enumerate(params, start):
        if type(pset) is not dict and not isinstance(pset, Mapping):
            pset = merged_pset(pset, f"pset number {index}")  # a tuple of psets (builtin zip of plists)
        clean, canonical = prepare(pset)
        prepared = tuple(clean)
        names = layouts.get(prepared)
        if names is None:
            names = binder.order(prepared, pset)
            if fields is not None:
                fields.claim("param", names)
            if len(layouts) < 1024:
                layouts[prepared] = names
        hash_, seed = identity(canonical)
        yield new_task(Task, (index, clean, canonical, hash_, seed, names))


_BLOCK = 1024  # psets made into tasks at a time by _tasks_in_blocks


def _tasks_in_blocks(
    binder: Binder,
    params: Iterable[Mapping[str, Any]],
    experiment_seed: int | None,
    fields: Fields | None = None,
) -> Iterator[Task]:
    """Yield what :func:`_tasks` yields, made a block of psets at a time (a vectorised sweep's psets).

    A block of dicts with the same names, of a layout the binder knows,
    whose values are plain numbers (checked column by column, in C) gets
    its canonical JSON from the layout's template and its hashes and seeds
    in comprehensions, with no call per pset; any other block goes through
    :func:`_tasks`, pset by pset.
    """
    import math
    from itertools import repeat

    from ..codec.canonical import INT64_MAX, INT64_MIN
    from ..codec.hashing import pset_identities

    identities = pset_identities(experiment_seed)
    layouts: dict[tuple[str, ...], tuple[str, ...]] = {}  # as in _tasks: prepared names → the function's order
    defaults, isfinite = binder._defaults, math.isfinite
    psets = iter(params)
    index = 0
    while block := list(islice(psets, _BLOCK)):
        start, index = index, index + len(block)
        first = block[0]
        names: tuple[str, ...] = tuple(first) if type(first) is dict else ()
        known = binder._layouts.get(names) if names else None
        rows: list[tuple[Any, ...]] = []
        if known is not None and set(map(type, block)) == {dict} and list(map(tuple, block)).count(names) == len(block):
            layout, in_order = known
            # Without defaults, the psets as given (a sweep never changes them; prepare() copies them
            # only because the general way cannot know that).
            full = [{**defaults, **pset} for pset in block] if defaults else block
            if in_order:
                rows = [tuple(pset.values()) for pset in full]
            else:
                order = layout.order
                rows = [tuple([pset[name] for name in order]) for pset in full]
            for column in zip(*rows):
                types = set(map(type, column))
                if types == {float}:
                    plain = all(map(isfinite, column)) and 0.0 not in column  # -0.0 == 0.0: both out
                elif types == {int}:
                    plain = min(column) >= INT64_MIN and max(column) <= INT64_MAX
                else:
                    plain = False
                if not plain:
                    rows = []
                    break
        if not rows:  # not a block of one known layout of plain numbers: the general way
            yield from _tasks(binder, block, experiment_seed, fields, start)
            continue
        clean = full if in_order else [dict(zip(layout.order, row)) for row in rows]
        prepared = tuple(clean[0])
        ordered = layouts.get(prepared)
        if ordered is None:
            ordered = binder.order(prepared, first)
            if fields is not None:
                fields.claim("param", ordered)
            layouts[prepared] = ordered
        texts = [layout.template % row for row in rows]
        hashes, seeds = identities(texts)
        yield from map(new_task, repeat(Task), zip(range(start, index), clean, texts, hashes, seeds, repeat(ordered)))


def function_key(writer: RunWriter, session_pk: int, func: Callable[..., Any]) -> int:
    """Return the key of ``func``'s row of ``functions`` (added when new): once per sweep, never per run.

    The function's file is recorded relative to the session's repository.
    """
    from ..provenance.environment import function_identity
    from ..store.functions import function_key as key_of

    repo = writer.read(lambda conn: conn.execute(_SESSION_REPO, (session_pk,)).fetchone())
    identity = function_identity(func, repo[0] if repo is not None else None)
    known = writer.function_keys.get(identity)
    if known is None:
        known = int(writer.run(lambda conn: key_of(conn, identity)))
        writer.function_keys[identity] = known
    return known


def _marked(to_run: Iterator[tuple[Task, PendingRun]], rerun_of: str) -> Iterator[tuple[Task, PendingRun]]:
    """The runs of ``to_run``, each marked as a rerun of the run ``rerun_of``."""
    for task, row in to_run:
        row.rerun_of = rerun_of
        yield task, row


def _chunks(tasks: Iterator[Task]) -> Iterator[list[Task]]:
    while chunk := list(islice(tasks, _CHUNK)):
        yield chunk


def check_options(skip: object, on_error: object, workers: object, executor: object) -> tuple[str, ...]:
    if skip not in SKIP_MODES:
        raise RecorderError(f"skip={skip!r} is not one of {', '.join(map(repr, SKIP_MODES))}")
    if on_error not in ON_ERROR:
        raise RecorderError(f"on_error={on_error!r} is not one of {', '.join(map(repr, ON_ERROR))}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise RecorderError(f"workers={workers!r} is not a number of processes (an int ≥ 1)")
    if executor is not None and not _is_executor(executor):
        raise RecorderError(f"executor={executor!r} is not a concurrent.futures.Executor")
    return SKIP_MODES[skip]


def check_keep_files(keep_files: object) -> str:
    """Return ``keep_files`` if it is one of :data:`recorder.sweep.execute.KEEP_FILES`."""
    from .execute import KEEP_FILES

    if keep_files not in KEEP_FILES:
        raise RecorderError(f"keep_files={keep_files!r} is not one of {', '.join(map(repr, KEEP_FILES))}")
    return str(keep_files)


def check_max_file_bytes(limit: object) -> int | None:
    """Return ``limit`` if it is None or a number of bytes (an int ≥ 0)."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise RecorderError(f"max_file_bytes={limit!r} is not a number of bytes (an int ≥ 0) or None")
    return limit


def _is_executor(executor: object) -> bool:
    from concurrent.futures import Executor

    return isinstance(executor, Executor)


def total(params: Iterable[Any]) -> int | None:
    try:
        return len(params)  # type: ignore[arg-type]
    except TypeError:
        return None


def dry_run(
    experiment: str,
    binder: Binder,
    params: Iterable[Mapping[str, Any]],
    *,
    store: Any = None,
    seed: int | None = None,
    skip: str | None = "done",
) -> pd.DataFrame:
    """Report which psets a sweep would run and which it would skip; write nothing, call nothing."""
    from ..store.folder import Store

    statuses = check_options(skip, "record", 1, None)
    try:
        opened: Store | None = Store.open(store, readonly=True)
    except StoreError:
        opened = None  # no store yet: everything would run
    table = Table()
    try:
        experiment_pk = find_experiment(opened.conn, experiment) if opened is not None else None
        for chunk in _chunks(_tasks(binder, params, seed)):
            done = done_hashes(opened.conn, experiment_pk, statuses, [t.hash for t in chunk]) if opened else set()
            for task in chunk:
                status = f"skip ({'/'.join(statuses)})" if task.hash in done else "would run"
                table.append({**task.params, "_pset_hash": task.hash, "_status": status})
    finally:
        if opened is not None:
            opened.close()
    return table.frame(list(binder.order(tuple(binder.known(table.columns)))), ["_pset_hash", "_status"])


def sweep(
    session: Session,
    func: Callable[..., Any],
    params: Iterable[Mapping[str, Any]],
    *,
    binder: Binder | None = None,
    workers: int = 1,
    executor: cf.Executor | None = None,
    skip: str | None = "done",
    on_error: str = "record",
    progress: bool | None = None,
    capture: bool = False,
    return_df: bool = True,
    runner: Runner | None = None,
    rerun_of: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
    keep_files: str | None = None,
    max_file_bytes: int | None = None,
    fixed: Mapping[str, Any] | None = None,
    batch_size: int | str = "auto",
) -> pd.DataFrame | None:
    """Run ``func`` on every pset of ``params`` in ``session``; return one row per pset.

    See :meth:`recorder.Recorder.sweep` for the options. ``runner`` replaces
    the call of ``func`` per pset: it is given the psets to run (each with
    its row, in blocks) and what records their outcomes (:class:`Recording`), and runs
    them as it likes (:mod:`recorder.sweep.vectorised` runs them in vectorised chunks).
    ``rerun_of`` (a run id) marks every run as a rerun of that run (see :mod:`recorder.record.rerun`).
    """
    statuses = check_options(skip, on_error, workers, executor)
    constants: dict[str, Any] = {}
    if fixed is not None or isinstance(func, functools.partial):
        from .fixed import split_partial

        if fixed is not None and not isinstance(fixed, Mapping):
            raise RecorderError(f"fixed={fixed!r} is not a dict of constant inputs (name → value)")
        func, constants = split_partial(func, fixed)
        # The given binder's function (an experiment's own, when func is what its workers load).
        base = binder.func if binder is not None and not isinstance(binder.func, functools.partial) else func
        binder = Binder(base, constants)
    binder = binder or Binder(func)
    pool = None
    if executor is not None or workers > 1:
        from .pool import Pool  # multiprocessing only when a sweep uses it

        # Before the session starts: a function the workers cannot load is refused with nothing written.
        pool = Pool(func, binder.name, executor, workers, constants, batch_size)
    else:
        from .tasks import check_batch_size

        check_batch_size(batch_size)  # a serial sweep has no batches, but a bad value is still refused
    try:
        store, writer, session_pk = session.writing()
    except BaseException:
        if pool is not None:
            pool.close()
        raise
    try:
        function = function_key(writer, session_pk, func)
        if constants:
            from .fixed import fixed_config

            session.config(**fixed_config(constants, binder.name))  # type: ignore[attr-defined]
    except BaseException:
        if pool is not None:
            pool.close()
        raise
    progress_ = Progress(total(params), progress, f"sweep {session.experiment}")
    reader = Reader(store.db_path, writer.experiment_pk, session_pk, alone=session.runs_recorded == 0)
    table = Table() if return_df else None
    fills = Fills()
    arguments = (str(store.objects.root), session.inline_limit, capture, binder.name)
    # Unless given, a Recorder's own (its sessions implement Session).
    if workdir is None:
        workdir = getattr(session, "workdir", None)
    keep_files = check_keep_files(keep_files if keep_files is not None else getattr(session, "keep_files", "store"))
    if max_file_bytes is None:
        max_file_bytes = getattr(session, "max_file_bytes", None)
    where = Where(
        session.experiment,
        str(store.root),
        None if workdir is None else str(workdir),
        keep_files,
        check_max_file_bytes(max_file_bytes),
        session.id,  # a run's series are spilled to the session's folder (recorder.store.spill)
        writer.interval,
        function,
        rerun_of,
    )

    def call(task: Task, row: PendingRun) -> tuple[Any, ...]:
        row.pid = None  # the worker's, which its outcome reports (unknown if the worker dies)
        return (task.params, task.seed, *arguments, row.id, task.hash, where)

    record = _Recording(session, store.objects, writer, binder.name, table, progress_, on_error)
    recorded_before = session.runs_recorded

    try:
        with writer.inline(), older_objects_frozen():
            # A runner (vsweep) takes its psets a chunk at a time: made into tasks a block at a time.
            tasks = (_tasks if runner is None else _tasks_in_blocks)(binder, params, session.seed, writer.fields)
            if runner is not None:
                blocks = _to_run_in_blocks(
                    tasks, reader, statuses, table, fills, progress_, writer.note_psets, function, rerun_of
                )
                runner(blocks, record)
            else:
                to_run = _to_run(tasks, reader, statuses, table, fills, progress_, writer.note_psets, function)
                if rerun_of is not None:
                    to_run = _marked(to_run, rerun_of)
                if pool is None:
                    from .fixed import with_fixed

                    run_serial(with_fixed(func, constants), to_run, writer.started, record, arguments, where)
                else:
                    pool.run(to_run, call, record)
        if table is not None:
            fills.apply(reader, statuses, table, store.objects)
        if record.failed:
            ran = session.runs_recorded - recorded_before
            _warn_failures(session.experiment, store.root, record.failed, ran, record.first_error)
    finally:
        reader.close()
        if pool is not None:
            pool.close()
        progress_.close()
    if table is None:
        return None
    return table.frame(list(binder.order(tuple(binder.known(table.columns)))), [*META, ERROR], runs=True)


def _warn_failures(experiment: str, root: Path, failed: int, ran: int, first_error: str | None) -> None:
    """Say once, at the end of a sweep, that runs failed: how many, the first error, how to list them.

    A warning, not only the progress line: a sweep writing to a file (no
    terminal) says it too.
    """
    import shlex
    import warnings

    last = exception_line(first_error)
    command = f"recorder --store {shlex.quote(str(root))} log {shlex.quote(experiment)} --status failed"
    first = f"; the first: {last}" if last else ""
    warnings.warn(
        f"sweep of {experiment!r}: {failed} of {ran} runs failed{first}. List them with: {command}",
        RecorderWarning,
        stacklevel=_user_level(),
    )


def _user_level() -> int:
    """The ``stacklevel`` of a warning raised here that points at the user's call, past recorder's frames."""
    import os
    import sys
    import types

    own = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # the recorder package
    frame: types.FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(own):
        frame, level = frame.f_back, level + 1
    return level


class _Recording:
    """Records the outcome of each run of a sweep: to the writer, the sweep's table and its progress.

    Called as ``record(task, row, outcome)`` (the ``record`` a :data:`Runner` is given).
    """

    def __init__(
        self,
        session: Session,
        objects: ObjectStore,
        writer: RunWriter,
        func_name: str,
        table: Table | None,
        progress: Progress,
        on_error: str,
    ) -> None:
        self._session, self._writer, self._func_name = session, writer, func_name
        self._table, self._progress, self._on_error = table, progress, on_error
        self._objects = objects
        self._result_layouts: set[tuple[str, ...]] = set()  # result names claimed in the experiment
        import socket

        self._host = socket.gethostname()  # the session's (recorded by this process as it opened)
        self.failed = 0  # runs recorded failed, and the error of the first
        self.first_error: str | None = None

    def __call__(self, task: Task, row: PendingRun, outcome: Outcome) -> None:
        """Record a run's outcome.

        :raises RunFailed: after recording a failed run, with ``on_error="raise"``.
        """
        if outcome.status == "interrupted" and not outcome.results:  # its worker died: its spilled series
            outcome = self._salvaged(row, outcome)
        if outcome.results:
            names = tuple(outcome.results)
            if names not in self._result_layouts:
                try:
                    self._writer.fields.claim("result", names)
                except NameRefused as e:  # recorded as the run's failure, like any error of the function
                    outcome = outcome._replace(status="failed", results={}, error=f"{self._func_name}: {e}")
                else:
                    self._result_layouts.add(names)
        row.t0, row.results = outcome.t0, outcome.results
        pid = outcome.pid
        if pid is not None:  # a worker's run: where it ran (the host only when it is not the session's)
            row.pid = pid
            if outcome.host != self._host:
                row.host = outcome.host
        if outcome.output is not None:
            row.output = (text_digest(outcome.output), outcome.output)
        self._writer.finished(row, outcome.status, outcome.duration, outcome.error)
        self._session.runs_recorded += 1
        self._progress.add(outcome.status)
        if self._table is not None:
            self._fill(
                task, row, outcome.t0, outcome.duration, outcome.status, scalars_of(outcome.results, self._objects)
            )
        if outcome.status != "failed":
            return
        if self._table is not None:  # the column appears with the first failure, as df() reads it
            self._table.set(task.index, {ERROR: exception_line(outcome.error)})
        self.failed += 1
        if self.first_error is None:
            self.first_error = outcome.error
        if self._on_error == "raise":
            raise RunFailed(
                f"run {row.id} of {self._func_name} with {task.params} failed (recorded); "
                f"its traceback:\n{outcome.error}"
            )

    def _salvaged(self, row: PendingRun, outcome: Outcome) -> Outcome:
        """An interrupted run's outcome with the series its process had spilled (:mod:`recorder.store.spill`)."""
        from ..store.layout import locks_folder
        from ..store.spill import salvage

        if self._session.id is None:
            return outcome
        try:
            found = salvage(locks_folder(self._objects.root.parent), self._session.id, row.id, self._objects)
        except (OSError, RecorderError):
            return outcome  # the files stay: the session's end removes them
        if found is None:
            return outcome
        results, note = found
        return outcome._replace(results=results, error=f"{outcome.error}\n{note}" if outcome.error else note)

    def plain(
        self,
        task: Task,
        row: PendingRun,
        t0: float,
        duration: float,
        results: dict[str, Any],
        scalars: str,
        names: tuple[str, ...],
    ) -> None:
        """Record a done run whose results (names claimed before) are plain numbers, as ``runs.scalars`` JSON."""
        row.t0, row.scalars, row.scalar_names = t0, scalars, names
        self._writer.finished(row, "done", duration, None)
        self._session.runs_recorded += 1
        self._progress.add("done")
        if self._table is not None:
            self._fill(task, row, t0, duration, "done", results)

    def plain_chunk(
        self,
        batch: list[tuple[Task, PendingRun]],
        t0: float,
        duration: float,
        scalars: list[str],
        names: tuple[str, ...],
        columns: Mapping[str, list[Any]],
    ) -> None:
        """Record many done runs of plain-number results at once (a vectorised chunk's): :meth:`plain` for each.

        :param scalars: each run's ``runs.scalars`` JSON, in the order of ``batch``.
        :param names: the result names (claimed here the first time, as :meth:`__call__` does).
        :param columns: each result's values, in the order of ``batch``, for the sweep's table.
        """
        if names not in self._result_layouts:
            try:
                self._writer.fields.claim("result", names)
            except NameRefused as e:  # every run fails, as each would the general way
                for task, row in batch:
                    self(task, row, Outcome("failed", t0, duration, {}, f"{self._func_name}: {e}", None))
                return
            self._result_layouts.add(names)
        if not batch:
            return
        rows = [row for _, row in batch]
        # Handed over as columns: the writer writes them without a Python step per run.
        self._writer.finished_many(DoneChunk(rows, [task[0] for task, _ in batch], t0, duration, scalars, names))
        self._session.runs_recorded += len(rows)
        self._progress.add_many("done", len(rows))
        if self._table is not None:
            count = len(rows)
            meta = {
                "_status": "done",
                "_time_start": iso_utc(round(t0, 3)),
                "_duration_s": round(duration, 6),
                "_session": self._session.id,
                "_env_sha": self._session.env_sha,
                "_exec_host": self._host,
            }
            self._table.set_many(
                [task.index for task, _ in batch],
                {
                    **columns,
                    "_run_id": [row.id for row in rows],
                    "_exec_pid": [row.pid for row in rows],
                    "_pset_seq": [row.pset_seq for row in rows],
                    **{name: [value] * count for name, value in meta.items()},
                },
            )

    def _fill(
        self, task: Task, row: PendingRun, t0: float, duration: float, status: str, scalars: Mapping[str, Any]
    ) -> None:
        assert self._table is not None
        self._table.set(
            task.index,
            {
                **scalars,
                # As stored: start to the millisecond, duration to the microsecond.
                "_run_id": row.id,
                "_status": status,
                "_time_start": iso_utc(round(t0, 3)),
                "_duration_s": round(duration, 6),
                "_session": self._session.id,
                "_env_sha": self._session.env_sha,
                "_exec_host": row.host or self._host,
                "_exec_pid": row.pid,
                "_pset_seq": row.pset_seq,
            },
        )


def _to_run(
    tasks: Iterator[Task],
    reader: Reader,
    statuses: tuple[str, ...],
    table: Table | None,
    fills: Fills,
    progress: Progress,
    note_psets: Callable[[dict[str, int]], None] | None = None,
    function: int | None = None,
) -> Iterator[tuple[Task, PendingRun]]:
    """Yield the tasks that must run, with their rows; note the skipped and repeated ones.

    :param note_psets: given the keys of the psets found in the store (hash → key), for the writer.
    :param function: the key of the experiment function in ``functions``, given to every row.
    """
    for chunk in _chunks(tasks):
        done = _done_in(chunk, reader, statuses, note_psets)
        if table is not None:
            for task in chunk:
                table.append({**task.params, "_pset_hash": task.hash})
        for task in _new_in(chunk, done, fills, progress):  # the one rule for skipped and repeated psets
            index, _, canonical, hash_, seed, names = task
            yield task, PendingRun(new_id(), hash_, canonical, seed, time.time(), names, function, index)


def _done_in(
    chunk: list[Task],
    reader: Reader,
    statuses: tuple[str, ...],
    note_psets: Callable[[dict[str, int]], None] | None,
) -> set[str]:
    """The hashes of the chunk's psets that the store has a run of (one of ``statuses``) for; note their keys."""
    done: set[str] = set()
    if statuses and not reader.alone():
        hashes = [t.hash for t in chunk]
        found = reader.read(lambda conn: look_up(conn, reader.experiment_pk, statuses, hashes))
        if found:
            keys = {}
            for task in chunk:
                pset = found.get(task.hash)
                if pset is not None:
                    check_pset(task.hash, pset[1], task.canonical)
                    keys[task.hash] = pset[0]
                    if pset[2]:
                        done.add(task.hash)
            if note_psets is not None:
                note_psets(keys)
    return done


def _to_run_in_blocks(
    tasks: Iterator[Task],
    reader: Reader,
    statuses: tuple[str, ...],
    table: Table | None,
    fills: Fills,
    progress: Progress,
    note_psets: Callable[[dict[str, int]], None] | None = None,
    function: int | None = None,
    rerun_of: str | None = None,
) -> Iterator[list[tuple[Task, PendingRun]]]:
    """What :func:`_to_run` yields, a block (a chunk of its) at a time: for a runner, which runs many at once.

    The rows of a block get their ids together (:func:`new_ids`) and one
    start time (the runner sets each run's own when it runs).
    """
    from itertools import repeat

    from ..store.ids import new_ids

    for chunk in _chunks(tasks):
        done = _done_in(chunk, reader, statuses, note_psets)
        firsts = fills.first
        if table is not None:
            for task in chunk:
                table.append({**task.params, "_pset_hash": task.hash})
        hashes = [task[3] for task in chunk]
        if not done and firsts.keys().isdisjoint(hashes) and len(set(hashes)) == len(hashes):
            # Every pset new to the sweep and none done (the common case): noted together.
            firsts.update(zip(hashes, [task[0] for task in chunk]))
            block = chunk
        else:
            block = _new_in(chunk, done, fills, progress)
        if not block:
            continue
        rows = list(
            map(
                PendingRun,
                new_ids(len(block)),
                [t[3] for t in block],
                [t[2] for t in block],
                [t[4] for t in block],
                repeat(time.time()),
                [t[5] for t in block],
                repeat(function),
                [t[0] for t in block],
            )
        )
        if rerun_of is not None:
            for row in rows:
                row.rerun_of = rerun_of
        yield list(zip(block, rows))


def _new_in(chunk: list[Task], done: set[str], fills: Fills, progress: Progress) -> list[Task]:
    """The tasks of a chunk to run: neither done in the store nor repeating one of the sweep (noted in ``fills``)."""
    firsts = fills.first
    block = []
    for task in chunk:
        index, hash_ = task[0], task[3]
        first = firsts.get(hash_)
        if first is not None:  # the same pset again in this sweep: run once
            fills.repeated.append((index, first))
            progress.add("skipped")
        elif hash_ in done:
            firsts[hash_] = index
            fills.skipped.setdefault(hash_, []).append(index)
            progress.add("skipped")
        else:
            firsts[hash_] = index
            block.append(task)
    return block
