"""Where a run ran: its host, the id of the process that ran its function, and its pset's position in the sweep.

Stored in ``runs.host`` (NULL: the session's host), ``runs.pid`` and
``runs.pset_seq``; shown as ``_exec_host``, ``_exec_pid`` and ``_pset_seq``
in ``df()`` and in the sweep's DataFrame, as ``exec_host``, ``exec_pid``,
``pset_seq`` in the wide view and ``overview_runs``, and by ``recorder show``.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import recorder as rec
from recorder.sweep import execute

HERE = socket.gethostname()
# Psets in an order of their own (not sorted, one repeated): pset_seq is the position as given.
PSETS = [{"a": 5}, {"a": 2}, {"a": 9}, {"a": 2}, {"a": 0}, {"a": 7}]


def ran_by(a: int) -> dict[str, Any]:
    """Report the process that ran the function, as a result."""
    return {"y": a * 2, "ran_in": os.getpid()}


def stored(store: Path, experiment: str = "w") -> list[tuple[Any, ...]]:
    """``(a, host, pid, pset_seq, ran_in)`` of each run as the database has them, by position, then run order."""
    return [row[1:] for row in _rows(store, experiment)]


def _rows(store: Path, experiment: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        return conn.execute(
            "SELECT lower(hex(r.id)), json_extract(p.params, '$.a'), r.host, r.pid, r.pset_seq, "
            "json_extract(r.scalars, '$.ran_in') "
            "FROM runs AS r JOIN psets AS p ON p.pk = r.pset JOIN experiments AS e ON e.pk = r.experiment "
            "WHERE e.name = ? ORDER BY r.pset_seq IS NULL, r.pset_seq, r.pk",
            (experiment,),
        ).fetchall()
    finally:
        conn.close()


def _plain(values: Any) -> list[Any]:
    """A column's values, missing ones (pandas' NA) as None."""
    import pandas as pd

    return [None if pd.isna(v) else v for v in values]


def check_shown(store: Path, experiment: str = "w") -> None:
    """df(), the wide view and overview_runs all show what the runs table holds (the host never empty)."""
    expected = {run_id: [host or HERE, pid, seq] for run_id, _, host, pid, seq, _ in _rows(store, experiment)}
    with rec.open(store) as db:
        df = db.df(experiment)
        assert str(df["_exec_pid"].dtype) == "Int64" and str(df["_pset_seq"].dtype) == "Int64"
        columns = [df[name].astype(object).tolist() for name in ("_exec_host", "_exec_pid", "_pset_seq")]
        shown = {run_id: _plain(row) for run_id, *row in zip(df["_run_id"], *columns)}
        assert shown == expected
        view = db.sql(f'SELECT run_id, exec_host, exec_pid, pset_seq FROM "{experiment}"')
        assert {row[0]: _plain(row[1:]) for row in view.astype(object).values.tolist()} == expected
        overview = db.sql(
            "SELECT run_id, exec_host, exec_pid, pset_seq FROM overview_runs WHERE experiment = ?",
            params=[experiment],
        )
        assert {row[0]: _plain(row[1:]) for row in overview.astype(object).values.tolist()} == expected


def check_sweep(df: Any, store: Path, *, in_workers: bool) -> None:
    """The runs of ``PSETS``: each pset's position, the process that ran it, the session's host."""
    rows = stored(store)
    # Each pset runs once (the repeated one at its first position); positions in the order given.
    assert [(a, seq) for a, _, _, seq, _ in rows] == [(5, 0), (2, 1), (9, 2), (0, 4), (7, 5)]
    assert all(host is None for _, host, *_ in rows)  # the session's host: NULL
    assert all(pid == ran_in for _, _, pid, _, ran_in in rows)  # the process that ran the function
    if in_workers:
        assert all(pid != os.getpid() for _, _, pid, _, _ in rows)  # the workers', not this process's
    else:
        assert all(pid == os.getpid() for _, _, pid, _, _ in rows)
    # The sweep's own DataFrame says the same, row by row in the order of the psets.
    assert df["_pset_seq"].tolist() == [0, 1, 2, 1, 4, 5]
    assert df["_exec_pid"].tolist() == df["ran_in"].tolist()
    assert set(df["_exec_host"]) == {HERE}
    check_shown(store)


def test_a_serial_sweep_records_this_process_and_each_psets_position(store: Path) -> None:
    with rec.Recorder("w", store=store, git=False) as r:
        df = r.sweep(ran_by, PSETS, progress=False)
    check_sweep(df, store, in_workers=False)


def test_a_sweep_on_threads_records_this_process(store: Path) -> None:
    with cf.ThreadPoolExecutor(3) as threads, rec.Recorder("w", store=store, git=False) as r:
        df = r.sweep(ran_by, PSETS, executor=threads, progress=False)
    check_sweep(df, store, in_workers=False)


def test_a_pool_sweep_records_the_workers_pids(store: Path) -> None:
    with rec.Recorder("w", store=store, git=False) as r:
        df = r.sweep(ran_by, PSETS, workers=2, progress=False)
    check_sweep(df, store, in_workers=True)


def test_a_sweep_on_a_process_pool_executor_records_the_workers_pids(store: Path) -> None:
    with (
        cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool,
        rec.Recorder("w", store=store, git=False) as r,
    ):
        df = r.sweep(ran_by, PSETS, executor=pool, progress=False)
    check_sweep(df, store, in_workers=True)


def test_a_dask_sweep_records_the_workers_pids(store: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
        rec.Recorder("w", store=store, git=False) as r,
    ):
        df = r.sweep(ran_by, PSETS, executor=client.get_executor(), progress=False)
        worker_pids = set(client.run(os.getpid).values())
    check_sweep(df, store, in_workers=True)
    assert {pid for _, _, pid, _, _ in stored(store)} <= worker_pids


def _elsewhere(name: str) -> None:
    """Pool initializer: this worker says it runs on host ``name`` (as a worker on another machine would)."""
    execute._HOST[:] = [name]


def test_a_run_on_another_host_records_that_host(store: Path) -> None:
    """A worker reporting another host name (a cluster node): stored, and shown instead of the session's."""
    context = multiprocessing.get_context("fork")
    with (
        cf.ProcessPoolExecutor(2, mp_context=context, initializer=_elsewhere, initargs=("node-7.cluster",)) as pool,
        rec.Recorder("w", store=store, git=False) as r,
    ):
        df = r.sweep(ran_by, PSETS[:3], executor=pool, progress=False)
        r.sweep(ran_by, [{"a": 100}], progress=False)  # and one here, on the session's host
    rows = stored(store)
    assert [(a, host) for a, host, *_ in rows] == [
        (5, "node-7.cluster"),
        (100, None),
        (2, "node-7.cluster"),
        (9, "node-7.cluster"),
    ]
    assert set(df["_exec_host"]) == {"node-7.cluster"}
    check_shown(store)


def test_with_run_and_decorated_calls_record_this_process_and_no_position(store: Path) -> None:
    with rec.Recorder("w", store=store, git=False) as r, r.run(a=1) as run:
        run.log(y=2, ran_in=os.getpid())

    @rec.experiment("w", store=store, git=False)
    def decorated(a: int) -> dict[str, Any]:
        return {"y": a, "ran_in": os.getpid()}

    decorated(a=3)
    rows = stored(store)
    assert [(a, host, pid, seq) for a, host, pid, seq, _ in rows] == [
        (1, None, os.getpid(), None),
        (3, None, os.getpid(), None),
    ]
    check_shown(store)


def test_recorder_show_says_where_the_run_ran(store: Path) -> None:
    from click.testing import CliRunner

    from recorder.cli.commands import main

    with rec.Recorder("w", store=store, git=False) as r:
        df = r.sweep(ran_by, PSETS, workers=2, progress=False)
    run_id, pid = df["_run_id"][2], int(df["ran_in"][2])
    shown = CliRunner().invoke(main, ["--store", str(store), "show", run_id])
    assert shown.exit_code == 0, shown.output
    assert f"ran on       {HERE}   pid {pid}   pset 2 of its sweep" in shown.output.splitlines()
    as_json = CliRunner().invoke(main, ["--store", str(store), "show", run_id, "--json"])
    info = json.loads(as_json.output)
    assert (info["exec_host"], info["exec_pid"], info["pset_seq"]) == (HERE, pid, 2)


def test_a_vsweep_records_each_psets_position_and_this_process(store: Path) -> None:
    jnp = pytest.importorskip("jax.numpy")

    def square(a: float) -> dict[str, Any]:
        return {"y": jnp.square(a)}

    psets = [{"a": float(a)} for a in (3, 1, 4, 1.5, 9, 2, 6)]
    with rec.Recorder("w", store=store, git=False) as r:
        df = r.vsweep(square, psets, chunk_size=3, progress=False)
    assert df["_pset_seq"].tolist() == list(range(7))
    with rec.open(store) as db:
        got = db.df("w").sort_values("_pset_seq")
    assert got["a"].tolist() == [p["a"] for p in psets] and got["_pset_seq"].tolist() == list(range(7))
    assert set(got["_exec_pid"]) == {os.getpid()} and set(got["_exec_host"]) == {HERE}
