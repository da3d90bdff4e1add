"""Running a sweep's runs on an executor: bounded in flight, robust to dying workers.

recorder makes a process pool for ``workers > 1``; any other
:class:`concurrent.futures.Executor` (a Dask client's ``get_executor()``,
loky, mpi4py.futures, …) can be passed instead. Either way only the
sweeping process writes the database: completed runs come back as
:class:`~recorder.execute.Outcome` records and go to ``record``.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
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
from .execute import Interrupted, Outcome, execute

__all__ = ["Pool", "check_workers"]

#: Runs queued per worker beyond the one it is running, so workers never wait.
_AHEAD = 2


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


#: In a worker: the slots of the sweep's runs in flight, where each run notes the worker's pid as it starts.
_SLOTS: Any = None
#: In a worker: functions unpickled, by their pickle (a worker runs many runs of one function).
_LOADED: dict[bytes, Callable[..., Any]] = {}
#: In a worker: the constant inputs of sweeps (``fixed=``), unpickled once, by the SHA-256 of their pickle.
_FIXED: dict[str, dict[str, Any]] = {}


def _start_worker(sweeping: int, slots: Any, fixed: tuple[str, bytes] | None = None) -> None:
    """Pool worker initializer: keep the slots table and the sweep's constant inputs, and exit with the sweeping process."""
    global _SLOTS
    _SLOTS = slots
    if fixed is not None:
        _FIXED[fixed[0]] = pickle.loads(fixed[1])  # once per worker
    _exit_with_parent(sweeping)


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


def _run_in_worker(
    payload: bytes, name: str, slot: int, fixed_key: str | None, fixed_data: bytes | None, *args: Any
) -> Outcome:
    """Run one pset in a worker of recorder's pool: note who runs it, load the function, :func:`execute`.

    The function travels pickled, and is unpickled here, not by the pool:
    a worker that cannot import it (its module is not importable there)
    then answers with that error instead of dying.

    :raises FunctionUnavailable: when the function cannot be unpickled here.
    """
    if _SLOTS is not None and slot >= 0:
        _SLOTS[slot] = os.getpid()
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
    if fixed_key is not None:
        constants = _FIXED.get(fixed_key)
        if constants is None:  # an executor's worker: the pickle came with this task, unpickled once here
            assert fixed_data is not None
            constants = pickle.loads(fixed_data)
            if len(_FIXED) > 4:
                _FIXED.clear()
            _FIXED[fixed_key] = constants
        func = functools.partial(func, **constants)
    return execute(func, *args)


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


class Pool:
    """The executor of one sweep.

    :param executor: the user's executor, or None to make a process pool of ``workers``.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        name: str,
        executor: cf.Executor | None,
        workers: int,
        fixed: dict[str, Any] | None = None,
    ) -> None:
        self._func, self._name, self._workers = func, name, workers
        self._own = executor is None
        self._constants = fixed or {}
        # Constant inputs: pickled once here; thread pools get them bound to the function instead.
        self._fixed = None if isinstance(executor, cf.ThreadPoolExecutor) else _fixed_payload(self._constants, name)
        # Executors other than thread pools get recorder's worker function, which loads this in the
        # worker and answers FunctionUnavailable when it cannot (instead of the executor failing there).
        self._payload = check_workers(func, name, executor, workers)
        self._slots: Any = None
        if executor is None:
            self._context = _context()
            # One slot per run in flight: the pid of the worker running it (0: not started).
            self._slots = self._context.Array("q", _AHEAD * workers, lock=False)
            executor = self._new_pool()
        self.executor = executor

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            max_workers=self._workers,
            initializer=_start_worker,
            initargs=(os.getpid(), self._slots, self._fixed),
            mp_context=self._context,
        )

    def run(
        self,
        items: Iterable[tuple[Any, Any]],
        call: Callable[[Any, Any], tuple[Any, ...]],
        record: Callable[[Any, Any, Outcome], None],
    ) -> None:
        """Run every ``(task, row)``; ``call(task, row)`` gives the arguments of :func:`execute` after ``func``.

        Completed runs are recorded as they complete. On Ctrl-C, SIGTERM or
        an error, our pool's workers are stopped, every result that reached
        this process is recorded, the rest in flight are recorded
        ``interrupted``, and the exception goes on.

        :raises FunctionUnavailable: once, when workers cannot load the function (its runs are not recorded).
        """
        limit = _AHEAD * (self._workers if self._own else _capacity(self.executor, self._workers))
        in_flight: dict[cf.Future[Outcome], tuple[Any, Any, int]] = {}
        free = list(range(limit))

        key = self._fixed[0] if self._fixed is not None else None
        data = self._fixed[1] if self._fixed is not None else None
        bound = functools.partial(self._func, **self._constants) if self._constants else self._func

        def submit(task: Any, row: Any) -> None:
            if self._own:  # its workers got the constant inputs as they started
                slot = free.pop()
                self._slots[slot] = 0
                future = self.executor.submit(
                    _run_in_worker, self._payload, self._name, slot, key, None, *call(task, row)
                )
            elif self._payload:  # the constant inputs' pickle goes with each task, unpickled once per worker
                slot = -1
                future = self.executor.submit(
                    _run_in_worker, self._payload, self._name, slot, key, data, *call(task, row)
                )
            else:  # a thread pool: the function itself
                slot = -1
                future = self.executor.submit(execute, bound, *call(task, row))
            in_flight[future] = (task, row, slot)

        def settle(future: cf.Future[Outcome], outcome: Outcome) -> None:
            task, row, slot = in_flight[future]
            record(task, row, outcome)
            del in_flight[future]  # after recording: a stop in between finds it recorded (row.status)
            if slot >= 0:
                free.append(slot)

        def drain(until: int) -> None:
            while len(in_flight) > until:
                done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
                broken = False
                for future in done:
                    if self._own and isinstance(future.exception(), BrokenProcessPool):
                        broken = True  # which runs the dead worker took is sorted out below
                        continue
                    settle(future, _outcome_of(future, in_flight[future][1].t0))
                if broken:
                    for task, row, slot in self._replace_broken(in_flight, settle):
                        free.append(slot)
                        row.t0 = time.time()
                        submit(task, row)

        try:
            for task, row in items:
                drain(limit - 1)
                row.t0 = time.time()
                submit(task, row)
            drain(0)
        except BaseException:
            if self._own:
                self._stop_workers()  # nothing more comes; what the workers sent is read meanwhile
                cf.wait(list(in_flight), timeout=_SETTLE_S)
            unavailable = isinstance(sys.exc_info()[1], FunctionUnavailable)
            for future, (task, row, _) in list(in_flight.items()):
                if row.status != "running":
                    continue  # recorded when the stop came
                future.cancel()
                finished = future.done() and not future.cancelled()
                if unavailable and not (finished and future.exception() is None):
                    continue  # no worker could load the function: the run never ran
                if finished and isinstance(future.exception(), FunctionUnavailable):
                    continue  # never ran either
                if finished:
                    outcome = _outcome_of(future, row.t0)
                else:
                    outcome = Outcome("interrupted", row.t0, time.time() - row.t0, {}, None, None)
                try:
                    record(task, row, outcome)
                except RecorderError:
                    continue  # already stopping; the first error is the one raised
            raise

    def _replace_broken(
        self,
        in_flight: dict[cf.Future[Outcome], tuple[Any, Any, int]],
        settle: Callable[[cf.Future[Outcome], Outcome], None],
    ) -> list[tuple[Any, Any, int]]:
        """A worker died (a crash in native code, os._exit): record its run, start a new pool; return the runs to redo.

        The pool ends every worker when one dies, and fails every run in
        flight. Only the runs of the worker that died on its own (not ended by
        the pool) are recorded ``interrupted``; the others (cut short, or not
        started) run again on the new pool. When that worker cannot be told
        (it ended by SIGTERM too), every run that had started is recorded
        ``interrupted``.
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
        if dead and not any(self._slots[slot] for *_, slot in in_flight.values()):
            self.executor.shutdown(wait=False, cancel_futures=True)
            raise PoolBroken(
                f"the worker processes of the sweep of {self._name} exit before running anything (exit codes "
                f"{sorted(set(dead.values()))}); their error is above, on stderr"
            )
        again = []
        for future, (task, row, slot) in list(in_flight.items()):
            if not future.done() or not isinstance(future.exception(), BrokenProcessPool):
                settle(future, _outcome_of(future, row.t0) if future.done() else _died(row.t0, None))
                continue
            pid = self._slots[slot]
            if pid in dead:
                settle(future, _died(row.t0, dead[pid]))
            elif not dead and pid:
                settle(future, _died(row.t0, None))
            else:
                again.append((task, row, slot))
                del in_flight[future]
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._new_pool()
        return again

    def _stop_workers(self) -> None:
        """Stop our pool's workers now (the runs in flight are recorded after)."""
        if self._own and isinstance(self.executor, cf.ProcessPoolExecutor):
            for process in list((getattr(self.executor, "_processes", None) or {}).values()):
                process.kill()

    def close(self) -> None:
        """Shut our pool down (an executor passed in stays the caller's)."""
        if self._own:
            self.executor.shutdown(wait=True, cancel_futures=True)


def _died(t0: float, exitcode: int | None) -> Outcome:
    """The outcome of a run whose worker process died."""
    if exitcode is None:
        note = "the worker process running this run died; it may not be this run's fault"
    elif exitcode < 0:
        note = f"the worker process running this run was killed by signal {-exitcode} (a crash, or killed)"
    else:
        note = f"the worker process running this run exited with code {exitcode} (os._exit, or a crash)"
    return Outcome("interrupted", t0, time.time() - t0, {}, note, None)


def _outcome_of(future: cf.Future[Outcome], t0: float) -> Outcome:
    """The outcome of a finished future.

    :raises FunctionUnavailable: when the worker could not load the function.
    """
    try:
        return future.result()
    except Interrupted as e:  # the worker itself got Ctrl-C
        return e.outcome
    except FunctionUnavailable as e:
        raise FunctionUnavailable(str(e)) from None  # without the worker's traceback: one clear message
    except BrokenProcessPool:
        return _died(t0, None)
    except BaseException as e:  # an unpicklable result, a failure in the executor
        error = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        return Outcome("failed", t0, time.time() - t0, {}, f"the executor running this run failed:\n{error}", None)
