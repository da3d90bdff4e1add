"""The same kind of sweep on a Dask cluster: here a local one, on a real cluster a scheduler's address.

Only this process writes the database; Dask workers compute, write large
arrays into the store's ``objects/`` themselves (so the store must be on a
file system they share) and send back small records.

Run it with ``python examples/sweep_dask.py [STORE]``. On a cluster, replace
the ``LocalCluster`` with ``Client("tcp://scheduler:8786")``.
"""

from __future__ import annotations

import sys

import numpy as np
from dask.distributed import Client, LocalCluster

import recorder as rec


def logistic(r: float, x0: float = 0.2, steps: int = 3000) -> dict:
    """Iterate the logistic map; return where it settles and the orbit it settles on."""
    x = np.empty(steps)
    x[0] = x0
    for i in range(1, steps):
        x[i] = r * x[i - 1] * (1 - x[i - 1])
    orbit = x[-256:]
    return {"mean": float(orbit.mean()), "spread": float(orbit.max() - orbit.min()), "orbit": orbit}


def main(store: str | None) -> None:
    params = rec.plist("r", np.round(np.linspace(2.8, 4.0, 40), 4))
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
        workers = len(client.nthreads())
        with rec.Recorder("logistic", store=store, git=False, message="Dask sweep") as r:
            df = r.sweep(logistic, params, executor=client.get_executor())
    unsettled = df[df["spread"] > 1e-6]
    print(f"{len(df)} runs on {workers} Dask workers; period doubling starts near r = {unsettled['r'].min():.3f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
