"""A parameter grid run as separate jobs, each into its own store, then merged: how to use a cluster.

SQLite must not be written by many processes over a network file system,
so each job of a SLURM array (see ``slurm_array.sh``) records its slice of
the grid into a store of its own, ``shards/<task>``; a last step merges the
shards into one store. Here the jobs are local processes::

    python examples/cluster_shards.py [STORE]                 # 4 jobs, then the merge
    python examples/cluster_shards.py STORE --task 2 --tasks 4   # one job (what slurm_array.sh runs)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

import recorder as rec

GRID = rec.grid(diffusivity=[0.05, 0.1, 0.2, 0.4], length=[1.0, 2.0, 4.0], cells=[50, 100])


def diffuse(diffusivity: float, length: float, cells: int, steps: int = 2_000) -> dict:
    """Heat spreading from a hot spot in a rod (explicit finite differences): the final profile."""
    dx = length / cells
    dt = 0.1 * dx * dx  # stable for every diffusivity of the grid (explicit steps need D·dt/dx² ≤ 1/2)
    u = np.zeros(cells)
    u[cells // 2] = 1.0 / dx
    for _ in range(steps):
        u[1:-1] += diffusivity * dt / dx**2 * (u[2:] - 2 * u[1:-1] + u[:-2])
    return {
        "peak": float(u.max()),
        "spread": float(np.sqrt((u * (np.arange(cells) * dx - length / 2) ** 2).sum() * dx)),
        "profile": u,
    }


def run_task(store: Path, task: int, tasks: int) -> None:
    """One job: every ``tasks``-th pset of the grid, starting at ``task``, into ``shards/<task>``."""
    # git=False keeps this demo from committing in your repository; in a real project leave
    # the default, and every job records the same commit, which the merge then checks.
    with rec.Recorder("diffusion", store=shard_folder(store) / str(task), git=False, config={"steps": 2_000}) as r:
        r.sweep(diffuse, list(GRID)[task::tasks], progress=False, return_df=False)


def shard_folder(store: Path) -> Path:
    return store.parent / f"{store.name}.shards"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", nargs="?", default=".recorder", type=Path)
    parser.add_argument("--task", type=int, help="run one job (0-based), as an array task does")
    parser.add_argument("--tasks", type=int, default=4, help="how many jobs share the grid")
    args = parser.parse_args()
    if args.task is not None:
        run_task(args.store, args.task, args.tasks)
        return
    jobs = [
        subprocess.Popen([sys.executable, __file__, str(args.store), "--task", str(i), "--tasks", str(args.tasks)])
        for i in range(args.tasks)
    ]
    if any(job.wait() != 0 for job in jobs):
        raise SystemExit("a job failed; its shard is incomplete (rerun it: done runs are skipped)")
    shards = sorted(shard_folder(args.store).iterdir())
    # The shards ran without git, so their code versions cannot be compared: say so explicitly.
    report = rec.merge(shards, args.store, allow_code_mismatch=True)
    print(f"merged {len(shards)} shards into {args.store}: {report.runs} runs added, {report.skipped} there already")
    df = rec.load("diffusion", store=args.store)
    print(df.groupby("diffusivity")["spread"].mean().round(4).to_string())


if __name__ == "__main__":
    main()
