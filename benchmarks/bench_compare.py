"""Benchmark of ``recorder compare`` (issue 16): an experiment of 1,000 runs, as a whole process and in-process.

1. Build a store of N runs (2 parameters, 2 scalar results) with a sweep,
   or reuse one given with ``--store``.
2. As whole processes (median of ``--repeat``), what a user waits for:
   ``recorder compare --experiment exp`` (the table) and with ``--json``,
   next to two baselines run the same way: ``recorder --help`` (start-up
   alone) and ``recorder log exp`` (every run of the experiment printed).
3. In-process: ``db.compare(experiment="exp")`` (the DataFrame), after a
   first call has imported pandas.

Usage::

    python benchmarks/bench_compare.py [--runs 1000] [--repeat 5] [--store DIR]
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


def two_scalars(a: float, b: int) -> dict[str, float]:
    return {"y": a * b, "z": a + b}


def build(store: Path, n: int) -> None:
    params = rec.grid(a=[i * 0.001 for i in range(max(1, n // 10))], b=list(range(10)))
    with rec.Recorder("exp", store=store, git=False) as r:
        r.sweep(two_scalars, params, return_df=False, progress=False)


def whole_process(args: list[str], repeat: int) -> float:
    """The median wall time of ``recorder ARGS`` as a fresh process (output read, not shown)."""
    exe = Path(sys.executable).with_name("recorder")
    command = [str(exe)] if exe.exists() else [sys.executable, "-c", "from recorder.cli.commands import main; main()"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        done = subprocess.run([*command, *args], capture_output=True, env=env, timeout=600)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise SystemExit(f"recorder {' '.join(args)} failed: {done.stderr.decode(errors='replace')}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--store", type=Path)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        store = options.store or Path(scratch) / "store"
        if not (store / "recorder.sqlite").exists():
            build(store, options.runs)
        with rec.open(store) as db:
            n = len(db.compare(experiment="exp"))  # imports pandas once
            times = []
            for _ in range(options.repeat):
                t0 = time.perf_counter()
                db.compare(experiment="exp")
                times.append(time.perf_counter() - t0)
        in_process = statistics.median(times)
        s = ["--store", str(store)]
        figures = {
            "recorder --help": whole_process(["--help"], options.repeat),
            "recorder log exp": whole_process([*s, "log", "exp"], options.repeat),
            "recorder compare --experiment exp": whole_process([*s, "compare", "--experiment", "exp"], options.repeat),
            "recorder compare --experiment exp --json": whole_process(
                [*s, "compare", "--experiment", "exp", "--json"], options.repeat
            ),
        }
    print(f"{n} runs, median of {options.repeat}, whole processes:")
    base = figures["recorder --help"]
    for name, seconds in figures.items():
        print(f"  {name:<42} {seconds:6.3f} s  ({seconds / base:4.1f} x recorder --help)")
    print(f"in-process: db.compare(experiment='exp') {in_process:6.3f} s")


if __name__ == "__main__":
    main()
