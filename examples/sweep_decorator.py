"""A resonance scan with @experiment: a damped, driven oscillator over a grid of parameters.

Each run integrates the oscillator and records its steady amplitude and
phase (scalars, in the database) and the last cycles of its trajectory (an
array, in the object store). The sweep runs in a process pool; running the
script again recomputes nothing (``skip="done"``).

Run it with ``python examples/sweep_decorator.py [STORE]``; the store
defaults to ``./.recorder`` (or ``$RECORDER_STORE``).
"""

from __future__ import annotations

import sys

import numpy as np

import recorder as rec

STORE = sys.argv[1] if len(sys.argv) > 1 else None


@rec.experiment("oscillator", store=STORE, git=False, config={"method": "semi-implicit Euler"})
def oscillator(drive: float, damping: float, dt: float = 0.002, cycles: int = 60) -> dict:
    """x'' + damping x' + x = cos(drive t), from rest; returns the steady response."""
    steps = int(cycles * 2 * np.pi / drive / dt)
    t = np.arange(steps) * dt
    force = np.cos(drive * t)
    x = np.empty(steps)
    position, velocity = 0.0, 0.0
    for i in range(steps):
        velocity += dt * (force[i] - damping * velocity - position)
        position += dt * velocity
        x[i] = position
    tail = x[-steps // 6 :]  # the last cycles: transients have died out
    amplitude = float((tail.max() - tail.min()) / 2)
    lag = float(np.angle(np.sum(tail * np.exp(-1j * drive * t[-len(tail) :]))))
    return {"amplitude": amplitude, "phase": lag, "tail": tail.astype(np.float32)}


def main() -> None:
    params = rec.pgrid(rec.plist("drive", np.linspace(0.5, 1.5, 11)), rec.plist("damping", [0.1, 0.3]))
    plan = oscillator.sweep(params, simulate=True)  # what would run; writes nothing
    print(f"{(plan['_status'] == 'would run').sum()} of {len(plan)} psets to run")

    df = oscillator.sweep(params, workers=2)  # a process pool; this process alone writes the database
    peak = df.loc[df.groupby("damping")["amplitude"].idxmax(), ["damping", "drive", "amplitude"]]
    for row in peak.itertuples():
        print(f"damping {row.damping}: resonance near drive = {row.drive:.2f}, amplitude {row.amplitude:.2f}")

    again = oscillator.sweep(params)  # everything is done already: nothing recomputed
    print(f"second sweep: {again['_session'].nunique()} session(s) in its table, nothing recomputed")


if __name__ == "__main__":
    main()
