"""One source for the SQL of the views: schema/views.sql and the wide views are made from recorder.store.viewsql."""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

import pytest

import recorder as rec
from recorder.codec.values import is_scalar_kind
from recorder.store import viewsql
from recorder.store.db import connect, schema_path

STORE = Path(rec.__file__).resolve().parent / "store"

# Text that only the functions and constants of viewsql.py write: a module that builds a view and has one
# of them spells out a column expression of its own, which could drift from the one of the other views.
EXPRESSIONS = [
    "strftime(",  # iso_time: a time shown as ISO-8601
    "lower(hex(",  # hex_text: an id or hash shown as hex
    "/ 1e6",  # a duration shown in seconds
    "json_extract(",  # json_value: a parameter or a result in runs.scalars
    "IN ('true', 'false')",  # SCALARS_KIND: the kind of a value in runs.scalars
    "LIKE 'np:%')",  # scalar_kind ends so: whether a results row holds a scalar
    "JOIN sessions AS s ON s.pk = r.session",  # RUN_JOINS
    "'scalars'",  # IN_SCALARS as an SQL literal
]


def _source_strings(path: Path) -> str:
    """Every string literal (and literal part of an f-string) in a module's code, one a line."""
    tree = ast.parse(path.read_text())
    return "\n".join(
        node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def test_views_sql_is_what_viewsql_produces() -> None:
    assert schema_path("views.sql").read_text() == viewsql.views_sql(), (
        "schema/views.sql is not what recorder/store/viewsql.py produces: regenerate it as its header says"
    )


def test_viewsql_writes_each_shared_expression_once() -> None:
    """Within viewsql.py itself, each expression is written in one function or constant that the views use."""
    strings = _source_strings(STORE / "viewsql.py")
    for expression in EXPRESSIONS:
        if expression == "'scalars'":
            continue  # written as quote_literal(IN_SCALARS)
        assert strings.count(expression) == 1, expression


@pytest.mark.parametrize("module", ["catalog.py", "db.py"])
def test_the_modules_that_make_views_spell_out_no_shared_expression(module: str) -> None:
    strings = _source_strings(STORE / module)
    assert [expression for expression in EXPRESSIONS if expression in strings] == []


def test_a_store_has_the_views_viewsql_makes(tmp_path: Path) -> None:
    """What creating a store runs (schema/views.sql) is viewsql's SQL, and a wide view has its run columns."""
    store = tmp_path / "s"
    with rec.Recorder("exp", store=store, git=False) as r:
        with r.run(a=1) as run:
            run.log(y=2.0)
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        made = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'").fetchall())
    finally:
        conn.close()
    wide = made.pop("exp")
    assert made == {view.name: f"CREATE VIEW {view.name} AS\n{view.select}" for view in viewsql.VIEWS}
    for name, sql in viewsql.RUN_COLUMNS.items():
        # the same SQL for the same column in the wide view and in overview_runs
        assert f"    {sql} AS {name},\n" in wide
        assert f"    {sql} AS {name},\n" in made["overview_runs"]
    assert viewsql.RUN_JOINS in wide and viewsql.RUN_JOINS in made["overview_runs"]


def test_the_sql_scalar_kinds_are_those_of_the_codec(tmp_path: Path) -> None:
    """scalar_kind (which results rows the wide view reads) agrees with recorder.codec.values.is_scalar_kind."""
    kinds = [None, "nan", "bool", "int", "np:<f8", "np:<u8", "np:|b1", "json", "object", "npy", "npyscalar", "bytes"]
    (tmp_path / "s").mkdir()
    conn = connect(tmp_path / "s" / "recorder.sqlite")
    try:
        sql = f"SELECT {viewsql.scalar_kind('k')} FROM (SELECT ? AS k)"
        got = {kind: bool(conn.execute(sql, (kind,)).fetchone()[0]) for kind in kinds}
    finally:
        conn.close()
    assert got == {kind: is_scalar_kind(kind) for kind in kinds}


def test_the_sql_kind_of_a_value_in_runs_scalars_is_what_results_would_hold(tmp_path: Path) -> None:
    """results_all shows a value kept in runs.scalars with the kind a results row has for it."""
    store = tmp_path / "s"
    with rec.Recorder("exp", store=store, git=False) as r:
        with r.run(a=1) as run:
            run.log(flag=True, n=3, y=1.5, z=None)
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        compact = dict(conn.execute(f"SELECT j.key, {viewsql.SCALARS_KIND} FROM runs AS r, json_each(r.scalars) AS j"))
        shown = dict(conn.execute("SELECT name, kind FROM results_all"))
    finally:
        conn.close()
    assert compact == shown == {"flag": "bool", "n": None, "y": None, "z": None}


@pytest.mark.parametrize("name", ["views.sql", "tables.sql"])
def test_the_regeneration_command_in_a_generated_file_makes_it(name: str) -> None:
    """The one-line command in the header of a generated schema file runs, and writes that file."""
    import os
    import shlex
    import subprocess
    import sys

    text = schema_path(name).read_text()
    (line,) = [line for line in text.splitlines() if line.startswith("--   python -c ")]
    command = shlex.split(line.removeprefix("--   "))
    assert command[:2] == ["python", "-c"] and command[3:] == [">", f"schema/{name}"], line
    root = str(Path(rec.__file__).resolve().parent.parent)
    done = subprocess.run(
        [sys.executable, "-c", command[2]],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == text
