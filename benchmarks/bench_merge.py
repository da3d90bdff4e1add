"""Merge benchmark: 10 shards of 10,000 runs each into one store (issue 6's figure).

Each shard is a store written by its own sweep (2 parameters, 2 scalar
results), as the jobs of a cluster array would write them. Timed:
``rec.merge(shards, dest)`` into a new store, then merging the same shards
again (nothing to add), next to the floor in the same run: raw ``sqlite3``
copying the same runs and psets tables with ``INSERT … SELECT`` from the
attached shards, with no checks and no key mapping.

Usage::

    python benchmarks/bench_merge.py [--shards 10] [--runs 10000] [--repeat 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import recorder as rec


def two_scalars(a: float, b: int, shard: int) -> dict:
    return {"y": a * b, "z": a + b + shard}


def build(folder: Path, shards: int, runs: int) -> list[Path]:
    paths = []
    for shard in range(shards):
        path = folder / "shards" / str(shard)
        params = rec.grid(a=[i * 0.001 for i in range(runs // 100)], b=list(range(100)), shard=[shard])
        with rec.Recorder("exp", store=path, git=False, config={"dt": 0.01}) as r:
            r.sweep(two_scalars, params, return_df=False, progress=False)
        paths.append(path)
    return paths


RAW_SCHEMA = """
CREATE TABLE psets (pk INTEGER PRIMARY KEY, hash BLOB UNIQUE, params TEXT);
CREATE TABLE runs (pk INTEGER PRIMARY KEY, id BLOB UNIQUE, experiment INTEGER, session INTEGER, pset INTEGER,
                   status TEXT, time_start_ms INTEGER, duration_us INTEGER, seed INTEGER, scalars TEXT);
"""


def raw_copy(shards: list[Path], dest: Path) -> float:
    """The floor: copy the rows of runs and psets with INSERT … SELECT, no checks, keys not remapped."""
    dest.mkdir(parents=True)
    con = sqlite3.connect(dest / "raw.sqlite", isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.executescript(RAW_SCHEMA)
    t0 = time.perf_counter()
    for path in shards:
        con.execute("ATTACH DATABASE ? AS s", (str(path / "recorder.sqlite"),))
        con.execute("BEGIN")
        con.execute("INSERT OR IGNORE INTO psets (hash, params) SELECT hash, params FROM s.psets")
        con.execute(
            "INSERT INTO runs (id, experiment, session, pset, status, time_start_ms, duration_us, seed, scalars) "
            "SELECT id, experiment, session, pset, status, time_start_ms, duration_us, seed, scalars FROM s.runs"
        )
        con.execute("COMMIT")
        con.execute("DETACH DATABASE s")
    elapsed = time.perf_counter() - t0
    con.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=10)
    parser.add_argument("--runs", type=int, default=10_000, help="runs per shard (a multiple of 100)")
    parser.add_argument("--repeat", type=int, default=3, help="merges timed (the median is shown)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-merge-"))
    try:
        t0 = time.perf_counter()
        shards = build(folder, args.shards, args.runs)
        built = time.perf_counter() - t0
        total = args.shards * args.runs

        times = []
        for attempt in range(args.repeat):
            dest = folder / f"merged{attempt}"
            t0 = time.perf_counter()
            report = rec.merge(shards, dest, allow_code_mismatch=True, progress=False)
            times.append(time.perf_counter() - t0)
            assert report.runs == total, report
        merged = statistics.median(times)

        t0 = time.perf_counter()
        again = rec.merge(shards, dest, allow_code_mismatch=True, progress=False)
        remerged = time.perf_counter() - t0
        assert again.runs == 0 and again.skipped == total, again

        raw = statistics.median(raw_copy(shards, folder / f"raw{i}") for i in range(args.repeat))
        with rec.open(dest) as db:
            count = db.sql("SELECT count(*) AS n FROM exp")["n"][0]
        assert count == total, count
    finally:
        shutil.rmtree(folder)

    figures = {
        "shards": args.shards,
        "runs": total,
        "build_s": built,
        "merge_s": merged,
        "merge_runs_per_s": total / merged,
        "merge_again_s": remerged,
        "raw_insert_select_s": raw,
        "merge_over_raw": merged / raw,
    }
    print(f"{args.shards} shards of {args.runs:,} runs (built in {built:.1f} s):")
    print(
        f"  rec.merge into a new store     {merged:6.2f} s  (median of {args.repeat})  = {total / merged:,.0f} runs/s   target ≥ 100,000"
    )
    print(f"  the same merge again (no-op)   {remerged:6.2f} s")
    print(f"  raw sqlite3 INSERT … SELECT    {raw:6.2f} s  → merge takes {merged / raw:.1f}× the raw copy")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
