"""Batched, crash-safe writing of runs: the one place run rows reach the database.

Finished runs are queued and a background thread commits the queue every
``interval`` seconds, so the recording thread never waits for SQLite. A
commit costs far more than a row, so batching is what makes recording
cheap. Nothing is lost meanwhile: each finished run is first appended to
the session's journal (:mod:`recorder.journal`), one ``write()``, which
survives the process being killed; the next process that opens the store
replays it. ``interval=0`` commits every run as it ends, in the recording
thread, without a journal.

A sweep (:meth:`RunWriter.inline`) commits from the sweeping thread
instead, without a journal, and the background thread only watches the
clock: when the sweeping thread has not committed a run within
``interval`` of its end (the next run is long, or hangs, or a pool waits
for a slow worker), the background thread commits it. So every finished
run is in the database within ``interval`` of its end (and the commit's
own time), whatever the sweep does next; a fast sweep commits its batches
itself, one list append per run, as before.

A batch that cannot be committed (a value SQLite refuses, say) is written
run by run; a run that still fails is recorded as ``failed`` without its
results, with the reason, so one bad run never takes others with it.

A run still in flight after ``interval`` gets a ``running`` row (from the
background thread), so long runs are visible to other processes, and are
shown ``interrupted`` if their process dies.

Row keys are assigned inside the write transaction (by :mod:`recorder.rows`),
so a whole batch goes in with a few ``executemany`` calls.

A run's arrays are in ``objects/`` before the run is queued (complete under
their names: a SIGKILL leaves the journal nothing to name that is not
there), but the writer, not each put, waits for them to be on disk: while
a writer is open its process's puts hand their files to background
threads that fsync them (:func:`recorder.store.objects.defer_sync`), and
each commit first waits for those and syncs their folders, all at once
(:func:`~recorder.store.objects.make_durable`). So a row never names an
object a power cut could lose, and the price of a sync is paid once per
batch, off the recording thread, instead of once per array in it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import NameRefused, RecorderError, RecorderWarning, StoreError
from .catalog import Fields
from .db import transaction
from .journal import Journal
from .objects import defer_sync, end_deferral, make_durable
from .pending import PendingRun
from .rows import DoneChunk, Rows, insert_objects, insert_texts

__all__ = ["PendingRun", "RunWriter", "insert_objects", "insert_texts"]

_RUN_STATES = "SELECT id, pk, status, session FROM runs WHERE id IN ({marks})"
_IN_CHUNK = 500  # ids per IN (...) lookup
_KNOWN_FUNCTIONS = "SELECT pk FROM functions WHERE pk IN (SELECT value FROM json_each(?))"
_IN_A_CHILD = (
    "the session belongs to the process that opened it, not to this forked child; record runs in that "
    "process (a sweep with workers= runs the function in child processes for you)"
)
_FORK_WAIT_S = 10.0  # longest a fork waits for the background thread's commit in progress
_MAX_PENDING = 20_000  # finished runs queued at most before the recording thread commits them itself


_ROW_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.InterfaceError,
    ValueError,
    OverflowError,
    TypeError,
    NameRefused,  # a name another run of the experiment has in the other role
)


def _caused_by_a_row(error: BaseException) -> bool:
    """Whether a commit failed because of a row (a value SQLite refuses), not the database itself."""
    cause = error.__cause__ if isinstance(error, StoreError) and error.__cause__ is not None else error
    return isinstance(cause, _ROW_ERRORS)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block is done (a commit is never cut in half).

    The signal is not lost: it is delivered, and its exception raised, right after.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class RunWriter:
    """Buffer finished runs of one session and commit them in batches.

    :param conn: the session's connection (used under this writer's lock only).
    :param experiment_pk: key of the experiment row.
    :param session_pk: key of the session row.
    :param interval: longest time a finished run waits before its commit, in seconds.
    :param purge_duplicate_comments: store each distinct comment text once.
    :param on_commit: called after each commit of runs (the session marks itself alive).
    :param journal: where finished runs wait for their commit, safe from a crash.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        experiment_pk: int,
        session_pk: int,
        *,
        interval: float,
        purge_duplicate_comments: bool = True,
        on_commit: Callable[[], None] | None = None,
        journal: Journal | None = None,
    ) -> None:
        self._conn = conn
        self._journal = journal if interval > 0 else None
        self._experiment_pk = experiment_pk
        self.interval = interval
        self._on_commit = on_commit
        self._db_lock = threading.Lock()  # held while the connection is used
        self._queue_lock = threading.Lock()  # held only to touch the queue
        # Finished runs, one by one or in whole chunks (a vectorised sweep's, written column-wise).
        self._pending: list[PendingRun | DoneChunk] = []
        self._chunks = 0  # chunks in the queue, and the runs in them (the backlog counts runs)
        self._chunk_runs = 0
        # The run in flight and when it started, as one tuple (replaced atomically).
        self._active: tuple[PendingRun, float] | None = None
        self._rows = Rows(conn, experiment_pk, session_pk, purge_duplicate_comments=purge_duplicate_comments)
        self._error: BaseException | None = None
        self._stop = threading.Event()  # set to end the current background thread
        self._thread: threading.Thread | None = None
        self._restart = False  # the background thread was stopped for a fork: start a new one after
        self._closed = False
        self._inline = False
        self._oldest = 0.0  # when the oldest pending run finished (monotonic)
        self._last_duration = 0.0
        self._pid = os.getpid()
        #: Keys of the ``functions`` rows this session's runs called, by their identity (found once per function).
        self.function_keys: dict[tuple[str, str, str | None, str], int] = {}
        _WRITERS.add(self)
        defer_sync(self)  # this process's objects are synced by _commit, once per batch

    # -- called by the recording thread -------------------------------------------

    def started(self, run: PendingRun) -> None:
        """Note that ``run`` is in flight (it gets a row if it lasts longer than the interval)."""
        if self._error is not None:
            self._raise_background_error()
        self._active = (run, time.monotonic())
        if self._inline:  # the recording thread commits: runs this long get a 'running' row at once
            if self._last_duration >= self.interval:
                self._flush(extra=[run])
        elif self.interval <= 0:
            self._flush(extra=[run])  # visible at once, and interrupted if killed
        elif self._thread is None:
            self._start_thread()

    def finished(self, run: PendingRun, status: str, duration: float, error: str | None) -> None:
        """Queue a finished run (committed within the interval, or now when the interval is 0)."""
        if self._closed:
            if os.getpid() != self._pid:
                raise RecorderError(f"run {run.id} is not recorded: {_IN_A_CHILD}")
            raise RecorderError(f"run {run.id} ended after its session was closed, so it is not recorded as done")
        run.status, run.duration, run.error = status, duration, error
        self._last_duration = duration
        now = time.monotonic()
        with self._queue_lock:
            pending = self._pending
            if not pending:
                self._oldest = now
            pending.append(run)  # before the journal: an interrupt in between loses nothing
            if self._journal is not None and not self._inline:
                self._append_to_journal(run)
            self._active = None
            backlog = len(pending)
        self._queued(now, backlog)

    def finished_many(self, chunk: DoneChunk) -> None:
        """Queue the done runs of a vectorised chunk at once, to be written column-wise (:meth:`Rows.write_chunk`).

        What :meth:`finished` does for each, with one lock and one look at
        the clock for all; Ctrl-C and SIGTERM wait until all are queued, so
        a run is either queued (its status set) or still ``running``. The
        chunk is one item of the queue, so it is committed in one
        transaction, whole or not at all; only a run SQLite refuses makes
        its batch go run by run (as any batch). Where runs are journaled
        (not in a sweep), each run is queued and journaled as
        :meth:`finished` would.
        """
        runs = chunk.runs
        if not runs:
            return
        if self._closed:
            self.finished(runs[0], "done", chunk.duration, None)  # raises, saying why
        self._last_duration = chunk.duration
        now = time.monotonic()
        with _signals_deferred(), self._queue_lock:
            for run in runs:
                run.status = "done"
            pending = self._pending
            if not pending:
                self._oldest = now
            if self._journal is not None and not self._inline:
                pending.extend(chunk.expand())  # each run in the journal, as finished() puts it there
                for run in runs:
                    self._append_to_journal(run)
            else:
                pending.append(chunk)
                self._chunks += 1
                self._chunk_runs += len(runs)
            self._active = None
            backlog = len(pending) - self._chunks + self._chunk_runs
        self._queued(now, backlog)

    def _queued(self, now: float, backlog: int) -> None:
        """After runs were queued: commit now, or leave it to the thread (started if needed), by the interval."""
        if self._inline:
            if now - self._oldest >= self.interval or backlog >= _MAX_PENDING:
                self._flush()
        elif self.interval <= 0 or backlog >= _MAX_PENDING:  # at 0, or the thread is falling behind: help it
            self._flush()
        elif self._thread is None:
            self._start_thread()
        if self._error is not None:
            self._raise_background_error()

    @contextlib.contextmanager
    def inline(self) -> Iterator[None]:
        """Commit from the recording thread, in batches, for a tight loop of many runs (a sweep).

        A background thread committing every batch would fight the loop for
        Python's interpreter lock; here the loop commits a batch itself once
        the interval has passed, at its next run's end. Runs are not
        journaled meanwhile. The background thread steps in only when the
        loop is late: a run finished ``interval`` ago and still not
        committed (the next run is long or hangs). So a SIGKILL loses at most
        the runs of the last interval, whatever the loop does.
        """
        self._flush()
        self._inline = True
        if self.interval > 0 and self._thread is None:
            self._start_thread()  # the clock that commits when the loop is late
        try:
            yield
        finally:
            self._inline = False
            self._flush()

    def flush(self) -> None:
        """Commit every finished run now."""
        self._flush()
        self._raise_background_error()

    def close(self) -> None:
        """Stop the background thread, commit what is left and remove the journal."""
        if os.getpid() != self._pid:
            return  # a forked child: the session, its queue and its journal are the parent's
        self._closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._active = None
        self._flush()
        end_deferral(self)
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        self._raise_background_error()

    def _append_to_journal(self, run: PendingRun) -> None:
        assert self._journal is not None
        try:
            self._journal.append(run)
        except OSError as e:
            # Recording goes on; only the protection against a crash is lost.
            self._journal = None
            warnings.warn(
                f"recorder: cannot write the session journal ({e}); runs are still committed "
                f"every {self.interval} s, but a crash may now lose the last ones",
                RecorderWarning,
                stacklevel=4,
            )

    def replay(self, runs: list[PendingRun]) -> int:
        """Write journaled runs of a dead session that its rows do not show as finished; return how many.

        Idempotent: the check and the writes are one transaction, so a run is
        never written twice, whoever replays the journal. A record SQLite
        refuses is written run by run, like any batch.
        """
        with self._db_lock:
            make_durable()
            self._rows.begin()
            assigned: list[PendingRun] = []
            try:
                with transaction(self._conn) as conn:
                    todo = self._unfinished(conn, runs)
                    _forget_unknown_functions(conn, todo)
                    self._rows.write(conn, todo, [], assigned)
            except Exception as e:
                for run in assigned:  # their rows were rolled back
                    run.pk = None
                if not _caused_by_a_row(e):
                    raise
                todo = self._unfinished(self._conn, runs)
                _forget_unknown_functions(self._conn, todo)
                self._commit_one_by_one(list(todo))
        return len(todo)

    def _unfinished(self, conn: sqlite3.Connection, runs: list[PendingRun]) -> list[PendingRun]:
        """The runs whose rows are missing or still say running (their keys set when they exist).

        A run whose id is another session's is left alone and reported: a
        journal never speaks for another session's runs.
        """
        known: dict[str, tuple[int, str, int]] = {}
        ids = [r.id for r in runs]
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            sql = _RUN_STATES.format(marks=", ".join("?" * len(chunk)))
            rows = conn.execute(sql, [bytes.fromhex(i) for i in chunk])
            known.update((i.hex(), (pk, status, session)) for i, pk, status, session in rows)
        todo = []
        own = self._rows._session_pk
        for run in runs:
            pk, status, session = known.get(run.id, (None, "running", own))
            if session != own:
                warnings.warn(
                    f"recorder: the journal of a crashed session holds run {run.id}, which belongs to "
                    "another session; it is not replayed",
                    RecorderWarning,
                    stacklevel=3,
                )
            elif status == "running":
                run.pk = pk
                todo.append(run)
        return todo

    def note_psets(self, pks: dict[str, int]) -> None:
        """Remember keys of psets found in the store (hash → key), so that their runs need no lookup."""
        with self._db_lock:
            self._rows.note_psets(pks)

    @property
    def fields(self) -> Fields:
        """The experiment's parameter and result names (see :mod:`recorder.catalog`)."""
        return self._rows.fields

    @property
    def experiment_pk(self) -> int:
        """Key of the experiment whose runs this writer writes."""
        return self._experiment_pk

    def read(self, action: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``action(conn)`` on the connection, for reading (no transaction is opened)."""
        with self._db_lock:
            try:
                return action(self._conn)
            except sqlite3.Error as e:
                raise StoreError(f"reading the store failed: {e}") from e

    def run(self, action: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``action(conn)`` in a write transaction, after committing pending runs."""
        self._flush()
        with self._db_lock, transaction(self._conn) as conn:
            return action(conn)

    # -- background ---------------------------------------------------------------

    def _start_thread(self) -> None:
        if os.getpid() != self._pid:  # once per writer, not per run
            raise RecorderError(_IN_A_CHILD)
        self._thread = threading.Thread(target=self._loop, args=(self._stop,), name="recorder-writer", daemon=True)
        with _signals_deferred():  # the thread inherits the mask: Ctrl-C and SIGTERM go to the main thread
            self._thread.start()

    def _loop(self, stop: threading.Event) -> None:
        wait = self.interval
        while not stop.wait(wait):
            try:
                wait = self._late() if self._inline else self._every_interval()
            except BaseException as e:  # reported to the recording thread at its next call
                self._error = e
                wait = self.interval

    def _every_interval(self) -> float:
        """Commit the queue and a ``running`` row for a long run in flight; return the time to the next look."""
        self._flush(extra=self._long_running(time.monotonic()))
        return self.interval

    def _late(self) -> float:
        """In a sweep: commit what the sweeping thread left waiting ``interval``; return the time to the next look.

        Costs the sweep nothing while it keeps up: the thread wakes at most
        once an interval and finds the oldest waiting run younger than that.
        """
        now = time.monotonic()
        with self._queue_lock:
            oldest = self._oldest if self._pending else None
        if oldest is not None and now - oldest < self.interval:
            return oldest + self.interval - now  # when it is due, unless the sweeping thread commits it first
        in_flight = self._long_running(now)
        if oldest is not None or in_flight:
            self._flush(extra=in_flight, due_only=True)
        return self.interval

    def _long_running(self, now: float) -> list[PendingRun]:
        """The run in flight, if it has no row yet and has lasted the interval (it gets a ``running`` row)."""
        active = self._active
        if active is not None and active[0].pk is None and now - active[1] >= self.interval:
            return [active[0]]
        return []

    def _stop_thread_for_fork(self) -> None:
        """End the background thread, after its commit in progress, so that a fork copies no thread of ours.

        A forked copy of a thread's state (a lock it held, SQLite's mutexes
        in the middle of a commit) would be the child's to trip over, and
        Python 3.12+ warns about forking a process that runs threads.
        """
        thread = self._thread
        if thread is None or self._closed or not thread.is_alive() or thread is threading.current_thread():
            return
        self._stop.set()
        thread.join(_FORK_WAIT_S)  # a commit the forking thread blocks (it never does) would only delay the fork
        self._restart = True

    def _restart_thread_after_fork(self) -> None:
        """Start a new background thread in the parent after a fork (the old one has ended or is ending)."""
        if self._restart:
            self._restart = False
            if not self._closed:
                self._stop = threading.Event()
                self._start_thread()

    def _raise_background_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    # -- the write ----------------------------------------------------------------

    def _flush(self, extra: list[PendingRun] | None = None, *, due_only: bool = False) -> None:
        """Commit the queued runs, and ``running`` rows for the runs in ``extra``, in one transaction.

        :param due_only: leave the queue when its oldest run ended less than the
            interval ago (the sweeping thread committed the late ones meanwhile).
        """
        if os.getpid() != self._pid:  # once per batch, not per run
            raise RecorderError(_IN_A_CHILD)
        journaled = not self._inline  # read once: a sweep's runs are not in the journal
        with self._db_lock, _signals_deferred():
            batch: list[PendingRun | DoneChunk] = []
            chunked = 0
            try:
                with self._queue_lock:
                    if not (due_only and self._pending and time.monotonic() - self._oldest < self.interval):
                        batch = self._pending
                        self._pending = []
                        chunked, self._chunks, self._chunk_runs = self._chunks, 0, 0
                    if batch and self._journal is not None and journaled:
                        self._journal.rotate()  # the batch's records are now in retired files
                # A run that ends while this runs is in the next batch; its row here says running.
                in_flight = [r for r in extra or () if r.pk is None and r.status == "running"]
                if not batch and not in_flight:
                    return
                # The objects the batch names are on disk before its rows: synced once per batch, not per put.
                make_durable()
                try:
                    self._commit(batch, in_flight, chunked=chunked > 0)
                except Exception as e:
                    if not batch or not _caused_by_a_row(e):
                        raise  # the database itself (locked, full, broken): keep everything, retry later
                    self._commit_one_by_one(batch)  # removes from batch what it commits
            except BaseException:
                with self._queue_lock:  # keep them for the next try, in order
                    if self._pending is not batch:
                        self._pending[:0] = batch
                        chunks = [item for item in batch if type(item) is DoneChunk]
                        self._chunks += len(chunks)
                        self._chunk_runs += sum(map(len, chunks))
                raise
            if self._journal is not None and journaled:
                self._journal.committed()
        if self._on_commit is not None:
            self._on_commit()

    def _commit(
        self, finished: list[PendingRun | DoneChunk], in_flight: list[PendingRun], *, chunked: bool = False
    ) -> None:
        """Write ``finished`` and ``in_flight`` in one transaction (``chunked``: ``finished`` holds chunks)."""
        assigned: list[PendingRun] = []
        self._rows.begin()  # keys found or made in this transaction are remembered only if it commits
        try:
            with transaction(self._conn) as conn:
                if chunked:
                    self._rows.write_items(conn, finished, in_flight, assigned)
                else:
                    self._rows.write(conn, finished, in_flight, assigned)  # type: ignore[arg-type]
        except BaseException:
            for run in assigned:  # their rows were rolled back
                run.pk = None
            raise
        self._rows.committed()

    def _commit_one_by_one(self, batch: list[PendingRun | DoneChunk]) -> None:
        """Commit a batch that a row made fail, run by run, so one bad run loses nothing else.

        Each run committed is removed from ``batch``; what is left if the
        database itself fails midway goes back to the queue. A chunk in the
        batch becomes its runs first.
        """
        runs = [run for item in batch for run in (item.expand() if type(item) is DoneChunk else (item,))]
        batch[:] = runs
        for run in runs:
            assert isinstance(run, PendingRun)
            try:
                self._commit([run], [])
            except Exception as e:
                if not _caused_by_a_row(e):
                    raise
                run.results, run.result_comments, run.comment, run.output = {}, None, None, None
                run.scalars = run.scalar_names = None
                run.status = "failed"
                run.error = (run.error or "") + f"\n[recorder could not store this run's results: {e}]"
                try:
                    self._commit([run], [])
                except Exception as again:
                    if not _caused_by_a_row(again):
                        raise
                    warnings.warn(
                        f"recorder: run {run.id} could not be recorded at all: {again}", RecorderWarning, stacklevel=2
                    )
            batch.remove(run)


#: Every writer of this process, so that a fork can stop their threads and a child leave them alone.
_WRITERS: weakref.WeakSet[RunWriter] = weakref.WeakSet()


def _forget_unknown_functions(conn: sqlite3.Connection, runs: list[PendingRun]) -> None:
    """Set the function of journaled runs to None where it names no row of ``functions`` (a crafted line)."""
    wanted = {run.function for run in runs if run.function is not None}
    if not wanted:
        return
    known = {pk for (pk,) in conn.execute(_KNOWN_FUNCTIONS, (json.dumps(sorted(wanted)),))}
    for run in runs:
        if run.function is not None and run.function not in known:
            run.function = None


def _stop_threads_before_fork() -> None:
    for writer in list(_WRITERS):
        writer._stop_thread_for_fork()


def _restart_threads_after_fork() -> None:
    for writer in list(_WRITERS):
        writer._restart_thread_after_fork()


def _forget_writers_in_child() -> None:
    """In a forked child: the parent's writers are closed to it, with fresh locks and an empty queue.

    The child has none of the parent's threads but copies of their locks,
    perhaps held, and of the queue, whose runs are the parent's to commit.
    """
    for writer in list(_WRITERS):
        writer._db_lock = threading.Lock()
        writer._queue_lock = threading.Lock()
        writer._pending = []
        writer._chunks = writer._chunk_runs = 0
        writer._active = None
        writer._closed = True
        writer._restart = False
        writer._stop = threading.Event()
        writer._stop.set()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_stop_threads_before_fork,
        after_in_parent=_restart_threads_after_fork,
        after_in_child=_forget_writers_in_child,
    )
