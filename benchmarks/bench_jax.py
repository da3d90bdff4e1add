"""JAX benchmark: ``vsweep`` against a Python-loop ``sweep`` of the same function (issue 7's figures).

The workload is a small jittable function: ``steps`` iterations of the
logistic map from x0 = 0.5, returning the final value and the Lyapunov
exponent (two scalars), over N values of r. Measured in one process, on
the CPU unless JAX finds an accelerator:

1. ``vsweep`` of the N psets into a fresh store, end to end (compilation
   included; every run committed before the clock stops).
2. The same chunks computed bare: ``jit(vmap(f))`` on the same chunk size,
   outputs copied to the host, nothing recorded. Recording's share of the
   vsweep is (vsweep − bare) / vsweep.
3. A Python-loop ``sweep`` of the same function, fully recorded, calling
   ``jax.jit(f)`` once per pset (what a user who knows JAX would write),
   on ``--loop-runs`` psets (default all N; fewer are scaled to N and said so).
4. The same loop without recording (jit(f) per pset, results to floats):
   loop-bare / vectorised-bare is the most vectorising can give on this machine.
5. The floor for recording: raw ``sqlite3`` writing a pset row (hash and
   canonical JSON, computed here) and a run row (id, times, the two results
   as JSON) per pset with ``executemany`` in one transaction. No recorder
   with a row per run can record faster, which bounds vsweep's speed-up.
6. ``sweep`` of the function as written, not jitted (op by op, the
   loop recompiled per call), on ``--asis-runs`` psets, scaled to N.
7. ``sweep`` of a plain Python function returning the same two scalars
   for the same psets (looked up, as floats, from the bare chunks'
   outputs): the cheapest loop sweep there is, all recording.

Issue 21's targets, checked on the figures of one run: (a) vsweep ≤ 0.8 ×
(b) the plain sweep (7), and (a) ≤ 1.5 × (c) the raw sqlite3 floor (5) +
the bare vectorised time (2). With ``--rounds R``, (a), (b), (c) and the
bare chunks are measured R times, interleaved: the times shown are their
medians, each target's ratio the median of the rounds' ratios. The first
round's vsweep pays JAX's first compilation of the process (the process's
first session, which reads the installed packages, is opened before any
clock). Beside the
wall-clock figures, (a)/(b) in process CPU time (all threads), which other
processes' load moves less.

Usage::

    python benchmarks/bench_jax.py [--runs 100000] [--steps 1000] [--rounds 1] [--loop-runs N] [--asis-runs 50]
                                   [--no-loops] [--json FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import recorder as rec


def logistic(r: float, steps: int) -> dict[str, Any]:
    def body(i: Any, carry: Any) -> Any:
        x, lyap = carry
        x = r * x * (1 - x)
        return x, lyap + jnp.log(jnp.abs(r * (1 - 2 * x)))

    x, lyap = jax.lax.fori_loop(0, steps, body, (0.5 * jnp.ones(()), jnp.zeros(())))
    return {"x": x, "lyapunov": lyap / steps}


_JITTED = jax.jit(logistic, static_argnames="steps")


def logistic_jitted(r: float, steps: int) -> dict[str, Any]:
    return _JITTED(r=r, steps=steps)


def params(n: int, steps: int) -> rec.ParamSequence:
    return rec.grid(r=[float(v) for v in np.linspace(2.5, 4.0, n)], steps=[steps])


def count_done(store: Path, experiment: str) -> int:
    con = sqlite3.connect(store / "recorder.sqlite")
    try:
        return con.execute(
            "SELECT count(*) FROM runs JOIN experiments AS e ON e.pk = runs.experiment "
            "WHERE e.name = ? AND status = 'done'",
            (experiment,),
        ).fetchone()[0]
    finally:
        con.close()


#: Process CPU seconds (all threads) of the last vsweep and loop sweep: on a loaded machine, where other
#: processes stretch the wall clock unevenly, a figure of the work done (printed beside the wall times).
CPU: dict[str, float] = {}


def vsweep(store: Path, n: int, steps: int) -> tuple[float, int]:
    """Return the vsweep's time and the chunk size it chose."""
    with rec.Recorder("vsweep", store=store, git=False) as r:
        c0, t0 = time.process_time(), time.perf_counter()
        r.vsweep(logistic, params(n, steps), static="steps", return_df=False, progress=False)
        r.flush()
        elapsed = time.perf_counter() - t0
        CPU["vsweep"] = time.process_time() - c0
    assert count_done(store, "vsweep") == n
    con = sqlite3.connect(store / "recorder.sqlite")
    (text,) = con.execute("SELECT jax FROM sessions ORDER BY pk DESC LIMIT 1").fetchone()
    con.close()
    return elapsed, json.loads(text)["vsweep"][0]["chunk_size"]


def vectorised_bare(n: int, steps: int, chunk: int) -> tuple[float, dict[str, np.ndarray]]:
    batched = jax.jit(jax.vmap(lambda r: logistic(r, steps)))
    values = np.linspace(2.5, 4.0, n).astype(np.float32)
    padded = np.concatenate([values, np.full(-n % chunk, values[-1], dtype=np.float32)])
    jax.block_until_ready(batched(padded[:chunk]))  # compiled before the clock starts
    t0 = time.perf_counter()
    outputs = [batched(padded[start : start + chunk]) for start in range(0, len(padded), chunk)]
    host = jax.device_get(outputs)
    elapsed = time.perf_counter() - t0
    assert sum(len(h["x"]) for h in host) == len(padded)
    return elapsed, {name: np.concatenate([h[name] for h in host])[:n] for name in host[0]}


def loop_sweep(store: Path, n: int, steps: int, func: Any, name: str) -> float:
    with rec.Recorder(name, store=store, git=False) as r:
        c0, t0 = time.process_time(), time.perf_counter()
        r.sweep(func, params(n, steps), return_df=False, progress=False)
        r.flush()
        elapsed = time.perf_counter() - t0
        CPU[name] = time.process_time() - c0
    assert count_done(store, name) == n
    return elapsed


def plain_sweep(store: Path, n: int, steps: int, host: dict[str, np.ndarray]) -> float:
    """(b): ``sweep`` of a plain Python function returning the same two scalars, as Python floats."""
    rs = np.linspace(2.5, 4.0, n).tolist()
    table = dict(zip(rs, zip(host["x"].tolist(), host["lyapunov"].tolist())))

    def plain(r: float, steps: int) -> dict[str, float]:
        x, lyapunov = table[r]
        return {"x": x, "lyapunov": lyapunov}

    return loop_sweep(store, n, steps, plain, "plain")


def loop_bare(n: int, steps: int) -> float:
    values = [float(v) for v in np.linspace(2.5, 4.0, n)]
    logistic_jitted(r=values[0], steps=steps)
    t0 = time.perf_counter()
    for r in values:
        out = logistic_jitted(r=r, steps=steps)
        float(out["x"]), float(out["lyapunov"])
    return time.perf_counter() - t0


RAW_SCHEMA = """
CREATE TABLE psets (pk INTEGER PRIMARY KEY, hash BLOB UNIQUE, params TEXT);
CREATE TABLE runs (pk INTEGER PRIMARY KEY, id BLOB UNIQUE, pset INTEGER, status TEXT,
                   time_start_ms INTEGER, duration_us INTEGER, scalars TEXT);
CREATE INDEX runs_pset ON runs (pset);
"""


def raw_sqlite(folder: Path, n: int, steps: int, host: dict[str, np.ndarray]) -> float:
    """The rows of n runs, hashed and written by hand with executemany: the floor for recording."""
    con = sqlite3.connect(folder / "raw.sqlite", isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.executescript(RAW_SCHEMA)
    xs, lyaps = host["x"].tolist(), host["lyapunov"].tolist()
    t0 = time.perf_counter()
    psets, runs = [], []
    now = round(time.time() * 1000)
    for i, pset in enumerate(params(n, steps), start=1):
        text = json.dumps(pset, sort_keys=True, separators=(",", ":"))
        psets.append((i, hashlib.sha256(text.encode()).digest()[:10], text))
        scalars = f'{{"lyapunov":{lyaps[i - 1]!r},"x":{xs[i - 1]!r}}}'
        runs.append((i, os.urandom(12), i, "done", now, 1, scalars))
    con.execute("BEGIN")
    con.executemany("INSERT INTO psets VALUES (?, ?, ?)", psets)
    con.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)", runs)
    con.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    con.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of (a), (b), (c) and the bare chunks; medians")
    parser.add_argument("--loop-runs", type=int, help="psets of the jitted loop sweep (default: --runs)")
    parser.add_argument("--asis-runs", type=int, default=50, help="psets of the sweep of the function as written")
    parser.add_argument("--no-loops", action="store_true", help="skip the jitted loops and the sweep as written")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    n, steps = args.runs, args.steps
    loop_n = min(args.loop_runs or n, n)
    folder = Path(tempfile.mkdtemp(prefix="bench_jax_"))
    rounds: dict[str, list[float]] = {"vsweep": [], "bare": [], "raw": [], "plain": []}
    cpu: dict[str, list[float]] = {"vsweep": [], "plain": []}
    try:
        logistic_jitted(r=3.0, steps=steps)  # compiled once before any clock, as a user's warm loop would be
        # The process's first session reads the installed packages (once per process, a few tenths of a second):
        # before any clock too, so that the first round's (a) does not pay it for (b).
        with rec.Recorder("warm", store=folder / "warm", git=False) as r, r.run(a=1):
            pass
        for i in range(args.rounds):
            t_vsweep, chunk = vsweep(folder / f"v{i}", n, steps)
            t_bare, host = vectorised_bare(n, steps, chunk)
            t_raw = raw_sqlite(folder, n, steps, host)
            (folder / "raw.sqlite").unlink()
            t_plain = plain_sweep(folder / f"p{i}", n, steps, host)
            for name, value in zip(rounds, (t_vsweep, t_bare, t_raw, t_plain)):
                rounds[name].append(value)
            for name in cpu:
                cpu[name].append(CPU[name])
        t_vsweep, t_bare, t_raw, t_plain = (statistics.median(rounds[name]) for name in rounds)
        if not args.no_loops:
            t_loop = loop_sweep(folder / "l", loop_n, steps, logistic_jitted, "loop") * n / loop_n
            t_loop_bare = loop_bare(loop_n, steps) * n / loop_n
            t_asis = loop_sweep(folder / "a", args.asis_runs, steps, logistic, "asis") * n / args.asis_runs
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    # Each target as the median of its rounds' ratios: a round's figures were measured side by side.
    over_plain = statistics.median(v / p for v, p in zip(rounds["vsweep"], rounds["plain"]))
    cpu_over_plain = statistics.median(v / p for v, p in zip(cpu["vsweep"], cpu["plain"]))
    over_floor = statistics.median(
        v / (1.5 * r + b) for v, r, b in zip(rounds["vsweep"], rounds["raw"], rounds["bare"])
    )
    figures: dict[str, Any] = {
        "runs": n,
        "steps": steps,
        "rounds": args.rounds,
        "device": str(jax.devices()[0]),
        "chunk_size": chunk,
        "vsweep_s": t_vsweep,
        "vectorised_bare_s": t_bare,
        "recording_share_of_vsweep": (t_vsweep - t_bare) / t_vsweep,
        "recording_us_per_run": (t_vsweep - t_bare) / n * 1e6,
        "raw_sqlite_floor_s": t_raw,
        "raw_sqlite_floor_us_per_run": t_raw / n * 1e6,
        "plain_sweep_s": t_plain,
        "vsweep_over_plain_sweep": over_plain,
        "vsweep_over_floor_bound": over_floor,
        "target_vs_plain_sweep_met": over_plain <= 0.8,
        "target_vs_floor_met": over_floor <= 1.0,
        "vsweep_over_plain_sweep_cpu": cpu_over_plain,
        "rounds_s": rounds,
        "rounds_cpu_s": cpu,
    }
    print(f"{n} psets of the logistic map, {steps} steps each, on {figures['device']}; chunk size {chunk}")
    if args.rounds > 1:
        print(f"  (medians of {args.rounds} interleaved rounds)")
    print(
        f"  (a) vsweep, end to end:        {t_vsweep:8.2f} s  ({n / t_vsweep:,.0f} runs/s, {t_vsweep / n * 1e6:.1f} µs/run)"
    )
    print(
        f"      same chunks, bare:         {t_bare:8.2f} s  → recording {figures['recording_share_of_vsweep']:.0%} "
        f"of the vsweep ({figures['recording_us_per_run']:.1f} µs/run)"
    )
    print(f"  (b) sweep of a plain function: {t_plain:8.2f} s  ({t_plain / n * 1e6:.1f} µs/run: the cheapest loop)")
    print(f"  (c) raw sqlite3, the same rows:{t_raw:8.2f} s  ({t_raw / n * 1e6:.1f} µs/run: the floor for recording)")
    print(
        f"  process CPU time, (a) {statistics.median(cpu['vsweep']):.2f} s, (b) {statistics.median(cpu['plain']):.2f} s:"
        f" (a)/(b) = {cpu_over_plain:.2f} (less moved than the wall clock by other processes' load)"
    )
    mark = {True: "met", False: "NOT met"}
    print(
        f"  target (a) ≤ 0.8 × (b):        (a)/(b) = {over_plain:.2f}  [{mark[figures['target_vs_plain_sweep_met']]}]"
    )
    print(
        f"  target (a) ≤ 1.5 × (c) + bare: (a)/(1.5 (c) + bare) = {over_floor:.2f}  "
        f"[{mark[figures['target_vs_floor_met']]}]"
    )
    if not args.no_loops:
        figures.update(
            {
                "speedup_bound_from_floor": t_loop / (t_bare + t_raw),
                "loop_sweep_jitted_s": t_loop,
                "loop_runs_measured": loop_n,
                "speedup_vs_jitted_loop_sweep": t_loop / t_vsweep,
                "loop_bare_s": t_loop_bare,
                "vectorising_ceiling": t_loop_bare / t_bare,
                "sweep_as_written_s": t_asis,
                "asis_runs_measured": args.asis_runs,
                "speedup_vs_sweep_as_written": t_asis / t_vsweep,
            }
        )
        scaled = f" (measured on {loop_n}, scaled)" if loop_n < n else ""
        print(
            f"  loop sweep of jit(f):          {t_loop:8.2f} s{scaled}  → vsweep {t_loop / t_vsweep:.1f}× faster "
            f"(bare chunks + the floor would be {figures['speedup_bound_from_floor']:.1f}×)"
        )
        print(
            f"  loop of jit(f), bare:          {t_loop_bare:8.2f} s  → vectorising alone gives "
            f"{figures['vectorising_ceiling']:.1f}×"
        )
        print(
            f"  sweep of f as written:         {t_asis:8.2f} s (measured on {args.asis_runs}, scaled)  → vsweep "
            f"{t_asis / t_vsweep:.0f}× faster"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    sys.exit(main())
