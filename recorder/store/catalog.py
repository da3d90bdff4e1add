"""Experiments, the names of their parameters and results, and the wide view of each.

Every experiment has a view named after it, one row per run and one column
per parameter and per scalar result, plus ``run_id``, ``status``,
``time_start``, ``duration_s`` and ``env_sha``::

    SELECT a, b, energy FROM "lorenz" WHERE b = 8 AND energy > 1

It is plain SQL over the tables, so it works in any SQLite client. The
``fields`` table lists each experiment's names (and the kinds their values
had); the writer adds a name, or a kind of a name, in the transaction of
the first run that has it, and rebuilds the view in the same transaction.

Each column has the type affinity of its kind, so that a value compared
as text matches (``WHERE b = '9'``, as Datasette's filters bind it):
numbers (ints, floats, bools) are ``CAST(... AS NUMERIC)``, which leaves
an int or a float as it is (``AS INTEGER`` would cut 1.5, ``AS REAL``
round 2**53 + 1), and texts ``CAST(... AS TEXT)``. A name whose values
had both, or a kind of no affinity (ints beyond 64 bits, kept as their
digits), stays untyped: each value is what it was, and compares as such.

A parameter and a result may not share a name within an experiment (nor
two names differ only in case, which SQL does not tell apart): the view
would have two columns of that name.
"""

from __future__ import annotations

import json
import sqlite3
import warnings
from collections.abc import Iterable
from typing import NamedTuple

from ..codec.values import is_scalar_kind
from ..errors import NameRefused, RecorderWarning
from .ids import new_id
from .quoting import quote_ident
from .viewsql import IN_SCALARS, LIVE, RUN_COLUMNS, RUN_JOINS, json_value, result_in_rows, select_list, typed

__all__ = [
    "IN_SCALARS",
    "RUN_COLUMNS",
    "TEXT",
    "STRUCTURE",
    "affinity",
    "FieldRow",
    "Fields",
    "check_experiment_name",
    "experiment_pk",
    "find_experiment",
    "fields_of",
    "rebuild_fields",
    "refresh_view",
    "refresh_all_views",
    "select_sql",
]

_FIELDS = "SELECT role, name, kind, first_run FROM fields WHERE experiment = ? ORDER BY pk"
_INSERT_FIELD = "INSERT OR IGNORE INTO fields (experiment, role, name, kind, first_run) VALUES (?, ?, ?, ?, ?)"
_EXPERIMENT_NAME = "SELECT name FROM experiments WHERE pk = ?"
_EXPERIMENTS = "SELECT pk, name FROM experiments ORDER BY pk"
_GET_EXPERIMENT = "SELECT pk FROM experiments WHERE name = ?"
_INSERT_EXPERIMENT = "INSERT INTO experiments (id, name, time_created) VALUES (?, ?, ?)"
_SCHEMA_OBJECTS = "SELECT type, name FROM sqlite_schema"


class FieldRow(NamedTuple):
    """A name of an experiment and one kind its values had ("" for plain values and parameters)."""

    role: str
    name: str
    kind: str
    first_run: int | None


def fields_of(conn: sqlite3.Connection, experiment: int) -> list[FieldRow]:
    """Return the names of an experiment, in the order they first appeared."""
    return [FieldRow(*row) for row in conn.execute(_FIELDS, (experiment,))]


#: The kind ``fields`` records for a parameter, or a plain result, that was a str ("" for other plain values).
TEXT = "text"
#: The kind ``fields`` records for a parameter that was a list or dict (shown as its JSON text, never cast).
STRUCTURE = "json"
# Kinds whose values are numbers or NULL (NaN): "" is a plain value other than a str.
_NUMBER_KINDS = frozenset({"", IN_SCALARS, "bool", "nan"})


def columns(fields: Iterable[FieldRow]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Return the parameter columns and the scalar result columns, each with the kinds its values had.

    Both in order of first appearance. A parameter's kinds are :data:`TEXT`
    for str values and "" for the others. A result's kinds are those of
    ``results`` rows ("" for plain values, :data:`TEXT` for str ones), and
    :data:`IN_SCALARS` for values kept in ``runs.scalars``; only names with
    a scalar kind are columns.
    """
    params: dict[str, set[str]] = {}
    kinds: dict[str, set[str]] = {}
    for row in fields:
        (params if row.role == "param" else kinds).setdefault(row.name, set()).add(row.kind)
    results = {name: found for name, found in kinds.items() if any(_is_scalar(k) for k in found)}
    return params, results


def _is_scalar(kind: str) -> bool:
    return kind in (IN_SCALARS, TEXT) or is_scalar_kind(kind or None)


def affinity(kinds: Iterable[str]) -> str | None:
    """Return the SQL type a column of values of these kinds is cast to (NUMERIC or TEXT), or None.

    Only scalar kinds count (the view shows NULL for the others). numpy
    scalars are numbers, except unsigned 64-bit ints, which beyond 2**63
    are kept as their digits.
    """
    scalar = {k for k in kinds if _is_scalar(k)}
    if not scalar:
        return None
    if all(k in _NUMBER_KINDS or (k.startswith("np:") and not k.endswith("u8")) for k in scalar):
        return "NUMERIC"
    if scalar == {TEXT}:
        return "TEXT"
    return None  # several kinds, or ints beyond 64 bits (digits): each value as it is


def _result_sql(name: str, kinds: set[str]) -> str:
    """SQL for run ``r``'s scalar result ``name``, from where a result of these kinds may be kept."""
    in_scalars = json_value("r.scalars", name)
    if kinds == {IN_SCALARS}:
        return in_scalars
    if IN_SCALARS not in kinds:
        return result_in_rows(name)
    return f"coalesce({in_scalars}, {result_in_rows(name)})"  # a run keeps each result in one place


def select_sql(
    experiment: int,
    params: dict[str, set[str]],
    results: dict[str, set[str]],
    *,
    with_pk: bool = False,
    live: bool = True,
) -> str:
    """Return the SELECT of an experiment's wide view (``with_pk`` adds the run key as ``_pk``).

    :param params: the parameter names with their kinds, as :func:`columns` gives them.
    :param live: only the live runs, as the view has them; False: deleted runs too (to pick runs to restore).
    """
    items = [("r.pk", "_pk")] if with_pk else []
    # A run column added in a later schema (rerun_of) gives way to a parameter or result that an
    # older store's experiment already has of that name: the user's column keeps its name.
    taken = {name.lower() for name in (*params, *results)}  # SQL names ignore case
    items += [(sql, name) for name, sql in RUN_COLUMNS.items() if name not in taken]
    items += [
        (typed(json_value("p.params", n), None if STRUCTURE in kinds else affinity(kinds)), quote_ident(n))
        for n, kinds in params.items()
    ]
    items += [(typed(_result_sql(n, kinds), affinity(kinds)), quote_ident(n)) for n, kinds in results.items()]
    where = f"r.experiment = {int(experiment)}" + (f" AND {LIVE}" if live else "")
    return f"{select_list(items)}\nFROM runs AS r\n{RUN_JOINS}\nWHERE {where}"


def _object_named(conn: sqlite3.Connection, name: str) -> tuple[str, str] | None:
    """The table, view, index or trigger whose name equals ``name`` ignoring case, as SQL does."""
    key = name.lower()
    for kind, existing in conn.execute(_SCHEMA_OBJECTS):
        if existing.lower() == key:
            return kind, existing
    return None


def check_experiment_name(conn: sqlite3.Connection, name: str) -> None:
    """Refuse a new experiment whose view would clash with something in the database.

    :raises NameRefused: when a table, view, index or trigger (recorder's, a
        user's or another experiment's view) already has the name, ignoring case.
    """
    clash = _object_named(conn, name)
    if clash is not None:
        what = "the view of another experiment" if conn.execute(_GET_EXPERIMENT, (clash[1],)).fetchone() else None
        raise NameRefused(
            f"experiment name {name!r} is taken in this store by {what or f'the {clash[0]} {clash[1]!r}'} "
            "(SQL does not tell case apart), and each experiment has a view of its name; choose another name"
        )


def find_experiment(conn: sqlite3.Connection, name: str) -> int | None:
    """Return the key of the experiment named ``name``, or None when the store has none of that name."""
    row = conn.execute(_GET_EXPERIMENT, (name,)).fetchone()
    return None if row is None else int(row[0])


def experiment_pk(conn: sqlite3.Connection, name: str, time_created: str, *, id_: str | None = None) -> int:
    """Return the key of an experiment, creating it (and its view) when new; inside a write transaction.

    :param id_: the id of a new experiment (a merge keeps the source's); default a new one.
    """
    pk = find_experiment(conn, name)
    if pk is not None:
        return pk
    check_experiment_name(conn, name)
    values = (id_ or new_id(), name, time_created)
    pk = int(conn.execute(_INSERT_EXPERIMENT, values).lastrowid)  # type: ignore[arg-type]
    refresh_view(conn, pk)
    return pk


def refresh_view(conn: sqlite3.Connection, experiment: int) -> None:
    """(Re)create the wide view of an experiment from its fields (inside a write transaction)."""
    (name,) = conn.execute(_EXPERIMENT_NAME, (experiment,)).fetchone()
    clash = _object_named(conn, name)
    if clash is not None and clash[0] != "view":
        warnings.warn(
            f"recorder: the {clash[0]} {clash[1]!r} takes the name of experiment {name!r}, so its view "
            "is not kept up to date; query recorder's overview views instead",
            RecorderWarning,
            stacklevel=2,
        )
        return
    if clash is not None:
        conn.execute(f"DROP VIEW {quote_ident(clash[1])}")
    params, results = columns(fields_of(conn, experiment))
    conn.execute(f"CREATE VIEW {quote_ident(name)} AS\n{select_sql(experiment, params, results)}")


# The kind of a parameter, and of a result kept as a row, as Rows.write records them.
_PARAM_KIND = f"CASE j.type WHEN 'text' THEN '{TEXT}' WHEN 'array' THEN '{STRUCTURE}' WHEN 'object' THEN '{STRUCTURE}' ELSE '' END"
_ROW_KIND = f"CASE WHEN x.kind IS NULL AND typeof(x.value) = 'text' THEN '{TEXT}' ELSE ifnull(x.kind, '') END"
_REBUILD_FIELDS = (
    "DELETE FROM fields WHERE experiment = :e",
    f"""INSERT INTO fields (experiment, role, name, kind, first_run)
       SELECT :e, 'param', j.key, {_PARAM_KIND}, min(r.pk)
       FROM runs AS r JOIN psets AS p ON p.pk = r.pset, json_each(p.params) AS j
       WHERE r.experiment = :e GROUP BY j.key, {_PARAM_KIND} ORDER BY min(r.pk), j.key""",
    f"""INSERT INTO fields (experiment, role, name, kind, first_run)
       SELECT :e, 'result', x.name, {_ROW_KIND}, min(r.pk)
       FROM runs AS r JOIN results AS x ON x.run = r.pk
       WHERE r.experiment = :e GROUP BY x.name, {_ROW_KIND} ORDER BY min(r.pk), x.name""",
    f"""INSERT INTO fields (experiment, role, name, kind, first_run)
       SELECT :e, 'result', j.key, '{IN_SCALARS}', min(r.pk)
       FROM runs AS r, json_each(r.scalars) AS j
       WHERE r.experiment = :e AND r.scalars IS NOT NULL GROUP BY j.key ORDER BY min(r.pk), j.key""",
)


def rebuild_fields(conn: sqlite3.Connection, experiment: int) -> None:
    """Recompute an experiment's names from its runs, and its view (inside a write transaction)."""
    for statement in _REBUILD_FIELDS:
        conn.execute(statement, {"e": experiment})
    refresh_view(conn, experiment)


def refresh_all_views(conn: sqlite3.Connection) -> None:
    """(Re)create the wide view of every experiment (after a migration)."""
    for pk, _ in conn.execute(_EXPERIMENTS).fetchall():
        refresh_view(conn, pk)


class Fields:
    """The names of one experiment: claimed by the recording thread, written by the writer.

    :meth:`claim` refuses, at log time, a name that the other role already
    has; :meth:`write` checks again against the database (another process
    may have added names) and rebuilds the view when a name is new.
    """

    def __init__(self, conn: sqlite3.Connection, experiment: int) -> None:
        self.experiment = experiment
        rows = fields_of(conn, experiment)
        #: lower-cased name → (role, name), for the names of the experiment and those claimed since.
        self._names = {row.name.lower(): (row.role, row.name) for row in rows}
        #: (role, name, kind) already in the database.
        self.known = {(row.role, row.name, row.kind) for row in rows}
        # Parameter names → what texts() searches a canonical JSON for.
        self._probes: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {}
        # Parameter names → the str parameters of the last run that had some, and their probes.
        self._last: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {}

    def texts(self, names: tuple[str, ...], canonical: str) -> tuple[str, ...]:
        """Return the parameters whose value is a str in a pset's canonical JSON, in canonical order.

        Without parsing it: in canonical JSON a ``"`` inside a string is
        escaped, so ``{"name":"`` or ``,"name":"`` occurs only where the
        value of ``name`` is a str; and with no str value ``":"`` does not
        occur at all (the common case, one search).
        """
        if '":"' not in canonical:
            return ()
        last = self._last.get(names)
        # Most runs of a layout have the same str parameters as the last one: then ":" occurs once for
        # each of those (in canonical JSON, only where a value is a str), and each of their probes is there.
        if last is not None and canonical.count('":"') == len(last[1]):
            for probe in last[1]:
                if probe not in canonical:
                    break
            else:
                return last[0]
        probes = self._probes.get(names)
        if probes is None:
            order = sorted(names)  # canonical JSON's order
            probes = tuple(
                (("{" if i == 0 else ",") + json.dumps(name, ensure_ascii=False) + ':"', name)
                for i, name in enumerate(order)
            )
            if len(self._probes) < 1024:
                self._probes[names] = probes
        found = [(probe, name) for probe, name in probes if probe in canonical]
        texts = tuple([name for _, name in found])
        if len(self._last) < 1024:
            self._last[names] = (texts, tuple([probe for probe, _ in found]))
        return texts

    def structures(self, names: tuple[str, ...], canonical: str) -> tuple[str, ...]:
        """Return the parameters whose value is a list or dict in a pset's canonical JSON (as :meth:`texts` finds strs).

        Only called for a pset whose JSON holds ``":[`` or ``":{``; a ``"`` in a string is escaped, so
        ``{"name":[`` or ``,"name":[`` occurs where the value of ``name`` is a list (or where a dict
        value nested in a parameter has a key ``name``: then that parameter is shown as JSON too).
        """
        found = []
        for i, name in enumerate(sorted(names)):
            key = ("{" if i == 0 else ",") + json.dumps(name, ensure_ascii=False) + ":"
            if key + "[" in canonical or key + "{" in canonical:
                found.append(name)
        return tuple(found)

    def claim(self, role: str, names: Iterable[str]) -> None:
        """Check that ``names`` may be used as ``role`` names of this experiment, and claim them.

        :raises NameRefused: when the other role has the name, or the same
            role has it in another case.
        """
        taken = self._names
        for name in names:
            key = name.lower()
            other = taken.get(key)
            if other is None:
                taken[key] = (role, name)
            elif other != (role, name):
                raise NameRefused(_conflict(role, name, *other))

    def write(self, conn: sqlite3.Connection, entries: list[tuple[str, str, str, int]]) -> None:
        """Add ``(role, name, kind, first_run)`` entries the database lacks, and rebuild the view if any.

        :raises NameRefused: when an entry's name is the other role's in the database.
        """
        rows = fields_of(conn, self.experiment)
        names = {row.name.lower(): (row.role, row.name) for row in rows}
        known = {(row.role, row.name, row.kind) for row in rows}
        new_rows = []
        for role, name, kind, first_run in entries:
            if (role, name, kind) in known:
                continue
            other = names.get(name.lower())
            if other is None:
                names[name.lower()] = (role, name)
            elif other != (role, name):
                raise NameRefused(_conflict(role, name, *other))
            known.add((role, name, kind))
            new_rows.append((self.experiment, role, name, kind, first_run))
        conn.executemany(_INSERT_FIELD, new_rows)
        if new_rows:  # a new name, or a name kept in a new place (runs.scalars or results): new SQL
            refresh_view(conn, self.experiment)


def _conflict(role: str, name: str, other_role: str, other_name: str) -> str:
    if other_role == role:
        return (
            f"{role} {name!r} differs only in case from the {role} {other_name!r} of this experiment, "
            "and SQL does not tell case apart; use one spelling"
        )
    return (
        f"{role} {name!r} is already a {other_role} of this experiment"
        f"{'' if other_name == name else f' (as {other_name!r}; SQL does not tell case apart)'}; "
        "a parameter and a result cannot share a name (the experiment's view has one column per name), "
        "so rename one"
    )
