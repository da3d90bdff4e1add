"""One schema: a migrated store equals a fresh one, and recorder's SQL names only what the schema has."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import recorder as rec
from recorder.db import APPLICATION_ID, SCHEMA_VERSION, connect

DATA = Path(__file__).resolve().parent / "data"

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
    return [("pragma", "user_version", "", str(pragmas[0])), ("pragma", "application_id", "", str(pragmas[1])),
            *normal]


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
        shown = 'SELECT a, b, c, flag, label, n, y, z, typeof(a), typeof(c), typeof(flag), typeof(y) FROM "exp" ORDER BY a'
        assert db_old.sql(shown).values.tolist() == db_fresh.sql(shown).values.tolist()


def _created(store: Path) -> Path:
    store.mkdir()
    return store / "recorder.sqlite"


def test_the_current_version_is_what_a_fresh_store_has(tmp_path: Path) -> None:
    connect(_created(tmp_path / "s")).close()
    got = dict(((t, n), sql) for t, n, _, sql in schema_of(tmp_path / "s" / "recorder.sqlite"))
    assert got[("pragma", "user_version")] == str(SCHEMA_VERSION)
    assert got[("pragma", "application_id")] == str(APPLICATION_ID)
