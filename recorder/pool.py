"""Running a sweep's runs on an executor: bounded in flight, robust to dying workers.

recorder makes a process pool for ``workers > 1``; any other
:class:`concurrent.futures.Executor` (a Dask client's ``get_executor()``,
loky, mpi4py.futures, …) can be passed instead. Either way only the
sweeping process writes the database: completed runs come back as
:class:`~recorder.execute.Outcome` records and go to ``record``.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import select
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .errors import RecorderError
from .execute import Interrupted, Outcome, execute

__all__ = ["Pool"]

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


def _check_importable(func: Callable[..., Any], name: str) -> None:
    """Fail before the first run when workers that start afresh (not forked) cannot import the function.

    Such workers import the function's module by name; a function of an
    interactive session (a notebook, the REPL) has no module file to import.
    """
    module = sys.modules.get(getattr(func, "__module__", None) or "")
    if module is not None and module.__name__ == "__main__" and not getattr(module, "__file__", None):
        why = "jax is imported, so" if any(n in sys.modules for n in _THREADED) else "here"
        raise RecorderError(
            f"{name} is defined interactively, and {why} worker processes start afresh and cannot import it; "
            "define it in a module file and import it, or use workers=1"
        )


def _check_picklable(func: Callable[..., Any], name: str) -> None:
    """Fail before the first run when the function cannot reach worker processes."""
    import pickle

    try:
        pickle.dumps(func)
    except (pickle.PicklingError, AttributeError, TypeError) as e:
        raise RecorderError(
            f"{name} cannot be sent to worker processes ({e}); define it at the top level of a "
            "module, or use workers=1"
        ) from e


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


class Pool:
    """The executor of one sweep.

    :param executor: the user's executor, or None to make a process pool of ``workers``.
    """

    def __init__(self, func: Callable[..., Any], name: str, executor: cf.Executor | None, workers: int) -> None:
        self._func, self._name, self._workers = func, name, workers
        self._own = executor is None
        if executor is None:
            _check_picklable(func, name)
            self._context = _context()
            if self._context.get_start_method() != "fork":
                _check_importable(func, name)
            executor = self._new_pool()
        self.executor = executor

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            max_workers=self._workers, initializer=_exit_with_parent, initargs=(os.getpid(),),
            mp_context=self._context,
        )

    def run(
        self,
        items: Iterable[tuple[Any, Any]],
        call: Callable[[Any], tuple[Any, ...]],
        record: Callable[[Any, Any, Outcome], None],
    ) -> None:
        """Run every ``(task, row)``; ``call(task)`` gives the arguments of :func:`execute` after ``func``.

        Completed runs are recorded as they complete. On Ctrl-C, SIGTERM or
        an error, runs that completed are recorded, the rest in flight are
        recorded ``interrupted``, and the exception goes on.
        """
        limit = _AHEAD * _capacity(self.executor, self._workers)
        in_flight: dict[cf.Future[Outcome], tuple[Any, Any]] = {}

        def drain(until: int) -> None:
            while len(in_flight) > until:
                done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
                broken = False
                for future in done:
                    task, row = in_flight.pop(future)
                    outcome, died = _outcome_of(future, row.t0)
                    broken = broken or died
                    record(task, row, outcome)
                if broken and self._own:
                    self._replace_broken(in_flight, record)

        try:
            for task, row in items:
                drain(limit - 1)
                row.t0 = time.time()
                in_flight[self.executor.submit(execute, self._func, *call(task))] = (task, row)
            drain(0)
        except BaseException:
            for future, (task, row) in list(in_flight.items()):
                future.cancel()
                if future.done() and not future.cancelled():
                    outcome, _ = _outcome_of(future, row.t0)
                else:
                    outcome = Outcome("interrupted", row.t0, time.time() - row.t0, {}, None, None)
                try:
                    record(task, row, outcome)
                except RecorderError:
                    continue  # already stopping; the first error is the one raised
            self._stop_workers()
            raise

    def _replace_broken(self, in_flight: dict[cf.Future[Outcome], tuple[Any, Any]], record: Any) -> None:
        """A worker died (a crash in native code, os._exit): record the runs lost with it, start afresh."""
        for future, (task, row) in list(in_flight.items()):
            outcome, _ = _outcome_of(future, row.t0)
            record(task, row, outcome)
        in_flight.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._new_pool()

    def _stop_workers(self) -> None:
        """Stop our pool's workers now (runs in flight are recorded ``interrupted`` already)."""
        if self._own and isinstance(self.executor, cf.ProcessPoolExecutor):
            for process in list((getattr(self.executor, "_processes", None) or {}).values()):
                process.kill()

    def close(self) -> None:
        """Shut our pool down (an executor passed in stays the caller's)."""
        if self._own:
            self.executor.shutdown(wait=True, cancel_futures=True)


def _outcome_of(future: cf.Future[Outcome], t0: float) -> tuple[Outcome, bool]:
    """The outcome of a finished future, and whether its worker process died."""
    try:
        return future.result(), False
    except Interrupted as e:  # the worker itself got Ctrl-C
        return e.outcome, False
    except BrokenProcessPool as e:
        note = f"the worker process running this run died ({e}); it may not be this run's fault"
        return Outcome("interrupted", t0, time.time() - t0, {}, note, None), True
    except BaseException as e:  # an unpicklable result, a failure in the executor
        error = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        return Outcome("failed", t0, time.time() - t0, {}, f"the executor running this run failed:\n{error}", None), False
