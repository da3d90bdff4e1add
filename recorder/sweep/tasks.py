"""The rows of a sweep: each pset as a :class:`Task`, and the :class:`Table` the sweep's DataFrame is built from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import BatchSizeRefused
from ..read.frame import ERROR

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Task", "Table", "new_task", "check_batch_size"]


class Task(NamedTuple):
    """One pset of a sweep, validated and hashed: its row in the table, params, canonical JSON, hash, seed, names."""

    # Shadows tuple.index, which nothing here calls; the name is read all through the sweep machinery.
    index: int  # type: ignore[assignment]
    params: dict[str, Any]
    canonical: str
    hash: str
    seed: int
    names: tuple[str, ...]


class Table:
    """Columns of the sweep's DataFrame, filled row by row without a dict per row."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {}
        self.rows = 0

    def append(self, row: Mapping[str, Any]) -> None:
        for name, value in row.items():
            column = self.columns.get(name)
            if column is None:
                column = self.columns[name] = [None] * self.rows
            column.append(value)
        self.rows += 1
        for column in self.columns.values():
            if len(column) < self.rows:
                column.append(None)

    def set(self, index: int, row: Mapping[str, Any]) -> None:
        for name, value in row.items():
            column = self.columns.get(name)
            if column is None:
                column = self.columns[name] = [None] * self.rows
            column[index] = value

    def set_many(self, indices: list[int], columns: Mapping[str, list[Any]]) -> None:
        """Set many rows at once: ``columns[name][i]`` is the value of row ``indices[i]``."""
        for name, values in columns.items():
            column = self.columns.get(name)
            if column is None:
                column = self.columns[name] = [None] * self.rows
            for index, value in zip(indices, values):
                column[index] = value

    def copy(self, source: int, index: int) -> None:
        for column in self.columns.values():
            if column[index] is None:
                column[index] = column[source]

    def frame(self, first: list[str], meta: list[str], *, runs: bool = False) -> pd.DataFrame:
        """The table as a DataFrame: ``first`` columns, the others, then ``meta``.

        :param runs: the rows are runs: columns typed as :meth:`recorder.Database.df` types them
            (its per-column rule, statuses, sessions and env SHAs as categories).
        """
        import pandas as pd

        order = [c for c in first if c in self.columns]
        order += [c for c in self.columns if c not in order and c not in meta]
        order += [c for c in meta if c in self.columns]
        data: dict[str, Any] = {name: self.columns[name] for name in order}
        if "_time_start" in data:  # as rec.open().df() gives it
            data["_time_start"] = pd.to_datetime(data["_time_start"], utc=True, format="ISO8601")
        if runs:
            from ..codec.canonical import values_column
            from ..read.frame import STATUSES

            for name in order:
                if name not in meta:  # parameters and results: ints with gaps Int64, as in df()
                    data[name] = values_column(data[name])
            if "_status" in data:  # not in a sweep of no psets
                data["_status"] = pd.Categorical(data["_status"], categories=list(STATUSES))
            for name in ("_session", "_env_sha", "_exec_host"):
                if name in data:
                    data[name] = pd.Categorical(data[name])
            for name in ("_exec_pid", "_pset_seq"):  # missing for some runs: nullable, as in df()
                if name in data:
                    data[name] = pd.array(data[name], dtype="Int64")
            if ERROR in data:
                data[ERROR] = pd.Series(data[ERROR], dtype=object)
        return pd.DataFrame(data, columns=order)


# What Task(...) does, without the Python-level __new__ a NamedTuple has (a sweep makes one per pset).
new_task = tuple.__new__


def check_batch_size(batch_size: object) -> int | str:
    """Return ``batch_size`` if it is ``"auto"`` or a number of runs (an int ≥ 1).

    :raises BatchSizeRefused: for anything else (0, a negative or float number, another string).
    """
    if isinstance(batch_size, str) and batch_size == "auto":
        return "auto"
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise BatchSizeRefused(
            f"batch_size={batch_size!r} is not 'auto' or a number of runs per batch (an int ≥ 1); "
            "give batch_size='auto' (the default) or e.g. batch_size=10"
        )
    return batch_size
