"""Read-side benchmark: loading a store of 10^6 runs (issue 4's figures).

1. Build a store of N runs (2 parameters, 2 scalar results) with a sweep,
   or reuse one given with ``--store``.
2. In fresh processes (median of ``--repeat``), time ``rec.open(store).df("exp")``,
   next to the baseline a user would write by hand in the same run: one
   ``sqlite3`` query returning a row per run with the same columns, read
   into pandas with ``pandas.read_sql``.
3. Time ``SELECT count(*) FROM overview_runs`` in a fresh process.
4. Time the command line as whole processes: ``recorder --help`` and
   ``recorder --store STORE log -n 20`` (issue 5's figures).
5. Bytes of database file per run.

Usage::

    python benchmarks/bench_load.py [--runs 1000000] [--repeat 3] [--store DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
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


def build(store: Path, n: int) -> float:
    params = rec.grid(a=[i * 0.001 for i in range(n // 100)], b=list(range(100)))
    t0 = time.perf_counter()
    with rec.Recorder("exp", store=store, git=False) as r:
        r.sweep(two_scalars, params, return_df=False)
    return time.perf_counter() - t0


LOAD = """
import time, resource
t0 = time.perf_counter()
import recorder as rec
db = rec.open({store!r})
t1 = time.perf_counter()
df = db.df("exp")
t2 = time.perf_counter()
assert len(df) == {n}, len(df)
print(t2 - t1, t2 - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

BASELINE = """
import time, sqlite3
t0 = time.perf_counter()
import pandas as pd
conn = sqlite3.connect("file:" + {db!r} + "?mode=ro", uri=True)
t1 = time.perf_counter()
df = pd.read_sql('''
SELECT json_extract(p.params, '$.a') AS a, json_extract(p.params, '$.b') AS b, y.value AS y, z.value AS z,
       lower(hex(r.id)) AS _run_id, lower(hex(p.hash)) AS _pset_hash, r.status AS _status,
       r.time_start_ms AS _time_start, r.duration_us / 1e6 AS _duration_s, s.id AS _session, s.env_sha AS _env_sha
FROM runs AS r JOIN psets AS p ON p.pk = r.pset JOIN sessions AS s ON s.pk = r.session
LEFT JOIN results AS y ON y.run = r.pk AND y.name = 'y' LEFT JOIN results AS z ON z.run = r.pk AND z.name = 'z'
WHERE r.status = 'done' ORDER BY r.pk''', conn)
t2 = time.perf_counter()
assert len(df) == {n}, len(df)
print(t2 - t1, t2 - t0, 0)
"""

COUNT = """
import time
t0 = time.perf_counter()
import recorder as rec
db = rec.open({store!r})
t1 = time.perf_counter()
count = db.sql("SELECT count(*) AS n FROM overview_runs")["n"][0]
t2 = time.perf_counter()
assert count == {n}, count
print(t2 - t1, t2 - t0, 0)
"""


def fresh(code: str) -> tuple[float, float, float]:
    """Run ``code`` in a new Python process; it prints (timed part, whole process, max RSS KiB)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{done.stderr}")
    part, whole, rss = done.stdout.split()
    return float(part), float(whole), float(rss)


def command_s(args: list[str], repeat: int) -> float:
    """Median wall time of the ``recorder`` console script as a whole process."""
    exe = shutil.which("recorder")
    if exe is None:
        raise SystemExit("the recorder command is not installed (pip install -e .)")
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([exe, *args], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def median_fresh(code: str, repeat: int) -> tuple[float, float, float]:
    times = [fresh(code) for _ in range(repeat)]
    return tuple(statistics.median(t[i] for t in times) for i in range(3))  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store", type=Path, help="reuse (or build once into) this store")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    n = args.runs - args.runs % 100

    temporary = args.store is None
    store = args.store or Path(tempfile.mkdtemp(prefix="bench-load-")) / "store"
    try:
        built = None
        if not (store / "recorder.sqlite").exists():
            print(f"building a store of {n:,} runs in {store} …", flush=True)
            built = build(store, n)
        db = store / "recorder.sqlite"
        with sqlite3.connect(db) as conn:
            stored = conn.execute("SELECT count(*) FROM runs WHERE status = 'done'").fetchone()[0]
        if stored != n:
            raise SystemExit(f"{store} holds {stored} done runs, not {n}; pass --runs {stored} or another --store")
        size = os.path.getsize(db) + (os.path.getsize(f"{db}-wal") if os.path.exists(f"{db}-wal") else 0)

        df_s, df_process_s, df_rss = median_fresh(LOAD.format(store=str(store), n=n), args.repeat)
        base_s, _base_process_s, _ = median_fresh(BASELINE.format(db=str(db), n=n), args.repeat)
        count_s, count_process_s, _ = median_fresh(COUNT.format(store=str(store), n=n), args.repeat)
        help_s = command_s(["--help"], args.repeat)
        log_s = command_s(["--store", str(store), "log", "-n", "20"], args.repeat)
    finally:
        if temporary:
            shutil.rmtree(store.parent)

    figures = {
        "runs": n,
        "build_s": built,
        "df_s": df_s,
        "df_process_s": df_process_s,
        "df_peak_rss_mb": df_rss / 1024,
        "baseline_read_sql_s": base_s,
        "df_over_baseline": df_s / base_s,
        "count_overview_runs_s": count_s,
        "count_process_s": count_process_s,
        "db_bytes_per_run": size / n,
        "cli_help_s": help_s,
        "cli_log_20_s": log_s,
    }
    if built is not None:
        print(f"built {n:,} runs in {built:.1f} s ({n / built:,.0f} runs/s)")
    print(f"fresh process, median of {args.repeat}:")
    print(
        f"  rec.open(store).df('exp')             {df_s:6.2f} s  (whole process {df_process_s:.2f} s, "
        f"peak RSS {df_rss / 1024:.0f} MB)   target ≤ 2 s"
    )
    print(f"  baseline: pandas.read_sql of a row per run {base_s:6.2f} s  → df takes {df_s / base_s:.2f}× the baseline")
    print(f"  SELECT count(*) FROM overview_runs    {count_s:6.2f} s  (whole process {count_process_s:.2f} s)")
    print(f"database file: {size / n:.0f} bytes per run   target ≤ 200")
    print(f"recorder --help                         {help_s:6.2f} s   target ≤ 0.3 s")
    print(f"recorder log -n 20                      {log_s:6.2f} s   target ≤ 0.5 s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
