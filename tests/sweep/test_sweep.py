"""Sweeps: skip/resume, dry run, failures, pools, Dask, interruption, captured output."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT, git

import recorder as rec


def model(a: float, b: int = 2) -> dict:
    """A module-level experiment function (picklable for process pools)."""
    return {"y": a * b, "z": float(a + b), "curve": np.full(20_000, a)}


def flaky(a: float, b: int = 2) -> dict:
    if b == 3:
        raise ValueError(f"b=3 is not allowed (a={a})")
    return {"y": a * b}


def chatty(a: float) -> dict:
    print("starting", a)
    for i in range(100):
        print(f"\rprogress {i}%", end="")
    print()
    print("warning!", file=sys.stderr)
    return {"y": a}


def slow(a: float) -> dict:
    time.sleep(0.05)
    return {"y": a}


def db(store: Path) -> sqlite3.Connection:
    return sqlite3.connect(store / "recorder.sqlite")


def done_runs(store: Path) -> list[tuple[str, str]]:
    return sorted(
        db(store)
        .execute("SELECT p.params, r.status FROM runs r JOIN psets p ON p.pk = r.pset ORDER BY p.params")
        .fetchall()
    )


def pairs(df) -> set[tuple]:  # type: ignore[no-untyped-def]
    return {(row.a, row.b, row.y, row.z) for row in df.itertuples()}


def test_sweep_returns_one_row_per_pset(store: Path) -> None:
    with rec.Recorder("m", store=store, git=False) as r:
        df = r.sweep(model, rec.grid(a=[0.5, 1.5], b=[2, 3]))
    assert list(df.columns) == [
        "a",
        "b",
        "y",
        "z",
        "_run_id",
        "_pset_hash",
        "_status",
        "_time_start",
        "_duration_s",
        "_session",
        "_env_sha",
        "_exec_host",
        "_exec_pid",
        "_pset_seq",
    ]
    assert df[["a", "b", "y", "z"]].values.tolist() == [
        [0.5, 2, 1.0, 2.5],
        [0.5, 3, 1.5, 3.5],
        [1.5, 2, 3.0, 3.5],
        [1.5, 3, 4.5, 4.5],
    ]
    assert set(df["_status"]) == {"done"} and set(df["_session"]) == {r.id}
    assert df["_run_id"].is_unique and str(df["_time_start"].dt.tz) == "UTC"
    assert set(df["_env_sha"]) == {r.env_sha}
    # the arrays are in the store, not in the DataFrame
    kinds = db(store).execute("SELECT DISTINCT kind FROM results_all WHERE name = 'curve'").fetchall()
    assert kinds == [("object",)]


def test_defaults_are_recorded(store: Path) -> None:
    with rec.Recorder("m", store=store, git=False) as r:
        df = r.sweep(model, rec.plist("a", [1.0]))
    assert df["b"].tolist() == [2]
    assert db(store).execute("SELECT params FROM psets").fetchone()[0] == '{"a":1.0,"b":2}'


def test_rerun_with_skip_done_records_no_new_runs(store: Path) -> None:
    grid = rec.grid(a=[0.5, 1.5], b=[2, 3])
    with rec.Recorder("m", store=store, git=False) as r:
        first = r.sweep(model, grid)
    with rec.Recorder("m", store=store, git=False) as r:
        again = r.sweep(model, grid)
    assert db(store).execute("SELECT count(*) FROM runs").fetchone()[0] == 4
    # the skipped psets are reported from their earlier runs
    assert again.drop(columns=[]).equals(first)


def test_extending_a_grid_runs_only_the_new_psets(store: Path) -> None:
    with rec.Recorder("m", store=store, git=False) as r:
        r.sweep(model, rec.grid(a=[0.5, 1.5], b=[2]))
    with rec.Recorder("m", store=store, git=False) as r:
        df = r.sweep(model, rec.grid(a=[0.5, 1.5, 2.5], b=[2, 3]))
    assert db(store).execute("SELECT count(*) FROM runs").fetchone()[0] == 6
    sessions = df.groupby("_session").size().sort_values().tolist()
    assert sessions == [2, 4]


def test_skip_modes(store: Path) -> None:
    grid = rec.grid(a=[1.0], b=[2, 3])
    with rec.Recorder("f", store=store, git=False) as r:
        r.sweep(flaky, grid)
        assert r.sweep(flaky, grid)["_status"].tolist() == ["done", "failed"]  # failed one rerun
        assert r.sweep(flaky, grid, skip="done+failed")["_session"].nunique() == 1
        r.sweep(flaky, grid, skip=None)
    statuses = [s for _, s in done_runs(store)]
    assert statuses.count("done") == 2 and statuses.count("failed") == 3
    with rec.Recorder("f", store=store, git=False) as r, pytest.raises(rec.RecorderError, match="skip="):
        r.sweep(flaky, grid, skip="all")


def test_failures_are_recorded_and_the_rest_runs(store: Path) -> None:
    with rec.Recorder("f", store=store, git=False) as r:
        df = r.sweep(flaky, rec.grid(a=[1.0, 2.0], b=[2, 3]))
    assert df["_status"].tolist() == ["done", "failed", "done", "failed"]
    errors = [e for (e,) in db(store).execute("SELECT error FROM runs WHERE status = 'failed'")]
    assert len(errors) == 2 and all("ValueError: b=3 is not allowed" in e and "Traceback" in e for e in errors)
    assert db(store).execute("SELECT status FROM sessions").fetchone()[0] == "done"


def test_on_error_raise_stops_after_recording(store: Path) -> None:
    with rec.Recorder("f", store=store, git=False) as r:
        with pytest.raises(rec.RecorderError, match="failed"):
            r.sweep(flaky, rec.grid(a=[1.0, 2.0], b=[3, 2]), on_error="raise")
    assert done_runs(store) == [('{"a":1.0,"b":3}', "failed")]


def test_simulate_writes_nothing_and_calls_nothing(tmp_path: Path, store: Path) -> None:
    with rec.Recorder("m", store=store, git=False) as r:
        r.sweep(model, rec.grid(a=[0.5], b=[2, 3]))
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in store.rglob("*") if p.is_file()}
    calls = []

    def spy(a: float, b: int = 2) -> dict:
        calls.append((a, b))
        return {}

    with rec.Recorder("m", store=store, git=False) as r:
        pass
    before = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in store.rglob("*")
        if p.is_file() and p.name == "recorder.sqlite"
    }
    df = rec.Recorder("m", store=store, git=False).sweep(spy, rec.grid(a=[0.5, 1.5], b=[2, 3]), simulate=True)
    after = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in store.rglob("*")
        if p.is_file() and p.name == "recorder.sqlite"
    }
    assert before == after and calls == []
    assert df["_status"].tolist() == ["skip (done)", "skip (done)", "would run", "would run"]
    assert db(store).execute("SELECT count(*) FROM sessions").fetchone()[0] == 2


def test_simulate_makes_no_commit_and_needs_no_store(tmp_path: Path, repo: Path) -> None:
    (repo / "model.py").write_text("A = 2\n")  # a change that git="auto" would commit
    head = git(repo, "rev-parse", "HEAD")
    exp = rec.experiment("m", store=tmp_path / "nostore", git="auto")(model)
    df = exp.sweep(rec.grid(a=[1.0], b=[2]), simulate=True)
    assert df["_status"].tolist() == ["would run"]
    assert git(repo, "rev-parse", "HEAD") == head and not (tmp_path / "nostore").exists()


def test_workers_give_the_same_results_as_serial(tmp_path: Path) -> None:
    grid = rec.grid(a=[0.5, 1.5, 2.5], b=[1, 2, 3, 4])
    with rec.Recorder("m", store=tmp_path / "serial", git=False) as r:
        serial = r.sweep(model, grid)
    with rec.Recorder("m", store=tmp_path / "pool", git=False) as r:
        pooled = r.sweep(model, grid, workers=2)
    assert pairs(pooled) == pairs(serial) and len(pooled) == 12
    assert pooled[["a", "b"]].values.tolist() == serial[["a", "b"]].values.tolist()  # pset order kept
    # arrays written by the workers are complete objects named by their digest
    objects = rec.ObjectStore(tmp_path / "pool" / "objects")
    digests = [d for (d,) in db(tmp_path / "pool").execute("SELECT value FROM results_all WHERE kind = 'object'")]
    assert len(digests) == 12 and all(objects.verify(d) for d in digests)
    assert len(set(digests)) == 3  # one per distinct a: deduplicated across workers


def test_dask_local_cluster_gives_the_same_results_as_serial(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    grid = rec.grid(a=[0.5, 1.5], b=[1, 2, 3])
    with rec.Recorder("m", store=tmp_path / "serial", git=False) as r:
        serial = r.sweep(model, grid)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        with rec.Recorder("m", store=tmp_path / "dask", git=False) as r:
            via_dask = r.sweep(model, grid, executor=client.get_executor())
    assert pairs(via_dask) == pairs(serial)
    assert set(via_dask["_status"]) == {"done"}


def test_capture_stores_output_once_collapsed(store: Path) -> None:
    with rec.Recorder("c", store=store, git=False) as r:
        r.sweep(chatty, rec.plist("a", [1.0]), skip=None, capture=True)
        r.sweep(chatty, rec.plist("a", [1.0]), skip=None, capture=True)
        r.sweep(chatty, rec.plist("a", [2.0]), capture=False)
    rows = db(store).execute("SELECT output FROM runs ORDER BY pk").fetchall()
    assert rows[0] == rows[1] and rows[2] == (None,)
    text = db(store).execute("SELECT text FROM texts WHERE digest = ?", rows[0]).fetchone()[0]
    assert text == "starting 1.0\nprogress 99%\nwarning!\n"
    assert db(store).execute("SELECT count(*) FROM texts WHERE text = ?", (text,)).fetchone()[0] == 1


def test_progress_is_shown_when_asked(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with rec.Recorder("m", store=store, git=False) as r:
        r.sweep(slow, rec.plist("a", [float(i) for i in range(6)]), progress=True)
        r.sweep(slow, rec.plist("a", [10.0]))  # not a terminal: silent
    err = capsys.readouterr().err
    assert "sweep m: 100%" in err and "6/6" in err and "runs/s" in err and err.count("\n") == 1


def test_generators_are_streamed(store: Path) -> None:
    with rec.Recorder("m", store=store, git=False) as r:
        df = r.sweep(model, ({"a": float(i)} for i in range(1200)))
    assert len(df) == 1200 and df["y"].tolist() == [2.0 * i for i in range(1200)]


def test_bad_options_and_psets(store: Path) -> None:
    with rec.Recorder("m", store=store, git=False) as r:
        with pytest.raises(rec.RecorderError, match="workers="):
            r.sweep(model, [{"a": 1.0}], workers=0)
        with pytest.raises(rec.RecorderError, match="executor="):
            r.sweep(model, [{"a": 1.0}], executor="dask")  # type: ignore[arg-type]
        with pytest.raises(rec.RecorderError, match="on_error="):
            r.sweep(model, [{"a": 1.0}], on_error="ignore")
        with pytest.raises(rec.RecorderError, match="cannot call"):
            r.sweep(model, [{"a": 1.0, "c": 3}])
        with pytest.raises(rec.RecorderError, match="not a pset"):
            r.sweep(model, [1.0])  # type: ignore[list-item]


def test_keyboard_interrupt_in_a_serial_sweep(store: Path) -> None:
    def stops(a: float) -> dict:
        if a == 2.0:
            raise KeyboardInterrupt
        return {"y": a}

    with pytest.raises(KeyboardInterrupt):
        with rec.Recorder("k", store=store, git=False) as r:
            r.sweep(stops, rec.plist("a", [1.0, 2.0, 3.0]))
    assert done_runs(store) == [('{"a":1.0}', "done"), ('{"a":2.0}', "interrupted")]
    assert db(store).execute("SELECT status FROM sessions").fetchone()[0] == "interrupted"


KILLED_SWEEP = """
import sys, time
import recorder as rec

def work(i: int) -> dict:
    if i >= 90 and sys.argv[3] == "hold":  # the last runs wait to be killed: the sweep cannot finish
        time.sleep(120)
    time.sleep(0.01)
    return {"sq": i * i}

if __name__ == "__main__":
    with rec.Recorder("k", store=sys.argv[1], git=False) as r:
        r.sweep(work, rec.plist("i", range(100)), workers=int(sys.argv[2]))
"""


def _done_count(store: Path) -> int:
    if not (store / "recorder.sqlite").exists():
        return 0
    con = sqlite3.connect(f"file:{store / 'recorder.sqlite'}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute("SELECT count(*) FROM runs WHERE status = 'done'").fetchone()[0]
    except sqlite3.OperationalError:  # the tables are not made yet
        return 0
    finally:
        con.close()


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_then_rerun_completes_without_duplicates(tmp_path: Path, store: Path, workers: int) -> None:
    script = tmp_path / "sweep.py"
    script.write_text(KILLED_SWEEP)
    proc = subprocess.Popen([sys.executable, str(script), str(store), str(workers), "hold"], cwd=ROOT)
    deadline = time.monotonic() + 60
    while _done_count(store) == 0:  # some runs committed, and runs 90.. cannot be done: a partial sweep
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # The pool's workers exit with their parent, so the dead session is soon recoverable.
    deadline = time.time() + 30
    while db(store).execute("SELECT status FROM sessions").fetchone()[0] == "running" and time.time() < deadline:
        rec.Store.open(store).close()
        time.sleep(0.2)
    assert db(store).execute("SELECT status FROM sessions").fetchone()[0] == "interrupted"
    partial = db(store).execute("SELECT count(*) FROM runs WHERE status = 'done'").fetchone()[0]
    assert 0 < partial < 100
    done = subprocess.run(
        [sys.executable, str(script), str(store), str(workers), "go"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    con = db(store)
    per_pset = con.execute(
        "SELECT p.params, count(*) FROM runs r JOIN psets p ON p.pk = r.pset WHERE r.status = 'done' GROUP BY p.pk"
    ).fetchall()
    assert len(per_pset) == 100 and {n for _, n in per_pset} == {1}
    assert con.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone()[0] == 0
    squares = con.execute("SELECT sum(value) FROM results_all WHERE name = 'sq'").fetchone()[0]
    assert squares == sum(i * i for i in range(100))


SIGTERMED = """
import sys, time
import recorder as rec

def work(i: int) -> dict:
    if i == 10:
        print("started", flush=True)
    time.sleep(0.05)
    return {"i2": i}

with rec.Recorder("t", store=sys.argv[1], git=False) as r:
    r.sweep(work, rec.plist("i", range(1000)), workers=2)
"""


def test_sigterm_stops_a_pooled_sweep_cleanly(tmp_path: Path, store: Path) -> None:
    script = tmp_path / "sweep.py"
    script.write_text(SIGTERMED)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    errors = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert code == 128 + signal.SIGTERM, errors
    con = db(store)
    statuses = dict(con.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
    # Runs 0..10 were all submitted; each is either done or, if its result had not
    # reached this process yet, interrupted. Nothing else is in the store.
    assert set(statuses) <= {"done", "interrupted"} and sum(statuses.values()) >= 11
    assert statuses.get("done", 0) >= 1 and 1 <= statuses.get("interrupted", 0) <= 4  # 4 in flight at most
    assert con.execute("SELECT status FROM sessions").fetchone()[0] == "interrupted"
    assert con.execute("SELECT count(*) FROM results_all").fetchone()[0] == statuses["done"]


def test_a_function_workers_cannot_import_is_refused_before_any_run(store: Path) -> None:
    with rec.Recorder("m", store=store, git=False) as r:
        with pytest.raises(rec.RecorderError, match="cannot be sent to worker processes"):
            r.sweep(lambda a: {"y": a}, rec.plist("a", [1.0]), workers=2)
    assert db(store).execute("SELECT count(*) FROM runs").fetchone()[0] == 0


def crashes(a: float) -> dict:
    if a == 3.0:
        os._exit(3)  # a crash in native code looks like this: no exception, the process is gone
    time.sleep(0.01)
    return {"y": a}


def test_a_worker_that_dies_does_not_stop_the_sweep(store: Path) -> None:
    with rec.Recorder("c", store=store, git=False) as r:
        df = r.sweep(crashes, rec.plist("a", [float(i) for i in range(12)]), workers=2)
    statuses = dict(zip(df["a"], df["_status"]))
    assert statuses[3.0] == "interrupted"
    assert set(statuses.values()) <= {"done", "interrupted"}
    assert sum(s == "done" for s in statuses.values()) >= 8  # runs after the crash ran on a new pool
    assert statuses[11.0] == "done"
    error = (
        db(store)
        .execute("SELECT r.error FROM runs r JOIN psets p ON p.pk = r.pset WHERE p.params = '{\"a\":3.0}'")
        .fetchone()[0]
    )
    assert "worker process running this run exited with code 3" in error


_running_now = 0
_most_at_once = 0
_counter_lock = __import__("threading").Lock()


def counts_concurrency(a: float) -> dict:
    global _running_now, _most_at_once
    with _counter_lock:
        _running_now += 1
        _most_at_once = max(_most_at_once, _running_now)
    time.sleep(0.05)
    with _counter_lock:
        _running_now -= 1
    return {"y": a}


def test_an_executor_runs_as_many_runs_at_once_as_it_has_workers(store: Path) -> None:
    import concurrent.futures as cf

    global _most_at_once
    _most_at_once = 0
    with cf.ThreadPoolExecutor(max_workers=8) as pool, rec.Recorder("t", store=store, git=False) as r:
        df = r.sweep(counts_concurrency, rec.plist("a", [float(i) for i in range(40)]), executor=pool)
    assert set(df["_status"]) == {"done"} and len(df) == 40
    assert _most_at_once == 8


def test_a_repeated_pset_runs_once(store: Path) -> None:
    calls = []

    def f(a: float) -> dict:
        calls.append(a)
        return {"y": 2 * a}

    with rec.Recorder("d", store=store, git=False) as r:
        df = r.sweep(f, rec.plist("a", [1.0, 2.0, 1.0]))
        plan = r.sweep(f, rec.plist("a", [1.0, 3.0]), simulate=True)
    assert calls == [1.0, 2.0]
    assert df["y"].tolist() == [2.0, 4.0, 2.0] and df["_run_id"][0] == df["_run_id"][2]
    assert plan["_status"].tolist() == ["skip (done)", "would run"]


def test_return_df_false_records_everything_and_returns_none(store: Path) -> None:
    with rec.Recorder("m", store=store, git=False) as r:
        assert r.sweep(model, rec.grid(a=[1.0, 2.0], b=[1, 2]), return_df=False) is None
    assert db(store).execute("SELECT count(*) FROM runs WHERE status = 'done'").fetchone()[0] == 4


def uses_its_seed(a: float) -> dict:
    return {"seed": rec.current_seed(), "draw": float(np.random.default_rng(rec.current_seed()).random())}


def test_the_function_gets_its_runs_seed(store: Path) -> None:
    with rec.Recorder("s", store=store, git=False, seed=5) as r:
        serial = r.sweep(uses_its_seed, rec.plist("a", [1.0, 2.0]))
        pooled = r.sweep(uses_its_seed, rec.plist("a", [1.0, 2.0]), workers=2, skip=None)
        with r.run(a=9.0) as run:
            assert rec.current_seed() == run.seed
    seeds = dict(db(store).execute("SELECT lower(hex(id)), seed FROM runs"))
    for df in (serial, pooled):
        assert [seeds[i] for i in df["_run_id"]] == df["seed"].tolist()
    assert serial["draw"].tolist() == pooled["draw"].tolist()
    with pytest.raises(rec.RecorderError, match="only known inside a recorded run"):
        rec.current_seed()


JOURNALED = """
import sys, time
import recorder as rec
with rec.Recorder("j", store=sys.argv[1], git=False, flush_interval=60) as r:
    for i in range(3000):
        with r.run(i=i) as run:
            run.log(y=i)
    print("logged", flush=True)
    time.sleep(600)
"""

# Each opener signs in to the gate folder, then waits for the others (a barrier, not a clock:
# a loaded machine may take seconds to start an interpreter).
OPEN_AT = """
import os, sys, time
from recorder.store.folder import Store
gate, me, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
open(os.path.join(gate, me), "x").close()
deadline = time.monotonic() + 120
while len(os.listdir(gate)) < count:
    if time.monotonic() > deadline:
        sys.exit("the other openers never started")
    time.sleep(0.001)
Store.open(sys.argv[1]).close()
"""


def test_two_processes_recovering_one_dead_session_write_each_run_once(tmp_path: Path, store: Path) -> None:
    (tmp_path / "journaled.py").write_text(JOURNALED)
    (tmp_path / "open_at.py").write_text(OPEN_AT)
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "journaled.py"), str(store)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert proc.stdout.readline().strip() == "logged"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert db(store).execute("SELECT count(*) FROM runs").fetchone()[0] < 3000  # most only in the journal
    gate = tmp_path / "gate"
    gate.mkdir()
    openers = [
        subprocess.Popen(
            [sys.executable, str(tmp_path / "open_at.py"), str(store), str(gate), str(i), "2"],
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for i in range(2)
    ]
    for opener in openers:
        assert opener.wait(timeout=120) == 0, opener.stderr.read()
        opener.stderr.close()
    con = db(store)
    assert con.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall() == [("done", 3000)]
    assert con.execute("SELECT count(*), sum(value) FROM results_all").fetchone() == (3000, sum(range(3000)))
    assert con.execute("SELECT status FROM sessions").fetchone()[0] == "interrupted"


def test_an_unreadable_journal_line_is_skipped_with_a_warning(tmp_path: Path, store: Path) -> None:
    (tmp_path / "journaled.py").write_text(JOURNALED)
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "journaled.py"), str(store)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert proc.stdout.readline().strip() == "logged"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    (journal,) = (store / "locks").glob("*.journal.*")
    with open(journal, "ab") as file:
        file.write(b"this is not a record\n")
    with pytest.warns(rec.RecorderWarning, match="unreadable line"):
        rec.Store.open(store).close()
    assert db(store).execute("SELECT count(*) FROM runs WHERE status = 'done'").fetchone()[0] == 3000


def test_captured_output_is_bounded() -> None:
    from recorder.sweep.capture import captured

    with captured(limit=100) as buffer:
        print("a" * 70 + "b" * 70 + "c" * 70)
        assert sys.stdout.write("xyz") == 3
    text = buffer.getvalue()
    assert text == buffer.getvalue()  # reading twice gives the same
    assert text.startswith("a" * 50) and text.endswith("c" * 46 + "\nxyz")
    assert "[… 114 characters of output dropped …]" in text


def _wait_for(*paths: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"timed out waiting for {[str(p) for p in paths]}"
        time.sleep(0.02)


RETURNED_THEN_SIGTERM = """
import os, sys, time
import recorder as rec

marks = sys.argv[2]

def work(i):
    if i == 0:  # returns once the test says so (the sweeping process is stopped by then)
        open(os.path.join(marks, "ready-0"), "w").close()
        while not os.path.exists(os.path.join(marks, "go")):
            time.sleep(0.01)
        return {"y": i}
    open(os.path.join(marks, f"started-{i}"), "w").close()  # a run starts once its worker sent the last result
    time.sleep(60)
    return {"y": i}

if __name__ == "__main__":
    with rec.Recorder("t", store=sys.argv[1], git=False) as r:
        r.sweep(work, rec.plist("i", range(3)), workers=2)
"""


def test_a_result_sent_before_sigterm_is_recorded_done(tmp_path: Path, store: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "sweep.py"
    script.write_text(RETURNED_THEN_SIGTERM)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store), str(marks)], stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        _wait_for(marks / "ready-0", marks / "started-1")
        # The sweeping process cannot read results while stopped: run 0's result waits in the pipe.
        os.kill(proc.pid, signal.SIGSTOP)
        (marks / "go").touch()
        _wait_for(marks / "started-2")  # run 0's worker took run 2: it had sent run 0's result
        os.kill(proc.pid, signal.SIGTERM)
        os.kill(proc.pid, signal.SIGCONT)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        errors = proc.stderr.read()
        proc.stderr.close()
    assert code == 128 + signal.SIGTERM, errors
    statuses = dict(
        db(store)
        .execute("SELECT json_extract(p.params, '$.i'), r.status FROM runs r JOIN psets p ON p.pk = r.pset")
        .fetchall()
    )
    assert statuses == {0: "done", 1: "interrupted", 2: "interrupted"}


def crashes_alone(a: float, marks: str) -> dict:
    if a == 3.0:
        # Die once the other worker is inside its run, so that a run of another worker is in flight.
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(marks, "started-2.0")) and time.monotonic() < deadline:
            time.sleep(0.01)
        os._exit(3)
    if a == 2.0:
        open(os.path.join(marks, "started-2.0"), "w").close()
        time.sleep(0.3)
    return {"y": a}


def test_only_the_dead_workers_run_is_interrupted(tmp_path: Path, store: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    psets = [{"a": float(i), "marks": str(marks)} for i in range(8)]
    with rec.Recorder("c", store=store, git=False) as r:
        df = r.sweep(crashes_alone, psets, workers=2)
    statuses = dict(zip(df["a"], df["_status"]))
    assert statuses == {**{float(i): "done" for i in range(8)}, 3.0: "interrupted"}
    assert df["y"].tolist()[:3] == [0.0, 1.0, 2.0]
    assert db(store).execute("SELECT count(*) FROM runs").fetchone()[0] == 8


FAILING_TO_A_FILE = """
import sys
import recorder as rec

def flaky(a, b=2):
    if b == 3:
        raise ValueError(f"b=3 is not allowed (a={a})")
    return {"y": a * b}

with rec.Recorder("f", store=sys.argv[1], git=False) as r:
    r.sweep(flaky, rec.grid(a=[1.0, 2.0], b=[2, 3]), workers=int(sys.argv[2]))
print("finished")
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_a_sweep_with_failures_warns_once_even_without_a_terminal(tmp_path: Path, store: Path, workers: int) -> None:
    script = tmp_path / "sweep.py"
    script.write_text(FAILING_TO_A_FILE)
    done = subprocess.run(
        [sys.executable, str(script), str(store), str(workers)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "finished", done.stderr
    assert done.stderr.count("RecorderWarning") == 1, done.stderr
    assert "2 of 4 runs failed" in done.stderr
    assert "the first: ValueError: b=3 is not allowed (a=" in done.stderr
    assert f"recorder --store {store} log f --status failed" in done.stderr


def test_a_sweep_without_failures_does_not_warn(store: Path, recwarn: pytest.WarningsRecorder) -> None:
    with rec.Recorder("f", store=store, git=False) as r:
        r.sweep(flaky, rec.grid(a=[1.0], b=[2]))
    assert not [w for w in recwarn if issubclass(w.category, rec.RecorderWarning)]


def test_a_failed_runs_traceback_starts_at_the_users_code(store: Path) -> None:
    with pytest.warns(rec.RecorderWarning, match="1 of 1 runs failed"):
        with rec.Recorder("f", store=store, git=False) as r:
            r.sweep(flaky, rec.grid(a=[1.0], b=[3]))
            r.sweep(flaky, rec.grid(a=[2.0], b=[3]), workers=2)
    for (error,) in db(store).execute("SELECT error FROM runs"):
        lines = error.splitlines()
        assert lines[0] == "Traceback (most recent call last):"
        assert "test_sweep.py" in lines[1] and "in flaky" in lines[1], error
        assert "recorder/" not in error.replace("tests/", ""), error
        assert lines[-1].startswith("ValueError: b=3 is not allowed")


def _half_fails(a: int, b: int = 0) -> dict[str, Any]:
    if a % 2:
        raise ValueError(f"odd {a}")
    return {"y": a * 10, "z": None if a == 2 else a}


def test_the_sweeps_frame_agrees_with_df_for_the_same_runs(store: Path) -> None:
    with rec.Recorder("agree", store=store, git=False) as r:
        swept = r.sweep(_half_fails, rec.plist("a", [0, 1, 2, 3, 4]))
    stored = rec.open(store).df("agree", status=None)
    stored = stored[stored["_run_id"].isin(swept["_run_id"])]
    assert list(swept.columns) == list(stored.columns)
    assert "_error" in swept.columns
    left = swept.set_index("_run_id").sort_index()
    right = stored.set_index("_run_id").sort_index()
    assert left.dtypes.map(str).to_dict() == right.dtypes.map(str).to_dict()
    for column in left.columns:
        assert (
            left[column].astype(object).where(left[column].notna(), None).tolist()
            == right[column].astype(object).where(right[column].notna(), None).tolist()
        ), column


def test_run_failed_is_exported_with_the_other_errors(store: Path) -> None:
    import recorder.errors
    import recorder.sweep.loop

    assert rec.RunFailed is recorder.errors.RunFailed is recorder.sweep.loop.RunFailed
    assert "RunFailed" in rec.__all__ and issubclass(rec.RunFailed, rec.RecorderError)
    with rec.Recorder("raises", store=store, git=False) as r, pytest.raises(rec.RunFailed, match="odd 1"):
        r.sweep(_half_fails, rec.plist("a", [0, 1, 2]), on_error="raise", progress=False)


MAIN_WITH_DASK = """
import sys
import distributed
import recorder as rec

def work(x):
    return {"y": x * 2}

if __name__ == "__main__":
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        with rec.Recorder("m", store=sys.argv[1], git=False) as r:
            df = r.sweep(work, rec.plist("x", [1, 2, 3]), executor=client.get_executor())
    print(df["_status"].tolist(), df["y"].tolist())
"""


def test_a_function_of_the_main_script_runs_on_dask_worker_processes(tmp_path: Path, store: Path) -> None:
    pytest.importorskip("distributed")
    script = tmp_path / "study.py"
    script.write_text(MAIN_WITH_DASK)
    done = subprocess.run(
        [sys.executable, str(script), str(store)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "['done', 'done', 'done'] [2, 4, 6]" in done.stdout, done.stdout + done.stderr


def test_a_sweep_of_no_psets_returns_an_empty_frame(store: Path) -> None:
    with rec.Recorder("empty", store=store, git=False) as r:
        assert r.sweep(_half_fails, []).empty
