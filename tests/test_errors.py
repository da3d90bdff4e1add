"""Errors with names: a class per case users handle differently, each with a stable CLI exit code."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import recorder as rec
from recorder import errors

ROOT = Path(__file__).resolve().parents[1]

#: The promise of the README's "Exit codes" section, class by class.
EXIT_CODES: dict[str, int] = {
    "RecorderError": 1,
    "StoreError": 1,
    "NoStoreError": 3,
    "RunNotFound": 4,
    "ExperimentNotFound": 4,
    "AmbiguousRunId": 5,
    "NameRefused": 6,
    "ValueRefused": 6,
    "StoreBusy": 7,
    "SessionRecording": 8,
    "DirtyWorkTree": 9,
    "MergeRefused": 10,
    "ObjectError": 11,
    "ExtraNotInstalled": 12,
    "RerunRefused": 13,
    "FunctionMissing": 13,
    "CurationRefused": 14,
    "SessionNotFound": 4,
    "AmbiguousSessionId": 5,
    "ImportSourceError": 15,
    "ImportSourceTooNew": 15,
}


def _console_script() -> str:
    here = os.path.dirname(sys.executable)
    exe = shutil.which("recorder", path=here + os.pathsep + os.environ.get("PATH", ""))
    if exe is None:
        pytest.skip("no installed `recorder` executable")
    return exe


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the real console script with this worktree's recorder on the path."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RECORDER_STORE", None)
    return subprocess.run(
        [_console_script(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _model(a: float) -> dict[str, Any]:
    return {"y": np.full(40, a)}  # stored as an object file (inline_limit=0 below)


def _record(store: Path, n: int, *, config: dict[str, Any] | None = None) -> list[str]:
    with rec.Recorder("exp", store=store, git=False, config=config, inline_limit=0) as r:
        r.sweep(_model, rec.plist("a", [float(i) for i in range(n)]), progress=False)
    with rec.open(store) as db:
        return list(db.df("exp")["_run_id"])


def test_each_error_class_has_its_documented_exit_code() -> None:
    for name, code in EXIT_CODES.items():
        assert getattr(rec, name).exit_code == code, name
    for name in errors.__all__:
        cls = getattr(errors, name)
        if issubclass(cls, errors.RecorderError):
            assert isinstance(cls.exit_code, int) and cls.exit_code != 2, name  # 2 is click's usage error
    readme = (ROOT / "README.md").read_text()
    for name, code in EXIT_CODES.items():
        if code > 2:
            assert f"| {code} " in readme and f"`{name}`" in readme, name  # the README lists the code


def test_the_new_classes_are_lookup_errors_where_a_lookup_fails() -> None:
    for cls in (rec.RunNotFound, rec.AmbiguousRunId, rec.ExperimentNotFound):
        assert issubclass(cls, rec.RecorderError) and issubclass(cls, LookupError)
        assert not issubclass(cls, KeyError)  # KeyError's str() would quote the message
    assert issubclass(rec.MergeRefused, rec.RecorderError)
    assert issubclass(rec.SessionRecording, rec.RecorderError)


def test_library_raises_the_named_classes(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ids = _record(store, 20)
    digit = next(c for c in "0123456789abcdef" if sum(i.startswith(c) or i.endswith(c) for i in ids) > 1)
    with rec.open(store) as db:
        with pytest.raises(rec.RunNotFound, match="no run with id"):
            db.resolve("f" * 24 if not any(i == "f" * 24 for i in ids) else "0" * 24)
        with pytest.raises(rec.AmbiguousRunId, match="ambiguous"):
            db.resolve(digit)
        with pytest.raises(rec.ExperimentNotFound, match="no experiment 'nope'"):
            db.df("nope")
    with pytest.raises(rec.NoStoreError, match="no store at"):
        rec.merge(tmp_path / "missing", tmp_path / "dest", progress=False)


def test_merge_of_different_config_is_refused_by_name(tmp_path: Path) -> None:
    _record(tmp_path / "a", 1, config={"dt": 0.1})
    _record(tmp_path / "b", 1, config={"dt": 0.2})
    rec.merge(tmp_path / "a", tmp_path / "dest", progress=False)
    with pytest.raises(rec.MergeRefused, match="'dt'"):
        rec.merge(tmp_path / "b", tmp_path / "dest", progress=False)


def test_gc_and_merge_refuse_a_recording_session_by_name(tmp_path: Path) -> None:
    store = tmp_path / "store"
    _record(store, 1)
    with rec.Recorder("exp", store=store, git=False):  # this process is alive: its session is recording
        with pytest.raises(rec.SessionRecording, match="recording"):
            rec.merge(store, tmp_path / "dest", progress=False)
        from recorder.shards.maintenance import gc

        with pytest.raises(rec.SessionRecording, match="recording"):
            gc(store)


def test_console_script_exits_with_the_error_s_code(tmp_path: Path) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", "import recorder; print(recorder.__file__)"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert probe.stdout.strip().startswith(str(ROOT))  # the console script runs this worktree's code
    store = tmp_path / "store"
    ids = _record(store, 20)
    digit = next(c for c in "0123456789abcdef" if sum(i.startswith(c) or i.endswith(c) for i in ids) > 1)
    missing_id = next(x for x in ("f" * 24, "0" * 24) if x not in ids)
    _record(tmp_path / "other", 1, config={"dt": 0.5})
    s = str(store)
    cases = [
        (["--store", str(tmp_path / "missing"), "log"], 3, "no store"),
        (["--store", s, "log", "--no-such-option"], 2, "No such option"),
        (["--store", s, "show", missing_id], 4, "no run with id"),
        (["--store", s, "export", "nope", "-o", str(tmp_path / "x.csv")], 4, "no experiment 'nope'"),
        (["--store", s, "show", digit], 5, "ambiguous"),
        (["merge", str(tmp_path / "other"), "--into", s], 10, "config"),
        (["--store", s, "sql", ""], 1, "no SQL statement"),
    ]
    for args, code, text in cases:
        done = _cli(*args, cwd=tmp_path)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        assert text in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
    with rec.Recorder("exp", store=store, git=False):  # a live session: gc must wait for it
        done = _cli("--store", s, "gc", cwd=tmp_path)
        assert done.returncode == 8, done.stderr
        assert "recording" in done.stderr
    objects = sorted(p for p in (store / "objects").rglob("*") if p.is_file())
    assert objects, "the runs should have stored arrays"
    objects[0].unlink()
    done = _cli("--store", s, "verify", cwd=tmp_path)
    assert done.returncode == 11, (done.stdout, done.stderr)


def test_sqlite_code_reads_the_primary_code(tmp_path: Path) -> None:
    from recorder.store.db import sqlite_code

    path = tmp_path / "t.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError) as info:
        conn.execute("INSERT INTO t VALUES (1)")
    assert sqlite_code(info.value) == 19  # SQLITE_CONSTRAINT (extended code 1555 on 3.11+)
    conn.commit()
    conn.close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        other = sqlite3.connect(path, timeout=0)
        with pytest.raises(sqlite3.OperationalError) as info:
            other.execute("SELECT * FROM t").fetchall()
        assert sqlite_code(info.value) == 5  # SQLITE_BUSY
        other.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises(sqlite3.DatabaseError) as info:
        sqlite3.connect(damaged).execute("SELECT * FROM sqlite_master").fetchall()
    assert sqlite_code(info.value) in (11, 26)  # SQLITE_CORRUPT or SQLITE_NOTADB, by SQLite's reading of it
    assert sqlite_code(ValueError("locked")) is None  # not an SQLite error: no code


def test_sqlite_code_falls_back_to_the_message_without_sqlite_errorcode() -> None:
    from recorder.store.db import sqlite_code

    # Python 3.10's sqlite3 errors carry no sqlite_errorcode: the helper reads SQLite's fixed messages then.
    assert sqlite_code(sqlite3.OperationalError("database is locked")) == 5
    assert sqlite_code(sqlite3.OperationalError("database table is locked")) == 6
    assert sqlite_code(sqlite3.DatabaseError("database disk image is malformed")) == 11
    assert sqlite_code(sqlite3.OperationalError("unable to open database file")) == 14
    assert sqlite_code(sqlite3.OperationalError("no such table: t")) is None


def test_no_module_matches_sqlite_message_text_outside_sqlite_code() -> None:
    # SQLite's messages for result codes; only recorder.store.db._MESSAGES (the 3.10 fallback) may hold them.
    import ast

    fragments = (
        "locked",
        "unable to open",
        "malformed",
        "authoriz",
        "readonly",
        "read-only",
        "query_only",
        "disk is full",
        "constraint failed",
        "not a database",
    )
    found = []
    for path in sorted((ROOT / "recorder").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        allowed: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "_MESSAGES" for t in node.targets
            ):
                allowed |= {id(n) for n in ast.walk(node)}
        for node in ast.walk(tree):
            sides: list[ast.AST] = []
            if isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
                sides = [node.left, *node.comparators]  # "locked" in str(e)
            elif isinstance(node, (ast.GeneratorExp, ast.ListComp, ast.SetComp)) and isinstance(node.elt, ast.Compare):
                sides = [g.iter for g in node.generators]  # any(word in text for word in ("readonly", ...))
            for side in sides:
                for const in ast.walk(side):
                    if (
                        isinstance(const, ast.Constant)
                        and isinstance(const.value, str)
                        and id(const) not in allowed
                        and any(f in const.value.lower() for f in fragments)
                    ):
                        found.append(f"{path.name}:{const.lineno}: {const.value!r}")
    assert found == []
