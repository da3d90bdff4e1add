"""The Recorder context manager: one session, and the runs recorded in it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..codec.canonical import canonical_pset
from ..codec.hashing import check_experiment, check_name, is_utf8, text_digest
from ..codec.values import DEFAULT_INLINE_LIMIT, encode
from ..errors import NameRefused, RecorderError, StoreError
from ..provenance import environment as provenance
from ..provenance import gitinfo
from ..store import catalog
from ..store.db import transaction
from ..store.folder import Store
from ..store.ids import new_id, now_utc
from ..store.journal import Journal
from ..store.liveness import SessionLock
from ..store.writer import RunWriter, insert_objects, insert_texts
from ..sweep.loop import Binder, check_keep_files, check_max_file_bytes, dry_run
from ..sweep.loop import sweep as sweep_psets
from ..sweep.session import Writing
from ..version import __version__
from .run import Run

if TYPE_CHECKING:
    from concurrent.futures import Executor

    import pandas as pd

__all__ = ["Recorder", "DEFAULT_FLUSH_INTERVAL"]

#: Longest time a finished run waits for its commit (see :mod:`recorder.writer`).
DEFAULT_FLUSH_INTERVAL = 0.2

_INSERT_SESSION = """
INSERT INTO sessions (
    id, experiment, status, time_start, message, comment, seed, env_sha,
    git_mode, git_repo, git_commit, git_branch, git_dirty, git_auto_committed,
    git_snapshot_ref, git_diff, untracked_modules,
    host, user, pid, platform, python, recorder_version, packages, fingerprint,
    argv, cwd, script_path, script, jax
) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_CLOSE_SESSION = "UPDATE sessions SET status = ?, time_end = ? WHERE pk = ?"
_INTERRUPT_OPEN_RUNS = "UPDATE runs SET status = 'interrupted' WHERE session = ? AND status = 'running'"
_UPSERT_CONFIG = "INSERT OR REPLACE INTO config (session, name, kind, value) VALUES (?, ?, ?, ?)"


class _Terminated(SystemExit):
    """SIGTERM, turned into an exception so runs and the session end as ``interrupted``."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated(128 + signum)


def _fallback_env_sha(experiment: str, time_start: str) -> str:
    """pypet's rule without git: SHA-1 of experiment name, start time and recorder version."""
    return hashlib.sha1(f"{experiment}{time_start}{__version__}".encode()).hexdigest()


def _finish(store: Store, lock: SessionLock, writer: RunWriter, session_pk: int, status: str | None, pid: int) -> None:
    """Commit what is left, close the session row, release its lock and close the store.

    ``status`` None means the program is exiting without having closed the
    session: it failed if an exception ended the program, else it is done.
    """
    if os.getpid() != pid:  # a forked child exiting: the session belongs to its parent
        return
    if status is None:
        ended_by_error = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
        status = "failed" if ended_by_error is not None else "done"
    again: BaseException | None = None
    written = False
    try:
        while True:
            try:
                writer.close()
                break
            except (KeyboardInterrupt, SystemExit) as e:
                # Ctrl-C again while the last runs are written: write them first, then stop.
                again, status = e, "interrupted"
        written = True
    finally:
        try:
            if written:
                with transaction(store.conn) as conn:
                    conn.execute(_INTERRUPT_OPEN_RUNS, (session_pk,))  # a run the session was closed inside
                    conn.execute(_CLOSE_SESSION, (status, now_utc(), session_pk))
            # Else the last runs could not be written (the database failed): the session
            # stays open, so the next opening of the store replays its journal.
        finally:
            if written:
                lock.release()
            else:
                lock.abandon()
            store.close()
    if again is not None:
        raise again


class Recorder:
    """Record a session of an experiment: its code state, environment, config and runs.

    Use it as a context manager::

        with rec.Recorder("lorenz", store="runs", message="smaller dt") as r:
            r.config(dt=0.01)
            with r.run(a=0.1, b=8) as run:
                run.log(energy=1.5)

    :param experiment: name of the experiment (a study inside the store).
    :param store: the store folder; default ``$RECORDER_STORE``, else the
        nearest ``.recorder/`` upwards, else ``./.recorder/`` (created).
    :param git: git mode: ``"auto"``, ``"commit"``, ``"snapshot"``,
        ``"require-clean"``, ``"record"`` or ``False`` (see :mod:`recorder.gitinfo`).
    :param message: a message for the session, also used in an auto-commit.
    :param comment: a free-text comment on the session.
    :param config: constant settings of the session (same as :meth:`config`).
    :param seed: experiment-level seed mixed into every run's :attr:`Run.seed`.
    :param repo: folder to look for the git repository from; default the
        main script's folder, else the working folder.
    :param inline_limit: arrays whose ``.npy`` bytes are at most this many
        bytes are kept in the database, larger ones in ``objects/``.
    :param purge_duplicate_comments: store each distinct comment text once
        (default); false keeps one comment row per logged comment.
    :param flush_interval: finished runs are committed in batches, at most
        this many seconds after they end; a SIGKILL loses at most that
        much. ``0`` commits every run as it ends (slower).
    :param workdir: the folder under which each run gets its work folder
        (``recorder.current_run().dir``); default ``runs/`` in the store.
    :param keep_files: the files a run leaves in its folder are stored as
        results and the folder removed (``"store"``, default), stored and the
        folder kept (``"both"``), or kept and only listed (``"folder"``).
    :param max_file_bytes: a larger file in a run's folder fails the run (default: no limit).
    """

    def __init__(
        self,
        experiment: str,
        *,
        store: str | os.PathLike[str] | None = None,
        git: str | bool | None = "auto",
        message: str | None = None,
        comment: str | None = None,
        config: Mapping[str, Any] | None = None,
        seed: int | None = None,
        repo: str | os.PathLike[str] | None = None,
        inline_limit: int = DEFAULT_INLINE_LIMIT,
        purge_duplicate_comments: bool = True,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        workdir: str | os.PathLike[str] | None = None,
        keep_files: str = "store",
        max_file_bytes: int | None = None,
    ) -> None:
        self.experiment = check_experiment(experiment)
        self._git_mode = gitinfo.check_mode(git)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise RecorderError(f"seed={seed!r} is not an int")
        if isinstance(inline_limit, bool) or not isinstance(inline_limit, int) or inline_limit < 0:
            raise RecorderError(f"inline_limit={inline_limit!r} is not a number of bytes (an int ≥ 0)")
        for label, text in (("message", message), ("comment", comment)):
            if text is not None and (not isinstance(text, str) or not is_utf8(text)):
                raise RecorderError(f"{label}={text!r} is not text (a str without lone surrogates)")
        if not isinstance(flush_interval, (int, float)) or not 0 <= flush_interval <= 60:
            raise RecorderError(f"flush_interval={flush_interval!r} is not a number of seconds between 0 and 60")
        self._store_arg = store
        self.message = message
        self.comment = comment
        self.seed = seed
        self._repo = Path(repo) if repo is not None else None
        self.inline_limit = inline_limit
        self.purge_duplicate_comments = purge_duplicate_comments
        self.flush_interval = float(flush_interval)
        #: The folder of the runs' work folders, when not the store's ``runs/``.
        self.workdir = workdir
        #: What becomes of the files a run leaves in its folder, and the largest such file.
        self.keep_files = check_keep_files(keep_files)
        self.max_file_bytes = check_max_file_bytes(max_file_bytes)
        self._pending_config = dict(config or {})
        for name in self._pending_config:
            check_name("config", name)
        self._config: dict[str, tuple[str | None, Any]] = {}
        self._store: Store | None = None
        self._writer: RunWriter | None = None
        self._lock: SessionLock | None = None
        self._session_pk = 0
        self._finalizer: weakref.finalize[..., Recorder] | None = None
        self._previous_sigterm: Any = None
        self._active: Run | None = None
        #: The session id, once the session is open.
        self.id: str | None = None
        #: The env SHA of the session (the git commit, or a fallback hash without git).
        self.env_sha: str | None = None
        #: What git recorded, once the session is open.
        self.git: gitinfo.GitState | None = None
        #: How many runs ended in this session.
        self.runs_recorded = 0

    # -- session ------------------------------------------------------------

    @property
    def store(self) -> Path | None:
        """The store folder, once the session is open."""
        return self._store.root if self._store is not None else None

    def __enter__(self) -> Recorder:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc_type is None:
            status = "done"
        elif issubclass(exc_type, (KeyboardInterrupt, SystemExit)):
            status = "interrupted"
        else:
            status = "failed"
        self.close(status)

    def open(self) -> Recorder:
        """Start the session: record the code state and environment. Idempotent."""
        if self._store is not None:
            return self
        start = self._repo or self._default_repo_start()
        session_id = new_id()
        time_start = now_utc()
        # Git first: a refusal (dirty tree, merge in progress) must write nothing.
        git_state = gitinfo.capture(
            self._git_mode,
            start=start,
            experiment=self.experiment,
            session_id=session_id,
            message=self.message,
        )
        env = provenance.environment()
        proc = provenance.process_info()
        jax = provenance.jax_info()  # may initialise a backend: not inside the write transaction
        store = Store.open(self._store_arg)
        # Shared until the session row is committed: gc must not delete the config arrays in between.
        guard = store.objects.lock()
        try:
            guard.acquire()
            config = [
                (name, encode(name, value, store.objects, inline_limit=self.inline_limit, what="config value"))
                for name, value in self._pending_config.items()
            ]
            lock = SessionLock(store.root, session_id)  # before the row: see liveness
        except OSError as e:
            guard.release()
            store.close()
            raise StoreError(f"cannot create the session lock in {store.root}: {e}") from e
        except BaseException:
            guard.release()
            store.close()
            raise
        env_sha = git_state.commit or _fallback_env_sha(self.experiment, time_start)
        texts = [proc.script, env.packages, git_state.diff]
        digests = [text_digest(t) if t is not None else None for t in texts]
        try:
            with transaction(store.conn) as conn:
                experiment_pk = self._experiment_pk(conn, time_start)
                insert_texts(conn, [(d, t) for d, t in zip(digests, texts) if d is not None and t is not None])
                session_pk = conn.execute(
                    _INSERT_SESSION,
                    (
                        session_id,
                        experiment_pk,
                        time_start,
                        self.message,
                        self.comment,
                        self.seed,
                        env_sha,
                        git_state.mode,
                        git_state.repo,
                        git_state.commit,
                        git_state.branch,
                        git_state.dirty,
                        git_state.auto_committed,
                        git_state.snapshot_ref,
                        digests[2],
                        json.dumps(git_state.untracked_modules) if git_state.untracked_modules else None,
                        env.host,
                        env.user,
                        proc.pid,
                        env.platform,
                        env.python,
                        __version__,
                        digests[1],
                        env.fingerprint,
                        proc.argv,
                        proc.cwd,
                        proc.script_path,
                        digests[0],
                        jax,
                    ),
                ).lastrowid
                if session_pk is None:  # an INSERT always sets it; a None here would attach runs to no session
                    raise StoreError(f"the store {store.root} gave no key for the new session {session_id}")
                insert_objects(conn, [e.object for _, e in config if e.object is not None])
                conn.executemany(_UPSERT_CONFIG, [(session_pk, n, e.kind, e.value) for n, e in config])
        except BaseException:
            lock.release()
            store.close()
            raise
        finally:
            guard.release()
        writer = RunWriter(
            store.conn,
            experiment_pk,
            session_pk,
            interval=self.flush_interval,
            purge_duplicate_comments=self.purge_duplicate_comments,
            on_commit=lock.touch,
            journal=Journal(lock.path.parent, session_id) if self.flush_interval > 0 else None,
        )
        self._store, self._writer, self._lock, self._session_pk = store, writer, lock, session_pk
        self.id, self.env_sha, self.git = session_id, env_sha, git_state
        self._config = {n: (e.kind, e.value) for n, e in config}
        self._pending_config = {}
        self._finalizer = weakref.finalize(self, _finish, store, lock, writer, session_pk, None, os.getpid())
        self._catch_sigterm()
        return self

    def _catch_sigterm(self) -> None:
        """Turn SIGTERM into an exception while the session is open, so it ends cleanly.

        Only from the main thread, and only when nobody else handles SIGTERM.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            self._previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)

    def _release_sigterm(self) -> None:
        if self._previous_sigterm is not None and threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGTERM) is _on_sigterm:
                signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    @staticmethod
    def _default_repo_start() -> Path:
        """The main script's folder, unless the script is an installed tool (pytest, ipython)."""
        script = provenance.main_script()
        prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix)}
        if script is not None and not any(script.is_relative_to(p) for p in prefixes):
            return script.parent
        return Path.cwd()

    def _experiment_pk(self, conn: Any, time_created: str) -> int:
        return catalog.experiment_pk(conn, self.experiment, time_created)

    def close(self, status: str = "done") -> None:
        """Commit what is left and end the session with ``status`` and its finish time. Idempotent."""
        if self._finalizer is None or not self._finalizer.detach():
            return
        self._release_sigterm()
        assert self._store is not None and self._writer is not None
        assert self._lock is not None
        _finish(self._store, self._lock, self._writer, self._session_pk, status, os.getpid())

    # -- config -------------------------------------------------------------

    def config(self, **values: Any) -> None:
        """Record constant settings of this session (not explored, same for every run).

        A name may be set again with a different value only before the first run.

        :raises NameRefused: for a reserved name, or a change after runs were recorded.
        :raises ValueRefused: for a value recorder cannot store.
        """
        if self._store is None:
            self._pending_config.update(values)
            return
        writer = self.writing().writer
        rows = []
        for name, value in values.items():
            check_name("config", name)
            encoded = encode(name, value, self._store.objects, inline_limit=self.inline_limit, what="config value")
            cell = (encoded.kind, encoded.value)
            previous = self._config.get(name)
            if previous is not None and previous != cell and self.runs_recorded:
                raise NameRefused(
                    f"config {name!r} was already {previous[1]!r} for the runs recorded in this "
                    "session; start a new Recorder session to change it"
                )
            rows.append((name, encoded))
        session_pk = self._session_pk

        def write(conn: Any) -> None:
            insert_objects(conn, [e.object for _, e in rows if e.object is not None])
            conn.executemany(_UPSERT_CONFIG, [(session_pk, n, e.kind, e.value) for n, e in rows])

        writer.run(write)
        self._config.update((n, (e.kind, e.value)) for n, e in rows)

    # -- runs ---------------------------------------------------------------

    def run(self, pset: Mapping[str, Any] | None = None, /, **params: Any) -> Run:
        """Return a :class:`Run` for one parameter set; use it as ``with r.run(...) as run:``.

        :param pset: the parameters as a dict; keyword arguments are added to it.
        :raises NameRefused: when a name is reserved or given twice.
        :raises ValueRefused: when a parameter is not a scalar.
        """
        if pset is not None:
            if not isinstance(pset, Mapping):
                raise RecorderError(f"run() takes a dict of parameters, not {type(pset).__name__}")
            if params:
                both = params.keys() & pset.keys()
                if both:
                    raise NameRefused(f"parameter {sorted(both)[0]!r} is given both in the dict and as a keyword")
                given: Mapping[str, Any] = {**pset, **params}
            else:
                given = pset
        else:
            given = params
        clean, canonical = canonical_pset(given)
        # In the order given (canonical_pset's is by name): the experiment's columns take it.
        return Run(self, {name: clean[name] for name in given}, canonical)

    def writing(self) -> Writing:
        """Open the session if it is not yet, and return its store, writer and row key.

        The interface the sweep machinery and :class:`Run` record through
        (:class:`recorder.sweep.session.Session`).

        :raises RecorderError: when the session was closed.
        """
        if self._store is None:
            self.open()
        elif self._finalizer is None or not self._finalizer.alive:
            raise RecorderError(f"the session {self.id} of {self.experiment!r} is closed; start a new Recorder")
        assert self._store is not None and self._writer is not None
        return Writing(self._store, self._writer, self._session_pk)

    def sweep(
        self,
        func: Callable[..., Any],
        params: Iterable[Mapping[str, Any]],
        *,
        workers: int = 1,
        executor: Executor | None = None,
        skip: str | None = "done",
        simulate: bool = False,
        on_error: str = "record",
        progress: bool | None = None,
        capture: bool = False,
        return_df: bool = True,
        workdir: str | os.PathLike[str] | None = None,
        keep_files: str | None = None,
        max_file_bytes: int | None = None,
        fixed: Mapping[str, Any] | None = None,
        batch_size: int | str = "auto",
    ) -> pd.DataFrame | None:
        """Run ``func(**pset)`` for every pset and record one run each; return one row per pset.

        :param func: the experiment function; it returns a dict of results or None.
        :param params: psets (dicts), e.g. from :func:`recorder.grid`; streamed, not held.
        :param workers: processes to run in (a process pool when more than 1).
        :param executor: any :class:`concurrent.futures.Executor` instead (a Dask
            client's ``get_executor()``, loky, mpi4py.futures, …).
        :param skip: ``"done"`` skips psets that already have a done run in this
            experiment, ``"done+failed"`` also failed ones, ``None`` reruns all.
        :param simulate: dry run: report what would run and what is skipped;
            call nothing, write nothing.
        :param on_error: ``"record"`` records a failure and goes on; ``"raise"``
            records it and stops the sweep.
        :param progress: a progress line on stderr; default only on a terminal.
        :param capture: store each run's stdout and stderr (bounded).
        :param return_df: build and return the DataFrame; false returns None
            and keeps memory flat for huge sweeps.
        :param workdir: the folder of the runs' work folders (default: the Recorder's ``workdir``).
        :param keep_files: what becomes of the files a run leaves in its folder (default: the Recorder's).
        :param max_file_bytes: a larger file fails its run (default: the Recorder's).
        :param fixed: constant inputs passed to every call as keyword arguments: not parameters,
            sent once per worker, their digests in the session's config (see :mod:`recorder.sweep.fixed`).
            A ``functools.partial``'s arguments are taken as fixed inputs too.
        :param batch_size: with ``workers`` or ``executor``, runs sent to a worker at a time: ``"auto"``
            (about 0.2 s of work per batch, from the run times measured so far) or a number.
        :returns: a DataFrame: params, scalar results and ``_run_id``,
            ``_pset_hash``, ``_status``, ``_time_start``, ``_duration_s``, ``_session``,
            one row per pset in the order given (a repeated pset runs once).

        The function gets its run's seed from :func:`recorder.current_seed`.
        """

        binder = Binder(func)
        if simulate:
            if self._writer is not None and self._finalizer is not None and self._finalizer.alive:
                self._writer.flush()  # runs of this session count, as they would for a real sweep
            return dry_run(self.experiment, binder, params, store=self._store_arg, seed=self.seed, skip=skip)
        return sweep_psets(
            self,
            func,
            params,
            binder=binder,
            workers=workers,
            executor=executor,
            skip=skip,
            on_error=on_error,
            progress=progress,
            capture=capture,
            return_df=return_df,
            workdir=workdir if workdir is not None else self.workdir,
            keep_files=keep_files,
            max_file_bytes=max_file_bytes,
            fixed=fixed,
            batch_size=batch_size,
        )

    def vsweep(
        self,
        func: Callable[..., Any],
        params: Iterable[Mapping[str, Any]],
        *,
        chunk_size: int | str = "auto",
        static: str | Iterable[str] = (),
        skip: str | None = "done",
        on_error: str = "record",
        progress: bool | None = None,
        compile_cache: bool = False,
        memory_budget: int | None = None,
        return_df: bool = True,
    ) -> pd.DataFrame | None:
        """Run a pure JAX function on every pset in vectorised chunks, one recorded run per pset.

        The options are those of :meth:`recorder.Experiment.vsweep`. Import jax
        before the session starts, so that the session describes it.
        """
        from ..sweep import vectorised

        return vectorised.vsweep(
            self,
            func,
            params,
            chunk_size=chunk_size,
            static=static,
            skip=skip,
            on_error=on_error,
            progress=progress,
            return_df=return_df,
            compile_cache=compile_cache,
            memory_budget=memory_budget,
        )

    def flush(self) -> None:
        """Commit every finished run now (runs are otherwise committed in batches, see ``flush_interval``)."""
        if self._writer is not None:
            self._writer.flush()

    def __repr__(self) -> str:
        state = f"session {self.id}" if self.id else "not started"
        return f"Recorder({self.experiment!r}, {state})"

    def _repr_html_(self) -> str:
        """A notebook's view: the session (state, store, code, runs recorded), then the experiment in the store.

        Every name and value is HTML-escaped. The experiment's runs by status
        and its parameters and results with their ranges are read from the
        store (committed runs; :meth:`flush` commits the others).
        """
        import html

        from ..read.database import Database
        from ..read.summary import experiment_html, experiment_summary, html_table

        if self.id is None:
            state = "not started"
        elif self._finalizer is not None and self._finalizer.alive:
            state = "recording"
        else:
            state = "ended"
        rows: list[list[Any]] = [["session", self.id or ""], ["state", state], ["store", self.store or ""]]
        if self.git is not None and self.git.commit:
            rows.append(["code", self.git.commit + (" (dirty)" if self.git.dirty else "")])
        if self.message:
            rows.append(["message", self.message])
        rows.append(["runs recorded", self.runs_recorded])
        out = f"<div><strong>Recorder</strong> <code>{html.escape(self.experiment)}</code>{html_table(['', ''], rows)}"
        if self.store is not None:
            try:
                with Database(self.store) as db:
                    out += experiment_html(experiment_summary(db, self.experiment))
            except RecorderError:  # nothing committed yet, or the store is gone: the session alone
                pass
        return out + "</div>"
