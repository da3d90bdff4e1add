"""Record a small parameter sweep, then print what was recorded.

Run it with ``python examples/quickstart.py [STORE]``; the store defaults to
``./.recorder`` (or ``$RECORDER_STORE``).
"""

from __future__ import annotations

import itertools
import sqlite3
import sys

import numpy as np

import recorder as rec


def simulate(a: float, b: int, seed: int) -> np.ndarray:
    """A damped random walk: stands in for a real simulation."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(scale=a, size=(20_000, 3))
    return np.cumsum(steps, axis=0) * np.exp(-np.arange(20_000) / (1000 * b))[:, None]


def main(store: str | None = None) -> None:
    with rec.Recorder("quickstart", store=store, git=False, message="first sweep") as r:
        r.config(steps=20_000, method="cumsum")
        for a, b in itertools.product([0.1, 0.2], [8, 9]):
            with r.run(a=a, b=b) as run:
                traj = simulate(a, b, seed=run.seed)  # 480 KB: stored in objects/
                run.log(energy=float((traj[-1] ** 2).sum()), traj=traj, comment="final energy")
        print(f"recorded session {r.id} into {r.store}")

    # Read it back: a DataFrame, SQL over the experiment's view, arrays memory-mapped.
    with rec.open(r.store) as db:
        df = db.df("quickstart").tail(4)
        print(df[["a", "b", "energy", "_run_id", "_duration_s"]].to_string(index=False))
        best = db.sql("SELECT run_id, a, b, energy FROM quickstart WHERE b = ? ORDER BY energy DESC", (8,))
        traj = db.array(best["run_id"][0][:16], "traj")  # any unique prefix of a run id
        print(f"largest energy at b=8: a={best['a'][0]}, trajectory of shape {traj.shape}")

    # Everything is plain SQLite: any client can read it, no recorder needed.
    with sqlite3.connect(r.store / "recorder.sqlite") as con:
        runs, done = con.execute("SELECT runs, done FROM overview_info WHERE experiment = 'quickstart'").fetchone()
        objects = con.execute("SELECT count(*), sum(size) FROM objects").fetchone()
        print(f"{done} of {runs} runs done; {objects[0]} arrays in objects/, {objects[1] / 1e6:.1f} MB")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
