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
import signal
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


def _exit_with_parent(parent: int) -> None:
    """Pool worker initializer: exit when the sweeping process is gone (even killed with SIGKILL).

    SIGTERM gets its default action back: a worker forked from a process
    whose Recorder turns SIGTERM into an exception would otherwise record its
    run as interrupted and go on waiting for work, instead of ending.
    """
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="recorder-parent-watch", daemon=True).start()


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
            executor = self._new_pool()
        self.executor = executor

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            max_workers=self._workers, initializer=_exit_with_parent, initargs=(os.getpid(),),
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
