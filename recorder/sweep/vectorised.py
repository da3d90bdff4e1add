"""Vectorised sweeps of JAX functions: ``jit(vmap(f))`` over chunks of psets, one recorded run each.

A sweep that calls a JAX function once per pset spends its time in Python
and in dispatch. :func:`vsweep` stacks the psets into arrays and runs the
function on ``chunk_size`` psets at a time through one compiled
``jax.jit(jax.vmap(f))``; the last chunk is padded to the same size, so a
sweep compiles once (once per value of its ``static`` parameters). Each
pset is still one recorded run, with the pset hash and the stored results
that :meth:`recorder.Experiment.sweep` gives it. JAX dispatches
asynchronously, so a chunk's outputs are unstacked and recorded (scalars
inline, arrays to the object store) while the next chunk computes.

Importing this module imports jax; ``import recorder`` never does.
"""

from __future__ import annotations

import contextvars
import gc
import json
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from ..codec.canonical import INT64_MAX, ScalarLayout, bool_column, scalar_layout, scalars_rows
from ..codec.hashing import claim_names
from ..codec.values import NAN_ENCODED, Encoded, encode, plain_scalar
from ..errors import RecorderError, StoreError
from ..store.layout import JAX_CACHE
from ..store.objects import ObjectStore
from ..store.pending import PendingRun
from .execute import Outcome, current_seed, user_traceback
from .loop import Binder, sweep, total
from .serial import Recording
from .session import Session

if TYPE_CHECKING:
    import pandas as pd

    from .tasks import Task

__all__ = ["CACHE_FOLDER", "key", "use_compile_cache", "vsweep", "chunk_size_for"]

#: The folder of a store where :func:`use_compile_cache` keeps compiled programs.
CACHE_FOLDER = JAX_CACHE
_MAX_CHUNK = 1 << 16
_MIN_CHUNKS = 4  # when there are enough psets: recording one chunk overlaps computing the next
_MIN_SPLIT = 1024  # psets per chunk below which a sweep is not split further for that overlap
_HOST_FRACTION = 0.25  # of available host memory, the default budget on a CPU
_DEVICE_FRACTION = 0.5  # of an accelerator's free memory, the default budget there
_FALLBACK_BUDGET = 1 << 30  # when neither can be read

_SESSION_JAX = "SELECT jax FROM sessions WHERE pk = ?"
_SET_SESSION_JAX = "UPDATE sessions SET jax = ? WHERE pk = ?"

_HINT = (
    "vsweep traces the function once for arrays of psets, so it must be a pure JAX function "
    "of its parameters (jnp, lax.cond / jnp.where instead of Python if on a parameter); mark "
    "parameters that set shapes or loop lengths static=[...], or use .sweep() to call it once per pset"
)


#: While vsweep traces a function: the seed of each pset (a traced int, one per pset under vmap).
_TRACED_SEED: contextvars.ContextVar[Any] = contextvars.ContextVar("recorder_traced_seed", default=None)


def key() -> jax.Array:
    """Return the ``jax.random`` key of the run in progress: ``jax.random.PRNGKey(run.seed)``.

    Inside a function that :func:`vsweep` runs, each pset gets the key of its
    own recorded seed, as a traced value (so each pset of a chunk draws its
    own numbers); inside a function that ``sweep`` (or a rerun) calls, it is
    ``jax.random.PRNGKey(recorder.current_seed())``. The same function so
    draws the same numbers for a pset whichever way it runs.

    :raises RecorderError: outside a recorded run; or inside ``jax.jit`` in a
        run that vsweep does not run (the key would be compiled in once, and
        every later pset would get it): call ``key()`` outside the jitted
        function and pass the key in.
    """
    traced = _TRACED_SEED.get()
    if traced is not None:
        return jax.random.PRNGKey(traced)
    try:
        seed = current_seed()
    except RecorderError:
        raise RecorderError(
            "recorder.jax.key() is only known inside a recorded run (a function run by sweep, vsweep or rerun)"
        ) from None
    if isinstance(jax.numpy.zeros(()), jax.core.Tracer):  # inside jax.jit: a constant made now stays
        raise RecorderError(
            "recorder.jax.key() was called inside jax.jit in a run of sweep: the jitted function would keep "
            "the first pset's key for every pset; call key() outside the jitted function and pass the key in "
            "(or run the function with vsweep, which traces it with each pset's key)"
        )
    return jax.random.PRNGKey(seed)


def use_compile_cache(store: str | os.PathLike[str] | None = None) -> Path:
    """Keep JAX's compiled programs in ``<store>/jax-cache``, so that another process does not recompile.

    Sets ``jax_compilation_cache_dir`` there and caches every program,
    whatever its size and compile time (JAX's defaults skip programs that
    compile in under a second). Applies to the whole process.

    :param store: the store folder; default as for :class:`recorder.Recorder`.
    :returns: the cache folder.
    :raises StoreError: when the folder cannot be made.
    """
    from jax.experimental.compilation_cache import compilation_cache

    from ..store.folder import locate

    folder = locate(store) / CACHE_FOLDER
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot make the JAX compile cache folder {folder}: {e}") from e
    # The option exists at run time; jax's Config declares its options without attributes.
    if jax.config.jax_compilation_cache_dir != str(folder):  # type: ignore[attr-defined]
        jax.config.update("jax_compilation_cache_dir", str(folder))
        # JAX decides once per process whether (and where) it caches: make it decide again.
        compilation_cache.reset_cache()
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return folder


def _aval_bytes(aval: Any) -> int:
    shape = getattr(aval, "shape", None)
    dtype = getattr(aval, "dtype", None)
    if shape is None or dtype is None:
        return 0
    try:
        itemsize = np.dtype(dtype).itemsize
    except TypeError:  # an extended dtype (a jax.random key): its own size, or two uint32 words
        itemsize = int(getattr(dtype, "itemsize", 8))
    size: int = math.prod(shape) * itemsize
    return size


def _intermediate_bytes(jaxpr: Any) -> int:
    """Bytes of every value a jaxpr makes, nested bodies counted once: an upper bound of what is live."""
    total = 0
    for eqn in jaxpr.eqns:
        total += sum(_aval_bytes(v.aval) for v in eqn.outvars)
        for param in eqn.params.values():
            for sub in param if isinstance(param, (list, tuple)) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    total += _intermediate_bytes(inner)
    return total


def _memory_budget() -> int:
    """A share of the default device's free memory, or of the host's available memory on a CPU."""
    device = jax.devices()[0]
    if device.platform != "cpu":
        try:
            stats = device.memory_stats() or {}
        except (RuntimeError, NotImplementedError):  # a backend without memory statistics
            stats = {}
        if "bytes_limit" in stats:
            return int((stats["bytes_limit"] - stats.get("bytes_in_use", 0)) * _DEVICE_FRACTION)
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on this platform
        return _FALLBACK_BUDGET
    return int(available * _HOST_FRACTION)


def chunk_size_for(per_pset_bytes: int, budget_bytes: int, total: int | None) -> int:
    """Return how many psets to run at once: as many as fit the budget, balanced over the sweep.

    Two chunks are alive at a time (one computing, one being recorded), so a
    chunk gets half the budget. With a known number of psets, the chunks are
    made equal (the padding of the last one stays small) and, with enough
    psets, at least four, so that recording overlaps computing.
    """
    size = max(1, min(_MAX_CHUNK, budget_bytes // max(1, 2 * per_pset_bytes)))
    if total is not None and total > 0:
        chunks = math.ceil(total / size)
        if total >= _MIN_CHUNKS * _MIN_SPLIT:
            chunks = max(chunks, _MIN_CHUNKS)
        size = math.ceil(total / chunks)
    return size


class _Program:
    """One compiled ``jit(vmap(f))`` for a layout of parameters and values of the static ones.

    It is traced when made (to check the function and size its chunks) and
    compiled at its first chunk: for that chunk's psets when it is the
    sweep's last (so a sweep smaller than ``chunk_size`` is not padded up to
    it), else for ``size``. Each pset's run seed goes in as one more
    argument, read by :func:`key`.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        func_name: str,
        task: Task,
        static: tuple[str, ...],
        chunk_size: int | str,
        budget: int | None,
        total: int | None,
    ) -> None:
        self.static = {name: task.params[name] for name in static if name in task.params}
        self.names = tuple(n for n in task.names if n not in self.static)
        self.func_name = func_name
        self.types = {name: type(task.params[name]) for name in self.names}
        self.dtypes = {name: _dtype(name, task.params[name], task.index) for name in self.names}
        self.seed_dtype = _dtype("seed", 0, task.index)  # as jax.random.PRNGKey takes a Python int
        fixed = self.static

        def one(seed: Any, **kwargs: Any) -> Any:
            token = _TRACED_SEED.set(seed)
            try:
                return func(**kwargs, **fixed)
            finally:
                _TRACED_SEED.reset(token)

        self._one = one
        seed = jax.ShapeDtypeStruct((), self.seed_dtype)
        single = {name: jax.ShapeDtypeStruct((), self.dtypes[name]) for name in self.names}
        try:
            shapes = jax.eval_shape(one, seed, **single)
            jaxpr = jax.make_jaxpr(one)(seed, **single).jaxpr if chunk_size == "auto" else None
        except Exception as e:
            raise RecorderError(f"vsweep cannot trace {func_name}: {type(e).__name__}: {e}\n{_HINT}") from e
        self.outputs = _output_names(func_name, shapes, task.names)
        self.layout: ScalarLayout | None = scalar_layout(self.outputs) if self.outputs else None
        per_pset = sum(np.dtype(d).itemsize for d in self.dtypes.values()) + self.seed_dtype.itemsize
        per_pset += sum(_aval_bytes(s) for s in (shapes or {}).values())
        if jaxpr is not None:
            per_pset += _intermediate_bytes(jaxpr)
        self.per_pset_bytes = per_pset
        self.budget = budget if budget is not None else (_memory_budget() if chunk_size == "auto" else None)
        if chunk_size == "auto":
            assert self.budget is not None
            self.size = chunk_size_for(per_pset, self.budget, total)
        else:
            # No larger than the sweep: padding a few psets up to a large chunk only wastes work.
            self.size = int(chunk_size) if not total else max(1, min(int(chunk_size), total))
        self.compiled: Any = None
        #: Its place in the session's list of programs (``sessions.jax``), once noted there.
        self.noted: int | None = None

    def compile(self, size: int) -> None:
        """Compile the program for chunks of ``size`` psets (once: its first chunk decides)."""
        self.size = size
        seeds = jax.ShapeDtypeStruct((size,), self.seed_dtype)
        batched = {name: jax.ShapeDtypeStruct((size,), self.dtypes[name]) for name in self.names}
        try:
            self.compiled = jax.jit(jax.vmap(self._one)).lower(seeds, **batched).compile()
        except Exception as e:
            raise RecorderError(
                f"vsweep cannot compile {self.func_name} for {size} psets at once: {type(e).__name__}: {e}\n{_HINT}"
            ) from e

    def stack(self, batch: list[tuple[Task, PendingRun]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Return the chunk's run seeds and parameters as arrays of the chunk size, the last pset repeated as padding."""
        arrays = {}
        count = len(batch)
        for name in self.names:
            values = [task.params[name] for task, _ in batch]
            expected = self.types[name]
            if not all(type(v) is expected for v in values):
                for (task, _), value in zip(batch, values):
                    if type(value) is not expected:
                        _dtype(name, value, task.index)  # a value that is not a number: its own message
                        raise RecorderError(
                            f"parameter {name!r} is {type(value).__name__} ({value!r}) in pset {task.index} but "
                            f"{expected.__name__} in earlier psets; vsweep stacks each parameter into one array, "
                            f"so give it one type (write 1.0, not 1, for a float), or use .sweep()"
                        )
            array = np.empty(self.size, dtype=self.dtypes[name])
            try:
                array[:count] = values
            except OverflowError as e:
                raise RecorderError(
                    f"a value of parameter {name!r} does not fit {array.dtype}: {e}; "
                    "enable 64-bit JAX (jax.config.update('jax_enable_x64', True)) or use .sweep()"
                ) from e
            array[count:] = array[count - 1]
            arrays[name] = array
        seeds = np.empty(self.size, dtype=self.seed_dtype)
        seeds[:count] = [task.seed for task, _ in batch]
        seeds[count:] = seeds[count - 1]
        return seeds, arrays

    def description(self) -> dict[str, Any]:
        return {
            "chunk_size": self.size,
            "per_pset_bytes": self.per_pset_bytes,
            "budget_bytes": self.budget,
            "vectorised": list(self.names),
            "static": self.static,
        }


def _dtype(name: str, value: Any, index: int) -> np.dtype:
    """The array dtype of a parameter's values, as JAX would make it from this value."""
    kind = type(value)
    if kind not in (bool, int, float):
        raise RecorderError(
            f"parameter {name!r} is {kind.__name__} ({value!r}) in pset {index}; vsweep stacks parameters "
            f"into arrays, so each must be a number (bool, int, float): pass static=[{name!r}] to compile "
            "once per value, or use .sweep()"
        )
    return np.dtype(jax.dtypes.canonicalize_dtype(np.dtype(kind)))


def _output_names(func_name: str, shapes: Any, params: tuple[str, ...]) -> tuple[str, ...]:
    """Check what the function returns (a dict of arrays, or None) and return the result names."""
    if shapes is None:
        return ()
    if not isinstance(shapes, Mapping):
        raise RecorderError(
            f"{func_name} returned {type(shapes).__name__}; an experiment function returns a dict "
            "of results (name → array or number) or None"
        )
    for name, shape in shapes.items():
        if not isinstance(name, str):
            raise RecorderError(f"{func_name} returned a result named {name!r}; result names are str")
        if not isinstance(shape, jax.ShapeDtypeStruct):
            raise RecorderError(
                f"{func_name} returned {type(shape).__name__} as result {name!r}; vsweep records "
                "arrays and numbers (return nested results as results of their own)"
            )
    names = tuple(shapes)
    claim_names("result", names, {n.lower(): n for n in params})
    return names


def _column(name: str, values: np.ndarray, objects: ObjectStore, inline_limit: int) -> list[Encoded] | None:
    """Encode one output of a chunk when it is a number per pset (None for arrays: encoded per run)."""
    if values.ndim != 1:
        return None
    if values.dtype.kind in "biuf" and values.dtype.type.__module__ == "numpy":
        # Native numbers: .tolist() gives the plain values that encode() stores for a JAX scalar.
        plain = values.tolist()
        if values.dtype.kind == "f":
            return [Encoded(None, v) if v == v else NAN_ENCODED for v in plain]
        if values.dtype.kind == "b":
            return [Encoded("bool", int(v)) for v in plain]
    else:
        plain = [plain_scalar(v) for v in values]
    return [encode(name, v, objects, inline_limit=inline_limit) for v in plain]


def _plain_columns(
    layout: ScalarLayout, outputs: Mapping[str, np.ndarray]
) -> tuple[list[str], dict[str, list[Any]], np.ndarray | None] | None:
    """A chunk's outputs of a number per pset as each run's ``runs.scalars``, column by column.

    Returns the texts, the plain values by name (for the sweep's table) and
    a mask of the runs whose text is not right (a NaN or ±inf, an unsigned
    int beyond 64 bits: recorded the general way), or None when the mask is
    empty; None instead when some output is not a number per pset (an array,
    a complex, …: every run the general way).
    """
    columns, plain = [], {}
    odd: np.ndarray | None = None
    for name in layout.order:
        values = outputs[name]
        dtype = values.dtype
        if values.ndim != 1 or dtype.type.__module__ != "numpy":
            return None
        kind, size = dtype.kind, dtype.itemsize
        python = values.tolist()  # in C: the plain values encode() stores for these dtypes
        if kind == "b":
            columns.append(bool_column(python))
        elif kind == "i" or (kind == "u" and size < 8):
            columns.append(python)
        elif kind in "uf" and size <= 8:
            bad = values > INT64_MAX if kind == "u" else ~np.isfinite(values)
            if bad.any():
                odd = bad if odd is None else odd | bad
            columns.append(python)
        else:
            return None
        plain[name] = python
    return scalars_rows(layout, columns), plain, odd


class _Chunk:
    """A chunk in flight: its psets, its (asynchronous) outputs or the error of its dispatch."""

    __slots__ = ("batch", "dispatched", "error", "index", "outputs", "program", "t0")

    def __init__(self, program: _Program, batch: list[tuple[Task, PendingRun]], index: int) -> None:
        self.program, self.batch, self.index = program, batch, index
        self.outputs: Any = None
        self.error: str | None = None
        self.t0 = self.dispatched = 0.0  # set when it is dispatched


class _Runner:
    """Run a sweep's psets in vectorised chunks (a :data:`recorder.sweep.Runner`).

    Each chunk's outputs come to the host in one ``jax.device_get``; when
    they are numbers per pset, each column becomes Python values in one
    ``tolist()``, the runs' ``runs.scalars`` texts are made from the layout's
    template in one pass, and the chunk goes to the writer whole
    (:meth:`Recording.plain_chunk`). Other outputs (arrays, NaN, …) take the
    general way, run by run. Every chunk's index, size, start and time are
    kept in :attr:`chunks`.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        func_name: str,
        static: tuple[str, ...],
        chunk_size: int | str,
        budget: int | None,
        total: int | None,
        objects: ObjectStore,
        inline_limit: int,
        on_new_program: Callable[[_Program], None],
    ) -> None:
        self.func, self.func_name, self.static = func, func_name, static
        self.chunk_size, self.budget, self.total = chunk_size, budget, total
        self.objects, self.inline_limit = objects, inline_limit
        self.on_new_program = on_new_program
        self.programs: dict[tuple[Any, ...], _Program] = {}
        self.compilations = 0
        #: Each chunk dispatched: index, program (its place in the session's list), psets, start, seconds.
        self.chunks: list[dict[str, Any]] = []
        self._last_ready = 0.0
        self._last_t0 = 0.0
        self._dispatched = 0  # chunks dispatched: the index of the next

    def __call__(self, blocks: Iterator[list[tuple[Task, PendingRun]]], record: Recording) -> None:
        pending: deque[_Chunk] = deque()
        # Two chunks of runs are alive at a time (tens of thousands of objects), so Python's automatic
        # collections would walk them over and over, the full ones more and more often as the sweep's
        # objects reach the oldest generation. Instead the young objects are collected once per chunk
        # recorded; what outlives that waits for the end of the sweep (older_objects_frozen's idea).
        automatic = gc.isenabled()
        gc.disable()
        try:
            for program, batch, last in self._batches(blocks):
                if program.compiled is None:
                    program.compile(len(batch) if last else program.size)
                    self.compilations += 1
                    self.on_new_program(program)
                chunk = _Chunk(program, batch, self._dispatched)
                self._dispatched += 1
                pending.append(chunk)  # in flight from now: an interrupt marks its runs
                seeds, args = program.stack(batch)
                # Each chunk its own start, to the millisecond: the runs of a chunk are those of its start.
                chunk.t0 = self._last_t0 = max(time.time(), self._last_t0 + 0.001)
                chunk.dispatched = time.perf_counter()
                try:
                    chunk.outputs = program.compiled(seeds, **args)  # returns at once; computes meanwhile
                except Exception as e:
                    chunk.error = user_traceback(e)
                if len(pending) > 1:
                    self._record(pending[0], record)
                    pending.popleft()
                    if automatic:
                        gc.collect(1)
            while pending:
                self._record(pending[0], record)
                pending.popleft()
                if automatic:
                    gc.collect(1)
        except (KeyboardInterrupt, SystemExit):
            now = time.perf_counter()
            for chunk in pending:  # in flight: recorded as interrupted, as a serial sweep does
                for task, row in chunk.batch:
                    if row.status == "running":  # not recorded before the interrupt
                        record(task, row, Outcome("interrupted", chunk.t0, now - chunk.dispatched, {}, None, None))
            raise
        finally:
            if automatic:
                gc.enable()

    def _batches(self, blocks: Iterator[list[tuple[Task, PendingRun]]]) -> Iterator[tuple[_Program, list[Any], bool]]:
        """Group the psets into chunks of one program each (a new layout or static value starts one).

        Yields each chunk with whether it is the sweep's last. A block of
        psets of one layout, without static parameters, goes in by slices.
        """
        batch: list[tuple[Task, PendingRun]] = []
        program: _Program | None = None
        static, programs = self.static, self.programs
        size = 0
        key: Any
        for block in blocks:
            names = block[0][0][5]
            if static:
                # The static values of the block's psets, with their types (1, 1.0 and True: programs of their
                # own), looked at a column at a time: each of one type and equal to the first pset's.
                params = [task[1] for task, _ in block]
                first = tuple([(type(v), v) for v in map(params[0].get, static)])
                uniform = True
                for name, (kind, value) in zip(static, first):
                    column = [p.get(name) for p in params]
                    if column.count(value) != len(column) or set(map(type, column)) != {kind}:
                        uniform = False
                        break
                found = programs.get((names, first)) if uniform else None
            else:
                uniform = True
                found = programs.get(names)
            if uniform and found is not None and found is program and all(item[0][5] is names for item in block):
                start = 0
                while start < len(block):
                    room = size - len(batch)
                    if room <= 0:
                        yield program, batch, False
                        batch, room = [], size
                    batch += block[start : start + room]
                    start += room
                continue
            for item in block:
                task = item[0]
                # Without static parameters, the names alone: nothing to build per pset.
                key = (task[5], tuple([(type(v), v) for v in map(task[1].get, static)])) if static else task[5]
                found = programs.get(key)
                if found is None:
                    found = programs[key] = _Program(
                        self.func, self.func_name, task, static, self.chunk_size, self.budget, self.total
                    )
                if found is not program or len(batch) >= size:
                    if batch:
                        assert program is not None
                        yield program, batch, False
                        batch = []
                    program, size = found, found.size
                batch.append(item)
        if batch:
            assert program is not None
            yield program, batch, True

    def _record(self, chunk: _Chunk, record: Recording) -> None:
        """Wait for a chunk's outputs, then record one run per pset: in one go when its results are numbers."""
        count = len(chunk.batch)
        outputs = None
        if chunk.error is None:
            try:
                outputs = jax.device_get(chunk.outputs)  # the whole chunk, to the host at once
            except Exception as e:
                chunk.error = user_traceback(e)
        ready = time.perf_counter()
        # Its share of the chunk's time: from its dispatch, or from when the chunk before was done.
        seconds = ready - max(chunk.dispatched, self._last_ready)
        duration = seconds / count
        self._last_ready = ready
        self.chunks.append(
            {
                "index": chunk.index,
                "program": chunk.program.noted,
                "psets": count,
                "time_start_ms": round(chunk.t0 * 1000),
                "seconds": round(seconds, 6),
            }
        )
        if outputs is None:
            error = (
                f"{chunk.error}\n[vsweep ran {count} psets in one chunk (chunk {chunk.index} of this sweep); "
                "a smaller chunk_size may help]"
            )
            for task, row in chunk.batch:
                record(task, row, Outcome("failed", chunk.t0, duration, {}, error, None))
            return
        outputs = outputs or {}
        names = chunk.program.outputs
        arrays = {n: np.asarray(outputs[n])[:count] for n in names}
        layout = chunk.program.layout
        plain = _plain_columns(layout, arrays) if layout is not None else None
        batch = chunk.batch
        general: Iterable[int] = range(count)
        if plain is not None:
            assert layout is not None
            texts, columns, odd = plain
            if odd is None:
                record.plain_chunk(batch, chunk.t0, duration, texts, layout.order, columns)
                return
            keep = np.flatnonzero(~odd).tolist()
            record.plain_chunk(
                [batch[i] for i in keep],
                chunk.t0,
                duration,
                [texts[i] for i in keep],
                layout.order,
                {name: [values[i] for i in keep] for name, values in columns.items()},
            )
            general = np.flatnonzero(odd).tolist()
        encoded = {n: _column(n, arrays[n], self.objects, self.inline_limit) for n in names}
        for i in general:
            task, row = batch[i]
            results = {}
            for name in names:
                column = encoded[name]
                results[name] = (
                    column[i]
                    if column is not None
                    else encode(name, arrays[name][i], self.objects, inline_limit=self.inline_limit)
                )
            record(task, row, Outcome("done", chunk.t0, duration, results, None, None))


def _check_static(static: str | Iterable[str], binder: Binder) -> tuple[str, ...]:
    names = (static,) if isinstance(static, str) else tuple(static)
    for name in names:
        if not isinstance(name, str):
            raise RecorderError(f"static={static!r}: give parameter names (str)")
        if name not in binder.signature.parameters:
            known = ", ".join(repr(n) for n in binder.signature.parameters) or "none"
            raise RecorderError(
                f"static names {name!r}, which is not a parameter of {binder.name} (its parameters: {known})"
            )
    return names


def _check_chunk_size(chunk_size: object) -> int | str:
    if chunk_size == "auto":
        return "auto"
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise RecorderError(f"chunk_size={chunk_size!r} is not 'auto' or a number of psets (an int ≥ 1)")
    return chunk_size


def _note_program(session: Session, program: _Program) -> None:
    """Add a program's chunk size and memory estimate to the session's JAX description."""
    from ..provenance import environment as provenance

    _, writer, session_pk = session.writing()

    def write(conn: Any) -> None:
        row = conn.execute(_SESSION_JAX, (session_pk,)).fetchone()
        text = row[0] if row is not None and row[0] is not None else provenance.jax_info()
        info = json.loads(text) if text else {}
        programs = info.setdefault("vsweep", [])
        program.noted = len(programs)
        programs.append(program.description())
        conn.execute(_SET_SESSION_JAX, (json.dumps(info, sort_keys=True), session_pk))

    writer.run(write)


def _note_chunks(session: Session, chunks: list[dict[str, Any]]) -> None:
    """Add the sweep's chunks (index, program, psets, start, seconds) to the session's JAX description.

    Once, at the end of the sweep: a run's chunk is the one whose
    ``time_start_ms`` is the run's (each chunk of a session starts in a
    millisecond of its own).
    """
    if not chunks:
        return
    _, writer, session_pk = session.writing()

    def write(conn: Any) -> None:
        row = conn.execute(_SESSION_JAX, (session_pk,)).fetchone()
        info = json.loads(row[0]) if row is not None and row[0] else {}
        info.setdefault("chunks", []).extend(chunks)
        conn.execute(_SET_SESSION_JAX, (json.dumps(info, sort_keys=True), session_pk))

    writer.run(write)


def vsweep(
    session: Session,
    func: Callable[..., Any],
    params: Iterable[Mapping[str, Any]],
    *,
    binder: Binder | None = None,
    chunk_size: int | str = "auto",
    static: str | Iterable[str] = (),
    skip: str | None = "done",
    on_error: str = "record",
    progress: bool | None = None,
    return_df: bool = True,
    compile_cache: bool = False,
    memory_budget: int | None = None,
) -> pd.DataFrame | None:
    """Run a JAX function on every pset in vectorised chunks in ``session``; one run per pset.

    See :meth:`recorder.Experiment.vsweep` for the options.
    """
    binder = binder or Binder(func)
    static_names = _check_static(static, binder)
    size = _check_chunk_size(chunk_size)
    if memory_budget is not None and (
        isinstance(memory_budget, bool) or not isinstance(memory_budget, int) or memory_budget < 1
    ):
        raise RecorderError(f"memory_budget={memory_budget!r} is not a number of bytes (an int ≥ 1)")
    store = session.writing().store
    if compile_cache:
        use_compile_cache(store.root)
    runner = _Runner(
        func,
        binder.name,
        static_names,
        size,
        memory_budget,
        total(params),
        store.objects,
        session.inline_limit,
        lambda program: _note_program(session, program),
    )
    try:
        return sweep(
            session,
            func,
            params,
            binder=binder,
            skip=skip,
            on_error=on_error,
            progress=progress,
            return_df=return_df,
            runner=runner,
        )
    finally:
        _note_chunks(session, runner.chunks)
