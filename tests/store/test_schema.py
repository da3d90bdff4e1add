"""One schema: a migrated store equals a fresh one, and recorder's SQL names only what the schema has."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

import recorder as rec
from recorder.store.db import APPLICATION_ID, SCHEMA_VERSION, connect
from recorder.store.viewsql import RUN_COLUMNS

DATA = Path(__file__).resolve().parents[1] / "data"

# What schema 1 recorded in tests/data/schema1.sql, in the order it logged the results
# (alphabetical: the order its migration recovers the names in).
RUNS = [
    ({"a": 1, "b": "x", "c": 0.5}, {"flag": False, "label": "a=1", "n": 1, "y": 1.5, "z": None}),
    ({"a": 2, "b": "y", "c": 1.0}, {"flag": True, "label": "a=2", "n": 2, "y": 3.0, "z": None}),
]


def schema_of(path: Path) -> list[tuple[str, str, str, str | None]]:
    """Every entry of ``sqlite_master`` (tables, indexes, views), its SQL with whitespace normalised."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
        pragmas = [conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("user_version", "application_id")]
    finally:
        conn.close()
    # SQLite keeps a statement's text as written; ALTER TABLE splices its column into it.
    normal = [(t, n, tb, None if sql is None else re.sub(r"\s+", " ", sql).strip()) for t, n, tb, sql in rows]
    return [("pragma", "user_version", "", str(pragmas[0])), ("pragma", "application_id", "", str(pragmas[1])), *normal]


def make_schema_1(store: Path, *, data: bool) -> None:
    """Create ``store`` as schema 1 wrote it: its DDL, and with ``data`` its experiment "exp" and runs."""
    script = (DATA / "schema1.sql").read_text()
    if not data:
        script = "\n".join(line for line in script.splitlines() if not line.startswith("INSERT"))
    store.mkdir()
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        conn.executescript(script)
        conn.execute("PRAGMA user_version = 1")
    finally:
        conn.close()


def record(store: Path) -> None:
    """Record experiment "exp" with the runs of :data:`RUNS` (the same as the schema-1 fixture's)."""
    with rec.Recorder("exp", store=store, git=False) as r:
        for params, results in RUNS:
            with r.run(**params) as run:
                run.log(**results)


def test_the_schema_1_fixture_is_schema_1(tmp_path: Path) -> None:
    make_schema_1(tmp_path / "old", data=True)
    got = dict(((t, n), sql) for t, n, _, sql in schema_of(tmp_path / "old" / "recorder.sqlite"))
    assert got[("pragma", "user_version")] == "1" and got[("pragma", "application_id")] == "0"
    assert ("table", "fields") not in got and ("view", "exp") not in got and ("table", "runs") in got


def test_an_empty_store_migrated_from_schema_1_equals_a_fresh_one(tmp_path: Path) -> None:
    fresh, old = tmp_path / "fresh", tmp_path / "old"
    connect(_created(fresh)).close()
    make_schema_1(old, data=False)
    connect(old / "recorder.sqlite").close()  # migrates
    assert schema_of(old / "recorder.sqlite") == schema_of(fresh / "recorder.sqlite")


def test_a_store_migrated_from_schema_1_then_recorded_to_equals_a_fresh_one(tmp_path: Path) -> None:
    fresh, old = tmp_path / "fresh", tmp_path / "old"
    record(fresh)
    make_schema_1(old, data=False)
    record(old)  # migrates, then records
    assert schema_of(old / "recorder.sqlite") == schema_of(fresh / "recorder.sqlite")


def test_a_store_with_runs_migrated_from_schema_1_equals_a_fresh_one(tmp_path: Path) -> None:
    """Schema 1's runs, migrated, give the tables, indexes and views of a fresh store that recorded them.

    Only the text of the experiment's wide view may differ: schema 1 kept every result as a row of
    ``results``, where the migrated runs keep them, so the view reads them there rather than from
    ``runs.scalars``; its columns and what it shows are the same.
    """
    fresh, old = tmp_path / "fresh", tmp_path / "old"
    record(fresh)
    make_schema_1(old, data=True)
    connect(old / "recorder.sqlite").close()  # migrates

    def outside_the_wide_view(path: Path) -> list[tuple[str, str, str, str | None]]:
        return [row for row in schema_of(path) if row[:2] != ("view", "exp")]

    assert outside_the_wide_view(old / "recorder.sqlite") == outside_the_wide_view(fresh / "recorder.sqlite")
    with rec.open(old) as db_old, rec.open(fresh) as db_fresh:
        columns = db_fresh.sql('SELECT * FROM "exp" LIMIT 0').columns.tolist()
        assert db_old.sql('SELECT * FROM "exp" LIMIT 0').columns.tolist() == columns
        assert columns[-8:] == ["a", "b", "c", "flag", "label", "n", "y", "z"]
        shown = (
            'SELECT a, b, c, flag, label, n, y, z, typeof(a), typeof(c), typeof(flag), typeof(y) FROM "exp" ORDER BY a'
        )
        assert db_old.sql(shown).values.tolist() == db_fresh.sql(shown).values.tolist()


def _created(store: Path) -> Path:
    store.mkdir()
    return store / "recorder.sqlite"


def test_the_current_version_is_what_a_fresh_store_has(tmp_path: Path) -> None:
    connect(_created(tmp_path / "s")).close()
    got = dict(((t, n), sql) for t, n, _, sql in schema_of(tmp_path / "s" / "recorder.sqlite"))
    assert got[("pragma", "user_version")] == str(SCHEMA_VERSION)
    assert got[("pragma", "application_id")] == str(APPLICATION_ID)


# -- every SQL statement of recorder names only tables and columns the schema has ------------------------

# recorder writes SQL keywords in upper case; a keyword then a space or the end ("commit.gpgSign" is no SQL)
_SQL = re.compile(
    r"\s*(?:SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|PRAGMA|BEGIN|COMMIT|ROLLBACK|DROP|REPLACE|ALTER)(?:\s|\Z)"
)
_CONSTANT = re.compile(r"_?[A-Z][A-Z0-9_]*")
# What the code puts in each format field of a statement: a condition on runs, "?" lists, a schema name,
# and the optional columns frame.py reads (as frame.py writes them, so their columns are checked too).
_FIELDS = {
    "marks": "?, ?",
    "statuses": "?, ?",
    "db": "main",
    "condition": "r.experiment = ?",
    "sessions": "s.pk IN (?)",
    "runs": "r.pk > ?",
    "status": ", group_concat(status)",
    "scalars": ", CAST(group_concat(ifnull(scalars, '{}'), char(30)) AS BLOB)",
    "params": ", CAST(group_concat(params, char(30)) AS BLOB)",
    "cells": "x0.kind, x0.value",
    "joins": "LEFT JOIN results AS x0 ON x0.run = r.pk AND x0.name = ?",
    # an experiment's wide view (catalog.select_sql), a column of it, an order and a direction
    "wide": "SELECT r.pk AS _pk, r.status AS status FROM runs AS r",
    "column": "status",
    "columns": "min(status), max(status)",
    "direction": "DESC",
    "order": "r.pk DESC",
    # recorder serve's canned queries: the arrays query's name, a view and an experiment's key
    "arrays": "arrays",
    "view": "overview_runs",
    "pk": "1",
}
# Fields whose name means something else in one statement.
_FIELDS_OF = {("read.frame", "_FIXED_AGGREGATES"): {"sessions": ", group_concat(session)"}}


class _AnyValue(dict):  # type: ignore[type-arg]
    """Binds None to every named parameter (``:e``) of a statement."""

    def __missing__(self, key: str) -> None:
        return None


def recorder_statements() -> list[tuple[str, str, str]]:
    """(module, constant, statement) for every SQL statement held in an upper-case constant of a recorder module."""
    import importlib
    import pkgutil
    import string

    found = []
    for info in pkgutil.walk_packages(rec.__path__, prefix="recorder."):
        if info.name == "recorder.sweep.vectorised":  # needs jax installed; its two statements are checked below
            continue
        if info.name == "recorder.importing.mlflow":  # reads MLflow's database: tests/importing runs it on real ones
            continue
        module = importlib.import_module(info.name)
        where = info.name.removeprefix("recorder.")
        for name, value in vars(module).items():
            if not _CONSTANT.fullmatch(name) or getattr(value, "__module__", module.__name__) != module.__name__:
                continue
            for statement in value if isinstance(value, (tuple, list)) else (value,):
                if not isinstance(statement, str) or not _SQL.match(statement):
                    continue
                fields = {f for _, f, _, _ in string.Formatter().parse(statement) if f is not None}
                if fields:
                    fill = {**_FIELDS, **_FIELDS_OF.get((where, name), {})}
                    statement = statement.format(**{f: fill[f] for f in fields})
                found.append((where, name, statement))
    return found


def _prepare(conn: sqlite3.Connection, statement: str) -> None:
    """Compile ``statement`` (``EXPLAIN`` runs nothing), binding None to each of its parameters."""
    sql = f"EXPLAIN {statement}"
    if re.search(r"(?<![:\w]):[A-Za-z_]", statement):
        conn.execute(sql, _AnyValue()).fetchall()
        return
    try:
        conn.execute(sql).fetchall()
    except sqlite3.ProgrammingError as e:  # "… uses 3, and there are 0 supplied"
        match = re.search(r"uses (\d+)", str(e))
        if match is None:
            raise
        conn.execute(sql, [None] * int(match.group(1))).fetchall()


def test_recorder_has_sql_statements_to_check() -> None:
    found = {(module, name) for module, name, _ in recorder_statements()}
    # a few known ones, so that a change to how they are found cannot make the next test check nothing
    assert {
        ("store.rows", "_INSERT_RUN"),
        ("store.writer", "_RUN_STATES"),
        ("read.frame", "_RUN_AGGREGATES"),
        ("read.show", "_SESSION"),
        ("shards.merge", "_OBJECTS_USED"),
        ("store.catalog", "_REBUILD_FIELDS"),
    } <= found
    assert len(found) > 80


def test_every_sql_statement_of_recorder_prepares_on_a_fresh_store(tmp_path: Path) -> None:
    """Each statement names only tables and columns that the models (which create a fresh store) have."""
    conn = connect(_created(tmp_path / "s"))
    failed = []
    try:
        for module, name, statement in recorder_statements():
            try:
                _prepare(conn, statement)
            except sqlite3.Error as e:
                failed.append(f"recorder.{module}.{name}: {e}")
        # the views of schema/views.sql (created by the models' tables) read what they name
        for (view,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'view'").fetchall():
            try:
                _prepare(conn, f'SELECT * FROM "{view}"')
            except sqlite3.Error as e:
                failed.append(f"view {view}: {e}")
    finally:
        conn.close()
    assert failed == []


def test_the_statements_of_the_views_are_among_those_checked() -> None:
    """The fixed views' SELECTs are upper-case constants of recorder.store.viewsql, so the test above compiles them."""
    from recorder.store import viewsql

    found = {statement for module, _, statement in recorder_statements() if module == "store.viewsql"}
    assert {view.select for view in viewsql.VIEWS} <= found


def test_every_kind_of_wide_view_prepares_on_a_fresh_store(tmp_path: Path) -> None:
    """The wide views are built by functions, not held in constants: compile one with every kind of column.

    A fresh store has no experiment, so the check of every view above sees no wide view; this one
    builds the SELECT of a wide view (as :func:`recorder.store.catalog.refresh_view` and ``db.df`` do)
    for parameters and results of every kind and place, and compiles it.
    """
    from recorder.store.catalog import IN_SCALARS, TEXT, refresh_view, select_sql

    params = {"a": {""}, "b": {TEXT}, "mixed": {"", TEXT}, 'quo"te': {""}, "back\\slash": {TEXT}}
    results = {
        "in_scalars": {IN_SCALARS},
        "in_rows": {"int"},
        "both": {IN_SCALARS, ""},
        "label": {TEXT},
        "u64": {"np:u8"},
        'q"': {IN_SCALARS},
        "f32": {"np:f4", "nan"},
    }
    wide = select_sql(1, params, results)
    # each way of reading a column is there: a JSON path, a key looked up, a results row, both places, a cast
    for part in ("json_extract(p.params", "json_each(p.params)", "json_each(r.scalars)", "FROM results AS x"):
        assert part in wide
    for part in ("coalesce(", "AS NUMERIC)", "AS TEXT)", "json_extract(r.scalars"):
        assert part in wide
    conn = connect(_created(tmp_path / "s"))
    try:
        _prepare(conn, wide)
        _prepare(conn, select_sql(1, params, results, with_pk=True))
        # and the view refresh_view creates from the fields of a real experiment reads what it names
        conn.execute("INSERT INTO experiments (id, name, time_created) VALUES ('x', 'exp', '')")
        rows = [("param", name, kind) for name, kinds in params.items() for kind in kinds]
        rows += [("result", name, kind) for name, kinds in results.items() for kind in kinds]
        conn.executemany("INSERT INTO fields (experiment, role, name, kind) VALUES (1, ?, ?, ?)", rows)
        refresh_view(conn, 1)
        _prepare(conn, 'SELECT * FROM "exp"')
        names = [row[1] for row in conn.execute('PRAGMA table_info("exp")')]
        assert names[len(RUN_COLUMNS) :] == [*params, *results]
    finally:
        conn.close()


def test_the_jax_statements_prepare_on_a_fresh_store(tmp_path: Path) -> None:
    """recorder/sweep/vectorised.py imports jax only when used, but read its statements without importing it."""
    import ast

    tree = ast.parse((Path(rec.__file__).parent / "sweep" / "vectorised.py").read_text())
    statements = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        and _SQL.match(node.value.value)
    }
    assert set(statements) >= {"_SESSION_JAX", "_SET_SESSION_JAX"}
    conn = connect(_created(tmp_path / "s"))
    try:
        for statement in statements.values():
            _prepare(conn, statement)
    finally:
        conn.close()


# -- the tables: generated once from the models into schema/tables.sql -----------------------------------


def test_tables_sql_is_what_the_models_produce() -> None:
    from recorder.store import models
    from recorder.store.db import schema_path

    assert schema_path("tables.sql").read_text() == models.tables_sql(), (
        "schema/tables.sql is not what recorder/store/models.py produces: regenerate it as its header says"
    )


def test_the_models_list_every_table_they_define() -> None:
    from sqlmodel import SQLModel

    from recorder.store import models

    defined = {
        value
        for value in vars(models).values()
        if isinstance(value, type)
        and issubclass(value, SQLModel)
        and hasattr(value, "__table__")
        and value.__module__ == models.__name__
    }
    assert set(models.TABLES) == defined


def test_a_fresh_store_has_the_tables_and_indexes_of_the_models(tmp_path: Path) -> None:
    from recorder.store import models

    expected = sqlite3.connect(":memory:")
    for statement in models.create_statements():
        expected.execute(statement)
    want = expected.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY type, name"
    ).fetchall()
    expected.close()
    connect(_created(tmp_path / "s")).close()
    got = [row for row in schema_of(tmp_path / "s" / "recorder.sqlite") if row[0] in ("table", "index")]
    assert got == [(t, n, tb, None if sql is None else re.sub(r"\s+", " ", sql).strip()) for t, n, tb, sql in want]
    assert {name for t, name, _, _ in got if t == "table"} == {model.__tablename__ for model in models.TABLES}


def test_creating_a_store_does_not_import_sqlalchemy(tmp_path: Path) -> None:
    """Importing SQLModel and SQLAlchemy takes about 0.2 s: creating a store reads the generated DDL instead."""
    import os
    import subprocess
    import sys

    code = (
        "import sys, pathlib\n"
        "import recorder, recorder.store.db\n"
        "assert recorder.__file__.startswith(sys.argv[2]), recorder.__file__\n"
        "store = pathlib.Path(sys.argv[1])\n"
        "store.mkdir()\n"
        "recorder.store.db.connect(store / 'recorder.sqlite').close()\n"
        "print(sorted(m for m in ('sqlalchemy', 'sqlmodel', 'pydantic') if m in sys.modules))\n"
    )
    root = str(Path(rec.__file__).resolve().parent.parent)
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "s"), root],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": root},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    conn = connect(tmp_path / "s" / "recorder.sqlite")
    try:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    finally:
        conn.close()


def test_a_store_of_schema_4_with_a_parameter_named_rerun_of_opens_and_keeps_its_column(tmp_path: Path) -> None:
    """rerun_of became a run column (and a reserved name) in schema 5: an older experiment's parameter keeps it."""
    from conftest import undo_schema_5

    store = tmp_path / "s"
    with rec.Recorder("old", store=store, git=False) as r:
        for i in (1, 2):
            with r.run(rerun_ofx=i) as run:
                run.log(y=i * 10)
    # What recorder before schema 5 wrote for a parameter named rerun_of (which it allowed).
    conn = sqlite3.connect(store / "recorder.sqlite")
    undo_schema_5(conn)
    conn.execute("UPDATE psets SET params = replace(params, '\"rerun_ofx\"', '\"rerun_of\"')")
    conn.execute("UPDATE fields SET name = 'rerun_of' WHERE name = 'rerun_ofx'")
    conn.execute("PRAGMA user_version = 4")
    conn.commit()
    conn.close()
    with rec.open(store) as db:  # migrated on opening
        assert db.sql('SELECT rerun_of, y FROM "old" ORDER BY y').values.tolist() == [[1, 10], [2, 20]]
        assert db.df("old")["rerun_of"].tolist() == [1, 2]
        assert db.sql("SELECT rerun_of FROM overview_runs")["rerun_of"].isna().all()
    with pytest.raises(rec.NameRefused, match="rerun_of"), rec.Recorder("old", store=store, git=False) as r:
        r.run(rerun_of=3)  # new runs must rename it


def test_a_store_of_schema_6_gets_the_columns_of_schema_7_and_keeps_its_runs(tmp_path: Path) -> None:
    """Schema 7 adds runs.host, pid, pset_seq and origin; runs recorded before keep their rows, with NULL there."""
    from conftest import undo_schema_7

    store = tmp_path / "s"
    with rec.Recorder("exp", store=store, git=False) as r:
        with r.run(x=1) as run:
            run.log(y=2.0)
    conn = sqlite3.connect(store / "recorder.sqlite")
    undo_schema_7(conn)
    conn.execute("PRAGMA user_version = 6")
    conn.commit()
    assert "origin" not in [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
    conn.close()
    with rec.open(store) as db:
        assert db.df("exp")["y"].tolist() == [2.0]
    conn = sqlite3.connect(store / "recorder.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7
    assert conn.execute("SELECT host, pid, pset_seq, origin FROM runs").fetchall() == [(None, None, None, None)]
    conn.close()
