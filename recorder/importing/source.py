"""What a reader makes of another tool's study: neutral records the one writer understands.

A reader maps what it can to the fields below and says, in
:attr:`SourceStudy.mapped` and :attr:`SourceStudy.unmapped`, what went where and
what it could not map, so that nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["SourceRun", "SourceStudy", "Tool"]

#: The tools a study can come from.
Tool = Literal["psweep", "mlflow", "pypet"]


@dataclass
class SourceRun:
    """One run of the source tool, as recorder will keep it."""

    #: The source's own id of the run (psweep ``_run_id``, MLflow ``run_uuid``, pypet's
    #: trajectory name and run name): kept as ``runs.origin = "<tool>:<source_id>"``, and
    #: what makes importing twice add nothing.
    source_id: str
    #: The parameters: plain JSON values (int, float, str, bool, None, lists and dicts of them).
    params: dict[str, Any]
    #: Results by name: numbers, strings, bools, None, or numpy arrays (stored as objects).
    results: dict[str, Any] = field(default_factory=dict)
    #: Per-step values by name (MLflow's metric history), stored like ``run.append`` series.
    series: dict[str, list[float] | list[int]] = field(default_factory=dict)
    #: Files of the run by relative path (psweep's calc dir, MLflow artifacts): stored as
    #: results of kind "file" like files left in a run's folder.
    files: dict[str, Path] = field(default_factory=dict)
    #: done, failed or interrupted.
    status: str = "done"
    #: Start time, Unix seconds (UTC); None when the source has none.
    start: float | None = None
    #: Seconds the run took; None when unknown.
    duration: float | None = None
    #: The host the run ran on, and the process id, when the source has them.
    host: str | None = None
    pid: int | None = None
    #: The pset's position in its study, when the source has one (psweep ``_pset_seq``).
    pset_seq: int | None = None
    #: The git commit the source recorded for the run, if any.
    git_commit: str | None = None
    #: The error (a traceback or message) of a failed run.
    error: str | None = None
    #: The seed, when the source recorded one.
    seed: int | None = None
    #: What the run printed, when the source captured it (psweep ``_logs``): the run's captured output.
    output: str | None = None
    #: Short names for ``recorder tag`` (MLflow tags that are plain names, pypet run markers).
    tags: list[str] = field(default_factory=list)
    #: Notes of the run (MLflow tags with values, pypet comments, unmapped source columns).
    notes: list[str] = field(default_factory=list)
    #: Runs with the same key go into one session (psweep: one per ``_calc_dir`` and git
    #: commit; MLflow: per experiment; pypet: per trajectory); None: the study's one session.
    session_key: str | None = None


@dataclass
class SourceStudy:
    """A whole source, read: its runs (in the source's order) and what was mapped where."""

    tool: Tool
    #: The file or folder read.
    location: Path
    #: The experiment name the source suggests (MLflow experiment, pypet trajectory, psweep
    #: calc dir's name); ``--experiment`` overrides it.
    experiment: str
    runs: list[SourceRun]
    #: Constants of the study (pypet's non-explored parameters, MLflow experiment tags):
    #: the session's config.
    config: dict[str, Any] = field(default_factory=dict)
    #: One line per mapping made ("psweep column _time_utc -> run start time").
    mapped: list[str] = field(default_factory=list)
    #: One line per thing that could not be mapped, and why.
    unmapped: list[str] = field(default_factory=list)
