"""MLflow import benchmark: 10,000 runs with 10 params and 5 metrics each (issue 20's bar: under 30 s).

1. Build an MLflow SQLite tracking database directly: the schema of a database mlflow made
   (``benchmarks/mlflow_schema.sql``, alembic revision dc11669786a5), then one experiment and N
   runs with rows in ``runs``, ``params``, ``metrics``, ``latest_metrics`` and ``tags`` (the
   tags mlflow sets: run name, user, source name and type, git commit), as mlflow writes them.
   Building through mlflow's API would take minutes; the rows are the same.
2. Time ``rec.import_mlflow(db, into=store)`` (read and write, one transaction), the reader
   alone, and a second import (which finds every run there and adds nothing).

Usage::

    python benchmarks/bench_import_mlflow.py [--runs 10000] [--steps 1] [--json FILE]

``--steps S`` logs each metric at S steps (a history, imported as a series) instead of once.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

import recorder as rec
from recorder.importing.mlflow import read_mlflow

SCHEMA = Path(__file__).with_name("mlflow_schema.sql")
T0_MS = 1_700_000_000_000
PARAMS = 10
METRICS = 5

INSERT_EXPERIMENT = (
    "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, "
    "last_update_time, workspace) VALUES (1, 'bench', './mlruns/1', 'active', ?, ?, 'default')"
)
INSERT_RUN = (
    "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time, "
    "end_time, source_version, lifecycle_stage, artifact_uri, experiment_id, deleted_time) "
    "VALUES (?, ?, 'UNKNOWN', '', '', 'bench', ?, ?, ?, '', 'active', ?, 1, NULL)"
)
INSERT_PARAM = 'INSERT INTO params ("key", value, run_uuid) VALUES (?, ?, ?)'
INSERT_METRIC = 'INSERT INTO metrics ("key", value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, 0)'
INSERT_LATEST = 'INSERT INTO latest_metrics ("key", value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, 0, ?)'
INSERT_TAG = 'INSERT INTO tags ("key", value, run_uuid) VALUES (?, ?, ?)'


def build(db: Path, runs: int, steps: int) -> float:
    """Write an MLflow database of ``runs`` runs into ``db``; return the seconds it took."""
    t0 = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(SCHEMA.read_text())
    conn.execute("BEGIN")
    conn.execute(INSERT_EXPERIMENT, (T0_MS, T0_MS))
    run_rows, param_rows, metric_rows, latest_rows, tag_rows = [], [], [], [], []
    for i in range(runs):
        run_id = uuid.UUID(int=i + 1).hex
        start = T0_MS + 1000 * i
        name = f"run-{i}"
        status = "FAILED" if i % 100 == 99 else "FINISHED"
        run_rows.append((run_id, name, status, start, start + 900, f"./mlruns/1/{run_id}/artifacts"))
        for p in range(PARAMS):
            value = str(i % 10 + p) if p < 4 else (repr(0.001 * (i % 7) + p) if p < 8 else f"opt{p}-{i % 3}")
            param_rows.append((f"p{p}", value, run_id))
        for m in range(METRICS):
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
    conn.executemany(INSERT_RUN, run_rows)
    conn.executemany(INSERT_PARAM, param_rows)
    conn.executemany(INSERT_METRIC, metric_rows)
    conn.executemany(INSERT_LATEST, latest_rows)
    conn.executemany(INSERT_TAG, tag_rows)
    conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - t0


def timed(what: str, action) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = action()
    took = time.perf_counter() - t0
    print(f"{what:<44} {took:8.3f} s")
    return took, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=1, help="Steps logged per metric (more than 1: a series).")
    parser.add_argument("--json", type=Path, help="Write the figures here.")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_import_mlflow_"))
    try:
        db = tmp / "mlflow.db"
        print(f"building an MLflow database of {args.runs} runs: {build(db, args.runs, args.steps):.1f} s")
        figures: dict[str, float] = {}
        figures["read"], study = timed("read_mlflow (the reader alone)", lambda: read_mlflow(db))
        assert len(study.runs) == args.runs  # type: ignore[attr-defined]
        store = tmp / "store"
        figures["import"], report = timed(
            f"import {args.runs} runs ({PARAMS} params, {METRICS} metrics)", lambda: rec.import_mlflow(db, into=store)
        )
        assert report.imported == args.runs, report  # type: ignore[attr-defined]
        figures["again"], again = timed("import again (adds nothing)", lambda: rec.import_mlflow(db, into=store))
        assert again.imported == 0 and again.already == args.runs, again  # type: ignore[attr-defined]
        verdict = "under" if figures["import"] < 30 else "OVER"
        print(f"bar: {args.runs} runs in under 30 s -> {figures['import']:.1f} s ({verdict})")
        if args.json:
            args.json.write_text(json.dumps({"runs": args.runs, "steps": args.steps, **figures}, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
