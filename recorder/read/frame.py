"""Build the DataFrame of an experiment's runs, column by column, without a Python loop per run.

A store may hold 10^6 runs. Fetching them row by row through the
``sqlite3`` cursor costs a Python object per cell and a tuple per row, so
this module lets SQLite do the work in aggregates that return one string
per column: ``group_concat`` of integers, of ids and hashes as bytes, and
of JSON texts (each pset's canonical JSON, each run's ``scalars``), exact
because they are the texts as stored. numpy and pandas' CSV reader parse
those in C. Only results kept as rows of ``results`` (text, numpy scalars,
NaN, commented values) go through the cursor, one cell per run and result,
because SQLite cannot print a float exactly.

Everything is read in one read transaction, except that in a big store a
helper process reads the columns no write changes (ids, starts, sessions,
psets) at the same time, on another core (:mod:`recorder.sidequery`); its
result is used only when it provably read the same runs (see
:func:`_start_helper`).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..codec.canonical import read_columns, values_column
from ..codec.values import decode, is_scalar_kind
from ..errors import RecorderError
from ..store.catalog import IN_SCALARS, columns, fields_of, select_sql
from .sidequery import InThread, SideQuery, available

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ..store.objects import ObjectStore

__all__ = ["ERROR", "META", "STATUSES", "frame", "selection"]

#: The run columns of a DataFrame of runs, after the parameters and results. Where a run ran: its host
#: (the session's unless a worker on another machine ran it), the id of the process that ran it, and its
#: pset's position in its sweep (missing for runs not in a sweep, and for runs recorded before schema 7).
META = [
    "_run_id",
    "_pset_hash",
    "_status",
    "_time_start",
    "_duration_s",
    "_session",
    "_env_sha",
    "_exec_host",
    "_exec_pid",
    "_pset_seq",
]
#: Every status a run may have.
STATUSES = ("done", "failed", "interrupted", "running")

_SESSIONS = "SELECT pk, id, env_sha, experiment, host FROM sessions ORDER BY pk"
_DATABASE_FILE = "PRAGMA database_list"
_LAST_RUN = "SELECT max(pk) FROM runs"
_BEGIN = "BEGIN"
_COMMIT = "COMMIT"
_STATUS_CODE = "CASE status " + " ".join(f"WHEN ? THEN {i}" for i in range(len(STATUSES))) + " ELSE -1 END"
# Aggregates over a subquery with ORDER BY, which SQLite does not flatten: values come in run order.
# The columns a run's end may change, read in the caller's transaction.
# A run's host and pid may be set as it ends (a worker's run whose row was written while it ran); a
# run's host is NULL unless a worker on another machine ran it, so the hosts are read (in a query of
# their own, _HOSTS) only when some run has one.
_RUN_AGGREGATES = """
SELECT count(*), group_concat(ifnull(duration_us, -1)), group_concat(ifnull(pid, -1)),
       group_concat(ifnull(pset_seq, -1)), ifnull(max(host IS NOT NULL), 0){status}{scalars},
       (SELECT ifnull(max(pk), 0) FROM curation_events)
FROM (
    SELECT r.pk, r.duration_us, r.pid, r.pset_seq, r.host, r.status, r.scalars FROM runs AS r
    WHERE {condition} ORDER BY r.pk
)
"""
_HOSTS = "SELECT r.host FROM runs AS r WHERE {condition} ORDER BY r.pk"
# The columns no write ever changes (a run's id, start, session and pset; a pset's hash and parameters), which
# a helper process may read in a transaction of its own. Ids and hashes are concatenated as bytes. Last, the
# latest curation event: a run deleted or restored (or tagged) between the two reads changes it.
_FIXED_AGGREGATES = """
SELECT count(*), CAST(group_concat(id, '') AS BLOB), group_concat(time_start_ms),
       CAST(group_concat(hash, '') AS BLOB){sessions}{params}, (SELECT ifnull(max(pk), 0) FROM curation_events)
FROM (
    SELECT r.pk, r.id, r.time_start_ms, r.session, p.hash, p.params FROM runs AS r JOIN psets AS p ON p.pk = r.pset
    WHERE {condition} ORDER BY r.pk
)
"""
_RESULT_CELLS = "SELECT {cells} FROM runs AS r {joins} WHERE {condition} ORDER BY r.pk"
_ERRORS = "SELECT r.error FROM runs AS r WHERE {condition} AND r.status = ? ORDER BY r.pk"
#: The column of the error of each failed run, after :data:`META` when the selection may hold failed runs.
ERROR = "_error"
#: Below this many runs a helper process (about 50 ms to start) costs more than it saves.
HELPER_MIN_RUNS = 100_000
_RUN_ID_BYTES = 12
_HASH_BYTES = 10


def selection(
    conn: sqlite3.Connection,
    experiment: int,
    statuses: Sequence[str] | None,
    where: str | None,
    params: dict[str, set[str]],
    results: dict[str, set[str]],
    *,
    tag: str | None = None,
    deleted: bool = False,
) -> tuple[str, list[Any]]:
    """Return the WHERE clause (over ``runs AS r``) that picks the runs, and its bound values.

    The user's ``where`` (SQL over the experiment's wide view) runs in a
    query of its own here, whose run keys are then bound: whatever its text,
    it can only narrow the runs of this experiment with these statuses.

    :param tag: only runs with this tag.
    :param deleted: pick the deleted runs (``recorder rm``) instead of the live ones.
    """
    sql = f"r.experiment = ? AND r.deleted IS {'NOT ' if deleted else ''}NULL"
    values: list[Any] = [experiment]
    if tag is not None:
        sql += " AND r.pk IN (SELECT t.run FROM run_tags AS t WHERE t.tag = ?)"
        values.append(tag)
    if statuses is not None:
        sql += f" AND r.status IN ({', '.join('?' * len(statuses))})"
        values += statuses
    if where is not None:
        wide = select_sql(experiment, params, results, with_pk=True, live=not deleted)
        try:
            picked = [pk for (pk,) in conn.execute(f"SELECT _pk FROM (\n{wide}\n) WHERE {where}")]
        except sqlite3.Error as e:
            raise RecorderError(f"cannot select runs where {where!r}: {e}") from e
        sql += " AND r.pk IN (SELECT value FROM json_each(?))"
        values.append(json.dumps(picked))
    return sql, values


def _ints(text: str | bytes | None, n: int) -> np.ndarray:
    import numpy as np

    values = np.fromstring(text, sep=",", dtype=np.int64) if n and text else np.zeros(0, dtype=np.int64)
    if len(values) != n:
        raise RecorderError(f"read {len(values)} values where {n} runs were selected; please report this")
    return values


def _hex_column(data: bytes | None, width: int, n: int) -> Any:
    """Byte strings of ``width`` bytes each, concatenated, as a column of lower-case hex texts."""
    import numpy as np
    import pandas as pd

    data = data or b""
    if len(data) != width * n:
        raise RecorderError(f"read {len(data)} bytes of {width}-byte ids for {n} runs; please report this")
    if not data:
        return pd.array([], dtype="str")
    # One C pass makes the texts: bytes.hex puts a comma after every value, str.split cuts there.
    texts = np.array(data.hex(",", width).split(","), dtype=object)
    return pd.array(texts, dtype="str")


def _scalar(kind: str | None, value: Any, objects: ObjectStore) -> Any:
    """A result cell as a table shows it: scalars decoded, anything else (an array, a list) left out."""
    if kind is None:
        return value
    return decode(kind, value, objects) if is_scalar_kind(kind) else None


def frame(
    conn: sqlite3.Connection,
    experiment: int,
    objects: ObjectStore,
    *,
    statuses: Sequence[str] | None = ("done",),
    names: Sequence[str] | None = None,
    where: str | None = None,
    helper_min_runs: int | None = None,
    tag: str | None = None,
) -> pd.DataFrame:
    """Return one row per selected run of an experiment: parameters, scalar results, then :data:`META`.

    The experiment's names, the selection and every column a write may
    change are read in one transaction, so a run committed meanwhile is
    either wholly in or out. In a store of at least ``helper_min_runs`` runs,
    a helper process reads the columns no write changes (ids, sessions,
    psets) at the same time, on another core (see :mod:`recorder.sidequery`).

    :param conn: a connection to the store.
    :param statuses: the statuses of the runs to include; None includes all.
    :param names: the parameters and results to include; None includes all.
    :param where: an SQL condition over the experiment's wide view.
    :param helper_min_runs: the fewest runs in the store for which a helper process is worth starting
        (default :data:`HELPER_MIN_RUNS`).
    :param tag: only the runs with this tag (``recorder tag``).
    """
    if conn.in_transaction:  # a read left open by an interrupt
        conn.execute(_COMMIT)
    conn.execute(_BEGIN)
    try:
        all_params, all_results = columns(fields_of(conn, experiment))
        params, results = list(all_params), all_results
        if names is not None:
            unknown = [n for n in names if n not in params and n not in results]
            if unknown:
                raise RecorderError(
                    f"no parameter or scalar result named {unknown[0]!r} in this experiment; "
                    f"it has {', '.join([*params, *results]) or 'none yet'}"
                )
            params = [n for n in params if n in names]
            results = {n: kinds for n, kinds in results.items() if n in names}
        return _frame(
            conn,
            experiment,
            objects,
            statuses,
            params,
            results,
            all_params,
            all_results,
            where,
            HELPER_MIN_RUNS if helper_min_runs is None else helper_min_runs,
            tag,
        )
    finally:
        conn.execute(_COMMIT)


def _frame(
    conn: sqlite3.Connection,
    experiment: int,
    objects: ObjectStore,
    statuses: Sequence[str] | None,
    params: list[str],
    results: dict[str, set[str]],
    all_params: dict[str, set[str]],
    all_results: dict[str, set[str]],
    where: str | None,
    helper_min_runs: int,
    tag: str | None,
) -> pd.DataFrame:
    condition, values = selection(conn, experiment, statuses, where, all_params, all_results, tag=tag)
    try:
        sessions = conn.execute(_SESSIONS).fetchall()
        several_sessions = sum(1 for s in sessions if s[3] == experiment) > 1
        fixed = _FIXED_AGGREGATES.format(
            condition=condition,
            sessions=", group_concat(session)" if several_sessions else "",
            params=", CAST(group_concat(params, char(30)) AS BLOB)" if params else "",
        )
        helper = _start_helper(conn, fixed, values, statuses, where, helper_min_runs)
    except sqlite3.Error as e:
        raise RecorderError(f"reading the runs failed: {e}") from e
    try:
        runs = _read_runs(conn, condition, values, statuses, all_results, results)
        n = runs["n"]
        row = None
        if helper is not None and n >= helper_min_runs:
            row = helper.result()
            # Runs ended or began meanwhile, or were curated (deleted, restored): see _start_helper.
            # The helper gives each value as bytes of its text.
            if row is not None and (int(row[0] or 0) != n or int(row[-1] or 0) != int(runs["curated"])):
                row = None
        if row is None:  # no helper, or it failed or saw other runs: read the same columns here
            try:
                row = conn.execute(fixed, values).fetchone()
            except sqlite3.Error as e:
                raise RecorderError(f"reading the runs failed: {e}") from e
        row = row[:-1]
    finally:
        if helper is not None:
            helper.cancel()
    import numpy as np
    import pandas as pd

    psets = _parse_fixed(row, several_sessions, all_params, params)
    if psets["n"] != n:
        raise RecorderError(f"read {psets['n']} psets for {n} runs; please report this")

    data: dict[str, Any] = psets["params"]
    data.update(runs["scalars"])
    _add_result_rows(conn, data, condition, values, results, objects, n)

    session_pks = np.array([s[0] for s in sessions], dtype=np.int64)
    if several_sessions:
        session_codes = np.searchsorted(session_pks, psets["sessions"])
    else:  # each run of an experiment is in one of its sessions
        only = [s[0] for s in sessions if s[3] == experiment]
        session_codes = np.full(n, np.searchsorted(session_pks, only[0]) if only else 0, dtype=np.int64)
    session_ids = [s[1] for s in sessions]
    env_shas = sorted({s[2] for s in sessions})
    env_codes = np.array([env_shas.index(s[2]) for s in sessions], dtype=np.int64)
    duration = runs["duration"]
    status_codes = runs.get("status")
    if status_codes is None:
        status_codes = np.full(n, STATUSES.index(statuses[0]) if statuses else 0, dtype=np.int64)
    data["_run_id"] = psets["ids"]
    data["_pset_hash"] = psets["hashes"]
    data["_status"] = pd.Categorical.from_codes(status_codes, categories=list(STATUSES))
    data["_time_start"] = pd.to_datetime(psets["time"], unit="ms", utc=True)
    data["_duration_s"] = np.where(duration < 0, np.nan, duration / 1e6)
    data["_session"] = pd.Categorical.from_codes(session_codes, categories=session_ids)
    data["_env_sha"] = pd.Categorical.from_codes(env_codes[session_codes], categories=env_shas)
    data["_exec_host"] = _hosts(conn, condition, values, sessions, session_codes, runs["hosts"], n)
    data["_exec_pid"] = _missing_below_zero(runs["pid"])
    data["_pset_seq"] = _missing_below_zero(runs["pset_seq"])
    meta = META
    if statuses is None or "failed" in statuses:  # the same columns whichever runs are there
        # object dtype, so that runs that did not fail hold None (pandas would make it str with NaN)
        data[ERROR] = pd.Series(_errors(conn, condition, values, status_codes, n), dtype=object, copy=False)
        meta = [*META, ERROR]
    return pd.DataFrame(data, columns=[*params, *results, *meta], copy=False)


def _missing_below_zero(values: np.ndarray) -> Any:
    """Ints read with -1 for NULL, as a nullable Int64 column (NULL missing)."""
    import pandas as pd

    return pd.arrays.IntegerArray(values, values < 0)


def _hosts(
    conn: sqlite3.Connection,
    condition: str,
    values: list[Any],
    sessions: list[tuple[Any, ...]],
    session_codes: np.ndarray,
    some_run_has_one: bool,
    n: int,
) -> pd.Categorical:
    """The host each run ran on: its own (a worker on another machine), else its session's.

    :param session_codes: each run's session, as an index into ``sessions`` (rows of :data:`_SESSIONS`).
    """
    import numpy as np
    import pandas as pd

    session_hosts = [s[4] for s in sessions]
    own: list[str | None] = []
    if some_run_has_one:
        try:
            own = [host for (host,) in conn.execute(_HOSTS.format(condition=condition), values)]
        except sqlite3.Error as e:
            raise RecorderError(f"reading the runs failed: {e}") from e
        if len(own) != n:
            raise RecorderError(f"read {len(own)} hosts for {n} runs; please report this")
    hosts = sorted({h for h in (*session_hosts, *own) if h is not None})
    index = {host: i for i, host in enumerate(hosts)}
    by_session = np.array([index.get(h, -1) for h in session_hosts] or [-1], dtype=np.int64)
    codes = by_session[session_codes] if n else np.zeros(0, dtype=np.int64)
    if own:
        ran = np.array([index.get(h, -1) if h is not None else -1 for h in own], dtype=np.int64)
        codes = np.where(ran >= 0, ran, codes)
    return pd.Categorical.from_codes(codes, categories=hosts)


def _errors(
    conn: sqlite3.Connection, condition: str, values: list[Any], status_codes: np.ndarray, n: int
) -> np.ndarray:
    """The last line of each failed run's traceback (its exception), None for the other runs.

    Only the failed runs' errors are read, in the caller's transaction, and
    put where their status codes say.
    """
    import numpy as np

    from .failures import exception_line

    try:
        rows = conn.execute(_ERRORS.format(condition=condition), [*values, "failed"]).fetchall()
    except sqlite3.Error as e:
        raise RecorderError(f"reading the runs failed: {e}") from e
    at = np.flatnonzero(status_codes == STATUSES.index("failed"))
    if len(rows) != len(at):
        raise RecorderError(f"read {len(rows)} errors for {len(at)} failed runs; please report this")
    errors = np.full(n, None, dtype=object)
    errors[at] = [exception_line(error) for (error,) in rows]
    return errors


def _start_helper(
    conn: sqlite3.Connection,
    fixed: str,
    values: list[Any],
    statuses: Sequence[str] | None,
    where: str | None,
    helper_min_runs: int,
) -> SideQuery | None:
    """Start a helper process reading the runs' fixed columns, when that is worth it and can be checked.

    The helper reads in a transaction of its own, begun after the caller's
    (whose first read is done). Runs are deleted or restored only by a
    curation, which adds an event (both reads give the latest one's key, and
    differing keys discard the helper's read); their fixed columns
    never change, and a run's status changes only from running to its end.
    So when the selection leaves running runs out (or takes every status),
    the helper sees the caller's runs plus those that ended or began since,
    and the same number of runs means the same runs, in the same order.
    """
    if where is not None or (statuses is not None and "running" in statuses) or not available():
        return None
    last = conn.execute(_LAST_RUN).fetchone()[0] or 0
    if last < helper_min_runs:
        return None
    database = next((Path(row[2]) for row in conn.execute(_DATABASE_FILE) if row[1] == "main" and row[2]), None)
    if database is None:  # an in-memory database
        return None
    return SideQuery(database, fixed, values)


def _read_runs(
    conn: sqlite3.Connection,
    condition: str,
    values: list[Any],
    statuses: Sequence[str] | None,
    all_results: dict[str, set[str]],
    results: dict[str, set[str]],
) -> dict[str, Any]:
    """Read and parse :data:`_RUN_AGGREGATES`: durations, statuses and the results in ``runs.scalars``."""
    compact = sorted(n for n, kinds in all_results.items() if IN_SCALARS in kinds)
    # One status selected: no need to read it for each run.
    one_status = statuses is not None and len(statuses) == 1
    sql = _RUN_AGGREGATES.format(
        condition=condition,
        status="" if one_status else f", group_concat({_STATUS_CODE})",
        scalars=", CAST(group_concat(ifnull(scalars, '{}'), char(30)) AS BLOB)" if compact else "",
    )
    # The first import of pandas takes a while: in a thread, while SQLite reads (and lets go of the GIL).
    # In a thread also because Ctrl-C goes to the main thread: an import cut short leaves numpy broken.
    importing = None if "pandas" in sys.modules else InThread(_import_pandas)
    try:
        row = conn.execute(sql, [*([] if one_status else STATUSES), *values]).fetchone()
    except sqlite3.Error as e:
        raise RecorderError(f"reading the runs failed: {e}") from e
    if importing is not None:
        importing.result()
    n, rest = row[0], list(row[1:])
    parsed: dict[str, Any] = {"n": n, "curated": rest.pop()}
    parsed["duration"] = _ints(rest.pop(0), n)
    parsed["pid"] = _ints(rest.pop(0), n)
    parsed["pset_seq"] = _ints(rest.pop(0), n)
    parsed["hosts"] = bool(rest.pop(0))
    if not one_status:
        parsed["status"] = _ints(rest.pop(0), n)
    wanted = [name for name in results if IN_SCALARS in results[name]]
    parsed["scalars"] = read_columns(rest.pop(0), compact, wanted, n) if compact else {}
    return parsed


def _import_pandas() -> None:
    import numpy  # noqa: F401
    import pandas  # noqa: F401


def _parse_fixed(
    row: tuple[Any, ...], several_sessions: bool, all_params: Collection[str], params: list[str]
) -> dict[str, Any]:
    """Parse the row of :data:`_FIXED_AGGREGATES` (numbers may come as text, from a helper)."""
    rest = list(row)
    n = int(rest.pop(0) or 0)
    return {
        "n": n,
        "ids": _hex_column(rest.pop(0), _RUN_ID_BYTES, n),
        "time": _ints(rest.pop(0), n),
        "hashes": _hex_column(rest.pop(0), _HASH_BYTES, n),
        "sessions": _ints(rest.pop(0), n) if several_sessions else None,
        "params": read_columns(rest.pop(0), all_params, params, n) if params else {},
    }


def _add_result_rows(
    conn: sqlite3.Connection,
    data: dict[str, Any],
    condition: str,
    values: list[Any],
    results: dict[str, set[str]],
    objects: ObjectStore,
    n: int,
) -> None:
    """Add the results kept as rows of ``results`` (text, numpy scalars, NaN, commented values) to ``data``.

    They go through the cursor, one cell per run and result, because SQLite
    cannot print a float exactly. Most experiments have none.
    """
    in_rows = [name for name, kinds in results.items() if kinds - {IN_SCALARS}]
    if not in_rows:
        return
    plain = {name for name in in_rows if results[name] - {IN_SCALARS} == {""}}
    cells, joins = [], []
    for i, name in enumerate(in_rows):
        joins.append(f"LEFT JOIN results AS x{i} ON x{i}.run = r.pk AND x{i}.name = ?")
        cells.append(f"x{i}.value" if name in plain else f"x{i}.kind, x{i}.value")
    sql = _RESULT_CELLS.format(cells=", ".join(cells), joins=" ".join(joins), condition=condition)
    try:
        rows = conn.execute(sql, [*in_rows, *values]).fetchall()
    except sqlite3.Error as e:
        raise RecorderError(f"reading the runs failed: {e}") from e
    if len(rows) != n:
        raise RecorderError(f"read {len(rows)} rows of results for {n} runs; please report this")
    column = 0
    for name in in_rows:
        if name in plain:
            cells_ = [row[column] for row in rows]
            column += 1
        else:
            cells_ = [_scalar(row[column], row[column + 1], objects) for row in rows]
            column += 2
        if name in data:  # some runs keep it in runs.scalars, others as a row: each run in one place
            import pandas as pd

            merged = [None if cell is pd.NA else cell for cell in data[name]]  # missing (NA of Int64) is None
            for index, row in enumerate(rows):
                if row[column - 1] is not None or (name not in plain and row[column - 2] is not None):
                    merged[index] = cells_[index]
            data[name] = values_column(merged)
        else:
            data[name] = values_column(cells_)
