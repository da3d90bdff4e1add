"""Summaries of a store and of an experiment, as dicts and as HTML for notebooks (``_repr_html_``).

Jupyter shows an object by its ``_repr_html_``: :class:`recorder.Database`
as its experiments with their runs by status, :class:`ExperimentHandle` (from
:meth:`recorder.Database.experiment`) as its runs by status and its
parameters and results with their ranges, :class:`recorder.Recorder` as its
session. Every name and value from a store is HTML-escaped: a store's
contents are untrusted, and an experiment named ``<script>`` must show as
text, not run.
"""

from __future__ import annotations

import html
import sqlite3
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from ..store import catalog
from ..store.quoting import quote_ident
from .frame import STATUSES

if TYPE_CHECKING:
    import pandas as pd

    from .database import Database
    from .runs import RunsTable

__all__ = ["ExperimentHandle", "experiment_summary", "html_table", "store_html", "experiment_html"]

_BY_STATUS = "SELECT status, count(*) FROM runs WHERE experiment = ? AND deleted IS NULL GROUP BY status"
_RANGE = "SELECT {columns} FROM (\n{wide}\n)"


def experiment_summary(db: Database, name: str) -> dict[str, Any]:
    """An experiment's runs by status, and its parameters and scalar results with their ranges.

    ``{"experiment", "runs", "by_status": {status: n}, "params": {name: {"values", "min", "max",
    "distinct"}}, "results": {name: {"values", "min", "max"}}, "other_results": [names of array
    and bytes results]}``; ``values`` counts the runs that have one. Over every run, whatever its status.

    :raises ExperimentNotFound: when the experiment is not in the store.
    """
    pk = db.experiment_key(name)
    try:
        fields = catalog.fields_of(db.conn, pk)
        params, results = catalog.columns(fields)
        by_status = dict(db.conn.execute(_BY_STATUS, (pk,)).fetchall())
        items = [(n, True) for n in params] + [(n, False) for n in results]
        cells: list[Any] = []
        if items:
            columns = ", ".join(
                f"count({c}), min({c}), max({c})" + (f", count(DISTINCT {c})" if is_param else "")
                for c, is_param in ((quote_ident(n), p) for n, p in items)
            )
            wide = catalog.select_sql(pk, params, results)
            cells = list(db.conn.execute(_RANGE.format(columns=columns, wide=wide)).fetchone())
    except sqlite3.Error as e:
        raise StoreError(f"reading the store {db.root} failed: {e}") from e
    summary: dict[str, Any] = {
        "experiment": name,
        "runs": sum(by_status.values()),
        "by_status": {s: by_status.get(s, 0) for s in STATUSES},
        "params": {},
        "results": {},
        "other_results": [f.name for f in fields if f.role == "result" and f.name not in results],
    }
    summary["other_results"] = list(dict.fromkeys(summary["other_results"]))
    for n, is_param in items:
        count, low, high = cells[:3]
        entry = {"values": count, "min": low, "max": high}
        if is_param:
            entry["distinct"] = cells[3]
            summary["params"][n] = entry
            cells = cells[4:]
        else:
            summary["results"][n] = entry
            cells = cells[3:]
    return summary


class ExperimentHandle:
    """An experiment of a store, opened for reading: ``db.experiment("lorenz")``.

    A small handle: :meth:`df` and :meth:`runs` as the Database's, for this
    experiment; :meth:`summary`; in a notebook it shows its runs by status
    and its parameters and results with their ranges.
    """

    def __init__(self, db: Database, name: str) -> None:
        db.experiment_key(name)  # a clear error now, naming the experiments there are
        self.db, self.name = db, name

    def df(self, **options: Any) -> pd.DataFrame:
        """Return ``db.df(name, **options)``: one row per run (done runs by default)."""
        return self.db.df(self.name, **options)

    def runs(self, **options: Any) -> RunsTable:
        """Return the runs as ``recorder runs`` shows them (see :func:`recorder.read.runs.runs`)."""
        from .runs import runs

        return runs(self.db, self.name, **options)

    def summary(self) -> dict[str, Any]:
        """Return the runs by status and the parameters and results with their ranges (see :func:`experiment_summary`)."""
        return experiment_summary(self.db, self.name)

    def _repr_html_(self) -> str:
        return experiment_html(self.summary())

    def __repr__(self) -> str:
        return f"ExperimentHandle({self.name!r} in {str(self.db.root)!r})"


def _text(value: Any) -> str:
    """A value as HTML text: floats to 6 significant digits, None as empty, everything escaped."""
    if value is None:
        return ""
    if isinstance(value, float):
        return html.escape(f"{value:.6g}")
    return html.escape(str(value))


def html_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[bool] = ()) -> str:
    """An HTML table; every header and cell escaped; ``numeric`` columns right-aligned."""
    right = ' style="text-align: right"'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td{right if i < len(numeric) and numeric[i] else ''}>{_text(c)}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def store_html(info: dict[str, Any]) -> str:
    """HTML for a store: its path and each experiment with its runs by status (``info``: :func:`show.status`)."""
    headers = ["experiment", "runs", *STATUSES]
    rows = [[e[h] for h in headers] for e in info["experiments"]]
    return (
        f"<div><strong>recorder store</strong> <code>{html.escape(info['store'])}</code>: "
        f"{len(rows)} experiment{'s' if len(rows) != 1 else ''}, {info['objects']} stored arrays"
        f"{html_table(headers, rows, [False] + [True] * (len(headers) - 1))}</div>"
    )


def experiment_html(summary: dict[str, Any]) -> str:
    """HTML for an experiment: runs by status, then its parameters and results with their ranges."""
    statuses = ", ".join(f"{n} {html.escape(s)}" for s, n in summary["by_status"].items() if n)
    params = html_table(
        ["parameter", "runs", "distinct", "min", "max"],
        [[n, e["values"], e["distinct"], e["min"], e["max"]] for n, e in summary["params"].items()],
        [False, True, True, True, True],
    )
    results = html_table(
        ["result", "runs", "min", "max"],
        [[n, e["values"], e["min"], e["max"]] for n, e in summary["results"].items()],
        [False, True, True, True],
    )
    other = (
        f"<p>other results (arrays, bytes): {', '.join(html.escape(n) for n in summary['other_results'])}</p>"
        if summary["other_results"]
        else ""
    )
    return (
        f"<div><strong>experiment</strong> <code>{html.escape(summary['experiment'])}</code>: "
        f"{summary['runs']} run{'s' if summary['runs'] != 1 else ''}{' (' + statuses + ')' if statuses else ''}{params}{results}{other}</div>"
    )
