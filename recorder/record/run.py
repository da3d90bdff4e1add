"""A run: one parameter set going through the experiment, inside a Recorder session."""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..codec.hashing import claim_names, is_utf8, pset_hash, run_seed
from ..codec.values import Encoded, encode
from ..errors import RecorderError
from ..store.ids import new_id
from ..store.pending import PendingRun
from ..sweep.execute import Where, context_of, enter_run, leave_run

if TYPE_CHECKING:
    from ..sweep.session import Writing
    from .recorder import Recorder

__all__ = ["Run"]

_new_where = tuple.__new__


class Run:
    """One run: a parameter set going through the experiment.

    Created by :meth:`Recorder.run`; use as a context manager. On a normal
    exit the run is ``done``; on an exception it is ``failed`` with the
    traceback stored and the exception re-raised; on Ctrl-C or SIGTERM it is
    ``interrupted``.
    """

    __slots__ = (
        "_canonical",
        "_function",
        "_perf0",
        "_recorder",
        "_row",
        "_slot",
        "_taken",
        "_token",
        "_writing",
        "params",
        "pset_hash",
        "seed",
        "status",
    )

    def __init__(self, recorder: Recorder, params: dict[str, Any], canonical: str) -> None:
        self._recorder = recorder
        #: The parameters, as plain Python values.
        self.params = params
        self._canonical = canonical
        #: Hash of the pset's canonical JSON.
        self.pset_hash = pset_hash(canonical)
        #: Deterministic seed from the pset hash and the experiment seed.
        self.seed = run_seed(self.pset_hash, recorder.seed)
        self._row: PendingRun | None = None
        self._perf0 = 0.0
        #: ``None`` until the run ends, then its final status.
        self.status: str | None = None
        self._taken: dict[str, str] | None = None  # lower-cased names of params and results
        self._writing: Writing | None = None  # the session's store and writer, once the run started
        self._function: int | None = None  # key of the experiment function it calls (the decorator sets it)
        self._slot: list[Any] | None = None  # the run as recorder.current_run() knows it, once started

    @property
    def id(self) -> str | None:
        """The run's id, once it started."""
        return self._row.id if self._row is not None else None

    def __enter__(self) -> Run:
        recorder = self._recorder
        if self._row is not None:
            raise RecorderError(f"run {self.id} was already started; call r.run(...) again for a new run")
        writing = recorder.writing()
        writer = writing.writer
        if recorder._active is not None:
            raise RecorderError(
                f"run {recorder._active.id} is still open in this session; finish it before starting "
                "another (or use a second Recorder)"
            )
        writer.fields.claim("param", self.params)
        self._row = PendingRun(
            new_id(), self.pset_hash, self._canonical, self.seed, time.time(), tuple(self.params), self._function
        )
        self._perf0 = time.perf_counter()
        recorder._active = self
        self._writing = writing
        try:
            writer.started(self._row)
        except BaseException:
            recorder._active = None
            raise
        workdir = recorder.workdir
        # A plain tuple's constructor: a NamedTuple's is a Python call, and a Run is on the hot path.
        where = _new_where(
            Where,
            (
                recorder.experiment,
                writing.store.root,
                None if workdir is None else str(workdir),
                recorder.keep_files,
                recorder.max_file_bytes,
                recorder.id,  # a series is spilled to the session's folder (recorder.store.spill)
                writer.interval,
                self._function,
                self._row.rerun_of,
            ),
        )
        # recorder.current_seed() and recorder.current_run() inside the run
        self._slot, self._token = enter_run(self.seed, self._row.id, self.pset_hash, self.params, where)
        return self

    @property
    def dir(self) -> Path:
        """The run's work folder (as ``recorder.current_run().dir``), made on first use.

        :raises RecorderError: before the run started.
        """
        if self._slot is None:
            raise RecorderError("dir is known once the run started: `with r.run(...) as run: run.dir`")
        return context_of(self._slot).dir

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        duration = time.perf_counter() - self._perf0
        if exc_type is None:
            status, error = "done", None
        elif issubclass(exc_type, (KeyboardInterrupt, SystemExit)):
            status, error = "interrupted", None
        else:
            status = "failed"
            error = "".join(traceback.format_exception(exc_type, exc, tb))
        context = self._slot[5] if self._slot is not None else None
        if context is not None:  # its files and series, stored whatever the status (a failed run's too)
            try:
                assert self._writing is not None
                self._add(context.files(str(self._writing.store.objects.root)))
                self.log(**context.results())
            except Exception as e:
                if status == "done":
                    status, error = "failed", "".join(traceback.format_exception(type(e), e, e.__traceback__))
                else:
                    error = f"{error or ''}\n(its files or series could not all be stored: {type(e).__name__}: {e})"
        leave_run(self._token)
        recorder = self._recorder
        recorder._active = None
        self.status = status
        recorder.runs_recorded += 1
        assert self._writing is not None and self._row is not None
        try:
            self._writing.writer.finished(self._row, status, duration, error)
        finally:
            if context is not None:  # the run is journaled now (or refused): its spill file is not needed
                context.end_series()

    def _add(self, encoded: dict[str, Encoded]) -> None:
        """Add results encoded already (a run's files), their names checked as :meth:`log` checks them."""
        if not encoded:
            return
        assert self._row is not None and self._writing is not None
        taken = self._taken
        if taken is None:
            taken = self._taken = {n.lower(): n for n in self.params}
        claim_names("result", encoded, taken)
        self._writing.writer.fields.claim("result", encoded)
        self._row.results.update(encoded)

    def append(self, **values: Any) -> None:
        """Add one value to each named series of this run (one call per step); see :meth:`recorder.RunContext.append`.

        :raises RecorderError: outside the ``with`` block of the run.
        """
        if self._slot is None or self.status is not None:
            raise RecorderError("append() is for an open run: use `with r.run(...) as run: run.append(loss=x)`")
        context_of(self._slot).append(**values)

    def log(self, comment: str | None = None, **results: Any) -> None:
        """Record results of this run; arrays above the inline limit go to the object store now.

        :param comment: a comment on these results (or on the run, when no
            results are given). Each distinct text is stored once.
        :raises NameRefused: for a reserved name, a parameter's name (of this
            run, or of another run of the experiment), or a result logged twice.
        :raises ValueRefused: for a value recorder cannot store.
        """
        row, writing = self._row, self._writing
        if row is None or writing is None or self.status is not None:
            raise RecorderError("log() is for an open run: use `with r.run(...) as run: run.log(...)`")
        if comment is not None and (not isinstance(comment, str) or not is_utf8(comment)):
            raise RecorderError(f"comment={comment!r} is not text (a str without lone surrogates)")
        objects = writing.store.objects
        taken = self._taken
        if taken is None:
            taken = self._taken = {n.lower(): n for n in self.params}
        trial = dict(taken)
        claim_names("result", results, trial)
        writing.writer.fields.claim("result", results)
        inline_limit = self._recorder.inline_limit
        encoded = {n: encode(n, v, objects, inline_limit=inline_limit) for n, v in results.items()}
        row.results.update(encoded)
        self._taken = trial
        if comment is not None:
            if results:
                if row.result_comments is None:
                    row.result_comments = {}
                row.result_comments.update(dict.fromkeys(results, comment))
            else:
                row.comment = comment

    def __repr__(self) -> str:
        return f"Run({self.id or 'not started'}, {self.params!r}, status={self.status})"
