"""Cost of a series: ``rec.current_run().append(loss=x)`` per step, and storing it when the run ends.

One run of a sweep appends ``--steps`` values (default 10^6); the figure is
the time of the appends alone (measured inside the function), and the
run's whole duration (appends, then the series made an array and stored).
The promise (README): 10^6 appends in a run cost under 0.5 s. Usage::

    python benchmarks/bench_series.py [--steps 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import recorder as rec


def steps(n: int) -> dict[str, float]:
    run = rec.current_run()
    t0 = time.perf_counter()
    for i in range(n):
        run.append(loss=i * 0.5)
    return {"append_s": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    appends, totals = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as folder, rec.Recorder("series", store=folder, git=False) as r:
            df = r.sweep(steps, rec.plist("n", [args.steps]), progress=False)
            appends.append(float(df["append_s"][0]))
            totals.append(float(df["_duration_s"][0]))
    print(f"{args.steps:,} appends in one run (median of {args.repeat}):")
    print(f"  appends          {statistics.median(appends):.3f} s")
    print(f"  whole run        {statistics.median(totals):.3f} s")


if __name__ == "__main__":
    main()
