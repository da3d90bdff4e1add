"""Read a psweep study (its database: a pickled pandas DataFrame) as a :class:`SourceStudy`.

psweep (0.16) keeps one row per pset run in ``calc/database.pk``, a pickled
pandas DataFrame, and each pset's files in ``calc/<_pset_id>/``. psweep
itself is not needed to read it; pandas is.

.. warning::

   Unpickling runs code the file names: a crafted ``database.pk`` can run any
   program as you. Import only databases you (or someone you trust) made.
   The file must unpickle to a DataFrame with psweep's ``_pset_id`` column,
   or it is refused (:class:`~recorder.errors.ImportSourceError`) -- but by
   then it has been unpickled.

How the columns map:

==================  ================================================================
psweep column       recorder
==================  ================================================================
user columns        parameters: the columns psweep hashed into ``_pset_hash`` (checked
                    with joblib, which psweep hashes with, when it is installed); the
                    other user columns (psweep's results, by convention ending in
                    ``_``) are results
``_pset_id``        the run's source id (``runs.origin = "psweep:<_pset_id>"``)
``_run_id``         the session: one per psweep run (``_run_seq`` is their order)
``_pset_seq``       the pset's position (``runs.pset_seq``)
``_time_utc``       the run's start time
``_pset_runtime``   its duration
``_exec_host``      its host
``_failed``,        status ``failed`` and its error (psweep's recommended way to record a
``_exc_txt``        failing pset, ``examples/repeat_failed.py``)
``_logs``           the run's captured output (``capture_logs="db"``)
``_calc_dir``       where the pset's folder ``<_calc_dir>/<_pset_id>/`` is; its files become
                    file results of the run
``_pset_hash``      used to tell parameters from results
other ``_x``        results named ``psweep_x`` (recorder reserves a leading ``_``), reported
==================  ================================================================

With ``git=True`` psweep commits each run's results as ``psweep: <dir>:
run_id=<_run_id>`` after checking that the work tree was clean before; the
commit the runs ran is that commit's parent, recorded as the session's git
commit when the database is inside that repository.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import GitError, ImportSourceError
from ..provenance.gitinfo import commits_mentioning
from .source import SourceRun, SourceStudy
from .write import no_gc

__all__ = ["read_psweep", "DATABASE_NAME", "PSWEEP_COLUMNS"]

#: psweep's default database file name, in its calc dir.
DATABASE_NAME = "database.pk"
#: psweep's bookkeeping columns this reader maps (any other ``_`` column becomes a renamed result).
PSWEEP_COLUMNS = (
    "_pset_id",
    "_pset_hash",
    "_run_id",
    "_run_seq",
    "_pset_seq",
    "_time_utc",
    "_pset_runtime",
    "_exec_host",
    "_calc_dir",
    "_failed",
    "_exc_txt",
    "_logs",
)
# Subsets of the user columns tried when telling parameters from results by psweep's hash.
_MAX_HASH_TRIES = 4096


def _database(source: Path) -> Path:
    """The database file a source names: the file itself, a calc dir holding it, or a folder holding ``calc/``."""
    if source.is_file():
        return source
    for candidate in (source / DATABASE_NAME, source / "calc" / DATABASE_NAME):
        if candidate.is_file():
            return candidate
    if not source.exists():
        raise ImportSourceError(f"{source} does not exist; name psweep's database file (calc/{DATABASE_NAME})")
    raise ImportSourceError(
        f"{source} is not a psweep database: it is a folder without {DATABASE_NAME} or calc/{DATABASE_NAME}; "
        "name psweep's database file"
    )


def _load(path: Path) -> Any:
    import pickle

    import pandas as pd

    try:
        frame = pd.read_pickle(path)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError) as e:
        raise ImportSourceError(
            f"{path} is not a psweep database: it does not unpickle ({type(e).__name__}: {e}); "
            "psweep's database is a pickled pandas DataFrame (calc/database.pk)"
        ) from e
    except OSError as e:
        raise ImportSourceError(f"cannot read {path}: {e}") from e
    if not isinstance(frame, pd.DataFrame):
        raise ImportSourceError(
            f"{path} is not a psweep database: it unpickles to a {type(frame).__module__}.{type(frame).__name__}, "
            "not a pandas DataFrame"
        )
    if "_pset_id" not in frame.columns:
        raise ImportSourceError(
            f"{path} is a pandas DataFrame but not a psweep database: it has no _pset_id column "
            f"(its columns: {', '.join(map(str, list(frame.columns)[:8]))})"
        )
    return frame


def _missing(value: Any) -> bool:
    """Whether a cell is psweep's fill value (pd.NA, NaN, NaT, None): the row has no such value."""
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    kind = type(value).__name__
    return kind in ("NAType", "NaTType")


def _plain(value: Any) -> Any:
    """A cell as a plain value: numpy scalars as Python numbers (arrays and others as they are)."""
    kind = type(value)
    if kind is int or kind is float or kind is str or kind is bool:
        return value
    if kind.__module__ == "numpy" and getattr(value, "shape", None) == ():
        return value.item()
    return value


def _seconds(value: Any) -> float | None:
    """A ``_time_utc`` cell (a pandas Timestamp, naive UTC) as Unix seconds."""
    if _missing(value):
        return None
    nanos = getattr(value, "value", None)
    if isinstance(nanos, int):  # a Timestamp's value is nanoseconds since the epoch, UTC (naive ones are UTC)
        return nanos / 1e9
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _param_columns(frame: Any, users: list[str], unmapped: list[str]) -> list[str]:
    """The parameter columns: the user columns psweep hashed into ``_pset_hash``.

    psweep hashes a pset before its function runs, so the latest psweep run
    (``_run_id``) of each row says which of its columns were parameters; a
    later run rehashes older rows with every user column, results included,
    so a column any run's hash leaves out is a result. Without joblib (what
    psweep hashes with), or when no subset of the columns has the recorded
    hash, psweep's own convention decides: user columns not ending with
    ``_`` are parameters.
    """
    conventional = [c for c in users if not c.endswith("_")]
    if "_pset_hash" not in frame.columns or "_run_id" not in frame.columns or not conventional:
        if conventional:
            unmapped.append("no _pset_hash column: parameters are the user columns not ending with '_' (psweep's rule)")
        return conventional
    try:
        import joblib  # type: ignore[import-untyped]
    except ImportError:
        unmapped.append(
            "joblib (psweep's hash) is not installed: parameters are the user columns not ending with '_' "
            "(psweep's rule), not checked against _pset_hash"
        )
        return conventional
    from itertools import combinations

    not_hashed: set[str] = set()
    for _, row in frame.drop_duplicates("_run_id").iterrows():
        recorded = row["_pset_hash"]
        found: tuple[str, ...] | None = None
        tries = 0
        for size in range(len(conventional), -1, -1):
            for subset in combinations(conventional, size):
                tries += 1
                if joblib.hash({c: row[c] for c in subset}, hash_name="sha1") == recorded:
                    found = subset
                    break
                if tries >= _MAX_HASH_TRIES:
                    break
            if found is not None or tries >= _MAX_HASH_TRIES:
                break
        if found is None:
            unmapped.append(
                f"psweep run {row['_run_id']}: no set of its columns has its _pset_hash; its parameters are taken "
                "to be the user columns not ending with '_' (psweep's rule)"
            )
        else:
            not_hashed.update(c for c in conventional if c not in found)
    return [c for c in conventional if c not in not_hashed]


def _git_commits(folder: Path, mapped: list[str], unmapped: list[str]) -> dict[str, str]:
    """``_run_id`` → the commit psweep's runs ran (the parent of psweep's ``run_id=`` commit), if git has them."""
    try:
        commits = commits_mentioning(folder, "run_id=")
    except GitError:
        return {}
    found: dict[str, str] = {}
    for _sha, parents, subject in commits:
        if not subject.startswith("psweep: ") or "run_id=" not in subject or not parents:
            continue
        run_id = subject.rsplit("run_id=", 1)[1].strip()
        found.setdefault(run_id, parents[0])
    if found:
        mapped.append(
            "git: the parent of psweep's commit 'psweep: <dir>: run_id=<_run_id>' (git=True) -> the session's "
            "git commit (the code its runs ran)"
        )
    return found


def _files(folder: Path, unmapped: list[str]) -> dict[str, Path]:
    """The regular files under a pset's folder by relative path; links are not followed (reported)."""
    files: dict[str, Path] = {}
    if not folder.is_dir() or folder.is_symlink():
        return files
    for here, dirs, names in os.walk(folder):
        base = Path(here)
        for name in list(dirs):
            if (base / name).is_symlink():
                dirs.remove(name)
                unmapped.append(f"{base / name}: a link, not followed")
        for name in sorted(names):
            path = base / name
            if path.is_symlink() or not path.is_file():
                unmapped.append(f"{path}: not a regular file, left out")
                continue
            files[path.relative_to(folder).as_posix()] = path
    return files


def read_psweep(source: str | os.PathLike[str]) -> SourceStudy:
    """Read psweep's database (``calc/database.pk``, its calc dir, or the folder holding ``calc/``).

    Unpickling runs code from the file: read only your own files.

    :raises ImportSourceError: when the path is not a psweep database (missing, not a pickle, not a
        DataFrame, no ``_pset_id`` column).
    """
    path = _database(Path(source).expanduser().absolute())
    with no_gc():
        return _read(path)


def _read(path: Path) -> SourceStudy:
    frame = _load(path)
    calc = path.parent
    mapped: list[str] = []
    unmapped: list[str] = []
    columns = [str(c) for c in frame.columns]
    if len(set(columns)) != len(columns) or not all(isinstance(c, str) for c in frame.columns):
        raise ImportSourceError(f"{path}: its columns are not distinct names: {columns[:8]}")
    users = [c for c in columns if not c.startswith("_")]
    extra = [c for c in columns if c.startswith("_") and c not in PSWEEP_COLUMNS]
    param_columns = _param_columns(frame, users, unmapped)
    params_of = set(param_columns)
    results = [c for c in users if c not in params_of] + extra
    mapped.append(f"psweep columns {', '.join(param_columns) or '(none)'} -> parameters (psets)")
    if results:
        mapped.append(f"psweep columns {', '.join(results)} -> results")
    for column in extra:
        unmapped.append(f"psweep column {column} is not one psweep writes: imported as result 'psweep{column}'")
    for column, where in (
        ("_pset_id", "the run's source id (runs.origin psweep:<_pset_id>)"),
        ("_run_id", "the session (one per psweep run)"),
        ("_run_seq", "the order of the sessions (one per _run_id)"),
        ("_pset_seq", "runs.pset_seq"),
        ("_time_utc", "the run's start time"),
        ("_pset_runtime", "the run's duration"),
        ("_exec_host", "the run's host"),
        ("_failed", "the run's status (failed)"),
        ("_exc_txt", "the failed run's error"),
        ("_logs", "the run's captured output"),
        ("_calc_dir", "where the run's files are (<_calc_dir>/<_pset_id>/ -> file results)"),
        ("_pset_hash", "telling parameters from results"),
    ):
        if column in columns:
            mapped.append(f"psweep column {column} -> {where}")
    commits = _git_commits(calc, mapped, unmapped)
    data = {c: frame[c].tolist() for c in columns}
    # pandas finds the missing cells of a column at once (pd.NA, NaN, None, NaT: psweep's fill values).
    present = {c: (~frame[c].isna()).tolist() for c in columns}
    n = len(frame)
    nothing: list[Any] = [None] * n

    def cells(name: str) -> list[Any]:
        """A bookkeeping column's cells, None where missing."""
        if name not in data:
            return nothing
        return [v if here else None for v, here in zip(data[name], present[name])]

    pset_ids, run_ids = cells("_pset_id"), cells("_run_id")
    starts, runtimes, hosts, seqs = cells("_time_utc"), cells("_pset_runtime"), cells("_exec_host"), cells("_pset_seq")
    failed, errors, logs = cells("_failed"), cells("_exc_txt"), cells("_logs")
    if None in pset_ids:
        raise ImportSourceError(f"{path}: row {pset_ids.index(None)} has no _pset_id")
    param_values = [(c, data[c], present[c]) for c in param_columns]
    result_columns = [(c, data[c], present[c]) for c in results]
    try:  # one listing, not a look per row: most psets of a big study have no folder
        folders = {name for name in os.listdir(calc) if (calc / name).is_dir()}
    except OSError:
        folders = set()
    runs: list[SourceRun] = []
    for i in range(n):
        pset_id = str(pset_ids[i])
        run_id = run_ids[i]
        is_failed = bool(failed[i])
        error, output, seq, runtime, host = errors[i], logs[i], seqs[i], runtimes[i], hosts[i]
        session = None if run_id is None else str(run_id)
        start = starts[i]
        runs.append(
            SourceRun(
                source_id=pset_id,
                params={name: _plain(values[i]) for name, values, here in param_values if here[i]},
                results={name: _plain(values[i]) for name, values, here in result_columns if here[i]},
                files=_files(calc / pset_id, unmapped) if pset_id in folders else {},
                status="failed" if is_failed else "done",
                start=None if start is None else _seconds(start),
                duration=None if runtime is None else float(runtime),
                host=None if host is None else str(host),
                pset_seq=None if seq is None else int(seq),
                git_commit=commits.get(session) if session is not None else None,
                error=(str(error) if error is not None else "failed") if is_failed else None,
                output=output if isinstance(output, str) and output else None,
                session_key=session,
            )
        )
    if any(r.files for r in runs):
        mapped.append("files in <calc dir>/<_pset_id>/ -> file results of the run")
    return SourceStudy(tool="psweep", location=path, experiment=calc.name, runs=runs, mapped=mapped, unmapped=unmapped)
