"""One self-contained HTML file that shows an experiment: ``recorder report`` and :meth:`Database.report`.

::

    db.report("lorenz", "lorenz.html", color="energy", array="traj")

The file opens offline: plotly's JavaScript is inlined once, the data of
every figure and of the runs table is inline JSON, and nothing is fetched
when it is viewed. It holds a header (runs by status, sessions with their
commits and hosts, the time span), a parallel-coordinates plot of the
explored parameters and scalar results, each scalar result against each
explored parameter (a line per value of the other parameter when two were
explored, and a heat map when both are numbers on a grid), a sortable
table of the runs, the failures with their errors, and, with ``array``, a
few runs' arrays.

Everything read from the store (names, values, errors, messages, hosts) is
untrusted: it is HTML-escaped in the page, escaped again for plotly's
labels (which read a few tags), and JSON in a ``<script>`` has ``<``, ``>``
and ``&`` as ``\\u`` escapes, so no text can close the script or open a tag.

Big experiments are summarised, and the report says where: above
:data:`PARCOORDS_MAX_RUNS` runs the parallel coordinates show a random
sample, the scatter of runs behind each line at most
:data:`SCATTER_MAX_POINTS`, a numeric parameter of more than
:data:`LINE_MAX_X` values is binned, the table holds the newest
:data:`TABLE_MAX_RUNS` runs, and long arrays are thinned.
"""

from __future__ import annotations

import html
import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ExtraNotInstalled, RecorderError
from ..store import catalog
from ..store.ids import short_ids

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from .database import Database

__all__ = [
    "ARRAY_MAX_POINTS",
    "HEATMAP_MAX_SIDE",
    "HUE_MAX",
    "LINE_MAX_X",
    "PARCOORDS_MAX_RUNS",
    "SCATTER_MAX_POINTS",
    "TABLE_MAX_RUNS",
    "ReportFile",
    "needs",
    "write_report",
]

#: Runs drawn in the parallel-coordinates plot at most; above, a random sample (seeded, so a report is repeatable).
PARCOORDS_MAX_RUNS = 5_000
#: Runs drawn as points behind the lines of a result against a parameter at most; above, a random sample.
SCATTER_MAX_POINTS = 5_000
#: Distinct values of a numeric parameter a line follows one by one; above, the line goes through bins.
LINE_MAX_X = 500
_BINS = 100
#: Values of the second parameter drawn as lines of their own at most; above, one line of means.
HUE_MAX = 12
#: Runs in the sortable table at most (the newest); the rest are a ``recorder export`` away.
TABLE_MAX_RUNS = 10_000
#: Points of an array drawn at most; a longer one is thinned to every k-th value.
ARRAY_MAX_POINTS = 10_000
#: Rows and columns of a heat map at most (a 2-D array is thinned to every k-th row and column).
HEATMAP_MAX_SIDE = 200
_GRID_COVERAGE = 0.5
_FAILED_RUNS_SHOWN = 100
_ERROR_KINDS_SHOWN = 20
_SESSIONS_SHOWN = 50
_PARCOORDS_MAX_DIMENSIONS = 60  # plotly's limit
_CATEGORIES_MAX = 50
_SEED = 0

_SESSIONS = """
SELECT id, status, time_start, time_end, message, git_commit, git_branch, git_dirty, git_auto_committed, host, user
FROM sessions WHERE experiment = ? ORDER BY pk
"""


@dataclass(frozen=True)
class ReportFile:
    """What :func:`write_report` wrote: the file, how many runs it covers, its size, and what it summarised."""

    path: Path
    runs: int
    bytes: int
    notes: tuple[str, ...] = field(default=())


def needs(module: str, what: str) -> Any:
    """Import an optional module of the ``report`` extra, or say in one line how to install it.

    :raises ExtraNotInstalled: when the module cannot be imported.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ExtraNotInstalled(
            f"{what} needs {module.split('.')[0]}, which is not installed: pip install 'recorder[report]'"
        ) from e


def write_report(
    db: Database,
    experiment: str,
    path: str | os.PathLike[str],
    *,
    color: str | None = None,
    array: str | None = None,
    where: str | None = None,
    array_runs: int = 5,
) -> ReportFile:
    """Write the HTML report of an experiment's runs (those ``where`` selects) to ``path``; see the module.

    The file is written under a temporary name and renamed, so it is whole or absent.

    :param color: the scalar result (or numeric parameter) that colours the parallel coordinates;
        default the first scalar result.
    :param array: an array result: the first ``array_runs`` done runs that have it get their arrays plotted.
    :param where: an SQL condition over the experiment's view: only these runs are in the report.
    :raises ExtraNotInstalled: when plotly is not installed.
    :raises ExperimentNotFound: when the experiment is not in the store.
    """
    pio = needs("plotly.io", "recorder report")
    if array_runs < 1:
        raise RecorderError(f"array_runs={array_runs!r}: plot the arrays of at least one run")
    experiment_pk = db.experiment_key(experiment)
    df = db.df(experiment, status=None, where=where)
    fields = catalog.fields_of(db.conn, experiment_pk)
    param_kinds, result_kinds = catalog.columns(fields)
    params = [n for n in param_kinds if n in df.columns]
    results = [n for n in result_kinds if n in df.columns]
    page = _Page(pio)
    done = df[df["_status"] == "done"]
    explored = [n for n in params if _distinct(df[n]) > 1]
    numeric = {n: v for n in results if (v := _as_float(done[n])) is not None}
    if color is not None and color not in numeric and not (color in params and _as_float(done[color]) is not None):
        choices = [*numeric, *(n for n in params if _as_float(done[n]) is not None)]
        raise RecorderError(
            f"cannot colour by {color!r}: it is not a numeric result or parameter of {experiment!r}; "
            f"choose one of {', '.join(map(repr, choices)) or '(none)'}"
        )
    if array is not None:
        arrays = [f.name for f in fields if f.role == "result" and f.name not in result_kinds]
        if array not in arrays:
            raise RecorderError(
                f"no array result {array!r} in {experiment!r}; it has {', '.join(map(repr, arrays)) or 'none'}"
            )

    short = _short_ids(db, df)
    page.header(db, experiment, experiment_pk, df, params, explored, where)
    page.parcoords(done, explored, numeric, color)
    page.against(done, explored, numeric)
    page.table(df, params, results, short)
    page.failures(df, params, short)
    if array is not None:
        page.arrays(db, experiment, array, where, array_runs)
    text = page.render(experiment)

    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as e:
        raise RecorderError(f"cannot write the report {target}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return ReportFile(target, len(df), len(text.encode("utf-8")), tuple(page.notes))


# -- the page ---------------------------------------------------------------------


class _Page:
    """The report's sections as HTML, the figures through plotly (its JavaScript inlined with the first one)."""

    def __init__(self, pio: Any) -> None:
        self.pio = pio
        self.parts: list[str] = []
        self.notes: list[str] = []
        self.figures = 0
        self.nav: list[tuple[str, str]] = []

    def section(self, anchor: str, title: str) -> None:
        """Start a section: a heading, linked from the navigation at the top."""
        self.nav.append((anchor, title))
        self.parts.append(f'<h2 id="{anchor}">{_h(title)}</h2>')

    def note(self, text: str) -> None:
        """A summary the report made (a sample, bins, a cut): said where it happened and listed at the top."""
        self.notes.append(text)
        self.parts.append(f'<p class="note">{_h(text)}</p>')

    def figure(self, data: list[dict[str, Any]], layout: dict[str, Any], height: int = 420) -> None:
        """Add a plotly figure (data and layout as plain dicts, labels escaped by the caller)."""
        layout = {"height": height, "margin": {"l": 60, "r": 30, "t": 50, "b": 50}, **layout}
        snippet = self.pio.to_html(
            {"data": data, "layout": layout},
            include_plotlyjs=self.figures == 0,  # the library once, inline: the file opens offline
            full_html=False,
            validate=False,  # the figures are built here; validating each costs more than drawing it
            div_id=f"figure-{self.figures}",
            default_height=f"{height}px",
            config={"displaylogo": False, "responsive": True},
        )
        self.figures += 1
        self.parts.append(f'<div class="figure">{snippet}</div>')

    # -- header --------------------------------------------------------------------

    def header(
        self,
        db: Database,
        experiment: str,
        experiment_pk: int,
        df: pd.DataFrame,
        params: list[str],
        explored: list[str],
        where: str | None,
    ) -> None:
        """The runs by status, the time span, the parameters, and the sessions with their code and host."""
        counts = df["_status"].value_counts()
        by_status = ", ".join(f"{int(counts[s])} {s}" for s in counts.index if counts[s])
        lines = [f"<p><b>{len(df)}</b> runs{': ' + _h(by_status) if by_status else ''}"]
        if where is not None:
            lines.append(f" (those where <code>{_h(where)}</code>)")
        lines.append("</p>")
        if len(df):
            start = df["_time_start"].min()
            ends = df["_time_start"] + _timedelta(df["_duration_s"])
            end = max(ends.max(), df["_time_start"].max())
            lines.append(
                f"<p>From {_h(_iso(start))} to {_h(_iso(end))} ({_h(_span((end - start).total_seconds()))})</p>"
            )
        constant = [n for n in params if n not in explored]
        if explored:
            lines.append(f"<p>Explored parameters: {', '.join(f'<code>{_h(n)}</code>' for n in explored)}</p>")
        if constant and len(df):
            shown = ", ".join(f"<code>{_h(n)}</code> = {_h(_text(df[n].iloc[0]))}" for n in constant)
            lines.append(f"<p>Constant parameters: {shown}</p>")
        self.parts.append("".join(lines))
        try:
            sessions = db.conn.execute(_SESSIONS, (experiment_pk,)).fetchall()
        except Exception as e:  # sqlite3.Error, or a damaged cell
            raise RecorderError(f"reading the sessions of {experiment!r} failed: {e}") from e
        runs_in = df["_session"].value_counts()
        self.parts.append(
            f"<h3>Sessions ({len(sessions)})</h3>"
            '<table class="plain"><thead><tr><th>session</th><th>status</th><th>started</th><th>ended</th>'
            "<th>runs here</th><th>commit</th><th>branch</th><th>host</th><th>user</th><th>message</th>"
            "</tr></thead><tbody>"
        )
        rows = []
        for s in sessions[-_SESSIONS_SHOWN:]:
            sid, status, started, ended, message, commit, branch, dirty, auto, host, user = s
            code = _text(commit)[:12] if commit else "(no git)"
            code += " (dirty)" if dirty else ""
            code += " (auto-committed)" if auto else ""
            rows.append(
                "<tr>"
                + "".join(
                    f"<td>{_h(_text(v)) if v is not None else ''}</td>"
                    for v in (sid, status, started, ended, int(runs_in.get(sid, 0)), code, branch, host, user, message)
                )
                + "</tr>"
            )
        self.parts.append("".join(rows) + "</tbody></table>")
        if len(sessions) > _SESSIONS_SHOWN:
            self.note(f"The table shows the last {_SESSIONS_SHOWN} of {len(sessions)} sessions.")

    # -- parallel coordinates ------------------------------------------------------

    def parcoords(
        self, done: pd.DataFrame, explored: list[str], numeric: dict[str, np.ndarray], color: str | None
    ) -> None:
        """The explored parameters and numeric results of the done runs as parallel coordinates."""
        import numpy as np

        self.section("parcoords", "Parameters and results")
        if done.empty:
            self.parts.append("<p>No run is done yet.</p>")
            return
        rows = np.arange(len(done))
        if len(done) > PARCOORDS_MAX_RUNS:
            rows = np.sort(np.random.default_rng(_SEED).choice(len(done), PARCOORDS_MAX_RUNS, replace=False))
            self.note(
                f"The parallel coordinates show {PARCOORDS_MAX_RUNS:,} of the {len(done):,} done runs, "
                "chosen at random."
            )
        dimensions: list[dict[str, Any]] = []
        for name in explored:
            values = _as_float(done[name])
            if values is not None:
                dimensions.append({"label": _t(name), "values": _finite(values[rows])})
                continue
            labels = [_text(v) for v in done[name].iloc[rows].tolist()]
            categories = sorted(set(labels))
            if len(categories) > _CATEGORIES_MAX:
                self.note(f"{name} has {len(categories)} distinct values, too many to draw as an axis.")
                continue
            code = {c: i for i, c in enumerate(categories)}
            dimensions.append(
                {
                    "label": _t(name),
                    "values": [code[label] for label in labels],
                    "tickvals": list(range(len(categories))),
                    "ticktext": [_t(c) for c in categories],
                }
            )
        for name, values in numeric.items():
            dimensions.append({"label": _t(name), "values": _finite(values[rows])})
        if len(dimensions) > _PARCOORDS_MAX_DIMENSIONS:
            self.note(f"The parallel coordinates show the first {_PARCOORDS_MAX_DIMENSIONS} of {len(dimensions)} axes.")
            dimensions = dimensions[:_PARCOORDS_MAX_DIMENSIONS]
        if not dimensions:
            self.parts.append("<p>No explored parameter and no numeric result to draw.</p>")
            return
        line: dict[str, Any] = {}
        by = color if color is not None else next(iter(numeric), None)
        if by is not None:
            values = numeric[by] if by in numeric else _as_float(done[by])
            assert values is not None  # checked by write_report
            line = {
                "color": _finite(values[rows]),
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": {"text": _t(by)}},
            }
            self.parts.append(f"<p>Coloured by <code>{_h(by)}</code>. Drag along an axis to select runs.</p>")
        self.figure([{"type": "parcoords", "line": line, "dimensions": dimensions}], {}, height=480)

    # -- results against parameters ------------------------------------------------

    def against(self, done: pd.DataFrame, explored: list[str], numeric: dict[str, np.ndarray]) -> None:
        """Each numeric result against each explored parameter; a heat map first when two of them form a grid."""
        if not numeric or not explored or done.empty:
            return
        self.section("results", "Results against parameters")
        grid = None
        if len(explored) == 2:
            grid = _grid(done, explored[0], explored[1])
        for y, values in numeric.items():
            self.parts.append(f"<h3>{_h(y)}</h3>")
            if grid is not None:
                self.heatmap(done, grid, y, values)
            for x in explored:
                hue = next((p for p in explored if p != x), None) if len(explored) == 2 else None
                self.line(done, x, y, values, hue)

    def heatmap(self, done: pd.DataFrame, grid: tuple[str, str, Any, Any], y: str, values: np.ndarray) -> None:
        """The mean of a result in each cell of a grid of two numeric parameters (a hole where no run is done)."""
        import numpy as np
        import pandas as pd

        a, b, xs, ys = grid
        table = pd.DataFrame({"x": done[a].to_numpy(), "y": done[b].to_numpy(), "v": values})
        cells = table.groupby(["y", "x"], sort=True)["v"]
        means = cells.mean().unstack("x").reindex(index=ys, columns=xs)
        repeated = bool((cells.size() > 1).any())
        z = np.where(np.isfinite(means.to_numpy(dtype=float)), means.to_numpy(dtype=float), np.nan)
        self.figure(
            [
                {
                    "type": "heatmap",
                    "x": [_plain(v) for v in xs],
                    "y": [_plain(v) for v in ys],
                    "z": [[None if math.isnan(c) else float(c) for c in row] for row in z],
                    "colorscale": "Viridis",
                    "colorbar": {"title": {"text": _t(y)}},
                    "hovertemplate": f"{_t(a)}=%{{x}}<br>{_t(b)}=%{{y}}<br>{_t(y)}=%{{z}}<extra></extra>",
                }
            ],
            {
                "title": {
                    "text": _t(f"{y} over {a} and {b}" + (" (mean of the runs of each cell)" if repeated else ""))
                },
                "xaxis": {"title": {"text": _t(a)}, "type": "category" if len(xs) <= 20 else "linear"},
                "yaxis": {"title": {"text": _t(b)}, "type": "category" if len(ys) <= 20 else "linear"},
            },
        )

    def line(self, done: pd.DataFrame, x: str, y: str, values: np.ndarray, hue: str | None) -> None:
        """A result against a parameter: the mean at each value (a line per value of ``hue``), the runs behind it."""
        import numpy as np
        import pandas as pd

        xs = _as_float(done[x])
        numeric_x = xs is not None
        x_key: Any = xs if xs is not None else np.array([_text(v) for v in done[x].tolist()], dtype=object)
        binned = False
        if xs is not None:
            finite = xs[np.isfinite(xs)]
            if len(np.unique(finite)) > LINE_MAX_X:
                edges = np.linspace(finite.min(), finite.max(), _BINS + 1)
                at = np.clip(np.searchsorted(edges, xs, side="right") - 1, 0, _BINS - 1)
                x_key = np.where(np.isfinite(xs), (edges[at] + edges[at + 1]) / 2, np.nan)
                binned = True
        table = pd.DataFrame({"x": x_key, "v": values})
        groups: list[tuple[str | None, pd.DataFrame]] = [(None, table)]
        if hue is not None:
            labels = [_text(v) for v in done[hue].tolist()]
            kinds = sorted(set(labels), key=_sort_key(done[hue]))
            if len(kinds) <= HUE_MAX:
                table["hue"] = labels
                groups = [(k, table[table["hue"] == k]) for k in kinds]
            else:
                self.note(
                    f"{hue} has {len(kinds)} values, more than {HUE_MAX} lines: the line of {y} against {x} is the mean over them."
                )
        data: list[dict[str, Any]] = []
        repeated = table.groupby("x", sort=False).size().max() > (len(groups) if hue is not None else 1)
        if repeated or binned:
            rows = np.arange(len(table))
            if len(rows) > SCATTER_MAX_POINTS:
                rows = np.sort(np.random.default_rng(_SEED).choice(len(rows), SCATTER_MAX_POINTS, replace=False))
                self.note(
                    f"The points behind {y} against {x} are {SCATTER_MAX_POINTS:,} of {len(table):,} runs, chosen at random."
                )
            points_x = xs[rows] if xs is not None else x_key[rows]
            data.append(
                {
                    "type": "scattergl" if len(rows) > 1000 else "scatter",
                    "mode": "markers",
                    "x": _finite(points_x) if numeric_x else list(points_x),
                    "y": _finite(values[rows]),
                    "name": "runs",
                    "marker": {"color": "rgba(120,120,120,0.35)", "size": 5},
                    "hoverinfo": "x+y",
                }
            )
        for label, part in groups:
            means = part.groupby("x", sort=True)["v"].mean()
            if not numeric_x:
                means = means.reindex(sorted(means.index, key=_sort_key(done[x])))
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "x": _finite(means.index.to_numpy(dtype=float)) if numeric_x else [_t(v) for v in means.index],
                    "y": _finite(means.to_numpy(dtype=float)),
                    "name": _t(f"{hue} = {label}" if label is not None else f"mean of {y}"),
                }
            )
        if binned:
            self.note(
                f"{x} has more than {LINE_MAX_X} distinct values: the line of {y} against it goes through {_BINS} bins."
            )
        ylabel = f"{y} (mean)" if repeated or binned else y
        self.figure(
            data,
            {
                "title": {"text": _t(f"{y} against {x}")},
                "xaxis": {"title": {"text": _t(x)}, **({} if numeric_x else {"type": "category"})},
                "yaxis": {"title": {"text": _t(ylabel)}},
                "legend": {"title": {"text": _t(hue) if hue is not None and len(groups) > 1 else ""}},
            },
            height=380,
        )

    # -- the runs ------------------------------------------------------------------

    def table(self, df: pd.DataFrame, params: list[str], results: list[str], short: dict[str, str]) -> None:
        """The runs as inline JSON, which the page's script shows as a sortable table, by pages."""
        self.section("runs", "Runs")
        shown = df
        if len(df) > TABLE_MAX_RUNS:
            shown = df.iloc[len(df) - TABLE_MAX_RUNS :]
            self.note(
                f"The table holds the newest {TABLE_MAX_RUNS:,} of {len(df):,} runs; "
                "recorder export writes them all to a file."
            )
        columns: list[tuple[str, list[Any]]] = [
            ("run", [short.get(i, i) for i in shown["_run_id"].tolist()]),
            ("status", [str(s) for s in shown["_status"].tolist()]),
            ("started", [_iso(t) for t in shown["_time_start"].tolist()]),
            ("duration_s", [_cell(v) for v in shown["_duration_s"].tolist()]),
        ]
        columns += [(name, [_cell(v) for v in shown[name].tolist()]) for name in (*params, *results)]
        if "_error" in shown.columns:
            columns.append(("error", [_cell(v) for v in shown["_error"].tolist()]))
        data = {"columns": [name for name, _ in columns], "values": [values for _, values in columns]}
        self.parts.append(
            '<p class="hint">Click a column header to sort by it (again to reverse).</p>'
            '<div id="runs-pager" class="pager"></div><div class="scroll"><table id="runs-table" class="runs">'
            "</table></div>"
            f'<script type="application/json" id="runs-data">{_script_json(data)}</script>'
        )

    def failures(self, df: pd.DataFrame, params: list[str], short: dict[str, str]) -> None:
        """The distinct errors with how many runs each stopped, then the newest failed runs with their parameters."""
        if "_error" not in df.columns:
            return
        failed = df[df["_status"] == "failed"]
        self.section("failures", f"Failures ({len(failed)})")
        if failed.empty:
            self.parts.append("<p>No run failed.</p>")
            return
        kinds = failed["_error"].fillna("(no error recorded)").value_counts()
        rows = "".join(
            f"<tr><td class='num'>{int(n)}</td><td><pre>{_h(message)}</pre></td></tr>"
            for message, n in kinds.iloc[:_ERROR_KINDS_SHOWN].items()
        )
        self.parts.append(
            f'<table class="plain"><thead><tr><th>runs</th><th>error</th></tr></thead><tbody>{rows}</tbody></table>'
        )
        if len(kinds) > _ERROR_KINDS_SHOWN:
            self.note(f"The failures show the {_ERROR_KINDS_SHOWN} most frequent of {len(kinds)} distinct errors.")
        shown = failed.iloc[-_FAILED_RUNS_SHOWN:]
        if len(failed) > _FAILED_RUNS_SHOWN:
            self.note(f"The failed runs listed are the newest {_FAILED_RUNS_SHOWN} of {len(failed)}.")
        items = []
        for row in shown[["_run_id", *params, "_error"]].itertuples(index=False, name=None):
            run_id, *values, error = row
            pairs = ", ".join(f"{_h(n)}={_h(_text(v))}" for n, v in zip(params, values))
            items.append(f"<li><code>{_h(short.get(run_id, run_id))}</code> {pairs}<pre>{_h(_text(error))}</pre></li>")
        self.parts.append(f'<ul class="failed">{"".join(items)}</ul>')
        self.parts.append("<p>The full traceback of a run: <code>recorder show RUN</code>.</p>")

    # -- arrays --------------------------------------------------------------------

    def arrays(self, db: Database, experiment: str, name: str, where: str | None, limit: int) -> None:
        """The array ``name`` of the first ``limit`` done runs: 1-D as lines in one figure, 2-D as heat maps."""
        import numpy as np

        self.section("arrays", f"Array {name}")
        lines: list[dict[str, Any]] = []
        count = 0
        for run_id, value in db.arrays(experiment, name, where=where):
            count += 1
            label = db.short_id(run_id)
            array = np.asarray(value)
            if array.dtype.kind == "c":
                array = np.abs(array)
                self.note(f"Run {label}: {name} is complex; its magnitude is drawn.")
            if array.dtype.kind not in "biuf" or array.ndim == 0 or array.ndim > 2 or array.size == 0:
                self.note(
                    f"Run {label}: {name} ({array.dtype}, shape {array.shape}) is not drawn (1-D and 2-D numbers are)."
                )
            elif array.ndim == 1:
                step = max(1, math.ceil(len(array) / ARRAY_MAX_POINTS))
                if step > 1:
                    self.note(f"Run {label}: {name} has {len(array):,} values; one in {step} is drawn.")
                lines.append(
                    {
                        "type": "scatter",
                        "mode": "lines",
                        "x": list(range(0, len(array), step)),
                        "y": _finite(array[::step].astype(float)),
                        "name": _t(label),
                    }
                )
            else:
                step = max(1, math.ceil(max(array.shape) / HEATMAP_MAX_SIDE))
                if step > 1:
                    self.note(f"Run {label}: {name} of shape {array.shape} is drawn at one row and column in {step}.")
                z = array[::step, ::step].astype(float)
                self.figure(
                    [{"type": "heatmap", "z": [_finite(row) for row in z], "colorscale": "Viridis"}],
                    {"title": {"text": _t(f"{name} of run {label}, shape {array.shape}")}},
                )
            if count >= limit:
                break
        if lines:
            self.figure(
                lines, {"title": {"text": _t(f"{name} of {len(lines)} runs")}, "xaxis": {"title": {"text": "index"}}}
            )
        if count == 0:
            self.parts.append(f"<p>No done run{' selected' if where else ''} has the array {_h(name)}.</p>")

    # -- the file ------------------------------------------------------------------

    def render(self, experiment: str) -> str:
        """The whole page: the title, the navigation, the list of what was summarised, the sections, the table's script."""
        nav = " · ".join(f'<a href="#{a}">{_h(t)}</a>' for a, t in self.nav)
        notes = ""
        if self.notes:
            notes = (
                '<div class="notes"><b>Summarised:</b><ul>'
                + "".join(f"<li>{_h(n)}</li>" for n in self.notes)
                + "</ul></div>"
            )
        made = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{_h(experiment)} · recorder report</title>"
            f"<style>{_CSS}</style></head><body>"
            f"<h1>Experiment <code>{_h(experiment)}</code></h1><p class='made'>recorder report, made {made}</p>"
            f"<nav>{nav}</nav>{notes}{''.join(self.parts)}"
            f"<script>{_TABLE_JS}</script></body></html>\n"
        )


# -- values ------------------------------------------------------------------------


def _h(text: object) -> str:
    """Text for the page: every character HTML reads as markup escaped, quotes included."""
    return html.escape(str(text), quote=True)


def _t(text: object) -> str:
    """Text for a plotly label: escaped, because plotly reads a few tags (``<b>``, ``<a href>``) in labels."""
    return html.escape(str(text), quote=False)


def _script_json(value: Any) -> str:
    """JSON to put in a ``<script>``: ``<``, ``>`` and ``&`` escaped, so no value can end the script."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _text(value: Any) -> str:
    """A value as a label: None (or pandas' NA) as ``None``, numbers as Python writes them."""
    if value is None or _is_na(value):
        return "None"
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    return repr(value) if isinstance(value, float) else str(value)


def _cell(value: Any) -> Any:
    """A value for the runs table's JSON: numbers JavaScript holds exactly stay numbers; the rest is text or null."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if value is None or _is_na(value):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return value if abs(value) <= 2**53 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    return str(value)


def _is_na(value: Any) -> bool:
    """Whether a cell is pandas' missing value (of a nullable integer column, or a time)."""
    import pandas as pd

    return value is pd.NA or value is pd.NaT


def _plain(value: Any) -> Any:
    """A numpy scalar as a plain value for JSON; NaN and ±inf as None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _finite(values: Any) -> list[float | None]:
    """Floats for a figure: NaN and ±inf as null (a gap), which JSON can hold."""
    return [v if math.isfinite(v) else None for v in values.tolist()]


def _as_float(column: pd.Series) -> np.ndarray | None:
    """A column of numbers as float64 (missing as NaN); None when it holds text, bools or anything else."""
    import numpy as np

    kind = column.dtype.kind
    if kind in "iuf":
        floats: np.ndarray = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return floats
    if kind != "O":
        return None
    present = [v for v in column.tolist() if v is not None and not _is_na(v)]
    if not present or not all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in present
    ):
        return None
    return np.array([np.nan if v is None or _is_na(v) else float(v) for v in column.tolist()], dtype=np.float64)


def _distinct(column: pd.Series) -> int:
    """How many distinct values a column holds, missing counting as one."""
    try:
        return int(column.nunique(dropna=False))
    except TypeError:  # unhashable values: count their labels
        return len({_text(v) for v in column.tolist()})


def _sort_key(column: pd.Series) -> Any:
    """The order of a column's labels: by value where the values are numbers, else as text."""
    values = _as_float(column)
    if values is None:
        return lambda label: (0, label)

    def key(label: str) -> tuple[int, float | str]:
        try:
            return (0, float(label))
        except ValueError:
            return (1, label)

    return key


def _grid(done: pd.DataFrame, a: str, b: str) -> tuple[str, str, Any, Any] | None:
    """The sorted values of two numeric parameters when the runs cover at least half of their pairs, else None."""
    import numpy as np

    xa, xb = _as_float(done[a]), _as_float(done[b])
    if xa is None or xb is None or not (np.isfinite(xa).all() and np.isfinite(xb).all()):
        return None
    ua, ub = np.unique(xa), np.unique(xb)
    if len(ua) < 2 or len(ub) < 2 or len(ua) > HEATMAP_MAX_SIDE or len(ub) > HEATMAP_MAX_SIDE:
        return None
    pairs = len(set(zip(xa.tolist(), xb.tolist())))
    if pairs < _GRID_COVERAGE * len(ua) * len(ub):  # a grid, maybe with holes (failed runs): not scattered values
        return None
    return a, b, np.unique(done[a].to_numpy()), np.unique(done[b].to_numpy())


def _short_ids(db: Database, df: pd.DataFrame) -> dict[str, str]:
    """Short ids of the runs the table and the failures show (not of all 10^6 runs of a big experiment)."""
    ids = df["_run_id"].tolist()
    wanted = ids[-TABLE_MAX_RUNS:]
    if "_error" in df.columns:
        wanted += df.loc[df["_status"] == "failed", "_run_id"].tolist()[-_FAILED_RUNS_SHOWN:]
    try:
        return short_ids(db.conn, sorted(set(wanted)))
    except Exception as e:  # sqlite3.Error
        raise RecorderError(f"reading the runs' ids failed: {e}") from e


def _timedelta(seconds: pd.Series) -> Any:
    """Durations in seconds as timedeltas; a missing one (a running run) as zero."""
    import pandas as pd

    return pd.to_timedelta(seconds.fillna(0), unit="s")


def _iso(moment: Any) -> str:
    """A UTC timestamp as ISO 8601 to the millisecond, as ``recorder log`` shows it."""
    return str(moment.strftime("%Y-%m-%dT%H:%M:%S.%f"))[:-3] + "Z"


def _span(seconds: float) -> str:
    """A duration for people: seconds, minutes, hours or days."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
h1 code,h2,h3{font-weight:600}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
nav a{margin-right:.3em}.made{color:#777;margin-top:-.5em}
.notes{background:#fff8e1;border:1px solid #f0d58c;padding:.3em 1em;margin:1em 0}.note{color:#8a6d00;font-size:.9em}
table{border-collapse:collapse;font-size:.85em}td,th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
table.runs th{cursor:pointer;position:sticky;top:0;background:#f6f6f6;white-space:nowrap}
table.runs th.sorted-asc::after{content:" \\25B2"}table.runs th.sorted-desc::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}tr.failed td{background:#fdecea}
.scroll{max-height:70vh;overflow:auto;border:1px solid #ddd}.pager{margin:.4em 0}.pager button{margin:0 .3em}
pre{white-space:pre-wrap;margin:.2em 0;font-size:.9em}ul.failed li{margin-bottom:.5em}
.figure{margin:.5em 0 1.5em}.hint{color:#666;font-size:.85em}
"""

# The runs table: built from the inline JSON with textContent (never innerHTML), sorted on a click, shown by pages.
_TABLE_JS = """
(function(){
  var holder=document.getElementById('runs-data'); if(!holder) return;
  var data=JSON.parse(holder.textContent), cols=data.columns, vals=data.values;
  var n=cols.length? vals[0].length:0, order=[], i; for(i=0;i<n;i++) order.push(i);
  var table=document.getElementById('runs-table'), pager=document.getElementById('runs-pager');
  var page=0, size=200, sortCol=-1, asc=true, statusCol=cols.indexOf('status');
  var special={'nan':null,'inf':Infinity,'-inf':-Infinity};
  function key(v){ return (typeof v==='string'&&special.hasOwnProperty(v))? special[v]:v; }
  function cmp(a,b){ if(a===b) return 0; if(a===null) return 1; if(b===null) return -1;
    var na=typeof a==='number', nb=typeof b==='number';
    if(na&&nb) return a<b?-1:1; if(na) return -1; if(nb) return 1; return String(a)<String(b)?-1:1; }
  function head(){ var tr=document.createElement('tr');
    cols.forEach(function(c,j){ var th=document.createElement('th'); th.textContent=c;
      if(j===sortCol) th.className=asc?'sorted-asc':'sorted-desc';
      th.addEventListener('click',function(){ if(sortCol===j){asc=!asc;}else{sortCol=j;asc=true;}
        var v=vals[j].map(key); order.sort(function(x,y){ var r=cmp(v[x],v[y]); if(r===0) return x-y;
          if(v[x]===null||v[y]===null) return r; return asc?r:-r; }); page=0; draw(); });
      tr.appendChild(th); });
    var thead=document.createElement('thead'); thead.appendChild(tr); return thead; }
  function draw(){ table.textContent=''; table.appendChild(head()); var body=document.createElement('tbody');
    var end=Math.min(n,(page+1)*size);
    for(var k=page*size;k<end;k++){ var r=order[k], tr=document.createElement('tr');
      if(statusCol>=0&&vals[statusCol][r]==='failed') tr.className='failed';
      for(var j=0;j<cols.length;j++){ var td=document.createElement('td'), v=vals[j][r];
        td.textContent=v===null?'':String(v); if(typeof v==='number') td.className='num'; tr.appendChild(td); }
      body.appendChild(tr); }
    table.appendChild(body); pager.textContent='';
    var pages=Math.max(1,Math.ceil(n/size));
    var label=document.createElement('span');
    label.textContent=n+' runs; rows '+(n?page*size+1:0)+'-'+end+' (page '+(page+1)+' of '+pages+')';
    var prev=document.createElement('button'); prev.textContent='previous'; prev.disabled=page===0;
    prev.addEventListener('click',function(){page--;draw();});
    var next=document.createElement('button'); next.textContent='next'; next.disabled=page>=pages-1;
    next.addEventListener('click',function(){page++;draw();});
    pager.appendChild(prev); pager.appendChild(next); pager.appendChild(label); }
  draw();
})();
"""
