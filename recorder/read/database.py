"""The read side: experiments as DataFrames, SQL, and arrays, from a read-only connection.

::

    db = rec.open("runs")
    df = db.df("lorenz")                         # one row per done run
    db.sql("SELECT a, b, energy FROM lorenz WHERE b = 8")
    traj = db.array(df._run_id[0], "traj")       # memory-mapped
    for run_id, traj in db.arrays("lorenz", "traj"):
        ...                                      # one array in memory at a time

Runs may be named by their full id, any unique prefix, or their short id
(the shortest unique suffix of 8 digits or more, which ``recorder log`` prints; see
:mod:`recorder.ids`).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..codec.canonical import read_json
from ..codec.values import decode
from ..errors import (
    AmbiguousRunId,
    AmbiguousSessionId,
    ExperimentNotFound,
    NoStoreError,
    ObjectError,
    RecorderError,
    RecorderWarning,
    RecoveryError,
    RunNotFound,
    SessionNotFound,
    StoreError,
)
from ..store import catalog
from ..store.db import SQLITE_AUTH, SQLITE_ERROR, SQLITE_READONLY, connect, damage_hint, sqlite_code
from ..store.folder import Store, locate
from ..store.layout import DB_NAME, OBJECTS
from ..store.objects import ObjectStore
from .frame import STATUSES, frame, selection

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.figure import Figure

    from .report import ReportFile
    from .summary import ExperimentHandle

__all__ = ["Database", "open", "load", "sql"]

_EXPERIMENTS = "SELECT name FROM experiments ORDER BY pk"
_RUN = "SELECT pk FROM runs WHERE id = ?"
_SESSION_PK = "SELECT pk FROM sessions WHERE lower(id) = ?"
_RESULT = "SELECT kind, value FROM results WHERE run = ? AND name = ?"
_RESULT_NAMES = "SELECT name FROM results WHERE run = ?"
_FILES = "SELECT name, value FROM results WHERE run = ? AND kind = 'file' ORDER BY name"
_SCALARS = "SELECT scalars FROM runs WHERE pk = ?"
_ARRAYS = """
SELECT lower(hex(r.id)), x.kind, x.value
FROM runs AS r JOIN results AS x ON x.run = r.pk AND x.name = ?
WHERE {condition}
ORDER BY r.pk
"""
_HEX = re.compile(r"[0-9a-fA-F]{1,24}")
_INT_AND_NONE = {int, type(None)}


class Database:
    """A store opened for reading. Use :func:`open`; close it, or use it in a ``with`` block.

    The connection is read-only: nothing done through it can change the store.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.conn = connect(root / DB_NAME, readonly=True)
        self.conn.execute("PRAGMA query_only = ON")
        self._authorizer = _ReadOnly()
        self.conn.set_authorizer(self._authorizer)
        self.objects = ObjectStore(root / OBJECTS)

    # -- experiments -------------------------------------------------------------

    def experiments(self) -> list[str]:
        """Return the names of the experiments in the store, oldest first."""
        return [name for (name,) in self._read(_EXPERIMENTS)]

    def experiment_key(self, name: str) -> int:
        """Return the key of an experiment; a clear error names the known ones when it is not there."""
        try:
            pk = catalog.find_experiment(self.conn, name)
        except sqlite3.Error as e:
            raise StoreError(f"reading the store {self.root} failed: {e}") from e
        if pk is None:
            known = self.experiments()
            raise ExperimentNotFound(
                f"no experiment {name!r} in the store {self.root}; "
                f"it has {', '.join(map(repr, known)) if known else 'none yet'}"
            )
        return pk

    def experiment(self, name: str) -> ExperimentHandle:
        """Return a handle on one experiment: its :meth:`~ExperimentHandle.df`, runs and summary.

        In a notebook it shows the experiment's runs by status and its
        parameters and results with their ranges.

        :raises ExperimentNotFound: when the experiment is not in the store.
        """
        from .summary import ExperimentHandle

        return ExperimentHandle(self, name)

    def df(
        self,
        experiment: str,
        status: str | Sequence[str] | None = "done",
        columns: Sequence[str] | None = None,
        where: str | None = None,
        tag: str | None = None,
    ) -> pd.DataFrame:
        """Return one row per live run of an experiment, in the order they started.

        Runs deleted by ``recorder rm`` (until restored) are left out.

        Columns: the parameters (in the order they were first recorded), the
        scalar results, then ``_run_id``, ``_pset_hash``, ``_status``,
        ``_time_start`` (UTC), ``_duration_s``, ``_session`` and ``_env_sha``;
        then ``_error`` when ``status`` may include failed runs (None, or a
        list with ``"failed"``): the last line of each failed run's
        traceback, None for the other runs.

        :param status: the status of the runs to include (a str or a list);
            None includes every run.
        :param columns: the parameters and results to include; default all.
        :param where: an SQL condition over the experiment's view, e.g.
            ``"b = 8 AND energy > 1"``.
        :param tag: only the runs with this tag (``recorder tag``).
        """
        experiment_pk = self.experiment_key(experiment)
        statuses = _statuses(status)
        if columns is not None and isinstance(columns, str):
            columns = [columns]
        return frame(self.conn, experiment_pk, self.objects, statuses=statuses, names=columns, where=where, tag=tag)

    def compare(
        self,
        run_ids: str | Sequence[str] | None = None,
        *,
        experiment: str | None = None,
        where: str | None = None,
        status: str | Sequence[str] | None = None,
        limit: int | None = None,
        all_columns: bool = False,
    ) -> pd.DataFrame:
        """Return one row per run with the columns whose values differ between the runs (``recorder compare``).

        The runs are those named in ``run_ids`` (short ids, prefixes or full
        ids, in that order), or those of ``experiment`` that ``where`` and
        ``status`` select (every status by default), in the order they
        started. Runs of different experiments may be compared: their
        columns are the union, and a run without a column has None there
        (NaN in a float column, NA in an integer one, as in :meth:`df`).

        The index is the runs' short ids (named ``run``); then ``_run_id``
        (the full id) and the columns that differ: ``experiment``,
        ``status``, ``error`` (a run's exception, on one line),
        ``param.NAME``, ``config.NAME`` (the config of the run's session),
        ``result.NAME`` (arrays and bytes as ``array <f8 (3,) 3fa2b1c9d0e1``:
        dtype, shape and digest), ``code.commit``, ``code.dirty``,
        ``code.diff`` (the digest of the recorded uncommitted changes),
        ``code.snapshot``, ``code.env_sha``, ``env.python``,
        ``env.platform``, ``env.host``, ``env.recorder`` and
        ``package.NAME`` for each package whose version differs. The
        columns whose value is the same in every run are in
        ``df.attrs["constant"]`` (column → value), and left out of the
        frame unless ``all_columns``; ``df.attrs["same_packages"]`` counts
        the packages of the same version in every run.

        Values are compared exactly: floats bit for bit (``0.1 + 0.2``
        differs from ``0.3``, ``-0.0`` from ``0.0``), NaN equals NaN,
        ``1``, ``1.0`` and ``True`` differ, arrays and bytes by digest.

        :param where: with ``experiment``: an SQL condition over its view, as for :meth:`df`.
        :param limit: with ``experiment``: compare the first ``limit`` runs selected.
            Without it, a selection of more than 10,000 runs is refused.
        :raises RunNotFound: when a run named is not in the store.
        :raises AmbiguousRunId: when a name matches several runs.
        :raises ExperimentNotFound: when the experiment is not in the store.
        """
        from .compare import compare

        table = compare(self, run_ids, experiment=experiment, where=where, status=status, limit=limit)
        return table.frame(all_columns=all_columns)

    def export(
        self, experiment: str, path: str | os.PathLike[str], *, status: str | Sequence[str] | None = "done"
    ) -> int:
        """Write :meth:`df` of an experiment to ``.csv``, ``.jsonl`` or ``.parquet`` (needs pyarrow); return rows.

        The file is written under a temporary name and renamed, so it is whole or absent.
        """
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix not in (".csv", ".jsonl", ".parquet"):
            raise RecorderError(f"cannot export to {target.name!r}: name the file .csv, .jsonl or .parquet")
        if suffix == ".parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError as e:
                raise RecorderError("writing .parquet needs pyarrow: pip install pyarrow (or export .csv)") from e
        df = self.df(experiment, status=status)
        df["_time_start"] = df["_time_start"].map(lambda t: t.isoformat().replace("+00:00", "Z"))
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        try:
            if suffix == ".csv":
                df.to_csv(tmp, index=False)
            elif suffix == ".jsonl":
                _write_jsonl(df, tmp)
            else:
                df.to_parquet(tmp, index=False)
            os.replace(tmp, target)
        except (OSError, ValueError, TypeError) as e:  # ValueError/TypeError: pyarrow refusing a column
            raise RecorderError(f"cannot write {target}: {e}") from e
        finally:
            tmp.unlink(missing_ok=True)
        return len(df)

    def report(
        self,
        experiment: str,
        path: str | os.PathLike[str] = "report.html",
        *,
        color: str | None = None,
        array: str | None = None,
        where: str | None = None,
        array_runs: int = 5,
    ) -> ReportFile:
        """Write an experiment's report, one HTML file that opens offline (``recorder report``); needs plotly.

        The file holds a header (runs by status, sessions with their commits
        and hosts, the time span), an interactive parallel-coordinates plot
        of the explored parameters and scalar results (coloured by
        ``color``, default the first result), each scalar result against
        each explored parameter (a line per value of the other one when two
        were explored, a heat map when both are numbers on a grid), a
        sortable table of the runs and the failures with their errors.
        Big experiments are sampled or binned, and the report says where
        (see :mod:`recorder.read.report`).

        :param array: an array result: the arrays of the first ``array_runs`` done runs are plotted.
        :param where: an SQL condition over the experiment's view: only those runs are reported.
        :returns: the file written, its size, the number of runs and what was summarised.
        :raises ExtraNotInstalled: when plotly is not installed (``pip install 'recorder[report]'``).
        """
        from .report import write_report

        return write_report(self, experiment, path, color=color, array=array, where=where, array_runs=array_runs)

    def plot(
        self,
        experiment: str,
        x: str,
        y: str,
        hue: str | None = None,
        *,
        where: str | None = None,
        status: str | None = "done",
    ) -> Figure:
        """Return a matplotlib figure of the result ``y`` against the parameter ``x``, a line per value of ``hue``.

        Each line goes through the mean of ``y`` at each value of ``x``. The
        figure is made without pyplot (no window; ``fig.savefig`` draws it
        with Agg); a notebook shows it.

        :param where: an SQL condition over the experiment's view, as for :meth:`df`.
        :raises ExtraNotInstalled: when matplotlib is not installed (``pip install 'recorder[report]'``).
        """
        from .plot import plot

        return plot(self, experiment, x, y, hue, where=where, status=status)

    # -- SQL -----------------------------------------------------------------------

    def rows(self, query: str, params: Sequence[Any] | dict[str, Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one read-only SQL statement; return its column names and rows (no pandas needed).

        Values go in ``params`` (``?`` or ``:name`` placeholders), never into
        the text. A statement that would write, attach a file or vacuum is refused.
        """
        self._authorizer.refused_function = None
        try:
            cursor = self.conn.execute(query, params)
            rows = cursor.fetchall()
        except sqlite3.Error as e:
            code = sqlite_code(e)
            refused = self._authorizer.refused_function
            # SQLite reports a refused function as a plain SQLITE_ERROR: the authorizer's record tells it apart.
            if refused is not None and code in (SQLITE_AUTH, SQLITE_ERROR):
                raise RecorderError(
                    f"SQL on a store may call SQLite's core, date, math, JSON and window functions only; "
                    f"{_shown(refused)}() is not allowed (in {query.strip()[:80]!r})"
                ) from e
            if damage_hint(e):
                raise StoreError(f"reading the store {self.root} failed: {e}{damage_hint(e)}") from e
            if code in (SQLITE_READONLY, SQLITE_AUTH):  # mode=ro and query_only, or the authorizer
                raise RecorderError(
                    f"SQL on a store only reads, and this statement would change something: {query.strip()[:80]!r}"
                ) from e
            raise RecorderError(f"SQL error: {e} (in {query.strip()[:80]!r})") from e
        return [d[0] for d in cursor.description or ()], rows

    def sql(self, query: str, params: Sequence[Any] | dict[str, Any] = ()) -> pd.DataFrame:
        """Run one read-only SQL statement and return its rows as a DataFrame (see :meth:`rows`).

        Values come back exactly: an integer column with NULLs is pandas'
        nullable ``Int64`` (where pandas would make it float64, rounding
        beyond 2**53), a column of integers and reals stays float64.
        """
        import pandas as pd

        columns, rows = self.rows(query, params)
        frame = pd.DataFrame.from_records(rows, columns=columns)
        for j in range(len(frame.columns)):
            column = frame.iloc[:, j]
            # SQLite has no NaN (it stores NULL), so a NaN here was a NULL pandas turned into one:
            # only such columns are looked at again, value by value.
            if column.dtype.kind == "f" and column.isna().any():
                cells = [row[j] for row in rows]
                if set(map(type, cells)) == _INT_AND_NONE:  # SQLite's integers fit in 64 bits
                    frame.isetitem(j, pd.array(cells, dtype="Int64"))
        return frame

    # -- runs and arrays -----------------------------------------------------------

    def resolve(self, run_id: str) -> str:
        """Return the full id of the run whose id starts with ``run_id``, or ends with it (a short id).

        :raises RunNotFound: when no run has that prefix or suffix.
        :raises AmbiguousRunId: when more than one run has it.
        """
        return self.run_key(run_id)[1]

    def run_key(self, run_id: str) -> tuple[int, str]:
        """Return the key and full id of the run named by a full id, a unique prefix or a short id.

        A short id (see :mod:`recorder.ids`) is a suffix of 8 digits or more;
        the lookup is an index search either way.
        """
        from ..store.ids import SHORT_LENGTH, matching

        if not isinstance(run_id, str) or not _HEX.fullmatch(run_id.strip()):
            raise RecorderError(
                f"{ascii(run_id) if isinstance(run_id, str) else repr(run_id)} is not a run id "
                "(1 to 24 hex digits: a short id from `recorder log`, a prefix, or df['_run_id'])"
            )
        digits = run_id.strip().lower()
        try:
            found = matching(self.conn, digits)
        except sqlite3.Error as e:
            raise StoreError(f"reading the store {self.root} failed: {e}") from e
        if not found:
            hint = "" if len(digits) >= SHORT_LENGTH else f" (a short id has at least {SHORT_LENGTH} digits)"
            raise RunNotFound(f"no run with id {digits!r} in the store {self.root}{hint}")
        if len(found) > 1:
            shown = ", ".join(f"{full} ({self.short_id(full)})" for full in found[:5]) + (
                ", …" if len(found) > 5 else ""
            )
            raise AmbiguousRunId(f"run id {digits!r} is ambiguous: it starts or ends the ids {shown}; give more digits")
        full = found[0]
        (pk,) = self._read(_RUN, (bytes.fromhex(full),)).fetchone()
        return int(pk), full

    def session_key(self, session_id: str) -> tuple[int, str]:
        """Return the key and full id of the session named by a full id, a unique prefix or a short id.

        Sessions are named as runs are (:meth:`run_key`): 1 to 24 hex digits, the start of the
        id, or its end when 8 digits or more.

        :raises SessionNotFound: when no session has that prefix or suffix.
        :raises AmbiguousSessionId: when more than one session has it.
        """
        from ..store.ids import SHORT_LENGTH, matching_sessions

        if not isinstance(session_id, str) or not _HEX.fullmatch(session_id.strip()):
            raise RecorderError(
                f"{ascii(session_id) if isinstance(session_id, str) else repr(session_id)} is not a session id "
                "(1 to 24 hex digits: the session line of `recorder show RUN`, or a prefix of it)"
            )
        digits = session_id.strip().lower()
        try:
            found = matching_sessions(self.conn, digits)
            if len(found) == 1:
                row = self._read(_SESSION_PK, (found[0],)).fetchone()
        except sqlite3.Error as e:
            raise StoreError(f"reading the store {self.root} failed: {e}") from e
        if not found:
            hint = "" if len(digits) >= SHORT_LENGTH else f" (a short id has at least {SHORT_LENGTH} digits)"
            raise SessionNotFound(f"no session with id {digits!r} in the store {self.root}{hint}")
        if len(found) > 1:
            shown = ", ".join(found[:5]) + (", …" if len(found) > 5 else "")
            raise AmbiguousSessionId(
                f"session id {digits!r} is ambiguous: it starts or ends the ids {shown}; give more digits"
            )
        return int(row[0]), found[0]

    def short_id(self, run_id: str) -> str:
        """Return the short id of a run: the shortest suffix of its id (8 digits or more) unique in the store.

        ``recorder log`` and ``recorder show`` print it; every command and
        method that takes a run accepts it.
        """
        from ..store.ids import short_id

        full = self.resolve(run_id)
        try:
            return short_id(self.conn, full)
        except sqlite3.Error as e:
            raise StoreError(f"reading the store {self.root} failed: {e}") from e

    def result(self, run_id: str, name: str, *, mmap: bool = True) -> Any:
        """Return one result of a run (arrays memory-mapped unless ``mmap`` is false)."""
        pk, full = self.run_key(run_id)
        row = self._read(_RESULT, (pk, name)).fetchone()
        if row is not None:
            return decode(row[0], row[1], self.objects, mmap=mmap)
        (text,) = self._read(_SCALARS, (pk,)).fetchone()
        scalars = read_json(text) if text is not None else {}  # plain scalars, exact (see recorder.writer)
        if name in scalars:
            return scalars[name]
        names = sorted([n for (n,) in self._read(_RESULT_NAMES, (pk,))] + list(scalars))
        raise RecorderError(
            f"run {full} has no result {name!r}; it has {', '.join(map(repr, names)) if names else 'none'}"
        )

    def file(self, run_id: str, path: str) -> Path:
        """Return the stored file a run left in its folder at ``path`` (relative, with ``/``): a read-only path.

        The path is the object's own file in the store: read it, copy it, never write it
        (``recorder files RUN --into DIR`` copies a run's files out).

        :raises RecorderError: when the run has no file at ``path``.
        """
        pk, full = self.run_key(run_id)
        row = self._read(_RESULT, (pk, path)).fetchone()
        if row is None or row[0] != "file":
            files = [name for name, _ in self.files(full)]
            raise RecorderError(
                f"run {full} has no file {path!r}; its files: {', '.join(map(repr, files)) if files else 'none'}"
            )
        found = self.objects.file(row[1])
        try:  # a FIFO or a folder at the object's name (a damaged or crafted store) would block or fail late
            regular = stat.S_ISREG(os.lstat(found).st_mode)
        except OSError as e:
            raise ObjectError(f"object {row[1]} of run {full}'s file {path!r} is missing; run recorder verify") from e
        if not regular:
            raise ObjectError(f"object {row[1]} at {found} is not a regular file; run recorder verify")
        return found

    def files(self, run_id: str) -> list[tuple[str, str]]:
        """Return the files a run left in its folder, as ``(relative path, digest)``, sorted by path."""
        pk, _ = self.run_key(run_id)
        return [(name, digest) for name, digest in self._read(_FILES, (pk,))]

    def array(self, run_id: str, name: str, *, mmap: bool = True) -> np.ndarray:
        """Return an array result of a run, memory-mapped (read-only) unless ``mmap`` is false."""
        import numpy as np

        value = self.result(run_id, name, mmap=mmap)
        if not isinstance(value, np.ndarray):
            raise RecorderError(
                f"result {name!r} of run {self.resolve(run_id)} is a {type(value).__name__}, not an array; "
                "use db.result() for any value"
            )
        return value

    def arrays(
        self,
        experiment: str,
        name: str,
        *,
        status: str | Sequence[str] | None = "done",
        where: str | None = None,
        mmap: bool = True,
    ) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(run_id, array)`` for the runs of an experiment that have the result ``name``.

        Lazy: one array at a time is read (memory-mapped unless ``mmap`` is
        false), so all of them never need to fit in memory at once.
        """
        import numpy as np

        experiment_pk = self.experiment_key(experiment)
        condition, values = _condition(self.conn, experiment_pk, _statuses(status), where)
        cursor = self._read(_ARRAYS.format(condition=condition), (name, *values))
        while True:
            try:
                batch = cursor.fetchmany(64)
            except sqlite3.Error as e:
                raise StoreError(f"reading the store failed: {e}") from e
            if not batch:
                return
            for run_id, kind, value in batch:
                array = decode(kind, value, self.objects, mmap=mmap)
                yield run_id, array if isinstance(array, np.ndarray) else np.asarray(array)

    # -- plumbing ------------------------------------------------------------------

    def _read(self, query: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(query, params)
        except sqlite3.Error as e:
            raise StoreError(f"reading the store {self.root} failed: {e}{damage_hint(e)}") from e

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({str(self.root)!r})"

    def _repr_html_(self) -> str:
        """A notebook's view: the store's experiments and their runs by status (names HTML-escaped)."""
        from .show import status
        from .summary import store_html

        return store_html(status(self))


# Besides writing (which the read-only connection refuses), these reach outside the store or change it.
_REFUSED = {sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH}

# The functions SQL on a store may call: SQLite's core scalar and aggregate
# functions, date and time, math, JSON and window functions. An allow-list,
# because SQLite also ships functions that hand out or take raw pointers
# (fts3_tokenizer), load code (load_extension) or decode untrusted blobs
# (rtreenode), and a build may add more; none of them is needed to read a store.
_ALLOWED_FUNCTIONS = frozenset(
    # core scalar functions
    "abs char coalesce concat concat_ws format glob hex if ifnull iif instr length like likelihood likely "  # noqa: SIM905 (130 names read best as words)
    "lower ltrim max min nullif octet_length printf quote random randomblob replace round rtrim sign "
    "soundex substr substring trim typeof unhex unicode unlikely upper zeroblob "
    "changes last_insert_rowid total_changes sqlite_version sqlite_source_id "
    # aggregate functions
    "avg count group_concat string_agg sum total "
    # date and time
    "date time datetime julianday unixepoch strftime timediff current_date current_time current_timestamp "
    # math
    "acos acosh asin asinh atan atan2 atanh ceil ceiling cos cosh degrees exp floor ln log log10 log2 "
    "mod pi pow power radians sin sinh sqrt tan tanh trunc "
    # JSON (json_each and json_tree are tables, not functions, to the authorizer)
    "json json_array json_array_length json_error_position json_extract json_insert json_object "
    "json_patch json_quote json_remove json_replace json_set json_type json_valid json_pretty "
    "json_group_array json_group_object -> ->> "
    "jsonb jsonb_array jsonb_extract jsonb_insert jsonb_object jsonb_patch jsonb_remove jsonb_replace "
    "jsonb_set jsonb_group_array jsonb_group_object "
    # window functions
    "row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value".split()
)

# Pragmas that take an argument only to say what to read.
_PRAGMAS_WITH_ARGUMENT = {
    "table_info",
    "table_xinfo",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "integrity_check",
    "quick_check",
}


class _ReadOnly:
    """SQLite authorizer of reading connections: reads, and calls only the allowed functions.

    No ATTACH, no VACUUM, no PRAGMA that sets something, and no function
    outside :data:`_ALLOWED_FUNCTIONS`. It remembers the last function it
    refused, so that the error can name it (SQLite's message may not).
    """

    def __init__(self) -> None:
        self.refused_function: str | None = None

    def __call__(self, action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None) -> int:
        if action in _REFUSED:
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_PRAGMA and arg2 is not None and (arg1 or "").lower() not in _PRAGMAS_WITH_ARGUMENT:
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() not in _ALLOWED_FUNCTIONS:
            self.refused_function = arg2 or ""
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK


def _shown(name: str) -> str:
    """A function name as the user typed it, safe to print on one line."""
    return name.encode("unicode_escape").decode("ascii")[:60]


def _write_jsonl(df: pd.DataFrame, path: Path) -> None:
    """One JSON object per line, floats exact (pandas' to_json rounds them), NaN and ±inf as null."""
    columns = list(df.columns)

    def plain(value: Any) -> Any:
        if hasattr(value, "item"):  # numpy scalars
            value = value.item()
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            return None
        return value

    with path.open("w", encoding="utf-8") as file:  # (open is rec.open in this module)
        for row in df.itertuples(index=False, name=None):
            record = {c: plain(v) for c, v in zip(columns, row)}
            file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")


def _statuses(status: str | Sequence[str] | None) -> list[str] | None:
    if status is None:
        return None
    statuses = [status] if isinstance(status, str) else list(status)
    for s in statuses:
        if s not in STATUSES:
            raise RecorderError(f"status={s!r} is not one of {', '.join(map(repr, STATUSES))} (or None for all)")
    return statuses


def _condition(
    conn: sqlite3.Connection, experiment: int, statuses: list[str] | None, where: str | None
) -> tuple[str, list[Any]]:
    params, results = catalog.columns(catalog.fields_of(conn, experiment))
    return selection(conn, experiment, statuses, where, params, results)


def open(store: str | os.PathLike[str] | None = None) -> Database:  # shadows the builtin: rec.open, as in the design
    """Open a store for reading: ``store``, else ``$RECORDER_STORE``, else the nearest ``.recorder/``.

    Reading never creates anything, and checks that the database is a
    store before anything is written to it. When the store is writable,
    sessions that died are recovered first (their journaled runs written)
    and an old store is upgraded, so what a reader sees is complete; when
    that recovery cannot be done now (a full disk), the store is read as it
    is, with a warning, and the next session writing to it recovers them.
    A store in a read-only folder is read as it is.

    :raises NoStoreError: when there is no store there.
    :raises ForeignStoreError: when its database belongs to another application.
    """
    root = locate(store, create=False)
    if not (root / DB_NAME).is_file():
        raise NoStoreError(f"no store at {root} (no {DB_NAME} there)")
    if os.access(root / DB_NAME, os.W_OK) and os.access(root, os.W_OK):
        try:
            Store.open(root, create=False).close()  # recovers dead sessions and upgrades an old store
        except RecoveryError as e:
            warnings.warn(f"reading without recovering: {e}", RecorderWarning, stacklevel=2)
    return Database(root)


def load(
    experiment: str,
    store: str | os.PathLike[str] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Return ``rec.open(store).df(experiment, **options)``."""
    with open(store) as db:
        return db.df(experiment, **options)


def sql(query: str, store: str | os.PathLike[str] | None = None, params: Sequence[Any] = ()) -> pd.DataFrame:
    """Return ``rec.open(store).sql(query, params)``."""
    with open(store) as db:
        return db.sql(query, params)
