"""Build the DataFrame of an experiment's runs, column by column, without a Python loop per run.

A store may hold 10^6 runs. Fetching them row by row through the
``sqlite3`` cursor costs a Python object per cell and a tuple per row, so
this module lets SQLite do the work in aggregates that return one string
per column: ``group_concat`` of integers, and ``json_group_array`` of each
parameter's JSON text, exact because it is the canonical JSON as stored.
numpy parses those in C. Only the result values go through the cursor,
because SQLite cannot print a float exactly: one cell per run and result.

SQLite does an aggregate in one call, without Python's interpreter lock,
so the aggregates run in threads (one connection each) while this thread
reads the results. Each connection reads inside a transaction that starts
with a look at the runs table; if a commit came in between and the
connections saw different runs, the read is done again.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .catalog import FieldRow, columns, select_sql
from .errors import RecorderError
from .sql import quote_literal
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
# What changes whenever runs are added or finish (runs are only appended, and leave 'running' once).
_SNAPSHOT = "SELECT (SELECT max(pk) FROM runs), (SELECT count(*) FROM runs WHERE status = 'running')"
_STATUS_CODE = "CASE status " + " ".join(f"WHEN ? THEN {i}" for i in range(len(STATUSES))) + " ELSE -1 END"
# Aggregates over a subquery with ORDER BY, which SQLite does not flatten: values come in run order.
_RUN_AGGREGATES = """
SELECT count(*), group_concat(time_start_ms), group_concat(ifnull(duration_us, -1)),
       group_concat(hex(id), ''), group_concat(session){status}
FROM (
    SELECT r.time_start_ms, r.duration_us, r.id, r.session, r.status
    FROM runs AS r WHERE {condition} ORDER BY r.pk
)
"""
_PSET_AGGREGATES = """
SELECT count(*), group_concat(hex(hash), ''){params}
FROM (SELECT p.hash, p.params FROM runs AS r JOIN psets AS p ON p.pk = r.pset WHERE {condition} ORDER BY r.pk)
"""
_RESULT_CELLS = "SELECT {cells} FROM runs AS r {joins} WHERE {condition} ORDER BY r.pk"
_NOTHING = "SELECT 1 WHERE 0"
_NOT_A_NUMBER = re.compile(r"[^0-9eE.+\-,]")
_RETRIES = 3


def selection(experiment: int, statuses: Sequence[str] | None, where: str | None,
              params: list[str], results: list[str]) -> tuple[str, list[Any]]:
    """Return the WHERE clause (over ``runs AS r``) that picks the runs, and its bound values."""
    sql = "r.experiment = ?"
    values: list[Any] = [experiment]
    if statuses is not None:
        sql += f" AND r.status IN ({', '.join('?' * len(statuses))})"
        values += statuses
    if where is not None:
        # The user's condition is SQL over the columns of the experiment's wide view.
        wide = select_sql(experiment, params, results, with_pk=True)
        sql += f" AND r.pk IN (SELECT _pk FROM (\n{wide}\n) WHERE {where})"
    return sql, values


class _Query(NamedTuple):
    sql: str
    values: list[Any]
    all_rows: bool  # fetchall, else fetchone


def _read(conn: sqlite3.Connection, query: _Query) -> tuple[Any, Any]:
    """Run a query in its own read transaction; return what the runs looked like, and its rows."""
    conn.execute("BEGIN")
    try:
        snapshot = conn.execute(_SNAPSHOT).fetchone()
        cursor = conn.execute(query.sql, query.values)
        return snapshot, cursor.fetchall() if query.all_rows else cursor.fetchone()
    finally:
        conn.execute("COMMIT")


def _read_all(conn: sqlite3.Connection, queries: list[_Query],
              open_reader: Callable[[], sqlite3.Connection] | None) -> list[Any]:
    """Run the queries, the first in this thread and the others in threads of their own; same snapshot."""
    if open_reader is None:
        conn.execute("BEGIN")
        try:
            return [(conn.execute(q.sql, q.values).fetchall() if q.all_rows
                     else conn.execute(q.sql, q.values).fetchone()) for q in queries]
        finally:
            conn.execute("COMMIT")
    for _ in range(_RETRIES):
        answers: list[Any] = [None] * len(queries)
        errors: list[BaseException] = []

        def work(indexes: range) -> None:
            try:
                reader = open_reader()
                try:
                    for index in indexes:
                        answers[index] = _read(reader, queries[index])
                finally:
                    reader.close()
            except BaseException as e:  # reported below, in the calling thread
                errors.append(e)

        # One more thread: this machine may have two cores, and this thread reads too.
        threads = [threading.Thread(target=work, args=(range(1, len(queries)),), daemon=True)]
        for thread in threads:
            thread.start()
        try:
            answers[0] = _read(conn, queries[0])
        finally:
            for thread in threads:
                thread.join()
        if errors:
            raise errors[0]
        if len({snapshot for snapshot, _ in answers}) == 1:
            return [rows for _, rows in answers]
    return _read_all(conn, queries, None)  # runs keep changing: one connection, one transaction


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


def _params(text: str | None, layout: list[str], wanted: list[str], n: int) -> dict[str, Any]:
    """The values of the ``wanted`` parameters from canonical JSON texts joined by \\x1e, one per run.

    When every pset has every parameter of ``layout`` (the experiment's
    parameters, sorted as in canonical JSON), the texts are cut into values
    without parsing each one: canonical JSON is ``{"a":1,"b":2}``, and a
    quote is escaped inside a JSON string, so ``{"a":`` and ``,"b":`` occur
    only as keys. Numbers are then parsed by numpy; anything else by json.
    """
    import numpy as np

    if not wanted or n == 0:
        return {name: [] for name in wanted}
    assert text is not None
    keys = sorted(layout)
    m = len(keys)
    quoted = [json.dumps(key, ensure_ascii=False) for key in keys]  # as canonical JSON writes them
    first = "{" + quoted[0] + ":"
    cut = text.replace("\x1e" + first, "\x1e")
    if cut.startswith(first):
        cut = cut[len(first):]
    for key in quoted[1:]:
        cut = cut.replace("," + key + ":", "\x1f")
    cut = cut.replace("}\x1e", "\x1e")
    cut = cut[:-1] if cut.endswith("}") else cut
    if cut.count("\x1e") != n - 1 or cut.count("\x1f") != n * (m - 1):
        psets = json.loads("[" + text.replace("\x1e", ",") + "]")  # psets of several layouts
        return {name: [pset.get(name) for pset in psets] for name in wanted}
    flat = cut.replace("\x1f", ",").replace("\x1e", ",")
    columns: dict[str, Any] = {}
    if _NOT_A_NUMBER.search(flat) is None:
        numbers = np.fromstring(flat, sep=",", dtype=np.float64).reshape(n, m)
        fraction = _fraction_columns(cut, n, m)
        for j, key in enumerate(keys):
            column = numbers[:, j]
            if not fraction[j] and np.abs(column).max() < 2**53:
                column = column.astype(np.int64)  # exact: every value is an int below 2**53
            elif not fraction[j]:
                column = np.array(json.loads("[" + ",".join(flat.split(",")[j::m]) + "]"))
            columns[key] = column
    else:
        values = json.loads("[" + flat + "]")
        columns = {key: values[j::m] for j, key in enumerate(keys)}
    return {name: columns[name] for name in wanted}


def _fraction_columns(cut: str, n: int, m: int) -> np.ndarray:
    """Which columns hold a number written with a fraction or exponent (a float, not an int)."""
    import numpy as np

    chars = np.frombuffer(cut.encode(), dtype=np.uint8)
    separators = np.flatnonzero((chars == 0x1E) | (chars == 0x1F))
    fractional = np.flatnonzero((chars == ord(".")) | (chars == ord("e")) | (chars == ord("E")))
    tokens = np.searchsorted(separators, fractional)  # the value each such character is in
    counts = np.bincount(tokens, minlength=n * m)
    return (counts.reshape(n, m) > 0).any(axis=0)


def _values(cells: list[Any]) -> Any:
    """A column of plain result values: a numpy array when they are all numbers of one type."""
    import numpy as np

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
    fields: list[FieldRow],
    objects: ObjectStore,
    *,
    statuses: Sequence[str] | None = ("done",),
    names: Sequence[str] | None = None,
    where: str | None = None,
    open_reader: Callable[[], sqlite3.Connection] | None = None,
) -> pd.DataFrame:
    """Return one row per selected run of an experiment: parameters, scalar results, then :data:`META`.

    :param conn: a connection to the store.
    :param fields: the experiment's names (:func:`recorder.catalog.fields_of`).
    :param statuses: the statuses of the runs to include; None includes all.
    :param names: the parameters and results to include; None includes all.
    :param where: an SQL condition over the experiment's wide view.
    :param open_reader: opens another read-only connection to the store,
        so that queries run in parallel; without it they run one by one.
    """
    import numpy as np
    import pandas as pd

    params, results = columns(fields)
    all_params, all_results = params, results
    if names is not None:
        unknown = [n for n in names if n not in params and n not in results]
        if unknown:
            raise RecorderError(
                f"no parameter or scalar result named {unknown[0]!r} in this experiment; "
                f"it has {', '.join(params + results) or 'none yet'}"
            )
        params = [n for n in params if n in names]
        results = [n for n in results if n in names]
    kinds: dict[str, set[str]] = {}
    for row in fields:
        if row.role == "result":
            kinds.setdefault(row.name, set()).add(row.kind)
    plain = {n for n in results if kinds.get(n) == {""}}
    condition, values = selection(experiment, statuses, where, all_params, all_results)

    # Every pset's canonical JSON, in one string; parsed in bulk by _params below.
    param_sql = ", group_concat(params, char(30))" if params else ""
    # One status selected: no need to read it for each run.
    status_sql = "" if statuses is not None and len(statuses) == 1 else f", group_concat({_STATUS_CODE})"
    status_values = list(STATUSES) if status_sql else []
    cells, joins = [], []
    for i, name in enumerate(results):
        joins.append(f"LEFT JOIN results AS x{i} ON x{i}.run = r.pk AND x{i}.name = ?")
        cells.append(f"x{i}.value" if name in plain else f"x{i}.kind, x{i}.value")
    queries = [
        _Query(_RESULT_CELLS.format(cells=", ".join(cells), joins=" ".join(joins), condition=condition),
               [*results, *values], True) if results else _Query(_NOTHING, [], True),
        _Query(_RUN_AGGREGATES.format(condition=condition, status=status_sql), [*status_values, *values], False),
        _Query(_PSET_AGGREGATES.format(params=param_sql, condition=condition), values, False),
        _Query(_SESSIONS, [], True),
    ]
    try:
        rows, run_agg, pset_agg, sessions = _read_all(conn, queries, open_reader)
    except sqlite3.Error as e:
        if where is not None:
            raise RecorderError(f"cannot select runs where {where!r}: {e}") from e
        raise RecorderError(f"reading the runs failed: {e}") from e
    n = run_agg[0]
    if (results and len(rows) != n) or pset_agg[0] != n:
        raise RecorderError(f"read {len(rows)} and {pset_agg[0]} rows for {n} runs; please report this")

    data: dict[str, Any] = _params(pset_agg[2] if params else None, all_params, params, n)
    column = 0
    for name in results:
        if name in plain:
            data[name] = _values([row[column] for row in rows])
            column += 1
        else:
            data[name] = [_scalar(row[column], row[column + 1], objects) for row in rows]
            column += 2

    session_pks = np.array([s[0] for s in sessions], dtype=np.int64)
    session_codes = np.searchsorted(session_pks, _ints(run_agg[4], n))
    session_ids = [s[1] for s in sessions]
    env_shas = sorted({s[2] for s in sessions})
    env_codes = np.array([env_shas.index(s[2]) for s in sessions], dtype=np.int64)
    duration = _ints(run_agg[2], n)
    data["_run_id"] = _hex_column(run_agg[3], 24, n)
    data["_pset_hash"] = _hex_column(pset_agg[1], 20, n)
    status_codes = (_ints(run_agg[5], n) if status_sql
                    else np.full(n, STATUSES.index(statuses[0]) if statuses else 0, dtype=np.int64))
    data["_status"] = pd.Categorical.from_codes(status_codes, categories=list(STATUSES))
    data["_time_start"] = pd.to_datetime(_ints(run_agg[1], n), unit="ms", utc=True)
    data["_duration_s"] = np.where(duration < 0, np.nan, duration / 1e6)
    data["_session"] = pd.Categorical.from_codes(session_codes, categories=session_ids)
    data["_env_sha"] = pd.Categorical.from_codes(env_codes[session_codes], categories=env_shas)
    return pd.DataFrame(data, columns=[*params, *results, *META], copy=False)
