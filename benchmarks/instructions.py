"""Instructions per recorded run, counted by valgrind: a figure the machine's load does not move.

Wall-clock figures on a shared 2-core machine move by ±30% between runs,
which hides a 5% change. Instructions executed do not depend on the load.
This script runs the same workload (two parameters, two scalar results per
run) under ``valgrind --tool=callgrind`` with N1 and N2 runs, on a git ref
checked out into a temporary worktree and on the working tree, and prints
(I(N2) − I(N1)) / (N2 − N1): the instructions one more run costs, start-up
and imports cancelled out. Background threads (the writer's) are counted.
Mode ``array`` sweeps a function returning a scalar and a 1 KB array (kept
inline in the database), the small-array path.

Needs valgrind (Debian: ``apt-get install valgrind``).

Usage::

    python benchmarks/instructions.py --ref main~5 [--modes sweep run array] [--runs 1000 6000]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKLOAD = """
import sys, tempfile
from pathlib import Path
import recorder as rec

def two_scalars(a: float, b: int) -> dict:
    return {"y": a * b, "z": a + b}

def small_array(a: float, b: int) -> dict:
    import numpy as np
    return {"y": a * b, "v": np.full(128, a + b)}  # 1 KB of float64: kept inline, not as a file

mode, n = sys.argv[1], int(sys.argv[2])
folder = Path(tempfile.mkdtemp(prefix="bench-instructions-"))
params = rec.grid(a=[i * 0.001 for i in range(n // 100)], b=list(range(100)))
with rec.Recorder("bench", store=folder / "store", git=False) as r:
    if mode == "sweep":
        r.sweep(two_scalars, params, return_df=False, progress=False)
    elif mode == "array":
        r.sweep(small_array, params, return_df=False, progress=False)
    else:
        for pset in params:
            with r.run(pset) as run:
                run.log(**two_scalars(**pset))
    r.flush()
"""

_COLLECTED = re.compile(r"Collected : (\d+)")


def count(tree: Path, script: Path, mode: str, n: int) -> int:
    """Instructions executed by the workload with ``n`` runs on ``tree``'s recorder."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, str(script), mode, str(n)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    match = _COLLECTED.search(done.stderr)
    if match is None:
        raise SystemExit(f"valgrind printed no instruction count:\n{done.stderr[-2000:]}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="HEAD~1", help="git ref of the code to compare against")
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["sweep", "run"],
        choices=["sweep", "run", "array"],
        help="sweep: Recorder.sweep; run: a `with r.run(...)` loop; array: a sweep whose runs return a 1 KB array",
    )
    parser.add_argument("--runs", nargs=2, type=int, default=[1000, 6000], metavar=("N1", "N2"))
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    n1, n2 = sorted(args.runs)
    if n1 % 100 or n2 % 100 or n1 == n2:
        parser.error("--runs takes two different multiples of 100")
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        script = Path(tmp) / "workload.py"
        script.write_text(WORKLOAD)
        old = Path(tmp) / "ref"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old), args.ref], check=True)
        try:
            print(
                f"instructions per run ({n2} − {n1} runs), two parameters and two scalar results (array: a 1 KB array)"
            )
            print(f"{'mode':<8} {args.ref:>14} {'working tree':>14} {'tree/ref':>9}")
            for mode in args.modes:
                per_run = []
                for tree in (old, ROOT):
                    per_run.append((count(tree, script, mode, n2) - count(tree, script, mode, n1)) / (n2 - n1))
                print(f"{mode:<8} {per_run[0]:14,.0f} {per_run[1]:14,.0f} {per_run[1] / per_run[0]:9.3f}")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False)


if __name__ == "__main__":
    main()
