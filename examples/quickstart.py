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

    # Everything is plain SQLite: any client can read it.
    with sqlite3.connect(r.store / "recorder.sqlite") as db:
        rows = db.execute(
            """SELECT lower(hex(r.id)), p.params, r.status, r.duration_us / 1e6, x.value
               FROM runs AS r
               JOIN experiments AS e ON e.pk = r.experiment
               JOIN psets AS p ON p.pk = r.pset
               JOIN results AS x ON x.run = r.pk AND x.name = 'energy'
               WHERE e.name = 'quickstart' ORDER BY r.pk DESC LIMIT 4"""
        ).fetchall()
        for run_id, params, status, duration, energy in reversed(rows):
            print(f"{run_id}  {params:<22} {status}  energy={energy:.4g}  ({duration * 1000:.1f} ms)")
        objects = db.execute("SELECT count(*), sum(size) FROM objects").fetchone()
        print(f"{objects[0]} arrays in objects/, {objects[1] / 1e6:.1f} MB")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
