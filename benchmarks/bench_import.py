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

MLflow (``--mlflow``): 10,000 runs with 10 params and 5 metrics each; see
:func:`bench_mlflow` (filled by the MLflow importer).

Usage::

    python benchmarks/bench_import.py [--rows 100000] [--mlflow] [--keep DIR]
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
# FILLED BY THE MLFLOW IMPORTER (branch imp-mlflow): make an MLflow tracking store of `runs` runs with
# 10 params and 5 metrics each (the SQLite backend, as `mlflow` writes it), import it with
# rec.import_mlflow, and print the wall and CPU seconds against MLFLOW_TARGET_S like bench_psweep.


def bench_mlflow(runs: int, folder: Path) -> None:
    """MLflow: ``runs`` runs with 10 params and 5 metrics each imported in under 30 s (to be filled)."""
    raise SystemExit("the MLflow benchmark is not written yet (it comes with the MLflow importer)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="psweep rows (default 100,000)")
    parser.add_argument("--mlflow", action="store_true", help="also the MLflow case (10,000 runs)")
    parser.add_argument("--mlflow-runs", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="make the sources and stores here and keep them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        bench_psweep(args.rows, folder / "psweep")
        if args.mlflow:
            bench_mlflow(args.mlflow_runs, folder / "mlflow")


if __name__ == "__main__":
    main()
