"""Benchmark of ``recorder report`` (issue 17): an experiment of 10^5 runs must give a report in under 10 s, under 20 MB.

1. Build a store of N runs (a grid of 2 parameters, 2 scalar results, 1 %
   of the runs failing) with ``Recorder.sweep(..., return_df=False)``, or
   reuse one given with ``--store``.
2. Time ``recorder report exp -o FILE`` as a whole process (what a user
   waits for: start-up, reading the runs, the figures, writing the file),
   the median of ``--repeat``, and print the file's size and what the
   report summarised.

Usage::

    python benchmarks/bench_report.py [--runs 100000] [--repeat 3] [--store DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import recorder as rec

ROOT = Path(__file__).resolve().parent.parent


def model(a: float, b: int) -> dict[str, float]:
    if round(a * 1000) % 100 == 7 and b == 3:  # 1 % of the runs fail, so the report has failures to show
        raise ValueError(f"diverged at a={a}")
    return {"energy": a * b + 0.5 * a * a, "loss": (a - 0.5) ** 2 + 0.01 * b}


def build(store: Path, n: int) -> None:
    params = rec.grid(a=[round(i * 0.001, 6) for i in range(max(1, n // 10))], b=list(range(10)))
    with rec.Recorder("exp", store=store, git=False) as r:
        r.sweep(model, params, return_df=False, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store", type=Path)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        store = options.store or Path(scratch) / "store"
        if not (store / "recorder.sqlite").exists():
            t0 = time.perf_counter()
            build(store, options.runs)
            print(f"recorded {options.runs:,} runs in {time.perf_counter() - t0:.1f} s")
        out = Path(scratch) / "report.html"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        command = [sys.executable, "-c", "from recorder.cli.commands import main; main()"]
        times = []
        output = ""
        for _ in range(options.repeat):
            t0 = time.perf_counter()
            done = subprocess.run(
                [*command, "--store", str(store), "report", "exp", "-o", str(out)],
                capture_output=True,
                text=True,
                env=env,
                timeout=600,
            )
            times.append(time.perf_counter() - t0)
            if done.returncode != 0:
                raise SystemExit(f"recorder report failed: {done.stderr}")
            output = done.stdout
        size = out.stat().st_size
        print(output.rstrip())
        print(
            f"recorder report exp ({options.runs:,} runs): {statistics.median(times):.2f} s (median of {options.repeat})"
        )
        print(f"file size: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
