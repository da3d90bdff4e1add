"""The store: finding it, creating it (also concurrently), its SQLite settings and version."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import ROOT, read_only_view

import recorder as rec
from recorder.store.db import SCHEMA_VERSION
from recorder.store.folder import Store, locate

if TYPE_CHECKING:
    from click.testing import Result


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


# Each process signs in to the gate folder, then waits for the others: all start together
# (a barrier, not a clock: a loaded machine may take seconds to start eight interpreters).
CREATE_AND_RECORD = """
import os, sys, time
import recorder as rec
gate = sys.argv[2]
open(os.path.join(gate, sys.argv[3]), "x").close()
deadline = time.monotonic() + 120
while len(os.listdir(gate)) < 8:
    if time.monotonic() > deadline:
        sys.exit("the other processes never started")
    time.sleep(0.001)
with rec.Recorder("race", store=sys.argv[1], git=False) as r:
    with r.run(worker=int(sys.argv[3])) as run:
        run.log(y=1.0)
"""


def test_eight_processes_create_the_same_store_at_once(tmp_path: Path) -> None:
    store = tmp_path / "fresh"
    script = tmp_path / "create.py"
    script.write_text(CREATE_AND_RECORD)
    gate = tmp_path / "gate"
    gate.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(store), str(gate), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
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
    assert sorted(r[0] for r in db.execute("SELECT params FROM psets")) == sorted(f'{{"worker":{i}}}' for i in range(8))
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
    from recorder.store.db import _create_views

    with Store.open(store) as s:
        _create_views(s.conn)
        names = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_schema WHERE type = 'view'")}
    assert {"my_runs", "overview_runs"} <= names


# -- reading never creates or changes anything; a foreign file is refused untouched ----------


def _cli(store: Path | None, *args: str, cwd: Path | None = None) -> Result:
    from click.testing import CliRunner

    from recorder.cli.commands import main

    prefix = ["--store", str(store)] if store is not None else []
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(main, [*prefix, *args])
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(main, [*prefix, *args])
    finally:
        os.chdir(old)


def _one_line_error(result: Result, *fragments: str, code: int = 1) -> str:
    assert result.exit_code == code, (result.output, result.exception)
    lines = result.stderr.rstrip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("recorder: error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def _console_script() -> str:
    here = os.path.dirname(sys.executable)
    exe = shutil.which("recorder", path=here + os.pathsep + os.environ.get("PATH", ""))
    if exe is None:
        pytest.skip("no installed `recorder` executable")
    return exe


def _env_here() -> dict[str, str]:
    """The environment of a subprocess that imports this worktree's recorder."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for a folder)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("command", [["verify"], ["gc"], ["gc", "--dry-run"], ["log"], ["status"], ["sql", "SELECT 1"]])
def test_read_and_maintenance_commands_never_create_a_store(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "nonexist"
    result = _cli(missing, *command)
    _one_line_error(result, "no store at", str(missing), code=3)  # NoStoreError
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _cli(None, *command, cwd=empty)
    _one_line_error(result, "no store", code=3)
    assert list(empty.iterdir()) == []


def test_verify_and_gc_of_the_console_script_never_create_a_store(tmp_path: Path) -> None:
    exe = _console_script()
    probe = subprocess.run(
        [sys.executable, "-c", "import recorder; print(recorder.__file__)"],
        env=_env_here(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert probe.stdout.strip().startswith(str(ROOT))  # the subprocesses run this worktree's code
    missing = tmp_path / "nonexist"
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (["--store", str(missing), "verify"], ["--store", str(missing), "gc"], ["verify"], ["gc"]):
        done = subprocess.run(
            [exe, *args], cwd=empty, env=_env_here(), capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 3, (args, done.stdout, done.stderr)
        assert done.stderr.startswith("recorder: error: no store"), done.stderr
        assert "Traceback" not in done.stderr and done.stdout == ""
    assert not missing.exists()
    assert list(empty.iterdir()) == []


def test_library_maintenance_never_creates_a_store(tmp_path: Path) -> None:
    from recorder.errors import NoStoreError
    from recorder.shards.maintenance import gc, verify

    missing = tmp_path / "nonexist"
    for call in (verify, gc):
        with pytest.raises(NoStoreError, match="no store at"):
            call(missing)
    with pytest.raises(NoStoreError, match="no store at"):
        Store.open(missing, create=False)
    with pytest.raises(NoStoreError):
        rec.open(missing)
    assert not missing.exists()
    Store.open(missing).close()  # writing creates it
    assert (missing / "recorder.sqlite").is_file()


def _foreign(store: Path, *, journal_mode: str = "delete", user_version: int = 0, application_id: int = 0) -> bytes:
    store.mkdir()
    db = sqlite3.connect(store / "recorder.sqlite")
    db.execute(f"PRAGMA journal_mode = {journal_mode}")
    db.execute("CREATE TABLE mine (x)")
    db.execute("INSERT INTO mine VALUES (1)")
    db.execute(f"PRAGMA user_version = {user_version}")
    db.execute(f"PRAGMA application_id = {application_id}")
    db.commit()
    db.close()
    return (store / "recorder.sqlite").read_bytes()


@pytest.mark.parametrize("kind", ["plain", "user_version", "application_id", "runs_table"])
def test_a_foreign_sqlite_file_is_refused_untouched(store: Path, kind: str) -> None:
    from recorder.errors import ForeignStoreError

    before = _foreign(
        store, user_version=7 if kind == "user_version" else 0, application_id=1234 if kind == "application_id" else 0
    )
    if kind == "runs_table":  # looks a little like a store, without being one
        db = sqlite3.connect(store / "recorder.sqlite")
        db.execute("CREATE TABLE runs (id)")
        db.execute("PRAGMA user_version = 2")
        db.commit()
        db.close()
        before = (store / "recorder.sqlite").read_bytes()
    tree = _tree(store)
    for command in (["log"], ["status"], ["sql", "SELECT 1"], ["show", "abc"], ["verify"], ["gc"]):
        _one_line_error(_cli(store, *command), "not a recorder store")
    with pytest.raises(ForeignStoreError, match="not a recorder store"):
        rec.open(store)
    with pytest.raises(ForeignStoreError, match="not a recorder store"):
        Store.open(store, readonly=True)
    with pytest.raises(ForeignStoreError, match="not a recorder store"):
        Store.open(store)
    with pytest.raises(ForeignStoreError, match="not a recorder store"):
        with rec.Recorder("e", store=store, git=False):
            pass
    assert (store / "recorder.sqlite").read_bytes() == before
    assert _tree(store) == tree  # no objects/, .gitignore, locks/, -wal or -shm
    assert sqlite3.connect(store / "recorder.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_foreign_wal_file_is_refused_untouched(store: Path) -> None:
    # Closed cleanly (no -wal): read without leaving an empty -wal and -shm behind, as mode=ro would.
    before = _foreign(store, journal_mode="wal")
    tree = _tree(store)
    _one_line_error(_cli(store, "log"), "not a recorder store")
    with pytest.raises(rec.StoreError, match="not a recorder store"):
        rec.open(store)
    with pytest.raises(rec.StoreError, match="not a recorder store"):
        Store.open(store)
    with pytest.raises(rec.StoreError, match="not a recorder store"):
        Store.open(store, readonly=True)  # last: a read-write open would delete what it left
    assert (store / "recorder.sqlite").read_bytes() == before
    assert _tree(store) == tree  # no objects/, .gitignore, -wal or -shm


def test_new_stores_carry_recorders_application_id_and_old_ones_still_open(store: Path) -> None:
    from recorder.store.db import APPLICATION_ID

    with rec.Recorder("e", store=store, git=False) as r, r.run(a=1) as run:
        run.log(y=1)
    db = sqlite3.connect(store / "recorder.sqlite")
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID != 0
    db.execute("PRAGMA application_id = 0")  # what stores written before it look like
    db.commit()
    db.close()
    with rec.open(store) as opened:
        assert len(opened.df("e")) == 1
    with rec.Recorder("e", store=store, git=False) as r, r.run(a=2) as run:
        run.log(y=2)
    with rec.open(store) as opened:
        assert len(opened.df("e")) == 2


def test_reading_a_store_creates_nothing(store: Path) -> None:
    with rec.Recorder("e", store=store, git=False) as r, r.run(a=1) as run:
        run.log(y=1)
    shutil.rmtree(store / "objects")
    (store / ".gitignore").unlink()
    shutil.rmtree(store / "locks", ignore_errors=True)
    names = sorted(p.name for p in store.iterdir())
    with rec.open(store) as opened:
        assert len(opened.df("e")) == 1
    for command in (["log"], ["status"], ["sql", "SELECT count(*) FROM runs"], ["verify"]):
        result = _cli(store, *command)
        assert result.exit_code == 0, (command, result.output)
    assert sorted(p.name for p in store.iterdir()) == names


def test_reading_an_empty_database_file_creates_nothing(store: Path) -> None:
    """An empty ``recorder.sqlite`` (touched, or left by a crash before the schema) is no store to a reader."""
    store.mkdir()
    (store / "recorder.sqlite").touch()
    for command in (["log"], ["status"], ["verify"], ["gc"]):
        result = _cli(store, *command)
        assert result.exit_code == 3 and "no store at" in result.stderr, (command, result.output)
    with pytest.raises(rec.NoStoreError):
        rec.open(store)
    assert sorted(p.name for p in store.iterdir()) == ["recorder.sqlite"]
    assert (store / "recorder.sqlite").stat().st_size == 0
    with rec.Recorder("e", store=store, git=False) as r, r.run(a=1) as run:  # writing makes it a store
        run.log(y=1)
    assert len(rec.open(store).df("e")) == 1


# -- a store in a folder that cannot be written --------------------------------------------


def test_a_cleanly_closed_store_reads_from_a_read_only_folder(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with rec.Recorder("e", store=store, git=False) as r:
        for a in range(3):
            with r.run(a=a) as run:
                run.log(y=a * 1.5)
    assert not (store / "recorder.sqlite-wal").exists()  # cleanly closed: the file alone
    with read_only_view(store, tmp_path / "ro") as ro:
        assert not os.access(ro, os.W_OK)
        with rec.open(ro) as db:
            assert db.df("e")["y"].tolist() == [0.0, 1.5, 3.0]
            assert db.sql("SELECT count(*) AS n FROM e")["n"].tolist() == [3]
        with Store.open(ro, readonly=True) as s:
            assert s.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 3
        from recorder.read.sidequery import SideQuery
        from recorder.store.db import read_uri

        assert read_uri(ro / "recorder.sqlite").endswith("immutable=1")  # helper processes read it so too
        assert SideQuery(ro / "recorder.sqlite", "SELECT count(*) FROM runs", []).result() == (b"3",)
        for command in (["log"], ["status"], ["sql", "SELECT count(*) AS n FROM runs"]):
            result = _cli(ro, *command)
            assert result.exit_code == 0, (command, result.output)
        assert "3" in _cli(ro, "sql", "SELECT count(*) AS n FROM runs").stdout
        assert len(_cli(ro, "log", "--oneline").stdout.splitlines()) == 3
        assert sorted(p.name for p in ro.iterdir()) == sorted(p.name for p in store.iterdir())
