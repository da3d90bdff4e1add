"""Array benchmark: storing big arrays against ``np.save``, and the small-array path.

Measured in one invocation, each arm in a fresh process, the arms
alternated across rounds (so that the machine's drift hits them alike),
medians shown:

1. Big arrays: ``--runs`` runs (200) each storing one distinct array of
   ``--mb`` MB (8, float64), made before the clock starts and the same in
   every arm:

   - ``save``: ``np.save`` of each array to its own file (no hash, no sync:
     the bytes may still be in memory when the clock stops);
   - ``save_fsync``: ``np.save`` and ``fsync`` of each file (the durable baseline);
   - ``sweep``: a ``Recorder.sweep`` whose function returns the array, until
     every run is committed (its objects on disk before that);
   - ``record``: the same with ``with r.run(...) as run: run.log(...)``.

   Throughput is the arrays' bytes over the wall time. Targets: ``sweep``
   at ≥ 0.9× ``save_fsync`` and ≥ 0.6× ``save``.
2. Small arrays: a sweep of ``--small`` runs (20,000) each returning a
   1 KB array (stored inline, in the database): µs per run.

The whole page cache is synced (``os.sync``, outside the clock) before and
after every arm, so that no arm pays for another's writes. With ``--ref
REF`` the ``sweep`` and ``small`` arms also run on recorder as of git ref
REF (exported with ``git archive``), alternated with the working tree's.

Usage::

    python benchmarks/bench_arrays.py [--runs 200] [--mb 8] [--rounds 3] [--small 20000]
                                      [--ref main] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIG_ARMS = ("save", "save_fsync", "sweep", "record")


def arrays(runs: int, mb: float) -> list:  # type: ignore[type-arg]
    """``runs`` distinct float64 arrays of ``mb`` MB each, the same in every process."""
    import numpy as np

    base = np.random.default_rng(0).random(int(mb * (1 << 20)) // 8)
    return [base + i for i in range(runs)]


def arm_save(data: list, folder: Path, sync: bool) -> float:  # type: ignore[type-arg]
    import numpy as np

    t0 = time.perf_counter()
    for i, array in enumerate(data):
        with open(folder / f"{i}.npy", "wb") as file:
            np.save(file, array)
            if sync:
                file.flush()
                os.fsync(file.fileno())
    return time.perf_counter() - t0


def arm_sweep(data: list, folder: Path) -> float:  # type: ignore[type-arg]
    import recorder as rec

    def returns_an_array(i: int) -> dict:
        return {"a": data[i]}

    with rec.Recorder("arrays", store=folder / "store", git=False) as r:
        t0 = time.perf_counter()
        r.sweep(returns_an_array, rec.plist("i", list(range(len(data)))), return_df=False, progress=False)
        r.flush()  # every run is committed (its array on disk before that) when the clock stops
        elapsed = time.perf_counter() - t0
    return elapsed


def arm_record(data: list, folder: Path) -> float:  # type: ignore[type-arg]
    import recorder as rec

    with rec.Recorder("arrays", store=folder / "store", git=False) as r:
        t0 = time.perf_counter()
        for i, array in enumerate(data):
            with r.run(i=i) as run:
                run.log(a=array)
        r.flush()
        elapsed = time.perf_counter() - t0
    return elapsed


def arm_small(runs: int, folder: Path) -> float:
    import numpy as np

    import recorder as rec

    small = [np.full(128, float(i)) for i in range(runs)]  # 1 KB each: inline

    def returns_a_small_array(i: int) -> dict:
        return {"a": small[i]}

    with rec.Recorder("small", store=folder / "store", git=False) as r:
        t0 = time.perf_counter()
        r.sweep(returns_a_small_array, rec.plist("i", list(range(runs))), return_df=False, progress=False)
        r.flush()
        elapsed = time.perf_counter() - t0
    return elapsed


def run_arm(name: str, args: argparse.Namespace, folder: Path) -> float:
    """Measure one arm in this process; return its wall time in seconds."""
    if name == "small":
        return arm_small(args.small, folder)
    data = arrays(args.runs, args.mb)
    if name in ("save", "save_fsync"):
        return arm_save(data, folder, sync=name == "save_fsync")
    return arm_sweep(data, folder) if name == "sweep" else arm_record(data, folder)


def measure(name: str, code: Path, args: argparse.Namespace) -> float:
    """Run one arm in a fresh process on recorder from ``code``; return its wall time."""
    folder = Path(tempfile.mkdtemp(prefix="bench-arrays-"))
    try:
        os.sync()
        done = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--arm",
                name,
                "--folder",
                str(folder),
                "--runs",
                str(args.runs),
                "--mb",
                str(args.mb),
                "--small",
                str(args.small),
            ],
            env={**os.environ, "PYTHONPATH": str(code)},
            cwd=folder,
            check=True,
            capture_output=True,
            text=True,
        )
        return float(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.sync()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="big arrays per arm")
    parser.add_argument("--mb", type=float, default=8.0, help="size of each big array, MB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small", type=int, default=20_000, help="runs of the small-array arm (0: none)")
    parser.add_argument("--ref", help="also measure sweep and small on recorder as of this git ref")
    parser.add_argument("--only", help="comma-separated arms to run (default: all)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--arm", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:  # a child: one arm, its seconds on the last line
        print(run_arm(args.arm, args, args.folder))
        return

    arms: list[tuple[str, str, Path]] = [(a, a, ROOT) for a in BIG_ARMS]
    if args.small:
        arms.append(("small", "small", ROOT))
    with tempfile.TemporaryDirectory(prefix="bench-arrays-ref-") as tmp:
        if args.ref:
            old = Path(tmp)
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.ref], check=True, capture_output=True)
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
            arms.insert(3, ("sweep@ref", "sweep", old))
            if args.small:
                arms.append(("small@ref", "small", old))
        if args.only:
            wanted = set(args.only.split(","))
            arms = [a for a in arms if a[0] in wanted]
        times: dict[str, list[float]] = {label: [] for label, _, _ in arms}
        for i in range(args.rounds):
            order = arms if i % 2 == 0 else arms[::-1]  # alternate: no arm always follows the same one
            for label, name, code in order:
                times[label].append(measure(name, code, args))
                print(f"round {i + 1}/{args.rounds}: {label} {times[label][-1]:.3f} s", file=sys.stderr)

    total_mb = args.runs * args.mb * (1 << 20) / 1e6
    figures: dict[str, object] = {"runs": args.runs, "array_mb": args.mb, "rounds": args.rounds}
    print(f"{args.runs} runs, one distinct {args.mb:g} MB float64 array each; median of {args.rounds} rounds:")
    throughput = {}
    for label in times:
        if label.startswith("small"):
            continue
        seconds = statistics.median(times[label])
        throughput[label] = total_mb / seconds
        figures[f"{label}_mb_per_s"] = throughput[label]
        print(
            f"  {label:<12} {throughput[label]:8.0f} MB/s   (rounds: {', '.join(f'{t:.2f}' for t in times[label])} s)"
        )
    if "sweep" in throughput and "save_fsync" in throughput and "save" in throughput:
        to_fsync = throughput["sweep"] / throughput["save_fsync"]
        to_save = throughput["sweep"] / throughput["save"]
        figures.update(sweep_over_save_fsync=to_fsync, sweep_over_save=to_save)
        print(f"  sweep / (np.save + fsync) = {to_fsync:.2f}   target ≥ 0.9")
        print(f"  sweep / np.save           = {to_save:.2f}   target ≥ 0.6")
        if "record" in throughput:
            figures["record_over_save_fsync"] = throughput["record"] / throughput["save_fsync"]
            print(f"  record / (np.save + fsync) = {figures['record_over_save_fsync']:.2f}")
        if "sweep@ref" in throughput:
            figures["sweep_over_ref"] = throughput["sweep"] / throughput["sweep@ref"]
            print(f"  sweep / sweep@{args.ref} = {figures['sweep_over_ref']:.2f}")
    for label in ("small", "small@ref"):
        if label in times:
            us = statistics.median(times[label]) / args.small * 1e6
            figures[f"{label}_us_per_run"] = us
            print(f"  {args.small} runs with a 1 KB array, {label}: {us:.1f} µs/run")
    if "small" in times and "small@ref" in times:
        ratio = statistics.median(times["small"]) / statistics.median(times["small@ref"])
        figures["small_over_ref"] = ratio
        print(f"  small / small@{args.ref} = {ratio:.2f}   target ≤ 1 (no slower)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
