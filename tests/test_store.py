"""The store: finding it, creating it (also concurrently), its SQLite settings and version."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import recorder as rec
from recorder.db import SCHEMA_VERSION
from recorder.store import Store, locate

from conftest import ROOT


def test_store_argument_wins_over_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECORDER_STORE", str(tmp_path / "from-env"))
    assert locate(tmp_path / "explicit") == tmp_path / "explicit"
    assert locate() == tmp_path / "from-env"


def test_nearest_dot_recorder_walking_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".recorder").mkdir()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert locate() == tmp_path / ".recorder"


def test_default_creates_dot_recorder_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with rec.Recorder("e", git=False) as r:
        with r.run(a=1) as run:
            run.log(y=2)
    assert r.store == tmp_path / ".recorder"
    assert (tmp_path / ".recorder" / "recorder.sqlite").is_file()
    assert (tmp_path / ".recorder" / "objects").is_dir()


def test_readonly_open_of_missing_store_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(rec.StoreError, match="no store found"):
        Store.open(readonly=True)
    with pytest.raises(rec.StoreError, match="no store at"):
        Store.open(tmp_path / "nothing", readonly=True)


def test_store_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(rec.StoreError, match="is a file"):
        Store.open(tmp_path / "notes.txt")


def test_store_writes_its_own_gitignore(store: Path) -> None:
    Store.open(store).close()
    assert (store / ".gitignore").read_text().splitlines()[-1] == "*"


def test_sqlite_settings(store: Path) -> None:
    with Store.open(store) as s:
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert s.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000
    db = sqlite3.connect(store / "recorder.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    assert {"experiments", "sessions", "config", "psets", "runs", "results", "comments", "objects", "texts"} <= tables
    views = {r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'view'")}
    assert "overview_runs" in views


def test_foreign_keys_are_enforced(store: Path) -> None:
    with Store.open(store) as s, pytest.raises(sqlite3.IntegrityError):
        s.conn.execute("INSERT INTO results (run, name, value) VALUES (12345, 'x', 1)")


def test_newer_store_is_refused(store: Path) -> None:
    Store.open(store).close()
    db = sqlite3.connect(store / "recorder.sqlite")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(rec.StoreVersionError, match="newer"):
        Store.open(store)
    with pytest.raises(rec.StoreVersionError, match="upgrade recorder"):
        Store.open(store, readonly=True)


def test_foreign_sqlite_file_is_refused(store: Path) -> None:
    store.mkdir()
    db = sqlite3.connect(store / "recorder.sqlite")
    db.execute("CREATE TABLE mine (x)")
    db.commit()
    db.close()
    with pytest.raises(rec.StoreError, match="not a recorder store"):
        Store.open(store)


def test_garbage_file_is_refused(store: Path) -> None:
    store.mkdir()
    (store / "recorder.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(rec.StoreError, match="not a usable recorder database"):
        Store.open(store)


CREATE_AND_RECORD = """
import sys, time
import recorder as rec
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
with rec.Recorder("race", store=sys.argv[1], git=False) as r:
    with r.run(worker=int(sys.argv[3])) as run:
        run.log(y=1.0)
"""


def test_eight_processes_create_the_same_store_at_once(tmp_path: Path) -> None:
    import time

    store = tmp_path / "fresh"
    script = tmp_path / "create.py"
    script.write_text(CREATE_AND_RECORD)
    start = time.time() + 2.0  # all start together, after the interpreters are up
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(store), str(start), str(i)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )
        for i in range(8)
    ]
    outcomes = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _ in outcomes] == [0] * 8, [err for _, err in outcomes]
    db = sqlite3.connect(store / "recorder.sqlite")
    assert db.execute("SELECT count(*) FROM sessions WHERE status = 'done'").fetchone()[0] == 8
    assert sorted(r[0] for r in db.execute("SELECT params FROM psets")) == sorted(
        f'{{"worker":{i}}}' for i in range(8)
    )
    assert db.execute("SELECT count(*) FROM experiments").fetchone()[0] == 1


def test_views_of_the_user_survive(store: Path) -> None:
    Store.open(store).close()
    con = sqlite3.connect(store / "recorder.sqlite")
    con.execute("CREATE VIEW my_runs AS SELECT id FROM runs")
    con.execute("PRAGMA user_version = 0")  # what an old store looks like to the migration
    con.commit()
    con.close()
    with pytest.raises(rec.StoreError, match="not a recorder store"):
        Store.open(store)  # version 0 with tables: not ours to create over
    con = sqlite3.connect(store / "recorder.sqlite")
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    con.commit()
    from recorder.db import _create_views

    with Store.open(store) as s:
        _create_views(s.conn)
        names = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_schema WHERE type = 'view'")}
    assert {"my_runs", "overview_runs"} <= names
