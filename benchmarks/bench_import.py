"""Benchmark of ``recorder import`` (issue 20): 100,000 psweep rows in under 10 s; MLflow 10,000 runs in under 30 s.

psweep: a study of ``--rows`` psets (a grid of two parameters, one float
result ``y_``) run by psweep itself when it is installed (as a user's study
is made: ``psweep.run``, its pickled DataFrame in ``calc/database.pk``),
else a DataFrame with psweep's columns built directly. Then, timed:

1. ``rec.import_psweep(calc, into=store)`` into a new store (the target);
2. the same again (every run already there: what a re-import costs);
3. baselines in the same process: unpickling the database alone, and raw
   ``sqlite3`` inserts of as many rows (id, pset, status, times) in one
   transaction -- the floor of any import.

Wall and CPU seconds are both shown: on a shared machine the wall time
depends on the load, the ratio to the baselines less so.

MLflow (``--mlflow``): 10,000 runs with 10 params and 5 metrics each, in an
MLflow SQLite tracking database built directly from the schema of one mlflow
made (:func:`mlflow_database`; ``--mlflow-steps S`` logs each metric at S
steps, imported as series). Timed: the import into a new store, again (all
there), and the reader alone.

Usage::

    python benchmarks/bench_import.py [--rows 100000] [--mlflow [--mlflow-runs 10000] [--mlflow-steps 1]] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import recorder as rec  # noqa: E402

PSWEEP_TARGET_S = 10.0
MLFLOW_TARGET_S = 30.0

# A psweep study as a user runs one (in its own process: psweep sets warnings filters at import).
PSWEEP_STUDY = """
import sys
import psweep as ps
n = int(sys.argv[1])
side = max(1, int(n ** 0.5))
params = ps.pgrid(ps.plist("a", list(range(side))), ps.plist("b", list(range(n // side))))
ps.run(lambda pset: {"y_": pset["a"] * 0.5 + pset["b"]}, params)
"""


def psweep_database(folder: Path, rows: int) -> Path:
    """Make a psweep database of about ``rows`` psets in ``folder``; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import psweep  # noqa: F401
    except ImportError:
        return _built_database(folder, rows)
    script = folder / "study.py"
    script.write_text(PSWEEP_STUDY)
    subprocess.run([sys.executable, str(script), str(rows)], cwd=folder, check=True, capture_output=True)
    return folder / "calc" / "database.pk"


def _built_database(folder: Path, rows: int) -> Path:
    """psweep's DataFrame without psweep: the columns and types ``psweep.run`` writes (object dtype)."""
    import uuid

    import pandas as pd

    side = max(1, int(rows**0.5))
    run_id = str(uuid.uuid4())
    now = time.time()
    records = []
    for i in range(side * (rows // side)):
        a, b = i // (rows // side), i % (rows // side)
        records.append(
            {
                "a": a,
                "b": b,
                "_pset_hash": f"{i:040x}",
                "_pset_id": str(uuid.uuid4()),
                "_run_seq": 0,
                "_pset_seq": i,
                "_run_id": run_id,
                "_calc_dir": "calc",
                "_time_utc": pd.Timestamp(now + i * 1e-4, unit="s"),
                "_exec_host": "host",
                "y_": a * 0.5 + b,
                "_pset_runtime": 1e-5,
            }
        )
    path = folder / "calc" / "database.pk"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(records, dtype=object).to_pickle(path)
    return path


def timed(action: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU seconds of ``action()``, and what it returned."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = action()
    return time.perf_counter() - wall, time.process_time() - cpu, value


def raw_inserts(path: Path, rows: int) -> None:
    """The floor: ``rows`` rows of a runs-like table inserted with sqlite3 in one transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(
        "CREATE TABLE runs (pk INTEGER PRIMARY KEY, id BLOB UNIQUE, pset INTEGER, status TEXT, start INTEGER, "
        "duration INTEGER, scalars TEXT, origin TEXT)"
    )
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ((i, os.urandom(12), i, "done", i, 10, '{"y_":1.5}', f"psweep:{i}") for i in range(rows)),
    )
    conn.execute("COMMIT")
    conn.close()


def bench_psweep(rows: int, folder: Path) -> None:
    import pandas as pd

    t0 = time.perf_counter()
    database = psweep_database(folder / "source", rows)
    n = len(pd.read_pickle(database))
    print(f"psweep study of {n} rows made in {time.perf_counter() - t0:.1f} s: {database}")
    store = folder / "store"
    wall, cpu, report = timed(lambda: rec.import_psweep(database, into=store))
    assert report.imported == n, report.lines()
    again_wall, again_cpu, again = timed(lambda: rec.import_psweep(database, into=store))
    assert again.already == n and again.imported == 0
    unpickle_wall, unpickle_cpu, _ = timed(lambda: pd.read_pickle(database))
    raw_wall, raw_cpu, _ = timed(lambda: raw_inserts(folder / "raw.sqlite", n))
    floor = unpickle_wall + raw_wall
    verdict = "OK" if wall < PSWEEP_TARGET_S else "SLOWER THAN THE TARGET"
    print(
        f"import of {n} psweep rows:   {wall:6.2f} s wall, {cpu:6.2f} s CPU  (target < {PSWEEP_TARGET_S:.0f} s: {verdict})"
    )
    print(f"  per row:                   {wall / n * 1e6:6.1f} µs")
    print(f"import again (all there):    {again_wall:6.2f} s wall, {again_cpu:6.2f} s CPU")
    print(f"baseline: unpickle alone     {unpickle_wall:6.2f} s wall, {unpickle_cpu:6.2f} s CPU")
    print(f"baseline: raw sqlite3 rows   {raw_wall:6.2f} s wall, {raw_cpu:6.2f} s CPU")
    print(f"ratio to the floor (unpickle + raw inserts): {wall / floor:.1f}x")


# -- MLflow ------------------------------------------------------------------------------------------

#: The schema of an MLflow tracking database as mlflow-skinny 3.17.2 made it (see the file's header).
MLFLOW_SCHEMA = Path(__file__).with_name("mlflow_schema.sql")
MLFLOW_PARAMS, MLFLOW_METRICS = 10, 5
_T0_MS = 1_700_000_000_000
_INSERT_EXPERIMENT = (
    "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, "
    "last_update_time, workspace) VALUES (1, 'bench', './mlruns/1', 'active', ?, ?, 'default')"
)
_INSERT_RUN = (
    "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time, "
    "end_time, source_version, lifecycle_stage, artifact_uri, experiment_id, deleted_time) "
    "VALUES (?, ?, 'UNKNOWN', '', '', 'bench', ?, ?, ?, '', 'active', ?, 1, NULL)"
)
_INSERT_PARAM = 'INSERT INTO params ("key", value, run_uuid) VALUES (?, ?, ?)'
_INSERT_METRIC = 'INSERT INTO metrics ("key", value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, 0)'
_INSERT_LATEST = (
    'INSERT INTO latest_metrics ("key", value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, 0, ?)'
)
_INSERT_TAG = 'INSERT INTO tags ("key", value, run_uuid) VALUES (?, ?, ?)'


def mlflow_database(path: Path, runs: int, steps: int = 1) -> Path:
    """Write an MLflow SQLite tracking database of ``runs`` runs (10 params, 5 metrics of ``steps`` steps).

    Built directly from the schema of a database mlflow made (``mlflow_schema.sql``) with the rows
    mlflow writes for a run (``runs``, ``params``, ``metrics``, ``latest_metrics``, and the tags it
    sets: run name, user, source name and type, git commit): logging 10,000 runs through mlflow's
    API takes minutes, and the importer reads the same rows either way.
    """
    import uuid

    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(MLFLOW_SCHEMA.read_text())
    conn.execute("BEGIN")
    conn.execute(_INSERT_EXPERIMENT, (_T0_MS, _T0_MS))
    run_rows, param_rows, metric_rows, latest_rows, tag_rows = [], [], [], [], []
    for i in range(runs):
        run_id = uuid.UUID(int=i + 1).hex
        start = _T0_MS + 1000 * i
        name = f"run-{i}"
        status = "FAILED" if i % 100 == 99 else "FINISHED"
        run_rows.append((run_id, name, status, start, start + 900, f"./mlruns/1/{run_id}/artifacts"))
        for p in range(MLFLOW_PARAMS):
            # as MLflow keeps them: text, of ints, floats and words
            value = str(i % 10 + p) if p < 4 else (repr(0.001 * (i % 7) + p) if p < 8 else f"opt{p}-{i % 3}")
            param_rows.append((f"p{p}", value, run_id))
        for m in range(MLFLOW_METRICS):
            for step in range(steps):
                value = (i + 1) * 0.5 / (m + 1) / (step + 1)
                metric_rows.append((f"m{m}", value, start + 10 * step, run_id, step))
            latest_rows.append((f"m{m}", value, start + 10 * (steps - 1), steps - 1, run_id))
        tag_rows += [
            ("mlflow.runName", name, run_id),
            ("mlflow.user", "bench", run_id),
            ("mlflow.source.name", "train.py", run_id),
            ("mlflow.source.type", "LOCAL", run_id),
            ("mlflow.source.git.commit", "0123456789abcdef0123456789abcdef01234567", run_id),
        ]
    conn.executemany(_INSERT_RUN, run_rows)
    conn.executemany(_INSERT_PARAM, param_rows)
    conn.executemany(_INSERT_METRIC, metric_rows)
    conn.executemany(_INSERT_LATEST, latest_rows)
    conn.executemany(_INSERT_TAG, tag_rows)
    conn.execute("COMMIT")
    conn.close()
    return path


def bench_mlflow(runs: int, folder: Path, steps: int = 1) -> None:
    """MLflow: ``runs`` runs with 10 params and 5 metrics each imported in under 30 s."""
    from recorder.importing.mlflow import read_mlflow

    t0 = time.perf_counter()
    database = mlflow_database(folder / "source" / "mlflow.db", runs, steps)
    print(
        f"MLflow database of {runs} runs ({steps} steps a metric) made in {time.perf_counter() - t0:.1f} s: {database}"
    )
    store = folder / "store"
    wall, cpu, report = timed(lambda: rec.import_mlflow(database, into=store))
    assert report.imported == runs, report.lines()
    again_wall, again_cpu, again = timed(lambda: rec.import_mlflow(database, into=store))
    assert again.already == runs and again.imported == 0
    read_wall, read_cpu, _ = timed(lambda: read_mlflow(database))
    verdict = "OK" if wall < MLFLOW_TARGET_S else "SLOWER THAN THE TARGET"
    print(
        f"import of {runs} MLflow runs: {wall:6.2f} s wall, {cpu:6.2f} s CPU  (target < {MLFLOW_TARGET_S:.0f} s: {verdict})"
    )
    print(f"  per run:                   {wall / runs * 1e6:6.1f} µs")
    print(f"import again (all there):    {again_wall:6.2f} s wall, {again_cpu:6.2f} s CPU")
    print(f"the reader alone:            {read_wall:6.2f} s wall, {read_cpu:6.2f} s CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="psweep rows (default 100,000)")
    parser.add_argument("--mlflow", action="store_true", help="also the MLflow case (10,000 runs)")
    parser.add_argument("--mlflow-runs", type=int, default=10_000)
    parser.add_argument("--mlflow-steps", type=int, default=1, help="steps logged per MLflow metric (> 1: series)")
    parser.add_argument("--keep", type=Path, help="make the sources and stores here and keep them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        bench_psweep(args.rows, folder / "psweep")
        if args.mlflow:
            bench_mlflow(args.mlflow_runs, folder / "mlflow", args.mlflow_steps)


if __name__ == "__main__":
    main()
