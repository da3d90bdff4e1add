"""Sweep benchmark: recording overhead, pool speed-up and memory of ``Recorder.sweep``.

Measured in one process, on the same workload (the figures issue 3 asks for):

1. A serial sweep of N psets (2 parameters) of a function returning two
   scalars, with ``return_df=False``: recording overhead per run, that is
   (sweep time − bare loop time) / N, next to raw ``sqlite3`` writing the
   same rows (a pset, a run and two results per run) with ``executemany``
   in one transaction.
2. ``workers=2`` against serial for a 10 ms CPU-bound function.
3. Peak memory (max RSS) of a fresh process running the N-pset sweep with
   ``return_df=False``.

Usage::

    python benchmarks/bench_sweep.py [--runs 100000] [--repeat 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import recorder as rec


def two_scalars(a: float, b: int) -> dict:
    return {"y": a * b, "z": a + b}


def cpu_10ms(a: float) -> dict:
    """About 10 ms of pure-Python arithmetic."""
    total, x = 0.0, a
    deadline = time.process_time() + 0.010
    while time.process_time() < deadline:
        for _ in range(200):
            x = (x * 1.0000001 + 0.5) % 7.0
        total += x
    return {"total": total}


def grid(n: int) -> rec.ParamSequence:
    return rec.grid(a=[i * 0.001 for i in range(n // 100)], b=list(range(100)))


def bare(n: int, folder: Path) -> float:
    params = grid(n)
    t0 = time.perf_counter()
    for pset in params:
        two_scalars(**pset)
    return time.perf_counter() - t0


RAW_SCHEMA = """
CREATE TABLE psets (pk INTEGER PRIMARY KEY, hash BLOB UNIQUE, params TEXT);
CREATE TABLE runs (pk INTEGER PRIMARY KEY, id BLOB UNIQUE, pset INTEGER, status TEXT,
                   time_start_ms INTEGER, duration_us INTEGER, seed INTEGER);
CREATE INDEX runs_pset ON runs (pset);
CREATE TABLE results (run INTEGER, name TEXT, kind TEXT, value, PRIMARY KEY (run, name)) WITHOUT ROWID;
"""


def raw_sqlite(n: int, folder: Path) -> float:
    """The same rows, written with executemany in one transaction: the floor for any recorder."""
    con = sqlite3.connect(folder / "raw.sqlite", isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.executescript(RAW_SCHEMA)
    params = grid(n)
    t0 = time.perf_counter()
    psets, runs, results = [], [], []
    for i, pset in enumerate(params, start=1):
        start = time.perf_counter()
        out = two_scalars(**pset)
        text = json.dumps(pset, sort_keys=True, separators=(",", ":"))
        psets.append((i, hashlib.sha256(text.encode()).digest()[:10], text))
        runs.append(
            (i, i.to_bytes(12, "big"), i, "done", 1_795_000_000_000 + i, round((time.perf_counter() - start) * 1e6), i)
        )
        results.extend((i, name, None, value) for name, value in out.items())
    con.execute("BEGIN")
    con.executemany("INSERT INTO psets VALUES (?, ?, ?)", psets)
    con.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)", runs)
    con.executemany("INSERT INTO results VALUES (?, ?, ?, ?)", results)
    con.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    con.close()
    return elapsed


def swept(n: int, folder: Path) -> float:
    params = grid(n)
    with rec.Recorder("bench", store=folder / "store", git=False) as r:
        t0 = time.perf_counter()
        r.sweep(two_scalars, params, return_df=False, progress=False)
        r.flush()  # every run is in SQLite before the clock stops
        elapsed = time.perf_counter() - t0
    con = sqlite3.connect(folder / "store" / "recorder.sqlite")
    assert con.execute("SELECT count(*) FROM runs WHERE status = 'done'").fetchone()[0] == n
    return elapsed


def pooled(workers: int, n: int, folder: Path) -> float:
    with rec.Recorder("cpu", store=folder / f"store{workers}", git=False) as r:
        t0 = time.perf_counter()
        r.sweep(cpu_10ms, rec.plist("a", [float(i) for i in range(n)]), workers=workers, return_df=False)
        return time.perf_counter() - t0


PEAK = """
import resource, sys, time
sys.path.insert(0, {here!r})
import bench_sweep, recorder as rec
with rec.Recorder("bench", store={store!r}, git=False) as r:
    r.sweep(bench_sweep.two_scalars, bench_sweep.grid({n}), return_df=False, progress=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_memory_mb(n: int, folder: Path) -> float:
    code = PEAK.format(here=str(Path(__file__).parent), store=str(folder / "peak"), n=n)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout.strip()) / 1024  # ru_maxrss is in KiB on Linux


def median_of(repeat: int, bench, *args) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        folder = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
        try:
            times.append(bench(*args, folder))
        finally:
            shutil.rmtree(folder)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpu-runs", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    n = args.runs

    bare_s = median_of(args.repeat, bare, n)
    raw_s = median_of(args.repeat, raw_sqlite, n)
    sweep_s = median_of(args.repeat, swept, n)
    serial_s = median_of(1, pooled, 1, args.cpu_runs)
    two_s = median_of(1, pooled, 2, args.cpu_runs)
    peak = peak_memory_mb(n, Path(tempfile.mkdtemp(prefix="bench-sweep-")))

    overhead = (sweep_s - bare_s) / n * 1e6
    raw_overhead = (raw_s - bare_s) / n * 1e6
    figures = {
        "runs": n,
        "bare_loop_us_per_run": bare_s / n * 1e6,
        "raw_sqlite_executemany_us_per_run": raw_s / n * 1e6,
        "sweep_overhead_us_per_run": overhead,
        "sweep_runs_per_s": n / sweep_s,
        "sweep_over_raw_sqlite": (sweep_s - bare_s) / (raw_s - bare_s),
        "cpu_10ms_serial_s": serial_s,
        "cpu_10ms_workers2_s": two_s,
        "workers2_speedup": serial_s / two_s,
        "peak_rss_mb_return_df_false": peak,
    }
    print(f"serial sweep of {n} psets, 2 params, 2 scalar results (median of {args.repeat}):")
    print(f"  bare loop                     {bare_s / n * 1e6:8.2f} µs/run")
    print(f"  raw sqlite3 executemany       {raw_s / n * 1e6:8.2f} µs/run  (overhead {raw_overhead:.2f})")
    print(
        f"  recorder sweep, overhead      {overhead:8.2f} µs/run  ({n / sweep_s:,.0f} runs/s;"
        f" {figures['sweep_over_raw_sqlite']:.2f}× raw sqlite3)   target ≤ 20 µs/run, ≤ 3×"
    )
    print(
        f"workers=2 vs serial, {args.cpu_runs} runs of 10 ms: {serial_s:.2f} s vs {two_s:.2f} s"
        f" = {serial_s / two_s:.2f}×   target ≥ 1.7×"
    )
    print(f"peak memory, {n}-pset sweep, return_df=False: {peak:.0f} MB   target < 300 MB")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
