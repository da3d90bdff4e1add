"""A run on its way to the database: what the writer, the journal and recovery hand each other."""

from __future__ import annotations

import os

from ..codec.values import Encoded

__all__ = ["PendingRun"]

# This process's id, given to every run made here (a run handed to a worker gets the worker's instead);
# kept current in a forked child, so that no run pays a system call for it.
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


class PendingRun:
    """A run on its way to the database."""

    __slots__ = (
        "canonical",
        "comment",
        "duration",
        "error",
        "function",
        "host",
        "id",
        "names",
        "output",
        "pid",
        "pk",
        "pset_hash",
        "pset_seq",
        "rerun_of",
        "result_comments",
        "results",
        "scalar_names",
        "scalars",
        "seed",
        "status",
        "t0",
    )

    def __init__(
        self,
        id: str,
        pset_hash: str,
        canonical: str,
        seed: int,
        t0: float,
        names: tuple[str, ...] | None = None,
        function: int | None = None,
        pset_seq: int | None = None,
    ) -> None:
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
        #: The parameter names (read from ``canonical`` when not given).
        self.names = names
        #: Results that are all plain numbers, as their ``runs.scalars`` JSON, made by a serial
        #: sweep instead of ``results`` (which then stays empty); ``scalar_names`` are their names.
        self.scalars: str | None = None
        self.scalar_names: tuple[str, ...] | None = None
        #: Key of the run's experiment function (``functions.pk``), when a sweep or the decorator ran it.
        self.function = function
        #: The id of the run this one repeats (24 hex digits), for a rerun (see :mod:`recorder.record.rerun`).
        self.rerun_of: str | None = None
        #: The pset's position in its sweep's list of psets (0-based); None for a run not in a sweep.
        self.pset_seq = pset_seq
        #: The id of the process that ran the run's function (None: unknown, a run of an old journal line).
        self.pid: int | None = _pid
        #: The host that ran it when not the session's (a worker on another machine); None: the session's.
        self.host: str | None = None
