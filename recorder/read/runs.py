"""The runs of one experiment as a table (``recorder runs``): a row per run, a column per parameter and result.

Like DVC's ``exp show``: newest first (or sorted by a parameter or result),
at most ``limit`` rows, each with the run's short id, status, start,
duration, every parameter and every scalar result of the experiment, and
the last line of a failed run's error. Plain dicts and lists, so that the
CLI only formats them; nothing here imports pandas.

The runs are picked by :func:`recorder.read.frame.selection` (the same
machinery as :meth:`recorder.Database.df`): ``where`` runs in a query of
its own over the experiment's wide view, on the read-only connection, and
can only narrow the runs picked.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import RecorderError, StoreError
from ..store import catalog
from ..store.quoting import quote_ident
from ..store.viewsql import RUN_COLUMNS
from .frame import STATUSES, selection
from .show import entries

if TYPE_CHECKING:
    from .database import Database

__all__ = ["DEFAULT_LIMIT", "RunsTable", "runs", "number_text"]

#: How many runs ``recorder runs`` shows without ``-n``.
DEFAULT_LIMIT = 50

_COUNT = "SELECT count(*) FROM runs AS r WHERE {condition}"
# The sort runs over the wide view (typed columns), restricted to the runs picked; NULLs last either way.
_SORTED = """
SELECT _pk FROM (
{wide}
) WHERE _pk IN (SELECT r.pk FROM runs AS r WHERE {condition})
ORDER BY {column} IS NULL, {column} {direction}, _pk DESC
"""


class RunsTable(NamedTuple):
    """What ``recorder runs`` shows: the columns, the runs (in order) and how many the selection holds."""

    #: The experiment.
    experiment: str
    #: Its parameter names, in the order they were first recorded.
    params: list[str]
    #: Its scalar result names, in the order they were first recorded.
    results: list[str]
    #: One dict per run shown, as :func:`recorder.read.show.log` yields them
    #: (``run_id``, ``short_id``, ``status``, ``time_start``, ``duration_s``,
    #: ``params``, ``results``, ``error``, ...).
    runs: list[dict[str, Any]]
    #: How many runs the selection holds (``len(runs)`` or more, when ``limit`` cut it).
    total: int


def runs(
    db: Database,
    experiment: str,
    *,
    where: str | None = None,
    status: str | Sequence[str] | None = None,
    sort: str | None = None,
    descending: bool = False,
    limit: int | None = DEFAULT_LIMIT,
    tag: str | None = None,
) -> RunsTable:
    """Return the runs of ``experiment`` as a table: newest first, or sorted by ``sort``.

    :param where: an SQL condition over the experiment's view, e.g. ``"b = 8 AND energy > 1"``.
    :param status: only runs with this status (a str or a list); None: every run.
    :param sort: a parameter, result or run column (``duration_s``, ``time_start``) of the
        view to sort by, ascending unless ``descending``; runs without a value come last,
        ties newest first.
    :param limit: at most this many runs (None: all of them).
    :param tag: only the runs with this tag. Deleted runs (``recorder rm``) are never shown.
    :raises ExperimentNotFound: when the experiment is not in the store.
    :raises RecorderError: for an unknown status or sort column, or a ``where`` SQLite refuses.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise RecorderError(f"limit={limit!r} is not a number of runs (an int ≥ 1, or None for all)")
    statuses = [status] if isinstance(status, str) else None if status is None else list(status)
    for s in statuses or ():
        if s not in STATUSES:
            raise RecorderError(f"status {s!r} is not one of {', '.join(STATUSES)}")
    pk = db.experiment_key(experiment)
    try:
        params, results = catalog.columns(catalog.fields_of(db.conn, pk))
    except sqlite3.Error as e:
        raise StoreError(f"reading the store {db.root} failed: {e}") from e
    condition, values = selection(db.conn, pk, statuses, where, params, results, tag=tag)
    try:
        (total,) = db.conn.execute(_COUNT.format(condition=condition), values).fetchone()
        if sort is None:
            shown = list(entries(db, condition, values, limit=limit))
        else:
            picked = _sorted(db, experiment, pk, params, results, condition, values, sort, descending, limit)
            chosen = "r.pk IN (SELECT value FROM json_each(?))"
            by_pk = {e["run_id"]: e for e in entries(db, chosen, [json.dumps(picked)])}
            ids = [row[0] for row in db.conn.execute(_IDS, [json.dumps(picked)])]
            shown = [by_pk[i] for i in ids]
    except sqlite3.Error as e:
        raise StoreError(f"reading the store {db.root} failed: {e}") from e
    return RunsTable(experiment, list(params), list(results), shown, int(total))


# The ids of the runs picked, in the order picked (json_each keeps the array's order).
_IDS = "SELECT lower(hex(r.id)) FROM json_each(?) AS j JOIN runs AS r ON r.pk = j.value ORDER BY j.key"


def _sorted(
    db: Database,
    db_name: str,
    experiment: int,
    params: dict[str, set[str]],
    results: dict[str, set[str]],
    condition: str,
    values: list[Any],
    sort: str,
    descending: bool,
    limit: int | None,
) -> list[int]:
    """The keys of the runs picked, sorted by the view's column ``sort``, the first ``limit`` of them."""
    known = [*params, *results, *RUN_COLUMNS]
    if sort not in known:
        raise RecorderError(
            f"cannot sort by {sort!r}: experiment {db_name!r} has no such parameter or result; "
            f"sort by one of {', '.join(map(repr, known))}"
        )
    column = quote_ident(sort)
    sql = _SORTED.format(
        wide=catalog.select_sql(experiment, params, results, with_pk=True),
        condition=condition,
        column=column,
        direction="DESC" if descending else "ASC",
    )
    if limit is not None:
        sql += " LIMIT ?"
    return [pk for (pk,) in db.conn.execute(sql, [*values, limit] if limit is not None else values)]


def number_text(value: Any, precision: int | None) -> str:
    """A number for a table: ``precision`` significant digits (``g``), or exactly (``repr``) when None.

    Ints are always exact; bools are ``True``/``False``.
    """
    if isinstance(value, float) and precision is not None and math.isfinite(value):
        return f"{value:.{precision}g}"
    if isinstance(value, (bool, int, float)):
        return repr(value)
    return str(value)
