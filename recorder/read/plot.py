"""A result against a parameter as a matplotlib figure, for a script or a notebook: :meth:`Database.plot`.

::

    fig = db.plot("lorenz", x="a", y="energy", hue="b")   # a line per value of b
    fig.savefig("energy.png")

The figure is a :class:`matplotlib.figure.Figure` made without pyplot: no
window opens and no GUI backend is needed (saving draws it with Agg), and
pyplot's list of open figures is left alone. A notebook shows it as the
value of a cell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import RecorderError
from .report import HUE_MAX, _as_float, _sort_key, _text, needs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .database import Database

__all__ = ["plot"]


def plot(
    db: Database,
    experiment: str,
    x: str,
    y: str,
    hue: str | None = None,
    *,
    where: str | None = None,
    status: str | None = "done",
) -> Figure:
    """Return a figure of the result ``y`` against the parameter ``x``: a line per value of ``hue``.

    Each line goes through the mean of ``y`` over the runs at each value of
    ``x`` (the runs of one pset, or of the parameters not named); the axis
    label says "mean" when a point stands for more than one run.

    :param hue: a parameter (or result) whose values get a line each, at most :data:`~recorder.read.report.HUE_MAX`.
    :param where: an SQL condition over the experiment's view, as for :meth:`Database.df`.
    :raises ExtraNotInstalled: when matplotlib is not installed.
    :raises RecorderError: when a name is not in the experiment, ``y`` is not numbers,
        or ``hue`` has more than :data:`~recorder.read.report.HUE_MAX` values.
    """
    figure_module = needs("matplotlib.figure", "db.plot")
    import numpy as np
    import pandas as pd

    names = list(dict.fromkeys([x, y, *([hue] if hue is not None else [])]))
    df = db.df(experiment, status=status, columns=names, where=where)
    values = pd.to_numeric(df[y], errors="coerce") if df[y].dtype.kind in "Oiuf" else None
    if values is None or (values.isna() & df[y].notna()).any():
        raise RecorderError(f"{y!r} of {experiment!r} is not numbers; db.plot draws a numeric result (y=)")
    xs = _as_float(df[x])
    order: list[str] = []
    if xs is None:  # text, bools or a mix: a categorical axis, its labels in order
        labels = [_text(v) for v in df[x].tolist()]
        order = sorted(set(labels), key=_sort_key(df[x]))
        position = {label: i for i, label in enumerate(order)}
        xs = np.array([position[label] for label in labels], dtype=float)
    table = pd.DataFrame({"x": xs, "y": values.to_numpy(dtype=float, na_value=np.nan)})
    groups: list[tuple[str | None, pd.DataFrame]] = [(None, table)]
    if hue is not None:
        table["hue"] = [_text(v) for v in df[hue].tolist()]
        kinds = sorted(set(table["hue"]), key=_sort_key(df[hue]))
        if len(kinds) > HUE_MAX:
            raise RecorderError(
                f"hue={hue!r} has {len(kinds)} values in {experiment!r}, more lines than the {HUE_MAX} a plot "
                "can tell apart; choose a parameter with fewer values, or narrow the runs with where="
            )
        groups = [(k, table[table["hue"] == k]) for k in kinds]
    figure = figure_module.Figure(figsize=(6.4, 4.4), layout="constrained")
    axes = figure.add_subplot()
    repeated = False
    for label, part in groups:
        means = part.groupby("x", sort=True, dropna=False)["y"].agg(["mean", "size"])
        repeated = repeated or bool((means["size"] > 1).any())
        axes.plot(
            means.index.to_numpy(),
            means["mean"].to_numpy(),
            marker="o",
            label=f"{hue} = {label}" if hue is not None else None,
        )
    if order:
        axes.set_xticks(range(len(order)), order)
    axes.set_xlabel(x)
    axes.set_ylabel(f"{y} (mean)" if repeated else y)
    axes.set_title(f"{experiment}: {y} against {x}")
    if hue is not None:
        axes.legend(title=hue)
    axes.grid(True, alpha=0.3)
    return figure  # type: ignore[no-any-return]
