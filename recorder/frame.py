"""Build the DataFrame of an experiment's runs, column by column, without a Python loop per run.

A store may hold 10^6 runs. Fetching them row by row through the
``sqlite3`` cursor costs a Python object per cell and a tuple per row, so
this module lets SQLite do the work in aggregates that return one string
per column: ``group_concat`` of integers and of JSON texts (each pset's
canonical JSON, each run's ``scalars``), exact because they are the texts
as stored. numpy and pandas' CSV reader parse those in C. Only results kept
as rows of ``results`` (text, numpy scalars, NaN, commented values) go
through the cursor, one cell per run and result, because SQLite cannot
print a float exactly. All queries run in one read transaction, so they
see the same runs.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .catalog import IN_SCALARS, columns, fields_of, select_sql
from .errors import RecorderError
from .values import decode, is_scalar_kind

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from .objects import ObjectStore

__all__ = ["META", "STATUSES", "frame", "selection"]

#: The run columns of a DataFrame of runs, after the parameters and results.
META = ["_run_id", "_pset_hash", "_status", "_time_start", "_duration_s", "_session", "_env_sha"]
#: Every status a run may have.
STATUSES = ("done", "failed", "interrupted", "running")

_SESSIONS = "SELECT pk, id, env_sha FROM sessions ORDER BY pk"
_BEGIN = "BEGIN"
_COMMIT = "COMMIT"
_STATUS_CODE = "CASE status " + " ".join(f"WHEN ? THEN {i}" for i in range(len(STATUSES))) + " ELSE -1 END"
# Aggregates over a subquery with ORDER BY, which SQLite does not flatten: values come in run order.
_RUN_AGGREGATES = """
SELECT count(*), group_concat(time_start_ms), group_concat(ifnull(duration_us, -1)),
       group_concat(hex(id), ''), group_concat(session){status}{scalars}
FROM (
    SELECT r.time_start_ms, r.duration_us, r.id, r.session, r.status, r.scalars
    FROM runs AS r WHERE {condition} ORDER BY r.pk
)
"""
_PSET_AGGREGATES = """
SELECT count(*), group_concat(hex(hash), ''){params}
FROM (SELECT p.hash, p.params FROM runs AS r JOIN psets AS p ON p.pk = r.pset WHERE {condition} ORDER BY r.pk)
"""
_RESULT_CELLS = "SELECT {cells} FROM runs AS r {joins} WHERE {condition} ORDER BY r.pk"
_NOTHING = "SELECT 1 WHERE 0"


def selection(conn: sqlite3.Connection, experiment: int, statuses: Sequence[str] | None, where: str | None,
              params: list[str], results: dict[str, set[str]]) -> tuple[str, list[Any]]:
    """Return the WHERE clause (over ``runs AS r``) that picks the runs, and its bound values.

    The user's ``where`` (SQL over the experiment's wide view) runs in a
    query of its own here, whose run keys are then bound: whatever its text,
    it can only narrow the runs of this experiment with these statuses.
    """
    sql = "r.experiment = ?"
    values: list[Any] = [experiment]
    if statuses is not None:
        sql += f" AND r.status IN ({', '.join('?' * len(statuses))})"
        values += statuses
    if where is not None:
        wide = select_sql(experiment, params, results, with_pk=True)
        try:
            picked = [pk for (pk,) in conn.execute(f"SELECT _pk FROM (\n{wide}\n) WHERE {where}")]
        except sqlite3.Error as e:
            raise RecorderError(f"cannot select runs where {where!r}: {e}") from e
        sql += " AND r.pk IN (SELECT value FROM json_each(?))"
        values.append(json.dumps(picked))
    return sql, values


class _Query(NamedTuple):
    sql: str
    values: list[Any]
    all_rows: bool  # fetchall, else fetchone


def _read_all(conn: sqlite3.Connection, queries: list[_Query]) -> list[Any]:
    """Run the queries (inside the caller's read transaction, so that they all see the same runs).

    (In parallel, on several connections, they are slower: SQLite's memory
    allocator serialises the threads, and the aggregates allocate a lot.)
    """
    return [conn.execute(q.sql, q.values).fetchall() if q.all_rows else conn.execute(q.sql, q.values).fetchone()
            for q in queries]


def _ints(text: str | None, n: int) -> np.ndarray:
    import numpy as np

    values = np.fromstring(text, sep=",", dtype=np.int64) if n and text else np.zeros(0, dtype=np.int64)
    if len(values) != n:
        raise RecorderError(f"read {len(values)} values where {n} runs were selected; please report this")
    return values


def _hex_column(text: str | None, width: int, n: int) -> Any:
    import numpy as np
    import pandas as pd

    if n == 0 or not text:
        return pd.array([], dtype="str")
    return pd.array(np.frombuffer(text.lower().encode("utf-32-le"), dtype=f"U{width}"), dtype="str")


def _records(text: str | None, layout: list[str], wanted: list[str], n: int) -> dict[str, Any]:
    """The values of the ``wanted`` parameters from canonical JSON texts joined by \\x1e, one per run.

    When every pset has every parameter of ``layout`` (the experiment's
    parameters, sorted as in canonical JSON), the texts are cut into values
    without parsing each one: canonical JSON is ``{"a":1,"b":2}``, and a
    quote is escaped inside a JSON string, so ``{"a":`` and ``,"b":`` occur
    only as keys. Numbers, true, false and null are then parsed by pandas'
    CSV reader, in C; anything else by json.
    """
    if not wanted or n == 0:
        return {name: [] for name in wanted}
    assert text is not None
    keys = sorted(layout)
    m = len(keys)
    quoted = [json.dumps(key, ensure_ascii=False) for key in keys]  # as canonical JSON writes them
    first = "{" + quoted[0] + ":"
    if text.count("\x1e" + first) + text.startswith(first) != n:  # some object lacks the first key
        return _parsed_one_by_one(text, wanted)
    cut = text.replace("\x1e" + first, "\x1e")
    cut = cut.removeprefix(first)
    for key in quoted[1:]:
        cut = cut.replace("," + key + ":", "\x1f")
    cut = cut.replace("}\x1e", "\x1e")
    cut = cut.removesuffix("}")
    # Each object has each key at most once, so this count means every object has every key.
    if cut.count("\x1e") != n - 1 or cut.count("\x1f") != n * (m - 1):
        return _parsed_one_by_one(text, wanted)
    columns: dict[str, Any] = {}
    if '"' not in cut:  # numbers, true, false and null only: pandas' parser reads them exactly
        import pandas as pd

        table = pd.read_csv(
            io.StringIO(cut), sep="\x1f", lineterminator="\x1e", header=None, names=keys,
            na_values=["null"], keep_default_na=False, **_exact_floats(),
        )
        if len(table) == n and all(table[key].dtype.kind in "fiub" for key in keys):
            return {name: table[name].to_numpy() for name in wanted}
    flat = cut.replace("\x1f", ",").replace("\x1e", ",")
    values = json.loads("[" + flat + "]")
    columns = {key: _values(values[j::m]) for j, key in enumerate(keys)}
    return {name: columns[name] for name in wanted}


def _parsed_one_by_one(text: str, wanted: list[str]) -> dict[str, Any]:
    """The slow way, for objects of several layouts: each parsed by json; a missing key is None."""
    objects = json.loads("[" + text.replace("\x1e", ",") + "]")
    return {name: _values([item.get(name) for item in objects]) for name in wanted}


def _exact_floats() -> dict[str, str]:
    """read_csv's option for floats parsed exactly: pandas 3 does by default, pandas 2 when asked."""
    import pandas as pd

    return {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}


def _values(cells: list[Any]) -> Any:
    """A column of plain result values: a numpy array when they are all numbers of one type.

    A column of None only is NaN, as it reads from runs.scalars (see _records).
    """
    import numpy as np

    if cells and cells[0] is None and all(c is None for c in cells):
        return np.full(len(cells), np.nan)
    if cells and type(cells[0]) in (float, int):
        array = np.array(cells)
        if array.dtype.kind in "fi":
            return array
    return cells


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
) -> pd.DataFrame:
    """Return one row per selected run of an experiment: parameters, scalar results, then :data:`META`.

    The experiment's names, the selection and every query are read in one
    transaction, so a run committed meanwhile is either wholly in or out.

    :param conn: a connection to the store.
    :param statuses: the statuses of the runs to include; None includes all.
    :param names: the parameters and results to include; None includes all.
    :param where: an SQL condition over the experiment's wide view.
    """
    if conn.in_transaction:  # a read left open by an interrupt
        conn.execute(_COMMIT)
    conn.execute(_BEGIN)
    try:
        params, results = columns(fields_of(conn, experiment))
        all_params, all_results = params, results
        if names is not None:
            unknown = [n for n in names if n not in params and n not in results]
            if unknown:
                raise RecorderError(
                    f"no parameter or scalar result named {unknown[0]!r} in this experiment; "
                    f"it has {', '.join([*params, *results]) or 'none yet'}"
                )
            params = [n for n in params if n in names]
            results = {n: kinds for n, kinds in results.items() if n in names}
        return _frame(conn, experiment, objects, statuses, params, results, all_params, all_results, where)
    finally:
        conn.execute(_COMMIT)


def _frame(conn: sqlite3.Connection, experiment: int, objects: ObjectStore,
           statuses: Sequence[str] | None, params: list[str], results: dict[str, set[str]],
           all_params: list[str], all_results: dict[str, set[str]], where: str | None) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    condition, values = selection(conn, experiment, statuses, where, all_params, all_results)

    # Every pset's canonical JSON, and every run's scalars, in one string each; parsed by _records.
    param_sql = ", group_concat(params, char(30))" if params else ""
    compact = sorted(n for n, kinds in all_results.items() if IN_SCALARS in kinds)
    scalars_sql = ", group_concat(ifnull(scalars, '{}'), char(30))" if compact else ""
    # One status selected: no need to read it for each run.
    status_sql = "" if statuses is not None and len(statuses) == 1 else f", group_concat({_STATUS_CODE})"
    status_values = list(STATUSES) if status_sql else []
    # Results kept as rows of results (not in runs.scalars): read through the cursor.
    in_rows = [n for n, kinds in results.items() if kinds - {IN_SCALARS}]
    plain = {n for n in in_rows if results[n] - {IN_SCALARS} == {""}}
    cells, joins = [], []
    for i, name in enumerate(in_rows):
        joins.append(f"LEFT JOIN results AS x{i} ON x{i}.run = r.pk AND x{i}.name = ?")
        cells.append(f"x{i}.value" if name in plain else f"x{i}.kind, x{i}.value")
    wanted_compact = [name for name in results if IN_SCALARS in results[name]]

    def parse_runs(row: tuple[Any, ...]) -> dict[str, Any]:  # the aggregates of _RUN_AGGREGATES
        n = row[0]
        parsed = {
            "n": n, "time": _ints(row[1], n), "duration": _ints(row[2], n),
            "ids": _hex_column(row[3], 24, n), "sessions": _ints(row[4], n),
        }
        if status_sql:
            parsed["status"] = _ints(row[5], n)
        if compact:
            parsed["scalars"] = _records(row[-1], compact, wanted_compact, n)
        return parsed

    def parse_psets(row: tuple[Any, ...]) -> dict[str, Any]:
        n = row[0]
        return {"n": n, "hashes": _hex_column(row[1], 20, n),
                "params": _records(row[2] if params else None, all_params, params, n)}

    queries = [
        _Query(_RESULT_CELLS.format(cells=", ".join(cells), joins=" ".join(joins), condition=condition),
               [*in_rows, *values], True) if in_rows else _Query(_NOTHING, [], True),
        _Query(_RUN_AGGREGATES.format(condition=condition, status=status_sql, scalars=scalars_sql),
               [*status_values, *values], False),
        _Query(_PSET_AGGREGATES.format(params=param_sql, condition=condition), values, False),
        _Query(_SESSIONS, [], True),
    ]
    try:
        rows, run_row, pset_row, sessions = _read_all(conn, queries)
    except sqlite3.Error as e:
        raise RecorderError(f"reading the runs failed: {e}") from e
    runs, psets = parse_runs(run_row), parse_psets(pset_row)
    n = runs["n"]
    if (in_rows and len(rows) != n) or psets["n"] != n:
        raise RecorderError(f"read {len(rows)} and {psets['n']} rows for {n} runs; please report this")

    data: dict[str, Any] = psets["params"]
    data.update(runs.get("scalars", {}))
    column = 0
    for name in in_rows:
        if name in plain:
            cells_ = [row[column] for row in rows]
            column += 1
        else:
            cells_ = [_scalar(row[column], row[column + 1], objects) for row in rows]
            column += 2
        if name in data:  # some runs keep it in runs.scalars, others as a row: each run in one place
            merged = list(data[name])
            for index, row in enumerate(rows):
                if row[column - 1] is not None or (name not in plain and row[column - 2] is not None):
                    merged[index] = cells_[index]
            data[name] = _values(merged)
        else:
            data[name] = _values(cells_)

    session_pks = np.array([s[0] for s in sessions], dtype=np.int64)
    session_codes = np.searchsorted(session_pks, runs["sessions"])
    session_ids = [s[1] for s in sessions]
    env_shas = sorted({s[2] for s in sessions})
    env_codes = np.array([env_shas.index(s[2]) for s in sessions], dtype=np.int64)
    duration = runs["duration"]
    status_codes = runs.get("status")
    if status_codes is None:
        status_codes = np.full(n, STATUSES.index(statuses[0]) if statuses else 0, dtype=np.int64)
    data["_run_id"] = runs["ids"]
    data["_pset_hash"] = psets["hashes"]
    data["_status"] = pd.Categorical.from_codes(status_codes, categories=list(STATUSES))
    data["_time_start"] = pd.to_datetime(runs["time"], unit="ms", utc=True)
    data["_duration_s"] = np.where(duration < 0, np.nan, duration / 1e6)
    data["_session"] = pd.Categorical.from_codes(session_codes, categories=session_ids)
    data["_env_sha"] = pd.Categorical.from_codes(env_codes[session_codes], categories=env_shas)
    return pd.DataFrame(data, columns=[*params, *results, *META], copy=False)
