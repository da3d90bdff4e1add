"""Running a sweep's runs on an executor, in batches: bounded in flight, robust to dying and stopped workers.

recorder makes a process pool for ``workers > 1``; any other
:class:`concurrent.futures.Executor` (a Dask client's ``get_executor()``,
loky, mpi4py.futures, …) can be passed instead. Either way runs go to the
workers in batches (``batch_size``, see :class:`_Sizer`), and only the
sweeping process writes the database: completed runs come back as
:class:`~recorder.execute.Outcome` records and go to ``record``.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import functools
import itertools
import logging
import os
import pickle
import select
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ..errors import FunctionUnavailable, PoolBroken, RecorderError
from .execute import Interrupted, Outcome, current_seed, execute
from .tasks import check_batch_size

__all__ = ["Pool", "check_workers", "check_batch_size", "Shipment", "ARRIVALS"]


def _exit_with_parent(sweeping: int) -> None:
    """Pool worker initializer: exit when the sweeping process is gone (even killed with SIGKILL).

    A worker's parent is not always the sweeping process: with forkserver it
    is the fork server, which lives as long as any worker does. So a worker
    watches the sweeping process itself: through a pidfd where there is one
    (Linux; readable once that process has ended), else by polling whether
    it still exists and whether the worker's parent changed.

    SIGTERM gets its default action back: a worker forked from a process
    whose Recorder turns SIGTERM into an exception would otherwise record its
    run as interrupted and go on waiting for work, instead of ending.
    """
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = os.getppid()
    try:
        handle: int | None = os.pidfd_open(sweeping)
    except (AttributeError, OSError):  # no pidfd here, or the sweeping process has ended already
        handle = None

    def watch() -> None:
        if handle is not None:
            select.select([handle], [], [])
            os._exit(1)
        while _exists(sweeping) and os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="recorder-parent-watch", daemon=True).start()


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # there, but another user's: the pid was reused
        return False
    return True


#: Modules that run threads of their own: a forked copy of a process using them can deadlock.
_THREADED = ("jax",)


def _context() -> Any:
    """The multiprocessing context of a pool: the default, or forkserver once a threaded library is loaded.

    fork copies the process with its locks but not its threads; JAX's
    thread pools hold locks, so a forked worker of a process that imported
    jax can hang. forkserver starts workers from a clean process instead
    (they import the experiment's module, as with ``spawn``).
    """
    import multiprocessing

    if any(name in sys.modules for name in _THREADED) and "forkserver" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context()


def _check_importable(func: Callable[..., Any], name: str, why: str | None = None) -> None:
    """Fail before the first run when workers that start afresh (not forked) cannot import the function.

    Such workers import the function's module by name; a function of an
    interactive session (``python -c``, stdin, a notebook, the REPL) has no
    module file to import. An experiment is checked through the function it wraps.

    :param why: who the workers are, for the message (default: recorder's pool).
    """
    func = getattr(func, "__wrapped__", func)
    module = sys.modules.get(getattr(func, "__module__", None) or "")
    script = getattr(module, "__file__", None)
    if (
        module is not None and module.__name__ == "__main__" and not (script and os.path.isfile(script))
    ):  # stdin: "<stdin>"
        if why is None:
            why = "jax is imported, so" if any(n in sys.modules for n in _THREADED) else "here"
        raise FunctionUnavailable(
            f"{name} is defined interactively, and {why} worker processes start afresh and cannot import it; "
            "define it in a module file and import it, or use workers=1"
        )


def _forks_from_here(executor: cf.Executor) -> bool:
    """Whether the executor runs functions in this process or in processes forked from it.

    A thread pool, or a process pool that forks, sees every name this
    process has; anything else (a spawn or forkserver pool, a Dask client,
    loky, MPI) runs in processes that import the function by its module's name.
    """
    if isinstance(executor, cf.ThreadPoolExecutor):
        return True
    if isinstance(executor, cf.ProcessPoolExecutor):
        context = getattr(executor, "_mp_context", None)
        return context is not None and context.get_start_method() == "fork"
    return _dask_in_this_process(executor)


def _dask_in_this_process(executor: cf.Executor) -> bool:
    """Whether a Dask executor's cluster runs its workers as threads of this process (``processes=False``).

    Read from attributes only (no dask import): a client's ``cluster`` is a
    ``LocalCluster`` whose ``processes`` says so; any other cluster, or none
    known, counts as other processes.
    """
    if type(executor).__module__.split(".")[0] != "distributed":
        return False
    cluster = getattr(getattr(executor, "_client", None), "cluster", None)
    return getattr(cluster, "processes", None) is False


def check_workers(func: Callable[..., Any], name: str, executor: cf.Executor | None, workers: int) -> bytes:
    """Check, before a session starts, that the workers of a sweep can load the function; return its pickle.

    Thread pools get the function itself (b""): nothing crosses a process.

    :raises FunctionUnavailable: when the function cannot be pickled, or is
        defined interactively and the workers start afresh.
    """
    if isinstance(executor, cf.ThreadPoolExecutor):
        return b""
    payload = _pickled(func, name)
    if executor is None:
        if _context().get_start_method() != "fork":
            _check_importable(func, name)
    elif not _forks_from_here(executor):
        _check_importable(func, name, f"the executor's ({type(executor).__name__})")
    return payload


def _pickled(func: Callable[..., Any], name: str) -> bytes:
    """The function as workers get it; fail before the first run when it cannot reach them."""
    try:
        return pickle.dumps(func)
    except (pickle.PicklingError, AttributeError, TypeError) as e:
        raise FunctionUnavailable(
            f"{name} cannot be sent to worker processes ({e}); define it at the top level of a module, or use workers=1"
        ) from e


#: In a worker of recorder's pool: the table the sweeping process reads which runs started (see :class:`Pool`).
_SLOTS: Any = None
#: In a worker: functions unpickled, by their pickle (a worker runs many runs of one function).
_LOADED: dict[bytes, Callable[..., Any]] = {}
#: In a worker: the constant inputs of sweeps (``fixed=``), unpickled once, by the SHA-256 of their pickle.
_FIXED: dict[str, dict[str, Any]] = {}
#: In a worker: how many times each sweep's constant inputs arrived, by key (a Dask worker: once, they are scattered).
ARRIVALS: dict[str, int] = {}
#: In a worker of recorder's pool: whether it is running a batch (a SIGINT then stops the batch, else it is ignored).
_IN_BATCH = False
#: In a worker of recorder's pool: the batch it runs, ``[id, outcomes, how many were sent early, start]``
#: (id None between batches), and the lock its sender thread takes to send finished runs early.
_CURRENT: list[Any] = [None, [], 0, 0.0]
_CURRENT_LOCK = threading.Lock()
#: In a worker of recorder's pool: whether it started with SIGINT ignored (as the sweeping process had it).
_SIGINT_IGNORED = False
#: In a worker of recorder's pool: a SIGINT came while a run's results were stored: the batch starts no other run.
_STOP_ASKED = False

#: Batches in flight per worker (the one it runs, and one waiting), so workers never wait for the sweeping process.
_AHEAD = 2
#: ``batch_size="auto"``: the seconds of work a batch aims at, once run times are measured.
_BATCH_S = 0.2
#: The most runs ``"auto"`` puts in one batch (it bounds how far the sweep reads its psets ahead).
_MAX_BATCH = 1024
#: Seconds a stopping sweep waits for the batches in flight to hand back the runs they finished.
_GRACE_S = 3.0
#: Seconds after which a batch of recorder's pool still running sends the runs it finished (then again
#: as often): a run that hangs, or a long batch, holds none back for long.
_EARLY_S = 0.25

_LOG = logging.getLogger(__name__)


# Where a batch's entries are in the slots table: [0] is the stop flag, then per slot the pid of the
# worker running the batch (0: not started) and the index in the batch of the run it is running.
def _pid_at(slot: int) -> int:
    return 1 + 2 * slot


def _step_at(slot: int) -> int:
    return 2 + 2 * slot


def _on_sigint(signum: int, frame: Any) -> None:
    """A pool worker's SIGINT: stop the batch it is running (its finished runs go back); ignored between batches.

    A run's function is interrupted (its run is ``interrupted``); while
    recorder stores the results of a run whose function has returned, the
    batch stops after it instead (a run that finished is recorded ``done``).
    Where the sweeping process ignores SIGINT (a background job), so does
    the worker, unless the sweeping process is stopping it.
    """
    global _STOP_ASKED
    if not _IN_BATCH or (_SIGINT_IGNORED and not _SLOTS[0]):
        return
    try:
        current_seed()
    except RecorderError:  # NotInRun: between the function's return and the next run: stop there
        _STOP_ASKED = True
        return
    raise KeyboardInterrupt


def _start_worker(
    sweeping: int, slots: Any, fixed: tuple[str, bytes] | None = None, early: tuple[Any, Any] | None = None
) -> None:
    """Pool worker initializer: keep the slots table and the sweep's constant inputs, and exit with the sweeping process.

    :param early: the write end of the pipe (a ``Connection``) on which a sender thread sends the finished
        runs of a batch still running (see :data:`_EARLY_S`), and the lock the workers write it under.
    """
    global _SLOTS
    _SLOTS = slots
    if early is not None:
        threading.Thread(target=_send_early, args=early, name="recorder-send-early", daemon=True).start()
    if fixed is not None:
        _FIXED[fixed[0]] = pickle.loads(fixed[1])  # once per worker
    # The sweeping process stops a worker's batch with SIGINT (Ctrl-C in a terminal reaches it too): the
    # runs it finished go back; a worker between batches has nothing to stop.
    global _SIGINT_IGNORED
    _SIGINT_IGNORED = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    signal.signal(signal.SIGINT, _on_sigint)
    _exit_with_parent(sweeping)


def _send_early(pipe: Any, lock: Any) -> None:
    """A pool worker's sender thread: every :data:`_EARLY_S`, send the runs a long batch has finished.

    Each message is ``(batch id, index of its first run, outcomes)``,
    pickled, behind its length (8 bytes): see :class:`_Inbox`.
    """
    current = _CURRENT
    fd = pipe.fileno()
    while True:
        time.sleep(_EARLY_S)
        with _CURRENT_LOCK:
            batch, outcomes, sent, since = current
            if batch is None or len(outcomes) == sent or time.monotonic() - since < _EARLY_S:
                continue
            count = len(outcomes)
            data = pickle.dumps((batch, sent, outcomes[sent:count]), protocol=pickle.HIGHEST_PROTOCOL)
            frame = memoryview(len(data).to_bytes(8, "big") + data)
            with lock:  # one message at a time on the pipe all workers share
                while frame:
                    frame = frame[os.write(fd, frame) :]
            current[2] = count


class _Inbox:
    """The sweeping process's end of the pipe on which the pool's workers send a long batch's finished runs.

    Read without blocking, so that a message cut short (its worker killed
    while writing it) never stops the sweep: only complete messages are taken.
    """

    def __init__(self, context: Any) -> None:
        self.reader, self.writer = context.Pipe(duplex=False)
        self.lock = context.Lock()
        os.set_blocking(self.reader.fileno(), False)
        self._buffer = bytearray()

    def messages(self, wait: float = 0.0) -> list[tuple[int, int, list[Outcome]]]:
        """The complete messages come so far; wait up to ``wait`` seconds for one when there is none."""
        fd = self.reader.fileno()
        deadline = time.monotonic() + wait
        while True:
            with contextlib.suppress(BlockingIOError):
                while chunk := os.read(fd, 1 << 16):
                    self._buffer += chunk
            found = []
            buffer = self._buffer
            while len(buffer) >= 8:
                size = int.from_bytes(buffer[:8], "big")
                if len(buffer) < 8 + size:
                    break
                found.append(pickle.loads(buffer[8 : 8 + size]))
                del buffer[: 8 + size]
            left = deadline - time.monotonic()
            if found or left <= 0:
                return found
            select.select([fd], [], [], left)

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


def _fixed_payload(fixed: dict[str, Any], name: str) -> tuple[str, bytes] | None:
    """The constant inputs pickled once (with the SHA-256 of the pickle, their key in the workers)."""
    if not fixed:
        return None
    try:
        data = pickle.dumps(fixed, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError) as e:
        raise FunctionUnavailable(f"the fixed inputs of {name} cannot be sent to worker processes ({e})") from e
    import hashlib

    return hashlib.sha256(data).hexdigest(), data


class Shipment:
    """The pickle of a sweep's constant inputs on its way to another executor's worker; notes its arrival there.

    Unpickling one counts in :data:`ARRIVALS` of the process it arrives in:
    once per Dask worker (the shipment is scattered to them), once per
    batch on other executors (it travels with each).
    """

    __slots__ = ("data", "key")

    def __init__(self, key: str, data: bytes) -> None:
        self.key, self.data = key, data

    def __reduce__(self) -> tuple[Any, ...]:
        return _arrived, (self.key, self.data)


def _arrived(key: str, data: bytes) -> Shipment:
    ARRIVALS[key] = ARRIVALS.get(key, 0) + 1
    return Shipment(key, data)


def _load(payload: bytes, name: str) -> Callable[..., Any]:
    """The function of a sweep, unpickled once per worker.

    :raises FunctionUnavailable: when the function cannot be unpickled here.
    """
    func = _LOADED.get(payload)
    if func is None:
        try:
            func = pickle.loads(payload)
        except Exception as e:
            raise FunctionUnavailable(
                f"the worker processes cannot load {name} ({type(e).__name__}: {e}); they import it by its "
                "module's name: define it in a module file they can import (not in `python -c`, stdin or a "
                "notebook), or use workers=1"
            ) from None
        if len(_LOADED) < 16:
            _LOADED[payload] = func
    return func


def _run_in_worker(
    payload: bytes,
    name: str,
    slot: int,
    batch: int,
    fixed_key: str | None,
    shipment: Shipment | None,
    runs: list[tuple[Any, ...]],
) -> tuple[int, list[Outcome]]:
    """Run a batch of psets in a worker process (recorder's pool, or another executor's); return their outcomes.

    The function travels pickled, and is unpickled here, not by the
    executor: a worker that cannot import it (its module is not importable
    there) then answers with that error instead of dying. Each run's
    outcome is :func:`execute`'s; a run interrupted (Ctrl-C, or the
    sweeping process stopping recorder's pool) ends the batch there, and
    the outcomes so far (the interrupted one last) are returned. In
    recorder's pool a sender thread may have sent the first outcomes early
    (see :data:`_EARLY_S`): the batch returns ``(how many were sent, the rest)``.

    :param slot: the batch's slot in the table of recorder's pool (-1 on another executor).
    :param batch: the batch's id (in recorder's pool, what its outcomes sent early name).
    :param runs: each run's arguments of :func:`execute` after the function.
    :raises FunctionUnavailable: when the function cannot be unpickled here.
    """
    func = _load(payload, name)
    if fixed_key is not None:
        constants = _FIXED.get(fixed_key)
        if constants is None:  # an executor's worker: the pickle came with this batch, unpickled once here
            assert shipment is not None
            constants = pickle.loads(shipment.data)
            if len(_FIXED) > 4:
                _FIXED.clear()
            _FIXED[fixed_key] = constants
        func = functools.partial(func, **constants)
    if _SLOTS is None or slot < 0:
        return 0, _run_batch(func, runs, [], None)
    global _IN_BATCH, _STOP_ASKED
    slots, current = _SLOTS, _CURRENT
    _STOP_ASKED = False
    slots[_step_at(slot)] = 0
    slots[_pid_at(slot)] = os.getpid()
    outcomes: list[Outcome] = []
    with _CURRENT_LOCK:
        current[:] = [batch, outcomes, 0, time.monotonic()]
    _IN_BATCH = True
    try:
        _run_batch(func, runs, outcomes, (slots, _step_at(slot)))
    finally:
        _IN_BATCH = False
        with _CURRENT_LOCK:  # what the sender thread has not sent goes back with the batch
            start = current[2]
            current[:] = [None, [], 0, 0.0]
    return start, outcomes[start:]


def _run_batch(
    func: Callable[..., Any], runs: list[tuple[Any, ...]], outcomes: list[Outcome], steps: tuple[Any, int] | None
) -> list[Outcome]:
    """Run psets one after another, appending each one's outcome to ``outcomes``; stop at an interrupted one.

    :param steps: recorder's pool's ``(table, index)``: each run notes its index there as it starts, and
        none starts once the table's stop flag (its entry 0) is set. A thread pool's batch gets
        ``([stop flag], -1)``: only the flag is read.
    """
    try:
        for index, args in enumerate(runs):
            if steps is not None:
                table, at = steps
                if table[0] or _STOP_ASKED:
                    break  # the sweep is stopping: start no more runs
                if at >= 0:
                    table[at] = index
            t0 = time.time()
            try:
                outcomes.append(execute(func, *args))
            except Interrupted as e:
                outcomes.append(e.outcome)
                break
            except KeyboardInterrupt:  # a second one, while the first was being handled: still this run's
                outcomes.append(Outcome("interrupted", t0, time.time() - t0, {}, None, None))
                break
    except KeyboardInterrupt:  # between two runs: none was cut
        pass
    return outcomes


class _Sizer:
    """How many runs the next batch of a sweep gets: ``batch_size``, or ``"auto"``'s rule.

    ``"auto"`` starts with single runs and, as run times come back, aims at
    :data:`_BATCH_S` seconds of work per batch, at most doubling from one
    batch to the next (an unrepresentative first run makes no huge batch).
    Near the end of the sweep, a batch holds at most a share
    ``remaining / (2 × workers)`` of the runs left, so that no worker is
    given the tail while the others idle.
    """

    def __init__(self, batch_size: int | str, workers: int) -> None:
        self._fixed = batch_size if isinstance(batch_size, int) else None
        self._workers = workers
        self._mean: float | None = None  # seconds per run, recent batches weighing most
        self._last = 1

    def note(self, outcomes: list[Outcome]) -> None:
        """Learn from a batch's run times.

        A run's cost is more than its function's time (its results are
        encoded, its arrays written): from one run's start to the next is
        what counts, so the span from the first run's start to the last
        one's end, shared out, is taken when it is longer.
        """
        if outcomes:
            first, last = outcomes[0], outcomes[-1]
            mean = max(
                sum(outcome.duration for outcome in outcomes) / len(outcomes),
                (last.t0 + last.duration - first.t0) / len(outcomes),
            )
            self._mean = mean if self._mean is None else (self._mean + mean) / 2

    def size(self, remaining: int | None) -> int:
        """The next batch's size; ``remaining``: how many runs are left to submit, when known."""
        if self._fixed is not None:
            size = self._fixed
        else:
            size = 1
            if self._mean is not None:
                wanted = _MAX_BATCH if self._mean <= 0 else int(_BATCH_S / self._mean)
                size = max(1, min(wanted, 2 * self._last, _MAX_BATCH))
            if remaining is not None:
                size = max(1, min(size, -(-remaining // (2 * self._workers))))
            self._last = size
        return size

    @property
    def ahead(self) -> int:
        """How many runs to read ahead to know whether the runs left cap the next batch."""
        return (self._fixed or min(2 * self._last, _MAX_BATCH)) * 2 * self._workers


def _shipped(executor: cf.Executor, shipment: Shipment) -> Any:
    """What carries a sweep's constant inputs to another executor's workers.

    On Dask, the shipment scattered to every worker once (each batch then
    names it); elsewhere the shipment itself, which goes with each batch.
    """
    if type(executor).__module__.split(".")[0] != "distributed":
        return shipment
    scatter = getattr(getattr(executor, "_client", None), "scatter", None)
    if scatter is None:
        return shipment
    try:
        return scatter(shipment, broadcast=True, hash=False)
    except Exception:  # a client that cannot scatter now: the shipment goes with each batch
        return shipment


class _Batch:
    """A batch in flight: its runs (``(task, row)``), id, slot in our pool's table, outcomes recorded so far.

    ``done`` is a thread pool's batch's list of outcomes, which it fills as its runs end.
    """

    __slots__ = ("done", "id", "recorded", "runs", "slot")

    def __init__(self, runs: list[tuple[Any, Any]], id: int, slot: int, done: list[Outcome] | None) -> None:
        self.runs, self.id, self.slot, self.done = runs, id, slot, done
        self.recorded = 0


def _capacity(executor: cf.Executor, workers: int) -> int:
    """How many runs the executor runs at once (a Dask client counts its worker threads)."""
    count = getattr(executor, "_max_workers", None)
    client = getattr(executor, "_client", None)
    if count is None and client is not None and hasattr(client, "nthreads"):
        try:
            count = sum(client.nthreads().values())
        except Exception:  # a client that cannot answer now: fall back to workers=
            count = None
    return max(int(count or workers), 1)


#: Seconds to wait, once a sweep stops, for results the workers had sent already.
_SETTLE_S = 10.0

_Future = cf.Future[Any]


class Pool:
    """The executor of one sweep, which it gives the sweep's runs in batches.

    :param executor: the user's executor, or None to make a process pool of ``workers``.
    :param batch_size: runs per batch, or ``"auto"`` (see :class:`_Sizer`).
    """

    def __init__(
        self,
        func: Callable[..., Any],
        name: str,
        executor: cf.Executor | None,
        workers: int,
        fixed: dict[str, Any] | None = None,
        batch_size: int | str = "auto",
    ) -> None:
        self._func, self._name, self._workers = func, name, workers
        self._batch_size = check_batch_size(batch_size)
        self._own = executor is None
        self._constants = fixed or {}
        # Constant inputs: pickled once here; thread pools get them bound to the function instead.
        self._fixed = None if isinstance(executor, cf.ThreadPoolExecutor) else _fixed_payload(self._constants, name)
        # Executors other than thread pools get recorder's worker function, which loads this in the
        # worker and answers FunctionUnavailable when it cannot (instead of the executor failing there).
        self._payload = check_workers(func, name, executor, workers)
        self._slots: Any = None
        self._early: _Inbox | None = None
        self._shipment: Any = None
        self._halt = [0]  # a thread pool's batches start no run once it is set
        if executor is None:
            self._context = _context()
            # The stop flag, then per batch in flight the pid of the worker running it and the run it is at.
            self._slots = self._context.Array("q", 1 + 2 * _AHEAD * workers, lock=False)
            executor = self._new_pool()
        elif self._fixed is not None:
            self._shipment = _shipped(executor, Shipment(*self._fixed))
        self.executor = executor

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        # A new pipe with each pool: a worker that died while writing to the old one holds its lock.
        if self._early is not None:
            self._early.close()
        early = self._early = _Inbox(self._context)
        return cf.ProcessPoolExecutor(
            max_workers=self._workers,
            initializer=_start_worker,
            initargs=(os.getpid(), self._slots, self._fixed, (early.writer, early.lock)),
            mp_context=self._context,
        )

    def run(
        self,
        items: Iterable[tuple[Any, Any]],
        call: Callable[[Any, Any], tuple[Any, ...]],
        record: Callable[[Any, Any, Outcome], None],
    ) -> None:
        """Run every ``(task, row)``; ``call(task, row)`` gives the arguments of :func:`execute` after ``func``.

        Runs go to the executor in batches (see :class:`_Sizer`); completed
        runs are recorded as their batch comes back, or sooner: a batch of
        recorder's pool or of a thread pool that runs longer than
        :data:`_EARLY_S` hands over the runs it finished meanwhile. On Ctrl-C,
        SIGTERM or an error, our pool's workers are told to stop (each hands
        back the runs it finished, the one it was running ``interrupted``),
        then stopped; every result that reached this process is recorded, the
        runs in flight whose end is unknown are recorded ``interrupted``, runs
        known not to have started are not recorded, and the exception goes on.

        :raises FunctionUnavailable: once, when workers cannot load the function (its runs are not recorded).
        """
        workers = self._workers if self._own else _capacity(self.executor, self._workers)
        limit = _AHEAD * workers  # batches in flight
        sizer = _Sizer(self._batch_size, workers)
        in_flight: dict[_Future, _Batch] = {}
        by_id: dict[int, _Batch] = {}
        free = list(range(limit))
        source = iter(items)
        waiting: collections.deque[tuple[Any, Any]] = collections.deque()  # read, or handed back, not submitted
        alone: collections.deque[tuple[Any, Any]] = collections.deque()  # to run one per batch (their batch failed)
        exhausted = False
        ids = itertools.count()

        key = self._fixed[0] if self._fixed is not None else None
        shipment = self._shipment
        bound = functools.partial(self._func, **self._constants) if self._constants else self._func
        halt = self._halt
        halt[0] = 0
        if self._own:
            self._slots[0] = 0

        def next_batch() -> list[tuple[Any, Any]]:
            nonlocal exhausted
            if alone:
                return [alone.popleft()]
            ahead = sizer.ahead
            while len(waiting) < ahead and not exhausted:
                try:
                    waiting.append(next(source))
                except StopIteration:
                    exhausted = True
            size = min(sizer.size(len(waiting) if exhausted else None), len(waiting))
            return [waiting.popleft() for _ in range(size)]

        def submit(runs: list[tuple[Any, Any]]) -> None:
            now = time.time()
            args = []
            for task, row in runs:
                row.t0 = now
                args.append(call(task, row))
            done, slot, number = None, -1, next(ids)
            if self._own:  # its workers got the constant inputs as they started
                slot = free.pop()
                self._slots[_pid_at(slot)] = 0
                try:
                    future = self.executor.submit(
                        _run_in_worker, self._payload, self._name, slot, number, key, None, args
                    )
                except BrokenProcessPool:  # a worker died since the last look: its batch says which
                    free.append(slot)
                    waiting.extendleft(reversed(runs))
                    recover()
                    return
            elif self._payload:  # the constant inputs go with each batch (scattered once on Dask)
                future = self.executor.submit(
                    _run_in_worker, self._payload, self._name, slot, number, key, shipment, args
                )
            else:  # a thread pool: the function itself; its outcomes are seen here as they come
                done = list[Outcome]()
                future = self.executor.submit(_run_batch, bound, args, done, (halt, -1))  # type: ignore[arg-type]
            batch = in_flight[future] = by_id[number] = _Batch(runs, number, slot, done)
            _LOG.debug("batch %d of %d runs", batch.id, len(runs))

        def take(batch: _Batch, start: int, outcomes: list[Outcome], wait: bool = True) -> None:
            """Record the outcomes of a batch's runs from ``start`` on (``wait``: and those sent early before)."""
            while wait and start > batch.recorded and self._early is not None:
                # The worker sent the ones before early, before it returned these: they are in the pipe.
                messages = self._early.messages(_SETTLE_S)
                if not messages:
                    for task, row in batch.runs[batch.recorded : start]:  # never so, unless the pipe is broken
                        record(task, row, _died(row.t0, None)._replace(error="its outcome was lost on its way here"))
                    break
                for message in messages:
                    take_early(*message)
            for (task, row), outcome in zip(batch.runs[start:], outcomes):
                if row.status == "running":
                    record(task, row, outcome)
            batch.recorded = max(batch.recorded, start + len(outcomes))
            sizer.note(outcomes)

        def take_early(number: int, start: int, outcomes: list[Outcome]) -> None:
            batch = by_id.get(number)
            if batch is not None:
                take(batch, start, outcomes)

        def harvest() -> None:
            """Record the runs long batches finished so far (sent early by our pool's workers, or a thread pool's)."""
            for batch in list(in_flight.values()):
                if batch.done is not None and len(batch.done) > batch.recorded:
                    take(batch, batch.recorded, batch.done[batch.recorded :])
            if self._own and self._early is not None:
                for message in self._early.messages():
                    take_early(*message)

        def settle(future: _Future, start: int, outcomes: list[Outcome]) -> None:
            """Record a batch's outcomes; runs it did not reach go back to be submitted again."""
            batch = in_flight[future]
            take(batch, start, outcomes)
            del in_flight[future]  # after recording: a stop in between finds them recorded (row.status)
            del by_id[batch.id]
            if batch.slot >= 0:
                free.append(batch.slot)
            waiting.extendleft(reversed(batch.runs[batch.recorded :]))

        def wait_one() -> None:
            timeout = _EARLY_S if self._own or not self._payload else None
            done, _ = cf.wait(in_flight, timeout=timeout, return_when=cf.FIRST_COMPLETED)
            harvest()
            broken = False
            for future in done:
                if self._own and isinstance(future.exception(), BrokenProcessPool):
                    broken = True  # which runs the dead worker took is sorted out below
                    continue
                batch = in_flight[future]
                result = _outcomes_of(future, batch.runs)
                if result is None:  # the batch as a whole failed: each of its runs again, alone
                    del in_flight[future]
                    del by_id[batch.id]
                    if batch.slot >= 0:
                        free.append(batch.slot)
                    alone.extend(batch.runs[batch.recorded :])
                    continue
                settle(future, *result)
            if broken:
                recover()

        def recover() -> None:
            """Our pool broke (a worker died): record what is known, start a new pool, put the rest back."""
            for batch in self._replace_broken(in_flight, settle, record):
                del by_id[batch.id]
                free.append(batch.slot)
                waiting.extendleft(reversed([run for run in batch.runs if run[1].status == "running"]))

        try:
            while True:
                if len(in_flight) < limit:
                    runs = next_batch()
                    if runs:
                        submit(runs)
                        continue
                if not in_flight:
                    break
                wait_one()
        except BaseException:
            self._stop(in_flight, harvest)
            unavailable = isinstance(sys.exc_info()[1], FunctionUnavailable)
            for future, batch in list(in_flight.items()):
                future.cancel()
                try:
                    self._record_stopped(future, batch, unavailable, take, record)
                except RecorderError:
                    continue  # already stopping; the first error is the one raised
            raise

    def _stop(self, in_flight: dict[_Future, _Batch], harvest: Callable[[], None]) -> None:
        """Stop the runs in flight: no batch starts another run; our pool's workers hand back what they finished."""
        self._halt[0] = 1
        if self._cancels():
            for future in in_flight:
                future.cancel()  # the batches no worker has taken
        if not self._own:
            if self._payload and any(len(batch.runs) > 1 for batch in in_flight.values()):
                cf.wait(list(in_flight), timeout=_GRACE_S)  # another executor's batches may be done by now
            return
        self._slots[0] = 1
        for process in list((getattr(self.executor, "_processes", None) or {}).values()):
            with contextlib.suppress(OSError):
                os.kill(process.pid, signal.SIGINT)  # a worker in a batch hands back the runs it finished
        cf.wait(list(in_flight), timeout=_GRACE_S)
        with contextlib.suppress(RecorderError):
            harvest()  # read the queue while every worker that put on it is alive (none is cut mid-message)
        self._stop_workers()  # those that did not stop in time; what they sent is read meanwhile
        cf.wait(list(in_flight), timeout=_SETTLE_S)

    def _cancels(self) -> bool:
        """Whether cancelling a future of the executor means its batch never started (not so on Dask)."""
        return self._own or isinstance(self.executor, (cf.ThreadPoolExecutor, cf.ProcessPoolExecutor))

    def _record_stopped(
        self,
        future: _Future,
        batch: _Batch,
        unavailable: bool,
        take: Callable[[_Batch, int, list[Outcome], bool], None],
        record: Callable[[Any, Any, Outcome], None],
    ) -> None:
        """Record what is known of a batch in flight as the sweep stopped (see :meth:`run`)."""
        if future.cancelled() and self._cancels():
            return  # never started
        finished = future.done() and not future.cancelled()
        error = future.exception() if finished else None
        if isinstance(error, FunctionUnavailable) or (unavailable and (not finished or error is not None)):
            return  # no worker could load the function: its runs never ran
        if batch.done is not None:  # a thread pool's: what it finished is known; it may be in the next run
            take(batch, batch.recorded, batch.done[batch.recorded :], False)
            started = batch.recorded + (not finished)
        elif finished and error is None:
            start, outcomes = _outcomes_of(future, batch.runs) or (0, [])
            take(batch, start, outcomes, False)  # those its worker sent early were read before it was stopped
            started = start + len(outcomes)
        elif self._own:  # the table tells which run its worker was at; those before it sent nothing back
            started = self._slots[_step_at(batch.slot)] + 1 if self._slots[_pid_at(batch.slot)] else 0
        else:  # another executor's: where it was is unknown
            started = len(batch.runs)
        for task, row in batch.runs[:started]:
            if row.status == "running":
                record(task, row, Outcome("interrupted", row.t0, time.time() - row.t0, {}, None, None))

    def _replace_broken(
        self,
        in_flight: dict[_Future, _Batch],
        settle: Callable[[_Future, int, list[Outcome]], None],
        record: Callable[[Any, Any, Outcome], None],
    ) -> list[_Batch]:
        """A worker died (a crash in native code, os._exit): record its run, start a new pool; return the batches to redo.

        The pool ends every worker when one dies, and fails every batch in
        flight. Only the run the worker that died on its own (not ended by
        the pool) was at is recorded ``interrupted``; the other runs not
        recorded yet (the rest of its batch, the other workers' batches: cut
        short, or not started, their results lost with the pool) run again
        on the new pool. When that worker cannot be told (it ended by
        SIGTERM too), the run each started batch was at is recorded ``interrupted``.
        """
        processes = dict(getattr(self.executor, "_processes", None) or {})
        cf.wait(list(in_flight), timeout=_SETTLE_S)  # the pool fails them all as it breaks
        # The pool's thread joins its workers as it breaks: after it, every exit code is known (joining
        # them here meanwhile could race it for the exit status and see none).
        manager = getattr(self.executor, "_executor_manager_thread", None)
        if manager is not None:
            manager.join(_SETTLE_S)
        for process in processes.values():
            process.join(_SETTLE_S)
        dead = {
            pid: process.exitcode
            for pid, process in processes.items()
            if process.exitcode not in (None, 0, -signal.SIGTERM)
        }
        slots = self._slots
        if dead and in_flight and not any(slots[_pid_at(batch.slot)] for batch in in_flight.values()):
            self.executor.shutdown(wait=False, cancel_futures=True)
            raise PoolBroken(
                f"the worker processes of the sweep of {self._name} exit before running anything (exit codes "
                f"{sorted(set(dead.values()))}); their error is above, on stderr"
            )
        again = []
        for future, batch in list(in_flight.items()):
            if future.done() and not isinstance(future.exception(), BrokenProcessPool):
                result = _outcomes_of(future, batch.runs)
                settle(future, *(result if result is not None else (batch.recorded, [])))  # the rest: again
                continue
            del in_flight[future]
            again.append(batch)
            pid, step = slots[_pid_at(batch.slot)], slots[_step_at(batch.slot)]
            if pid in dead:
                died = _died(batch.runs[step][1].t0, dead[pid])
            elif pid and (not dead or not future.done()):
                died = _died(batch.runs[step][1].t0, None)
            else:
                continue  # not started, or cut short by the pool: all of it again
            task, row = batch.runs[step]
            if row.status == "running":
                record(task, row, died)
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._new_pool()
        return again

    def _stop_workers(self) -> None:
        """Stop our pool's workers now (the runs in flight are recorded after)."""
        if self._own and isinstance(self.executor, cf.ProcessPoolExecutor):
            for process in list((getattr(self.executor, "_processes", None) or {}).values()):
                process.kill()

    def close(self) -> None:
        """Shut our pool down (an executor passed in stays the caller's); let go of the scattered inputs."""
        self._shipment = None
        if self._own:
            self.executor.shutdown(wait=True, cancel_futures=True)
            if self._early is not None:
                self._early.close()


def _died(t0: float, exitcode: int | None) -> Outcome:
    """The outcome of a run whose worker process died."""
    if exitcode is None:
        note = "the worker process running this run died; it may not be this run's fault"
    elif exitcode < 0:
        note = f"the worker process running this run was killed by signal {-exitcode} (a crash, or killed)"
    else:
        note = f"the worker process running this run exited with code {exitcode} (os._exit, or a crash)"
    return Outcome("interrupted", t0, time.time() - t0, {}, note, None)


def _outcomes_of(future: _Future, runs: list[tuple[Any, Any]]) -> tuple[int, list[Outcome]] | None:
    """A finished batch's ``(index of its first run not sent early, their outcomes)``.

    None when the batch failed as a whole and its runs should run alone.

    :raises FunctionUnavailable: when the worker could not load the function.
    """
    try:
        result = future.result()
    except FunctionUnavailable as e:
        raise FunctionUnavailable(str(e)) from None  # without the worker's traceback: one clear message
    except BrokenProcessPool:
        return 0, [_died(row.t0, None) for _, row in runs]
    except BaseException as e:  # an unpicklable result, a failure in the executor
        if len(runs) > 1:
            return None  # which run caused it is told by running each alone
        t0 = runs[0][1].t0
        error = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        return 0, [Outcome("failed", t0, time.time() - t0, {}, f"the executor running this run failed:\n{error}", None)]
    if isinstance(result, list):  # a thread pool's batch: its list of outcomes
        return 0, result
    start, outcomes = result
    return start, outcomes
