"""Batched, crash-safe writing of runs: the one place run rows reach the database.

Finished runs are queued and a background thread commits the queue every
``interval`` seconds, so the recording thread never waits for SQLite. A
commit costs far more than a row, so batching is what makes recording
cheap; the price is that a process killed with SIGKILL loses the runs that
finished in its last ``interval`` or so. Everything else (the end of the
session, an exception, Ctrl-C, SIGTERM) flushes first. ``interval=0``
commits every run as it ends, in the recording thread.

A run still in flight after ``interval`` gets a ``running`` row (from the
background thread), so long runs are visible to other processes, and are
shown ``interrupted`` if their process dies.

Row keys are assigned here, inside the write transaction, so a whole batch
goes in with a few ``executemany`` calls.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from .db import transaction
from .errors import StoreError
from .ids import iso_utc, now_utc
from .values import Encoded

__all__ = ["PendingRun", "RunWriter"]

_MAX_PK = "SELECT coalesce(max(pk), 0) FROM {table}"
_MAX_RUN_PK = _MAX_PK.format(table="runs")
_MAX_PSET_PK = _MAX_PK.format(table="psets")
_MAX_COMMENT_PK = _MAX_PK.format(table="comments")
_FIND_PSETS = "SELECT hash, pk, params FROM psets WHERE hash IN ({marks})"
_INSERT_PSET = "INSERT INTO psets (pk, hash, params) VALUES (?, ?, ?)"
_INSERT_RUN = """
INSERT INTO runs (pk, id, experiment, session, pset, status, time_start, duration_s, seed, comment, error, output)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_FINISH_RUN = "UPDATE runs SET status = ?, duration_s = ?, comment = ?, error = ?, output = ? WHERE pk = ?"
_INSERT_TEXT = "INSERT OR IGNORE INTO texts (digest, text) VALUES (?, ?)"
_INSERT_RESULT = "INSERT INTO results (run, name, kind, value, comment) VALUES (?, ?, ?, ?, ?)"
_INSERT_OBJECT = """
INSERT OR IGNORE INTO objects (digest, size, dtype, shape, time_created) VALUES (?, ?, ?, ?, ?)
"""
_FIND_COMMENT = "SELECT pk FROM comments WHERE text = ? LIMIT 1"
_INSERT_COMMENT = "INSERT INTO comments (pk, text) VALUES (?, ?)"
_IN_CHUNK = 500  # hashes per IN (...) lookup


class PendingRun:
    """A run on its way to the database."""

    __slots__ = (
        "id", "pset_hash", "canonical", "seed", "t0", "status", "duration", "error",
        "comment", "results", "result_comments", "output", "pk",
    )

    def __init__(self, id: str, pset_hash: str, canonical: str, seed: int, t0: float) -> None:
        self.id = id
        self.pset_hash = pset_hash
        self.canonical = canonical
        self.seed = seed
        self.t0 = t0
        self.status = "running"
        self.duration: float | None = None
        self.error: str | None = None
        self.comment: str | None = None
        self.results: dict[str, Encoded] = {}
        self.result_comments: dict[str, str] | None = None
        #: Captured output as ``(digest, text)``, when the run's output was captured.
        self.output: tuple[str, str] | None = None
        #: Row key once a row of this run is committed.
        self.pk: int | None = None


class RunWriter:
    """Buffer finished runs of one session and commit them in batches.

    :param conn: the session's connection (used under this writer's lock only).
    :param experiment_pk: key of the experiment row.
    :param session_pk: key of the session row.
    :param interval: longest time a finished run waits before its commit, in seconds.
    :param purge_duplicate_comments: store each distinct comment text once.
    :param on_commit: called after each commit of runs (the session marks itself alive).
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
    ) -> None:
        self._conn = conn
        self._experiment_pk = experiment_pk
        self._session_pk = session_pk
        self.interval = interval
        self._purge = purge_duplicate_comments
        self._on_commit = on_commit
        self._db_lock = threading.Lock()  # held while the connection is used
        self._queue_lock = threading.Lock()  # held only to touch the queue
        self._pending: list[PendingRun] = []
        # The run in flight and when it started, as one tuple (replaced atomically).
        self._active: tuple[PendingRun, float] | None = None
        self._psets: dict[str, int] = {}
        self._comments: dict[str, int] = {}
        self._staged_psets: dict[str, int] = {}
        self._staged_comments: dict[str, int] = {}
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.committed = 0

    # -- called by the recording thread -------------------------------------------

    def started(self, run: PendingRun) -> None:
        """Note that ``run`` is in flight (it gets a row if it lasts longer than the interval)."""
        self._raise_background_error()
        self._active = (run, time.monotonic())
        if self.interval <= 0:
            self._flush(extra=[run])
        elif self._thread is None:
            self._start_thread()

    def finished(self, run: PendingRun, status: str, duration: float, error: str | None) -> None:
        """Queue a finished run (committed within the interval, or now when the interval is 0)."""
        run.status, run.duration, run.error = status, duration, error
        with self._queue_lock:
            self._pending.append(run)
            self._active = None
        if self.interval <= 0:
            self._flush()
        elif self._thread is None:
            self._start_thread()
        self._raise_background_error()

    def flush(self) -> None:
        """Commit every finished run now."""
        self._flush()
        self._raise_background_error()

    def close(self) -> None:
        """Stop the background thread and commit what is left."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._active = None
        self._flush()
        self._raise_background_error()

    @property
    def experiment_pk(self) -> int:
        """Key of the experiment whose runs this writer writes."""
        return self._experiment_pk

    def read(self, action: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``action(conn)`` on the connection, for reading (no transaction is opened)."""
        with self._db_lock:
            return action(self._conn)

    def run(self, action: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``action(conn)`` in a write transaction, after committing pending runs."""
        self._flush()
        with self._db_lock, transaction(self._conn) as conn:
            return action(conn)

    # -- background ---------------------------------------------------------------

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="recorder-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            active = self._active
            in_flight = (
                [active[0]]
                if active is not None and active[0].pk is None and time.monotonic() - active[1] >= self.interval
                else []
            )
            try:
                self._flush(extra=in_flight)
            except BaseException as e:  # reported to the recording thread at its next call
                self._error = e

    def _raise_background_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    # -- the write ----------------------------------------------------------------

    def _flush(self, extra: list[PendingRun] | None = None) -> None:
        """Commit the queued runs, and ``running`` rows for the runs in ``extra``, in one transaction."""
        with self._db_lock:
            with self._queue_lock:
                batch, self._pending = self._pending, []
            # A run that ends while this runs is in the next batch; its row here says running.
            in_flight = [r for r in extra or () if r.pk is None and r not in batch]
            if not batch and not in_flight:
                return
            assigned: list[PendingRun] = []
            # Keys found or made in this transaction; cached only once it commits.
            self._staged_psets, self._staged_comments = {}, {}
            try:
                with transaction(self._conn) as conn:
                    self._write(conn, batch, in_flight, assigned)
            except BaseException:
                for run in assigned:  # their rows were rolled back
                    run.pk = None
                with self._queue_lock:  # keep them for the next try, in order
                    self._pending[:0] = batch
                raise
            self._psets.update(self._staged_psets)
            self._comments.update(self._staged_comments)
            self.committed += len(batch)
        if self._on_commit is not None:
            self._on_commit()

    def _write(
        self,
        conn: sqlite3.Connection,
        finished: list[PendingRun],
        in_flight: list[PendingRun],
        assigned: list[PendingRun],
    ) -> None:
        runs = finished + in_flight
        psets = self._pset_pks(conn, {r.pset_hash: r.canonical for r in runs})
        next_pk = conn.execute(_MAX_RUN_PK).fetchone()[0] + 1
        new_rows, updates, results, objects, texts = [], [], [], [], []
        experiment, session = self._experiment_pk, self._session_pk
        for run in finished:
            comment = self._comment_pk(conn, run.comment) if run.comment is not None else None
            output = None
            if run.output is not None:
                texts.append(run.output)
                output = run.output[0]
            if run.pk is None:
                run.pk, next_pk = next_pk, next_pk + 1
                assigned.append(run)
                new_rows.append((
                    run.pk, run.id, experiment, session, psets[run.pset_hash],
                    run.status, iso_utc(run.t0), run.duration, run.seed, comment, run.error, output,
                ))
            else:
                updates.append((run.status, run.duration, comment, run.error, output, run.pk))
            comments = run.result_comments
            for name, encoded in run.results.items():
                results.append((
                    run.pk, name, encoded.kind, encoded.value,
                    self._comment_pk(conn, comments.get(name)) if comments else None,
                ))
                if encoded.object is not None:
                    objects.append(encoded.object)
        for run in in_flight:  # after the finished ones: they started earlier
            run.pk, next_pk = next_pk, next_pk + 1
            assigned.append(run)
            new_rows.append((
                run.pk, run.id, experiment, session, psets[run.pset_hash],
                "running", iso_utc(run.t0), None, run.seed, None, None, None,
            ))
        if objects:
            now = now_utc()
            conn.executemany(_INSERT_OBJECT, [(*o, now) for o in objects])
        if texts:
            conn.executemany(_INSERT_TEXT, texts)
        conn.executemany(_INSERT_RUN, new_rows)
        conn.executemany(_FINISH_RUN, updates)
        conn.executemany(_INSERT_RESULT, results)

    def _pset_pks(self, conn: sqlite3.Connection, wanted: dict[str, str]) -> dict[str, int]:
        """Return the keys of the psets, inserting those the store does not have."""
        known = self._psets
        missing = [h for h in wanted if h not in known]
        found: dict[str, int] = {}
        for start in range(0, len(missing), _IN_CHUNK):
            chunk = missing[start : start + _IN_CHUNK]
            sql = _FIND_PSETS.format(marks=", ".join("?" * len(chunk)))
            for hash_, pk, params in conn.execute(sql, chunk):
                if params != wanted[hash_]:
                    raise StoreError(
                        f"pset hash collision: {hash_} names both {params} and {wanted[hash_]}; please report this"
                    )
                found[hash_] = pk
        new = [h for h in missing if h not in found]
        if new:
            next_pk = conn.execute(_MAX_PSET_PK).fetchone()[0] + 1
            rows = [(next_pk + i, h, wanted[h]) for i, h in enumerate(new)]
            conn.executemany(_INSERT_PSET, rows)
            found.update((h, pk) for pk, h, _ in rows)
        self._staged_psets.update(found)
        return {h: known[h] if h in known else found[h] for h in wanted}

    def _comment_pk(self, conn: sqlite3.Connection, text: str | None) -> int | None:
        if text is None:
            return None
        if self._purge:
            pk = self._comments.get(text) or self._staged_comments.get(text)
            if pk is not None:
                return pk
            row = conn.execute(_FIND_COMMENT, (text,)).fetchone()
            if row is not None:
                self._staged_comments[text] = row[0]
                return row[0]
        pk = conn.execute(_MAX_COMMENT_PK).fetchone()[0] + 1
        conn.execute(_INSERT_COMMENT, (pk, text))
        if self._purge:
            self._staged_comments[text] = pk
        return pk
