"""Compare one benchmark on two versions of recorder, measured in the same run.

The machine is shared and noisy, so a figure from yesterday says little
about today's change. This script checks out a git ref (default ``HEAD~1``)
into a temporary worktree and runs the given benchmark script alternately
on that code and on the working tree, each in a fresh process with its
``--json`` output, and prints the median of every figure for both and
their ratio (working tree ÷ ref).

Usage::

    python benchmarks/compare.py --ref main~3 --rounds 3 bench_sweep.py --runs 50000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _flat(figures: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numbers of a (nested) JSON object, keyed by their dotted path."""
    flat: dict[str, float] = {}
    for key, value in figures.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def _measure(tree: Path, script: str, args: list[str], out: Path) -> dict[str, float]:
    """Run ``script`` from ``tree``'s benchmarks folder on ``tree``'s recorder."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run(
        [sys.executable, str(tree / "benchmarks" / script), *args, "--json", str(out)],
        cwd=tree,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return _flat(json.loads(out.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="HEAD~1", help="git ref of the code to compare against")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median shown)")
    parser.add_argument("script", help="a script of benchmarks/ that takes --json FILE")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    args = parser.parse_args()
    if not (HERE / args.script).is_file():
        parser.error(f"no benchmark {args.script!r} in {HERE}")
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        old = Path(tmp) / "ref"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old), args.ref], check=True)
        try:
            runs: dict[str, list[dict[str, float]]] = {"ref": [], "tree": []}
            for i in range(args.rounds):
                for label, tree in (("ref", old), ("tree", ROOT)):  # alternate: drift hits both alike
                    runs[label].append(_measure(tree, args.script, args.args, Path(tmp) / f"{label}{i}.json"))
                    print(f"round {i + 1}/{args.rounds}: {label} done", file=sys.stderr)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False)
    names = [name for name in runs["tree"][0] if all(name in r for r in runs["ref"] + runs["tree"])]
    print(f"{args.script} {' '.join(args.args)}: median of {args.rounds} alternating rounds")
    print(f"{'figure':<48} {args.ref:>14} {'working tree':>14} {'tree/ref':>9}")
    for name in names:
        a = statistics.median(r[name] for r in runs["ref"])
        b = statistics.median(r[name] for r in runs["tree"])
        ratio = f"{b / a:9.3f}" if a else f"{'-':>9}"
        print(f"{name:<48} {a:14.4g} {b:14.4g} {ratio}")


if __name__ == "__main__":
    main()
