"""The helper process that reads a big store's fixed columns beside ``db.df`` (recorder.read.sidequery).

``frame(..., helper_min_runs=0)`` starts the helper on any store, so that
small stores exercise it. What the helper returns is checked against the
same DataFrame read in this process alone; the cases where its row must not
be used (runs that ended meanwhile, a helper that fails) are made to happen
for real: a commit from a second Recorder, an executable that exits with an error.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

import recorder as rec
import recorder.read.frame
import recorder.store.db
from recorder.read.frame import frame
from recorder.read.sidequery import InThread, SideQuery
from recorder.store.objects import ObjectStore


class CountingSideQuery(SideQuery):
    """The real helper, counting what it is asked and what it gives back."""

    started: ClassVar[list[str]] = []
    rows: ClassVar[list[Any]] = []

    def __init__(self, database: Path, sql: str, values: list[Any]) -> None:
        CountingSideQuery.started.append(sql)
        super().__init__(database, sql, values)

    def result(self) -> tuple[bytes | None, ...] | None:
        row = super().result()
        CountingSideQuery.rows.append(row)
        return row


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> type[CountingSideQuery]:
    CountingSideQuery.started, CountingSideQuery.rows = [], []
    monkeypatch.setattr(recorder.read.frame, "SideQuery", CountingSideQuery)
    return CountingSideQuery


def build(store: Path) -> None:
    """Three sessions; psets of two layouts and of every plain type; results in runs.scalars and as rows."""
    for session in range(3):
        with rec.Recorder("exp", store=store, git=False) as r:
            for i in range(40):
                params: dict[str, Any] = {"a": session * 100 + i, "x": i / 7, "name": f"n{i % 3}", "flag": i % 2 == 0}
                if i % 5 == 0:
                    del params["x"]  # another layout
                if i == 13:
                    with pytest.raises(RuntimeError), r.run(**params):
                        raise RuntimeError("boom")
                    continue
                with r.run(**params) as run:
                    run.log(y=i * 1.5, k=i, label=f"run {i}", f32=np.float32(i) / 4, nan=float("nan") if i % 4 else 1.0)


def read(store: Path, **options: Any) -> pd.DataFrame:
    conn = recorder.store.db.connect(store / "recorder.sqlite", readonly=True)
    try:
        experiment = conn.execute("SELECT pk FROM experiments WHERE name = 'exp'").fetchone()[0]
        return frame(conn, experiment, ObjectStore(store / "objects"), **options)
    finally:
        conn.close()


@pytest.mark.parametrize("statuses", [("done",), None, ("done", "failed"), ("failed",)])
def test_the_helper_reads_what_this_process_reads(
    tmp_path: Path, counting: type[CountingSideQuery], statuses: tuple[str, ...] | None
) -> None:
    store = tmp_path / "store"
    build(store)
    alone = read(store, statuses=statuses, helper_min_runs=10**9)
    assert counting.started == []
    helped = read(store, statuses=statuses, helper_min_runs=0)
    assert len(counting.started) == 1 and counting.rows[0] is not None  # its row was there and was used
    assert (
        int(counting.rows[0][0])
        == len(alone)
        == {("done",): 117, None: 120, ("done", "failed"): 120, ("failed",): 3}[statuses]
    )
    pd.testing.assert_frame_equal(helped, alone)
    assert helped["_session"].nunique() == 3
    assert helped["x"].isna().any() == (statuses != ("failed",))  # the failed runs all have x


def test_no_helper_for_running_runs_or_a_where_clause(tmp_path: Path, counting: type[CountingSideQuery]) -> None:
    store = tmp_path / "store"
    build(store)
    for options in ({"statuses": ("running",)}, {"statuses": ("done", "running")}, {"where": "a > 10"}):
        alone = read(store, helper_min_runs=10**9, **options)
        pd.testing.assert_frame_equal(read(store, helper_min_runs=0, **options), alone)
    # a run may stop running between two transactions, so the helper's count would prove nothing
    assert counting.started == []


def test_no_helper_below_the_threshold(tmp_path: Path, counting: type[CountingSideQuery]) -> None:
    store = tmp_path / "store"
    build(store)
    read(store, helper_min_runs=121)  # the store has 120 runs
    assert counting.started == []
    read(store, helper_min_runs=120)
    assert len(counting.started) == 1


def test_a_run_that_ends_before_the_helper_reads_is_left_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    build(store)
    before = read(store, helper_min_runs=10**9)
    rows: list[Any] = []

    class CommitFirst(SideQuery):
        """Another Recorder commits a done run just before the helper starts, after frame()'s transaction began."""

        def __init__(self, database: Path, sql: str, values: list[Any]) -> None:
            with rec.Recorder("exp", store=store, git=False) as r, r.run(a=999, x=0.5, name="late", flag=True) as run:
                run.log(y=1.0, k=1, label="late", f32=np.float32(1), nan=1.0)
            super().__init__(database, sql, values)

        def result(self) -> tuple[bytes | None, ...] | None:
            rows.append(super().result())
            return rows[-1]

    monkeypatch.setattr(recorder.read.frame, "SideQuery", CommitFirst)
    got = read(store, helper_min_runs=0)
    assert int(rows[0][0]) == len(before) + 1  # the helper saw the late run ...
    after = read(store, helper_min_runs=10**9)
    assert len(after) == len(before) + 1
    # ... and frame() read the runs of its own transaction instead (sessions are categories of the whole store)
    pd.testing.assert_frame_equal(
        got.assign(_session=got["_session"].astype(str)), before.assign(_session=before["_session"].astype(str))
    )


def test_a_helper_that_fails_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counting: type[CountingSideQuery]
) -> None:
    store = tmp_path / "store"
    build(store)
    alone = read(store, helper_min_runs=10**9)
    failing = tmp_path / "python-that-fails"
    failing.write_text("#!/bin/sh\nexit 3\n")
    failing.chmod(failing.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(sys, "executable", str(failing))
    got = read(store, helper_min_runs=0)
    assert len(counting.started) == 1 and counting.rows == [None]
    pd.testing.assert_frame_equal(got, alone)


def test_side_query_returns_bytes_and_none(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [(b"\x00\xff",), (b"\x1e",)])
    conn.commit()
    conn.close()
    query = SideQuery(db, "SELECT NULL, 42, 'é', CAST(group_concat(x, '') AS BLOB), count(*) FROM t WHERE ?", [1])
    assert query.result() == (None, b"42", "é".encode(), b"\x00\xff\x1e", b"2")
    query.cancel()  # after the end: nothing to stop
    broken = SideQuery(db, "SELECT * FROM nowhere", [])
    assert broken.result() is None


def test_in_thread_gives_the_value_or_the_error() -> None:
    assert InThread(lambda: 6 * 7).result() == 42

    def fails() -> None:
        raise sqlite3.OperationalError("no such table: x")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        InThread(fails).result()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2, reason="needs CPU affinity")
def test_no_helper_on_one_core() -> None:
    code = (
        "import os; from recorder.read.sidequery import available; print(available()); "
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); print(available())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False"]  # a helper on the only core would just take turns with us


class InterruptedAt:
    """A real connection that raises KeyboardInterrupt (as Ctrl-C would) just before its n-th statement."""

    def __init__(self, conn: sqlite3.Connection, at: int) -> None:
        self.conn, self.at, self.statements = conn, at, 0

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        self.statements += 1
        if self.statements == self.at:
            raise KeyboardInterrupt
        return self.conn.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def _helpers_alive() -> list[int]:
    """This process's children that are helper processes (Linux /proc)."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat_file.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and b"sqlite3" in cmdline:
            found.append(int(stat_file.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("at", range(1, 10))
def test_ctrl_c_while_reading_leaves_no_helper_and_a_usable_connection(tmp_path: Path, at: int) -> None:
    store = tmp_path / "store"
    build(store)
    conn = recorder.store.db.connect(store / "recorder.sqlite", readonly=True)
    try:
        experiment = conn.execute("SELECT pk FROM experiments WHERE name = 'exp'").fetchone()[0]
        hooked = InterruptedAt(conn, at)
        try:
            frame(hooked, experiment, ObjectStore(store / "objects"), helper_min_runs=0)  # type: ignore[arg-type]
        except KeyboardInterrupt:
            interrupted = True
        else:
            interrupted = False
        assert interrupted == (at <= hooked.statements)
        assert _helpers_alive() == []
        # (a read transaction the interrupt left open, at its COMMIT, is ended by the next read)
        again = frame(conn, experiment, ObjectStore(store / "objects"), helper_min_runs=10**9)
    finally:
        conn.close()
    pd.testing.assert_frame_equal(again, read(store, helper_min_runs=10**9))
