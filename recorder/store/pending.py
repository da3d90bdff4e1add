"""A run on its way to the database: what the writer, the journal and recovery hand each other."""

from __future__ import annotations

from ..codec.values import Encoded

__all__ = ["PendingRun"]


class PendingRun:
    """A run on its way to the database."""

    __slots__ = (
        "canonical",
        "comment",
        "duration",
        "error",
        "function",
        "id",
        "names",
        "output",
        "pk",
        "pset_hash",
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
