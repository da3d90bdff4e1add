"""Recorder and Run: sessions, config, statuses, seeds, comments, batching and crashes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

import recorder as rec
from recorder.codec.hashing import pset_hash, run_seed
from recorder.store.folder import Store


def db(store: Path) -> sqlite3.Connection:
    return sqlite3.connect(store / "recorder.sqlite")


def runs(store: Path) -> list[tuple]:
    return (
        db(store)
        .execute(
            "SELECT lower(hex(r.id)), p.params, r.status, r.error, r.seed FROM runs r JOIN psets p ON p.pk = r.pset ORDER BY r.pk"
        )
        .fetchall()
    )


def test_quickstart_records_runs_results_and_session(store: Path) -> None:
    with rec.Recorder("lorenz", store=store, git=False, message="smaller dt", comment="first") as r:
        r.config(dt=0.01, solver="rk4")
        for a in (0.1, 0.2):
            with r.run(a=a, b=8) as run:
                run.log(energy=a * 10, n=3)
    con = db(store)
    assert con.execute("SELECT name FROM experiments").fetchall() == [("lorenz",)]
    session = con.execute("SELECT id, status, time_start, time_end, message, comment, env_sha FROM sessions").fetchone()
    assert session[0] == r.id and session[1] == "done"
    assert session[2].endswith("Z") and session[3] >= session[2]
    assert session[4:6] == ("smaller dt", "first")
    assert session[6] == r.env_sha and len(r.env_sha) == 40
    assert dict(con.execute("SELECT name, value FROM config")) == {"dt": 0.01, "solver": "rk4"}
    assert [(p, s) for _, p, s, _, _ in runs(store)] == [('{"a":0.1,"b":8}', "done"), ('{"a":0.2,"b":8}', "done")]
    results = con.execute(
        "SELECT lower(hex(r.id)), x.name, x.value FROM results_all x JOIN runs r ON r.pk = x.run ORDER BY r.pk, x.name"
    ).fetchall()
    assert [(n, v) for _, n, v in results] == [("energy", 1.0), ("n", 3), ("energy", 2.0), ("n", 3)]


def test_ids_are_unique_and_time_ordered(store: Path) -> None:
    with rec.Recorder("e", store=store, git=False) as r:
        ids = []
        for i in range(300):
            with r.run(i=i) as run:
                ids.append(run.id)
    assert ids == sorted(ids) and len(set(ids)) == 300
    assert all(len(i) == 24 and int(i, 16) >= 0 for i in ids)
    assert [row[0] for row in runs(store)] == ids


def test_seed_is_deterministic_from_pset_and_experiment_seed(store: Path) -> None:
    seeds = []
    for _ in range(2):
        with rec.Recorder("e", store=store, git=False, seed=7) as r, r.run({"b": 2, "a": 1}) as run:
            seeds.append(run.seed)
    assert seeds[0] == seeds[1] == run_seed(pset_hash('{"a":1,"b":2}'), 7)
    with rec.Recorder("e", store=store, git=False) as r, r.run(a=1, b=2) as run:
        assert run.seed != seeds[0]
    assert [row[4] for row in runs(store)] == [seeds[0], seeds[0], run.seed]


def test_failed_run_keeps_traceback_and_reraises(store: Path) -> None:
    with rec.Recorder("e", store=store, git=False) as r:
        with pytest.raises(ZeroDivisionError):
            with r.run(a=1) as run:
                run.log(partial=1.5)
                1 / 0  # noqa: B018 (raises: the run fails)
        assert run.status == "failed"
        with r.run(a=2) as run:
            run.log(y=1)
    (_, _, status, error, _), (_, _, status2, _, _) = runs(store)
    assert status == "failed" and "ZeroDivisionError" in error and "1 / 0" in error
    assert status2 == "done"
    # results logged before the failure are kept
    assert db(store).execute("SELECT name, value FROM results_all WHERE name = 'partial'").fetchall() == [
        ("partial", 1.5)
    ]
    assert db(store).execute("SELECT status FROM sessions").fetchone()[0] == "done"


def test_exception_leaving_the_session_marks_it_failed(store: Path) -> None:
    with pytest.raises(RuntimeError):
        with rec.Recorder("e", store=store, git=False) as r, r.run(a=1):
            raise RuntimeError("boom")
    assert db(store).execute("SELECT status, time_end IS NOT NULL FROM sessions").fetchone() == ("failed", 1)


def test_keyboard_interrupt_marks_run_and_session_interrupted(store: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with rec.Recorder("e", store=store, git=False) as r:
            with r.run(a=1) as run:
                run.log(y=1)
            with r.run(a=2):
                raise KeyboardInterrupt
    assert [row[2] for row in runs(store)] == ["done", "interrupted"]
    assert db(store).execute("SELECT status, time_end IS NOT NULL FROM sessions").fetchone() == ("interrupted", 1)


def test_run_requires_with_and_one_run_at_a_time(store: Path) -> None:
    with rec.Recorder("e", store=store, git=False) as r:
        run = r.run(a=1)
        with pytest.raises(rec.RecorderError, match="open run"):
            run.log(y=1)
        with run, pytest.raises(rec.RecorderError, match="still open"):
            with r.run(a=2):
                pass
        with pytest.raises(rec.RecorderError, match="already started"):
            with run:
                pass
    with pytest.raises(rec.RecorderError, match="closed"):
        with r.run(a=3):
            pass


def test_parameter_validation(store: Path) -> None:
    with rec.Recorder("e", store=store, git=False) as r:
        with pytest.raises(rec.NameRefused, match="'_x'"):
            r.run(_x=1)
        with pytest.raises(rec.NameRefused, match="both"):
            r.run({"a": 1}, a=2)
        with pytest.raises(rec.ValueRefused, match="parameter 'a' has type set"):
            r.run(a={1, 2})
        with pytest.raises(rec.RecorderError, match="dict of parameters"):
            r.run([("a", 1)])  # type: ignore[arg-type]
    assert runs(store) == []


def test_bad_arguments_are_refused_before_anything_is_written(store: Path) -> None:
    for kwargs, match in [
        ({"git": "yes"}, "not a git mode"),
        ({"seed": 1.5}, "seed"),
        ({"inline_limit": -1}, "inline_limit"),
        ({"flush_interval": -1}, "flush_interval"),
    ]:
        with pytest.raises(rec.RecorderError, match=match):
            rec.Recorder("e", store=store, **kwargs)
    for name in ("", "_hidden", "sqlite_x", 3):
        with pytest.raises(rec.NameRefused):
            rec.Recorder(name, store=store)  # type: ignore[arg-type]
    assert not store.exists()


def test_config_before_runs_may_change_after_runs_may_not(store: Path) -> None:
    with rec.Recorder("e", store=store, git=False, config={"dt": 0.1}) as r:
        r.config(dt=0.2, arr=np.arange(3))
        with r.run(a=1):
            pass
        r.config(dt=0.2)  # the same value again is fine
        with pytest.raises(rec.NameRefused, match="config 'dt' was already"):
            r.config(dt=0.3)
        with pytest.raises(rec.NameRefused):
            r.config(_private=1)
    rows = dict(db(store).execute("SELECT name, kind FROM config"))
    assert rows == {"dt": None, "arr": "npy"}
    assert db(store).execute("SELECT value FROM config WHERE name = 'dt'").fetchone()[0] == 0.2


def test_duplicate_comments_are_stored_once_by_default(store: Path) -> None:
    with rec.Recorder("e", store=store, git=False) as r:
        for i in range(50):
            with r.run(i=i) as run:
                run.log(energy=float(i), comment="final energy")
                run.log(comment="a note on the run")
    con = db(store)
    assert con.execute("SELECT count(*) FROM comments").fetchone()[0] == 2
    assert (
        con.execute(
            "SELECT count(*) FROM results_all x JOIN comments c ON c.pk = x.comment WHERE c.text = 'final energy'"
        ).fetchone()[0]
        == 50
    )
    assert (
        con.execute(
            "SELECT count(*) FROM runs r JOIN comments c ON c.pk = r.comment WHERE c.text = 'a note on the run'"
        ).fetchone()[0]
        == 50
    )


def test_duplicate_comments_kept_when_asked(store: Path) -> None:
    with rec.Recorder("e", store=store, git=False, purge_duplicate_comments=False) as r:
        for i in range(5):
            with r.run(i=i) as run:
                run.log(energy=float(i), comment="final energy")
    assert db(store).execute("SELECT count(*) FROM comments").fetchone()[0] == 5


def test_provenance_is_recorded(store: Path) -> None:
    with rec.Recorder("e", store=store, git=False):
        pass
    con = db(store)
    row = con.execute(
        "SELECT host, pid, platform, python, recorder_version, fingerprint, argv, cwd, packages, jax FROM sessions"
    ).fetchone()
    host, pid, platform_, python, version, fingerprint, argv, cwd, packages, jax = row
    assert host and pid == os.getpid() and platform_ and python.split()[-1] == sys.version.split()[0]
    assert version == rec.__version__ and len(fingerprint) == 16
    assert json.loads(argv) == sys.argv and cwd == os.getcwd()
    installed = json.loads(con.execute("SELECT text FROM texts WHERE digest = ?", (packages,)).fetchone()[0])
    assert installed["numpy"] == np.__version__
    assert jax is None or "jax" in sys.modules


SCRIPT = """
import sys, time
import recorder as rec
with rec.Recorder("scripted", store=sys.argv[1], git=False) as r:
    with r.run(a=1) as run:
        run.log(y=1)
print("ok")
"""


def test_main_script_source_is_stored_once_by_content(tmp_path: Path, store: Path) -> None:
    script = tmp_path / "experiment.py"
    script.write_text(SCRIPT)
    for _ in range(2):
        done = subprocess.run([sys.executable, str(script), str(store)], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stderr
    con = db(store)
    rows = con.execute("SELECT script_path, script FROM sessions").fetchall()
    assert len(rows) == 2 and rows[0] == rows[1] and rows[0][0] == str(script.resolve())
    assert con.execute("SELECT text FROM texts WHERE digest = ?", (rows[0][1],)).fetchone()[0] == SCRIPT
    assert con.execute("SELECT count(*) FROM texts WHERE text = ?", (SCRIPT,)).fetchone()[0] == 1


KILLED = """
import sys, time
import recorder as rec
with rec.Recorder("killed", store=sys.argv[1], git=False) as r:
    for i in range(int(sys.argv[2])):
        with r.run(i=i) as run:
            time.sleep(float(sys.argv[3]))
            run.log(y=i)
    with r.run(i=-1) as run:
        print("inside", flush=True)
        time.sleep(600)
"""


@pytest.mark.parametrize("earlier, pause", [(5, 0.02), (2000, 0.0)])
def test_sigkill_inside_a_run_keeps_earlier_runs(tmp_path: Path, store: Path, earlier: int, pause: float) -> None:
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store), str(earlier), str(pause)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout.readline().strip() == "inside", proc.stderr.read()
    # Longer than flush_interval: the runs before are committed, the open one has a 'running' row.
    deadline = time.time() + 30
    while time.time() < deadline:
        running = db(store).execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone()[0]
        if running:
            break
        time.sleep(0.05)
    assert running == 1
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    assert db(store).execute("SELECT status FROM sessions").fetchone()[0] == "running"

    Store.open(store).close()  # the next opening notices the dead session
    statuses = [row[2] for row in runs(store)]
    assert statuses == ["done"] * earlier + ["interrupted"]
    assert db(store).execute("SELECT count(*) FROM results_all").fetchone()[0] == earlier
    assert db(store).execute("SELECT status, time_end IS NOT NULL FROM sessions").fetchone() == ("interrupted", 1)
    assert not list((store / "locks").iterdir())


SLOW = """
import sys, time
import recorder as rec
with rec.Recorder("slow", store=sys.argv[1], git=False) as r:
    while True:
        with r.run(t=time.time()) as run:
            time.sleep(0.001)
            run.log(y=1)
        print("ran", flush=True)
"""


def test_sigterm_flushes_and_marks_interrupted(tmp_path: Path, store: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text(SLOW)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    for _ in range(20):
        assert proc.stdout.readline().strip() == "ran"
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    printed = 20 + proc.stdout.read().count("ran")
    proc.stdout.close()
    proc.stderr.close()
    assert code == 128 + signal.SIGTERM
    statuses = [row[2] for row in runs(store)]
    # every run that printed "ran" is committed as done; at most the one in flight is interrupted
    assert statuses.count("done") >= printed and set(statuses) <= {"done", "interrupted"}
    assert statuses.count("interrupted") <= 1
    assert db(store).execute("SELECT status FROM sessions").fetchone()[0] == "interrupted"


def test_runs_are_visible_to_other_readers_within_the_flush_interval(store: Path) -> None:
    with rec.Recorder("e", store=store, git=False, flush_interval=0.05) as r:
        with r.run(a=1) as run:
            run.log(y=1)
        deadline = time.time() + 10
        while time.time() < deadline and not runs(store):
            time.sleep(0.01)
        assert [row[2] for row in runs(store)] == ["done"]


def test_flush_interval_zero_commits_each_run_at_once(store: Path) -> None:
    with rec.Recorder("e", store=store, git=False, flush_interval=0) as r:
        with r.run(a=1) as run:
            assert [row[2] for row in runs(store)] == ["running"]
            run.log(y=1)
        assert [row[2] for row in runs(store)] == ["done"]


def test_two_sessions_of_one_process_do_not_mark_each_other_stale(store: Path) -> None:
    with rec.Recorder("a", store=store, git=False) as first:
        with rec.Recorder("b", store=store, git=False) as second:
            with second.run(x=1):
                pass
        with first.run(x=1):
            pass
    assert {row[0] for row in db(store).execute("SELECT status FROM sessions")} == {"done"}


def test_recorder_without_with_is_closed_at_exit(tmp_path: Path, store: Path) -> None:
    code = f"""
import recorder as rec
r = rec.Recorder("e", store={str(store)!r}, git=False)
with r.run(a=1) as run:
    run.log(y=2)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert [row[2] for row in runs(store)] == ["done"]
    assert db(store).execute("SELECT status, time_end IS NOT NULL FROM sessions").fetchone() == ("done", 1)


@pytest.mark.parametrize("name", ["run_id", "status", "time_start", "duration_s", "env_sha"])
def test_names_of_run_columns_are_refused(store: Path, name: str) -> None:
    with rec.Recorder("e", store=store, git=False) as r:
        with pytest.raises(rec.NameRefused, match="column recorder adds"):
            r.run({name: 1})
        with r.run(a=1) as run, pytest.raises(rec.NameRefused, match="column recorder adds"):
            run.log(**{name: 1})
        with pytest.raises(rec.NameRefused, match="column recorder adds"):
            r.config(**{name: 1})


def test_runs_ending_while_the_writer_marks_them_running_are_recorded_once(store: Path) -> None:
    """Races between the background writer's 'running' rows and runs ending at that moment."""
    pauses = [0.0, 0.001, 0.002, 0.003]
    with rec.Recorder("e", store=store, git=False, flush_interval=0.002) as r:
        for i in range(400):
            with r.run(i=i) as run:
                time.sleep(pauses[i % 4])
                run.log(y=i)
    con = db(store)
    assert con.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall() == [("done", 400)]
    assert con.execute("SELECT count(*), sum(value) FROM results_all").fetchone() == (400, sum(range(400)))
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []


QUICK_THEN_KILLED = """
import sys, time
import recorder as rec
with rec.Recorder("quick", store=sys.argv[1], git=False) as r:
    for i in range(50):
        with r.run(i=i) as run:
            run.log(y=i, a=[i, "x"], b=b"raw")
    with r.run(i=-1) as run:
        print("inside", flush=True)
        time.sleep(600)
"""


def test_sigkill_right_after_runs_end_loses_none_of_them(tmp_path: Path, store: Path) -> None:
    """Runs that ended a moment before the kill, still uncommitted, come back from the journal."""
    script = tmp_path / "quick.py"
    script.write_text(QUICK_THEN_KILLED)
    proc = subprocess.Popen([sys.executable, str(script), str(store)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout.readline().strip() == "inside"
    proc.send_signal(signal.SIGKILL)  # at once: well within the flush interval
    proc.wait()
    proc.stdout.close()
    Store.open(store).close()
    statuses = [row[2] for row in runs(store)]
    assert statuses[:50] == ["done"] * 50 and set(statuses[50:]) <= {"interrupted"}
    con = db(store)
    assert con.execute("SELECT count(*), sum(value) FROM results_all WHERE name = 'y'").fetchone() == (
        50,
        sum(range(50)),
    )
    assert con.execute("SELECT DISTINCT value FROM results_all WHERE name = 'b'").fetchall() == [(b"raw",)]
    assert con.execute("SELECT status FROM sessions").fetchone()[0] == "interrupted"
    assert list((store / "locks").iterdir()) == []  # lock and journal files are gone
    Store.open(store).close()  # a second opening changes nothing
    assert [row[2] for row in runs(store)] == statuses


def test_a_clean_session_leaves_no_journal(store: Path) -> None:
    with rec.Recorder("e", store=store, git=False) as r:
        for i in range(10):
            with r.run(i=i) as run:
                run.log(y=i)
        assert list((store / "locks").glob("*.journal.*"))  # while it runs, the journal exists
    assert list((store / "locks").iterdir()) == []


def test_a_run_sqlite_refuses_does_not_take_the_batch_with_it(store: Path) -> None:
    with rec.Recorder("e", store=store, git=False) as r:
        r.writing().store.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 10_000)  # stands in for a >1 GB value
        for i in range(5):
            with r.run(i=i) as run:
                run.log(y=i, blob=b"x" * (50_000 if i == 2 else 10))
    con = db(store)
    rows = con.execute("SELECT r.status, r.error FROM runs r ORDER BY r.pk").fetchall()
    assert [s for s, _ in rows] == ["done", "done", "failed", "done", "done"]
    assert "could not store this run's results" in rows[2][1]
    assert con.execute("SELECT count(*) FROM results_all").fetchone()[0] == 8
    assert con.execute("SELECT status FROM sessions").fetchone()[0] == "done"


def test_closing_the_session_inside_a_run(store: Path) -> None:
    with rec.Recorder("e", store=store, git=False) as r:
        with pytest.raises(rec.RecorderError, match="after its session was closed"):
            with r.run(
                a=1,
            ) as run:
                run.log(y=1)
                r.close()
    Store.open(store).close()
    assert [row[2] for row in runs(store)] in ([], ["interrupted"])
    assert db(store).execute("SELECT status FROM sessions").fetchone()[0] == "done"


def test_bad_config_in_the_constructor_writes_nothing(store: Path) -> None:
    with pytest.raises(rec.NameRefused):
        rec.Recorder("e", store=store, git=False, config={"_bad": 1})
    with pytest.raises(rec.ValueRefused, match="config value 'f'"):
        rec.Recorder("e", store=store, git=False, config={"f": open}).open()
    assert db(store).execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
    assert list((store / "locks").iterdir()) == [] if (store / "locks").exists() else True


def test_a_program_that_dies_of_an_exception_fails_its_session(store: Path) -> None:
    code = f"""
import recorder as rec
r = rec.Recorder("e", store={str(store)!r}, git=False)
with r.run(a=1) as run:
    run.log(y=2)
raise SystemError("the program dies")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1 and "the program dies" in done.stderr
    assert [row[2] for row in runs(store)] == ["done"]
    assert db(store).execute("SELECT status FROM sessions").fetchone()[0] == "failed"


def test_closing_inside_a_long_run_marks_it_interrupted(store: Path) -> None:
    with rec.Recorder("e", store=store, git=False, flush_interval=0.01) as r:
        with pytest.raises(rec.RecorderError, match="after its session was closed"):
            with r.run(a=1):
                time.sleep(0.1)  # long enough for its 'running' row
                r.close()
    assert [row[2] for row in runs(store)] == ["interrupted"]


def test_jax_is_described_when_the_program_uses_it(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    class Device:
        device_kind = "Fake TPU v9"

    fake = types.ModuleType("jax")
    fake.__version__ = "9.9.9"  # type: ignore[attr-defined]
    fake.devices = lambda: [Device(), Device()]  # type: ignore[attr-defined]
    fake.default_backend = lambda: "tpu"  # type: ignore[attr-defined]
    fake.config = types.SimpleNamespace(jax_enable_x64=True)  # type: ignore[attr-defined]
    jaxlib = types.ModuleType("jaxlib")
    jaxlib.__version__ = "9.9.8"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "jax", fake)
    monkeypatch.setitem(sys.modules, "jaxlib", jaxlib)
    monkeypatch.setenv("XLA_PYTHON_CLIENT_MEM_FRACTION", ".5")
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    with rec.Recorder("e", store=store, git=False):
        pass
    info = json.loads(db(store).execute("SELECT jax FROM sessions").fetchone()[0])
    assert info == {
        "jax": "9.9.9",
        "jaxlib": "9.9.8",
        "backend": "tpu",
        "device_count": 2,
        "device_kinds": ["Fake TPU v9"],
        "x64": True,
        "env": {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "XLA_PYTHON_CLIENT_MEM_FRACTION": ".5"},
    }


def test_jax_is_never_imported_just_to_look(store: Path) -> None:
    code = f"""
import sys, recorder as rec
with rec.Recorder("e", store={str(store)!r}, git=False):
    pass
print("jax" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.strip() == "False", done.stderr
    assert db(store).execute("SELECT jax FROM sessions").fetchone()[0] is None


def test_a_locked_database_loses_no_runs(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import recorder.store.db

    monkeypatch.setattr(recorder.store.db, "BUSY_TIMEOUT_S", 0.2)
    with rec.Recorder("e", store=store, git=False, flush_interval=60) as r:
        for i in range(5):
            with r.run(i=i) as run:
                run.log(y=i)
        blocker = sqlite3.connect(store / "recorder.sqlite", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the database
        with pytest.raises(rec.StoreError, match="locked"):
            r.flush()
        assert list((store / "locks").glob("*.journal.*"))  # still journaled
        blocker.execute("ROLLBACK")
        blocker.close()
        r.flush()
    con = db(store)
    assert con.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall() == [("done", 5)]
    assert con.execute("SELECT count(*) FROM results_all").fetchone()[0] == 5


def test_a_session_whose_last_runs_cannot_be_written_is_recovered_later(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recorder.store.db

    monkeypatch.setattr(recorder.store.db, "BUSY_TIMEOUT_S", 0.2)
    r = rec.Recorder("e", store=store, git=False, flush_interval=60).open()
    for i in range(3):
        with r.run(i=i) as run:
            run.log(y=i)
    blocker = sqlite3.connect(store / "recorder.sqlite", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    with pytest.raises(rec.StoreError):
        r.close()
    blocker.execute("ROLLBACK")
    blocker.close()
    assert db(store).execute("SELECT status FROM sessions").fetchone()[0] == "running"
    Store.open(store).close()  # the journal is replayed
    assert [row[2] for row in runs(store)] == ["done"] * 3
    assert db(store).execute("SELECT status FROM sessions").fetchone()[0] == "interrupted"
