"""Per-run recording overhead of ``with r.run(pset): run.log(y=…, z=…)``.

Times, in one process and on the same workload of N runs with two
parameters and two scalar results:

- the bare loop (the same Python work, nothing recorded): the baseline;
- raw ``sqlite3``: the same rows (a pset, a run and two results per run)
  inserted into a minimal schema in one transaction, committed once;
- recorder with its default batched commits (``flush_interval=0.2``: every
  run is in SQLite at most 0.2 s after it ends);
- recorder with ``flush_interval=0`` (every run committed as it ends);
- ``Recorder.sweep`` of a function returning the two results (serial).

Overhead is (time − bare loop) / N. Each figure is the median of
``--repeat`` rounds, each in a fresh store. Usage::

    python benchmarks/bench_record.py [--runs 10000] [--repeat 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import recorder as rec


def workload(n: int) -> list[dict[str, float | int]]:
    return [{"a": i * 0.001, "b": i % 7} for i in range(n)]


def compute(pset: dict[str, float | int]) -> tuple[float, float]:
    return pset["a"] * 2.0, pset["a"] + pset["b"]


def bare(psets: list[dict], folder: Path) -> float:
    t0 = time.perf_counter()
    out = []
    for pset in psets:
        y, z = compute(pset)
        out.append((y, z))
    return time.perf_counter() - t0


RAW_SCHEMA = """
CREATE TABLE psets (pk INTEGER PRIMARY KEY, hash TEXT UNIQUE, params TEXT);
CREATE TABLE runs (pk INTEGER PRIMARY KEY, id TEXT UNIQUE, pset INTEGER, status TEXT, time_start TEXT, duration_s REAL);
CREATE TABLE results (run INTEGER, name TEXT, value, PRIMARY KEY (run, name)) WITHOUT ROWID;
"""


def raw_sqlite(psets: list[dict], folder: Path) -> float:
    con = sqlite3.connect(folder / "raw.sqlite", isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.executescript(RAW_SCHEMA)
    t0 = time.perf_counter()
    con.execute("BEGIN")
    for i, pset in enumerate(psets):
        start = time.perf_counter()
        y, z = compute(pset)
        params = json.dumps(pset, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(params.encode()).hexdigest()[:20]
        pset_pk = con.execute("INSERT INTO psets (hash, params) VALUES (?, ?)", (digest, params)).lastrowid
        run_pk = con.execute(
            "INSERT INTO runs (id, pset, status, time_start, duration_s) VALUES (?, ?, 'done', ?, ?)",
            (f"{i:024x}", pset_pk, "2026-11-23T08:13:43.123456Z", time.perf_counter() - start),
        ).lastrowid
        con.executemany("INSERT INTO results VALUES (?, ?, ?)", [(run_pk, "y", y), (run_pk, "z", z)])
    con.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    con.close()
    return elapsed


def recorded(flush_interval: float) -> Callable[[list[dict], Path], float]:
    def bench(psets: list[dict], folder: Path) -> float:
        with rec.Recorder("bench", store=folder / "store", git=False, flush_interval=flush_interval) as r:
            t0 = time.perf_counter()
            for pset in psets:
                with r.run(pset) as run:
                    y, z = compute(pset)
                    run.log(y=y, z=z)
            r.flush()  # every run is in SQLite before the clock stops
            elapsed = time.perf_counter() - t0
        con = sqlite3.connect(folder / "store" / "recorder.sqlite")
        count = con.execute("SELECT count(*) FROM runs WHERE status = 'done'").fetchone()[0]
        assert count == len(psets), f"{count} runs recorded of {len(psets)}"
        return elapsed

    return bench


def swept(psets: list[dict], folder: Path) -> float:
    def experiment(a: float, b: int) -> dict:
        y, z = compute({"a": a, "b": b})
        return {"y": y, "z": z}

    with rec.Recorder("bench", store=folder / "store", git=False) as r:
        t0 = time.perf_counter()
        r.sweep(experiment, psets, progress=False)
        r.flush()
        elapsed = time.perf_counter() - t0
    con = sqlite3.connect(folder / "store" / "recorder.sqlite")
    assert con.execute("SELECT count(*) FROM runs WHERE status = 'done'").fetchone()[0] == len(psets)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    psets = workload(args.runs)
    cases = {
        "bare loop": bare,
        "raw sqlite3, one transaction": raw_sqlite,
        "recorder, batched commits (default)": recorded(rec.recorder.DEFAULT_FLUSH_INTERVAL),
        "recorder, commit every run": recorded(0.0),
        "recorder, Recorder.sweep (serial)": swept,
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeat):
        for name, bench in cases.items():  # interleaved, so drift hits all cases alike
            folder = Path(tempfile.mkdtemp(prefix="bench-record-"))
            try:
                times[name].append(bench(psets, folder))
            finally:
                shutil.rmtree(folder)
    median = {name: statistics.median(t) for name, t in times.items()}
    base = median["bare loop"]
    figures = {}
    print(f"{args.runs} runs, 2 params, 2 scalar results; median of {args.repeat} rounds")
    print(f"{'case':<40} {'µs/run':>9} {'overhead µs/run':>16}")
    for name, seconds in median.items():
        per_run = seconds / args.runs * 1e6
        overhead = (seconds - base) / args.runs * 1e6
        figures[name] = {"us_per_run": round(per_run, 2), "overhead_us_per_run": round(overhead, 2)}
        print(f"{name:<40} {per_run:9.2f} {overhead:16.2f}")
    ratio = (
        figures["recorder, batched commits (default)"]["overhead_us_per_run"]
        / figures["raw sqlite3, one transaction"]["overhead_us_per_run"]
    )
    print(f"recorder (default) overhead / raw sqlite3 overhead: {ratio:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"runs": args.runs, "repeat": args.repeat, "figures": figures}, indent=2))


if __name__ == "__main__":
    main()
