"""A parameter sweep with the @experiment decorator: grid, process pool, resume, dry run.

Run it with ``python examples/sweep.py [STORE]``; the store defaults to
``./.recorder`` (or ``$RECORDER_STORE``). Run it twice: the second time
every pset is already done and nothing is recomputed.
"""

from __future__ import annotations

import sys

import numpy as np

import recorder as rec

STORE = sys.argv[1] if len(sys.argv) > 1 else None


@rec.experiment("logistic", store=STORE, git=False)
def logistic(r: float, x0: float = 0.2, steps: int = 2000) -> dict:
    """Iterate the logistic map; return where it settles."""
    x = np.empty(steps)
    x[0] = x0
    for i in range(1, steps):
        x[i] = r * x[i - 1] * (1 - x[i - 1])
    tail = x[-200:]
    return {"mean": float(tail.mean()), "spread": float(tail.max() - tail.min()), "orbit": tail}


def main() -> None:
    params = rec.pgrid(rec.plist("r", np.linspace(2.8, 4.0, 24)), rec.plist("x0", [0.2, 0.5]))
    plan = logistic.sweep(params, simulate=True)  # what would run; writes nothing
    print(f"{(plan['_status'] == 'would run').sum()} of {len(plan)} psets to run")

    df = logistic.sweep(params, workers=2)  # a process pool; the parent writes the database
    unsettled = df[df["spread"] > 0.1]
    print(f"{len(df)} runs; no fixed point (spread > 0.1) from r = {unsettled['r'].min():.3f} on")

    again = logistic.sweep(params)  # everything done already: skipped, rows read back
    print(f"rerun: {again['_session'].nunique()} session(s) in the table, nothing recomputed")


if __name__ == "__main__":
    main()
