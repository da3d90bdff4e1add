"""A bifurcation scan of the logistic map, x → r x (1 − x), over 100,000 values of r, with JAX.

The experiment function is pure JAX: it iterates the map from x0, and
returns the Lyapunov exponent (a scalar: negative on a periodic orbit,
positive in chaos) and the last iterates (an array per run: the
attractor). ``vsweep`` runs it as ``jax.jit(jax.vmap(...))`` on chunks of
psets and records one run per value of r; running the script again
recomputes nothing (``skip="done"``), and with ``compile_cache=True`` a
second process does not even compile again.

Run it with ``python examples/jax_vsweep.py [STORE]``; the store defaults
to ``./.recorder`` (or ``$RECORDER_STORE``). Needs jax: ``pip install 'recorder[jax]'``.
"""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import recorder as rec

STORE = sys.argv[1] if len(sys.argv) > 1 else None
KEEP = 32  # iterates kept per run


@rec.experiment("logistic", store=STORE, git=False)
def logistic(r: float, x0: float = 0.5, transient: int = 1000, steps: int = 1000) -> dict:
    """Iterate past the transient, then average log|f'(x)| over ``steps`` iterates."""

    def step(x: jax.Array, _: None) -> tuple[jax.Array, jax.Array]:
        x = r * x * (1 - x)
        return x, x

    x = jax.lax.fori_loop(0, transient, lambda i, x: step(x, None)[0], jnp.float32(x0))
    x, orbit = jax.lax.scan(step, x, None, length=steps)
    lyapunov = jnp.mean(jnp.log(jnp.abs(r * (1 - 2 * orbit))))
    return {"lyapunov": lyapunov, "attractor": orbit[-KEEP:]}


def main() -> None:
    values = np.linspace(2.8, 4.0, 100_000)
    params = rec.plist("r", [float(v) for v in values])
    start = time.perf_counter()
    df = logistic.vsweep(params, static=["transient", "steps"], compile_cache=True)
    print(f"{len(df)} runs in {time.perf_counter() - start:.1f} s")

    db = rec.open(STORE)
    chunk = db.sql(  # each session that compiled notes its chunk size (a second run skips everything)
        "SELECT json_extract(jax, '$.vsweep[0].chunk_size') AS size FROM sessions "
        "WHERE size IS NOT NULL ORDER BY time_start LIMIT 1"
    )
    print("chunk size chosen:", chunk["size"][0])

    chaotic = db.sql("SELECT count(*) AS n, min(r) AS onset FROM logistic WHERE lyapunov > 0.01")
    print(f"chaotic for {chaotic['n'][0]} values of r, the first at r = {chaotic['onset'][0]:.4f}")
    # The attractor of one run, read back from the store: a period-4 orbit near r = 3.5.
    run = df.iloc[int(np.argmin(np.abs(df["r"] - 3.5)))]
    orbit = db.array(run["_run_id"], "attractor")
    print(f"r = {run['r']:.4f}: {len(np.unique(orbit.round(4)))} distinct values on the attractor")


if __name__ == "__main__":
    main()
