"""Compare runs: one row per run, the columns whose values differ, the constant ones folded into one line.

::

    table = compare(db, ["0a1b2c3d", "4e5f6a7b", "8c9d0e1f"])
    table.differing      # the columns that differ: ["param.a", "result.energy"]
    table.constant       # the others, with their one value: {"param.b": 8, "env.python": "CPython 3.11.7", ...}
    table.document()     # what recorder compare --json prints
    table.frame()        # what db.compare returns

Columns: ``experiment``, ``status``, ``error`` (the exception line of a run
that has one), ``param.NAME``, ``config.NAME`` (the config of the run's
session), ``result.NAME``, the code version (``code.commit``,
``code.dirty``, ``code.diff``: the digest of the recorded uncommitted
changes, ``code.snapshot``, ``code.env_sha``), the environment
(``env.python``, ``env.platform``, ``env.host``, ``env.recorder``) and
``package.NAME`` for each installed package whose version is not the same
in every run (the packages that are the same are only counted).

Values are compared exactly: floats bit for bit (``0.1 + 0.2`` differs from
``0.3``, ``-0.0`` from ``0.0``), except that NaN equals NaN; ``1``, ``1.0``
and ``True`` differ; arrays and bytes by their digest (SHA-256 of the
``.npy`` file: dtype, shape and data), not by value. A run that lacks a
column (a parameter of another experiment) differs from one that has it.

Plain dicts and lists, as :mod:`recorder.read.show` gives them, so the
command line needs no pandas; :meth:`recorder.Database.compare` makes the
DataFrame.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ..codec.canonical import values_column
from ..errors import RecorderError, StoreError
from ..store import catalog
from ..store.db import damage_hint
from ..store.ids import short_ids
from .failures import exception_line
from .frame import STATUSES, selection
from .show import _decode, _field_order, _loads, _not_a_dict, _ordered

if TYPE_CHECKING:
    import pandas as pd

    from .database import Database

__all__ = ["CELL_LIMIT", "MAX_RUNS", "Comparison", "Summary", "compare", "json_value", "text"]

#: The most runs an experiment's selection may hold without an explicit ``limit``: a table that
#: long is read by a program, which is better served by ``db.df``; ask for more with ``limit``.
MAX_RUNS = 10_000

_BEGIN = "BEGIN"
_COMMIT = "COMMIT"
_PICK = "SELECT r.pk FROM runs AS r WHERE {condition} ORDER BY r.pk LIMIT ?"
_RUNS = """
SELECT r.pk, lower(hex(r.id)), e.name, r.status, p.params, r.scalars, r.error, r.session
FROM runs AS r JOIN experiments AS e ON e.pk = r.experiment JOIN psets AS p ON p.pk = r.pset
WHERE r.pk IN (SELECT value FROM json_each(?))
"""
_RESULTS = """
SELECT x.run, x.name, x.kind, x.value, o.dtype, o.shape
FROM results AS x LEFT JOIN objects AS o ON x.kind = 'object' AND o.digest = x.value
WHERE x.run IN (SELECT value FROM json_each(?))
"""
_SESSIONS = """
SELECT pk, git_commit, git_dirty, git_diff, git_snapshot_ref, env_sha, python, platform, host, recorder_version,
       packages
FROM sessions WHERE pk IN (SELECT value FROM json_each(?))
"""
_CONFIG = """
SELECT x.session, x.name, x.kind, x.value, o.dtype, o.shape
FROM config AS x LEFT JOIN objects AS o ON x.kind = 'object' AND o.digest = x.value
WHERE x.session IN (SELECT value FROM json_each(?))
"""
_PACKAGES = "SELECT digest, text FROM texts WHERE digest IN (SELECT value FROM json_each(?))"

#: The session's columns, in the order they are shown, and the column of the sessions table each comes from.
_SESSION_COLUMNS = (
    "code.commit",
    "code.dirty",
    "code.diff",
    "code.snapshot",
    "code.env_sha",
    "env.python",
    "env.platform",
    "env.host",
    "env.recorder",
)
#: Columns left out when they are None in every run (most runs have no error, no recorded diff, no snapshot).
_OPTIONAL = frozenset({"error", "code.diff", "code.snapshot"})
#: Column groups whose values are shown as Python writes them (``'text'``, ``0.1``); the others are names.
_VALUE_GROUPS = ("param.", "config.", "result.")
#: How many characters of a cell the table shows; ``--json`` and the DataFrame have the whole value.
CELL_LIMIT = 60


class Summary(NamedTuple):
    """A value compared by its digest, not by value: an array, or bytes."""

    #: As a table shows it: ``array <f8 (20000,) 3fa2b1c9d0e1``.
    text: str
    #: As ``--json`` gives it: ``{"array": {"dtype": …, "shape": […], "digest": …}}`` or ``{"bytes": n, "digest": …}``.
    json: dict[str, Any]
    #: The full SHA-256 digest that equality compares.
    digest: str


class _Missing:
    """A column that a run does not have (a parameter of another experiment); shown as ``-``."""

    def __repr__(self) -> str:
        return "-"


MISSING: Any = _Missing()


class Comparison(NamedTuple):
    """What :func:`compare` found: every run's values, the columns that differ, the constant ones."""

    #: One dict per run, in the order asked for: ``run_id``, ``short_id`` and ``values`` (column → value).
    runs: list[dict[str, Any]]
    #: Every column, in order (experiment, status, error, params, config, results, code, env, packages).
    columns: list[str]
    #: The columns whose value is not the same in every run.
    differing: list[str]
    #: The columns whose value is the same in every run, with that value.
    constant: dict[str, Any]
    #: How many packages have the same version in every run (they are not columns).
    same_packages: int

    def frame(self, *, all_columns: bool = False) -> pd.DataFrame:
        """The comparison as :meth:`recorder.Database.compare` returns it: a row per run, indexed by short id."""
        import pandas as pd

        shown = self.columns if all_columns else self.differing
        data: dict[str, Any] = {"_run_id": [run["run_id"] for run in self.runs]}
        for name in shown:
            cells = [_frame_cell(run["values"][name]) for run in self.runs]
            kinds = set(map(type, cells)) - {type(None)}
            # One type (ints with some None: nullable Int64); mixed types stay objects, so 1 and 1.0 still differ.
            column = values_column(cells) if len(kinds) <= 1 else cells
            # Not numbers: objects, so that a missing value stays None (pandas' str dtype would make it NaN).
            data[name] = pd.Series(cells, dtype=object) if column is cells else column
        df = pd.DataFrame(data, copy=False)
        df.index = pd.Index([run["short_id"] for run in self.runs], name="run")
        df.attrs["constant"] = {name: _frame_cell(value) for name, value in self.constant.items()}
        df.attrs["same_packages"] = self.same_packages
        return df

    def document(self, *, all_columns: bool = False) -> dict[str, Any]:
        """The comparison as one JSON document (what ``recorder compare --json`` prints).

        ``{"constant": {column: value}, "same_packages": n, "columns": [shown columns],
        "runs": [{"run_id": …, "short_id": …, column: value, …}]}``; a run without a
        column (a parameter of another experiment) has no key for it.
        """
        shown = self.columns if all_columns else self.differing
        return {
            "constant": {name: json_value(value) for name, value in self.constant.items()},
            "same_packages": self.same_packages,
            "columns": list(shown),
            "runs": [
                {
                    "run_id": run["run_id"],
                    "short_id": run["short_id"],
                    **{
                        name: json_value(run["values"][name])
                        for name in shown
                        if run["values"].get(name, MISSING) is not MISSING
                    },
                }
                for run in self.runs
            ],
        }


def compare(
    db: Database,
    run_ids: Sequence[str] | None = None,
    *,
    experiment: str | None = None,
    where: str | None = None,
    status: str | Sequence[str] | None = None,
    limit: int | None = None,
) -> Comparison:
    """Compare some runs: the ones named (short id, prefix or full id), or those of an experiment.

    :param run_ids: the runs, in the order to show them (a run named twice is shown once).
    :param experiment: instead of ``run_ids``: the runs of this experiment, in the order they started.
    :param where: with ``experiment``: an SQL condition over its view (as :meth:`recorder.Database.df`).
    :param status: with ``experiment``: only runs with this status (or these); default every run.
    :param limit: with ``experiment``: compare the first ``limit`` runs selected; without it,
        a selection of more than :data:`MAX_RUNS` runs is refused.
    :raises RunNotFound: when a named run is not in the store.
    :raises AmbiguousRunId: when a name matches several runs.
    :raises ExperimentNotFound: when the experiment is not in the store.
    :raises RecorderError: for a ``where`` that is not a condition, or too many runs.
    """
    if isinstance(run_ids, str):
        run_ids = [run_ids]
    if (run_ids is None) == (experiment is None):
        raise RecorderError("compare takes run ids or an experiment (with a where condition), one of the two")
    if experiment is None and (where is not None or status is not None or limit is not None):
        raise RecorderError("where, status and limit select runs of an experiment: name the experiment too")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise RecorderError(f"limit={limit!r} is not a number of runs (an int of 1 or more)")
    conn = db.conn
    if conn.in_transaction:  # a read left open by an interrupt
        conn.execute(_COMMIT)
    conn.execute(_BEGIN)  # one read transaction: a run ending meanwhile is seen before or after, whole
    try:
        if run_ids is not None:
            pks = list(dict.fromkeys(db.run_key(run_id)[0] for run_id in run_ids))
        else:
            assert experiment is not None
            pks = _pick(db, experiment, where, status, limit)
        return _compare(db, pks)
    except sqlite3.Error as e:
        raise StoreError(f"reading the store {db.root} failed: {e}{damage_hint(e)}") from e
    finally:
        conn.execute(_COMMIT)


def _pick(
    db: Database, experiment: str, where: str | None, status: str | Sequence[str] | None, limit: int | None
) -> list[int]:
    """The keys of the runs of an experiment that ``where`` and ``status`` select, in the order they started."""
    statuses = None if status is None else [status] if isinstance(status, str) else list(status)
    for s in statuses or ():
        if s not in STATUSES:
            raise RecorderError(f"status={s!r} is not one of {', '.join(map(repr, STATUSES))} (or None for all)")
    pk = db.experiment_key(experiment)
    params, results = catalog.columns(catalog.fields_of(db.conn, pk))
    # The where machinery of db.df: the user's text runs in a query of its own and can only narrow the runs.
    condition, values = selection(db.conn, pk, statuses, where, params, results)
    cap = limit if limit is not None else MAX_RUNS + 1
    pks = [row[0] for row in db.conn.execute(_PICK.format(condition=condition), [*values, cap])]
    if limit is None and len(pks) > MAX_RUNS:
        raise RecorderError(
            f"more than {MAX_RUNS} runs of {experiment!r} are selected; compare fewer (a where condition, "
            f"a status), or the first N with limit=N (--limit N)"
        )
    return pks


def _compare(db: Database, pks: list[int]) -> Comparison:
    keys = json.dumps(pks)
    rows = {row[0]: row for row in db.conn.execute(_RUNS, (keys,))}
    ordered = [rows[pk] for pk in pks]
    shorts: dict[str, str] = {}
    ids = [row[1] for row in ordered]
    for start in range(0, len(ids), 256):  # an IN list per batch: SQLite's limit on bound values
        shorts.update(short_ids(db.conn, ids[start : start + 256]))

    results: dict[int, dict[str, Any]] = {}
    for run, name, kind, value, dtype, shape in db.conn.execute(_RESULTS, (keys,)):
        results.setdefault(run, {})[name] = _cell(
            db, kind, value, dtype, shape, shorts[rows[run][1]], f"result {name!r}"
        )
    sessions = _sessions(db, sorted({row[7] for row in ordered}), shorts[ordered[0][1]] if ordered else "")

    order: dict[str, dict[str, dict[str, int]]] = {}
    runs = []
    for pk, full, experiment, run_status, params_text, scalars_text, error, session in ordered:
        short = shorts[full]
        if experiment not in order:
            order[experiment] = _field_order(db, experiment)
        params = _loads(params_text, short, "parameters")
        if not isinstance(params, dict):
            _not_a_dict(short, "parameters")
        scalars = _loads(scalars_text, short, "scalar results") or {}
        if not isinstance(scalars, dict):
            _not_a_dict(short, "scalar results")
        scalars.update(results.get(pk, {}))
        values: dict[str, Any] = {"experiment": experiment, "status": run_status, "error": exception_line(error)}
        values.update((f"param.{k}", v) for k, v in _ordered(params, order[experiment]["param"]).items())
        values.update(sessions[session]["config"])
        values.update((f"result.{k}", v) for k, v in _ordered(scalars, order[experiment]["result"]).items())
        values.update(sessions[session]["fields"])
        runs.append({"run_id": full, "short_id": short, "values": values, "packages": sessions[session]["packages"]})
    return _fold(runs)


def _sessions(db: Database, pks: list[int], short: str) -> dict[int, dict[str, Any]]:
    """Each session's code and environment columns, its ``config.NAME`` columns and its package list."""
    keys = json.dumps(pks)
    found: dict[int, dict[str, Any]] = {}
    digests = set()
    for pk, commit, dirty, *fields, packages in db.conn.execute(_SESSIONS, (keys,)):
        found[pk] = {
            "fields": dict(zip(_SESSION_COLUMNS, [commit, None if dirty is None else bool(dirty), *fields])),
            "config": {},
            "packages": packages,
        }
        if packages:
            digests.add(packages)
    for session, name, kind, value, dtype, shape in db.conn.execute(_CONFIG, (keys,)):
        found[session]["config"][f"config.{name}"] = _cell(db, kind, value, dtype, shape, short, f"config {name!r}")
    for session in found.values():
        session["config"] = dict(sorted(session["config"].items()))
    texts = dict(db.conn.execute(_PACKAGES, (json.dumps(sorted(digests)),)))
    lists: dict[str, dict[str, Any]] = {}
    for digest in digests:
        packages = _loads(texts.get(digest), short, "session's package list") or {}
        lists[digest] = packages if isinstance(packages, dict) else _not_a_dict(short, "session's packages")
    for session in found.values():  # None: no list recorded
        session["packages"] = lists.get(session["packages"]) if session["packages"] else None
    return found


def _cell(db: Database, kind: str | None, value: Any, dtype: Any, shape: Any, short: str, what: str) -> Any:
    """A result or config cell as compared: the value, or a :class:`Summary` of an array or bytes."""
    if kind == "object":
        dims = _loads(shape, short, f"{what}'s shape") if shape else None
        shown = tuple(dims) if isinstance(dims, list) else dims
        return Summary(
            f"array {dtype} {shown} {str(value)[:12]}",
            {"array": {"dtype": dtype, "shape": dims, "digest": value}},
            str(value),
        )
    if kind == "npy":
        array = _decode(kind, value, db, short, what)
        digest = hashlib.sha256(value).hexdigest()  # the digest it would have in objects/: the same .npy bytes
        return Summary(
            f"array {array.dtype.str} {array.shape} {digest[:12]}",
            {"array": {"dtype": array.dtype.str, "shape": list(array.shape), "digest": digest}},
            digest,
        )
    if kind == "bytes":
        data = value.encode() if isinstance(value, str) else bytes(value)
        digest = hashlib.sha256(data).hexdigest()
        return Summary(f"{len(data)} bytes {digest[:12]}", {"bytes": len(data), "digest": digest}, digest)
    return _decode(kind, value, db, short, what)


def _key(value: Any) -> Any:
    """What equality compares: the type and the exact value (floats bit for bit, NaN equal to NaN)."""
    kind = type(value)
    if kind is float:
        return ("f", "nan" if value != value else value.hex())
    if kind is int or kind is bool or kind is str or value is None:  # the type too: 1, 1.0 and True differ
        return (kind.__name__, value)
    if value is MISSING:
        return ("missing",)
    if kind is Summary:
        return ("digest", value.digest)
    if kind is list or kind is dict:
        return ("json", json.dumps(value, sort_keys=True))
    if type(value).__module__ == "numpy":  # numpy scalars: dtype and bytes
        return ("numpy", value.dtype.str, "nan" if value != value else value.tobytes())
    return ("repr", kind.__name__, repr(value))


def _fold(runs: list[dict[str, Any]]) -> Comparison:
    """Split the columns into those that differ between the runs and the constant ones."""
    columns: dict[str, None] = {}
    for run in runs:
        columns.update(dict.fromkeys(run["values"]))
    # Packages: a column for each whose version is not the same in every run (installed in some
    # runs only: '-' where it is missing). A session that recorded no list is left out of the test.
    lists = {id(run["packages"]): run["packages"] for run in runs if run["packages"] is not None}
    names = sorted({name for packages in lists.values() for name in packages})
    different = [n for n in names if len({_key(p.get(n, MISSING)) for p in lists.values()}) > 1]
    for run in runs:
        packages = run.pop("packages")
        for name in different:
            run["values"][f"package.{name}"] = None if packages is None else packages.get(name, MISSING)
    columns.update(dict.fromkeys(f"package.{name}" for name in different))
    ordered = _column_order(list(columns))
    differing, constant = [], {}
    for name in ordered:
        cells = [run["values"].get(name, MISSING) for run in runs]
        if name in _OPTIONAL and all(cell is None for cell in cells):
            continue
        first = _key(cells[0])
        if cells[0] is not MISSING and all(_key(cell) == first for cell in cells[1:]):
            constant[name] = cells[0]
        else:
            differing.append(name)
    shown = [name for name in ordered if name in constant or name in differing]
    for run in runs:
        run["values"] = {name: run["values"].get(name, MISSING) for name in shown}
    return Comparison(runs, shown, differing, constant, len(names) - len(different))


def _column_order(names: Iterable[str]) -> list[str]:
    """The columns in their groups' order; within a group, as first met (packages by name)."""
    groups = ["experiment", "status", "error", "param.", "config.", "result.", "code.", "env.", "package."]

    def group(name: str) -> int:
        for index, prefix in enumerate(groups):
            if name == prefix or (prefix.endswith(".") and name.startswith(prefix)):
                return index
        return len(groups)

    listed = list(names)
    return [name for _, _, name in sorted((group(name), index, name) for index, name in enumerate(listed))]


def _frame_cell(value: Any) -> Any:
    """A value for the DataFrame: arrays and bytes as their summary text, a missing column as None."""
    if value is MISSING:
        return None
    return value.text if isinstance(value, Summary) else value


def json_value(value: Any) -> Any:
    """A value for ``--json``: plain values as they are, arrays and bytes as their summary, numpy scalars as repr."""
    if value is MISSING:
        return None
    if isinstance(value, Summary):
        return value.json
    if type(value).__module__ == "numpy":
        return repr(value)
    return value


def text(name: str, value: Any) -> str:
    """A value as the table shows it: params, config and results as Python writes them; names as they are."""
    if value is MISSING:
        return "-"
    if isinstance(value, Summary):
        return value.text
    if name.startswith(_VALUE_GROUPS) or not isinstance(value, str):
        return repr(value)
    return value
