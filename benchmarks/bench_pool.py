"""Pool benchmark: ``workers=2`` against serial on CPU-bound runs, and Dask with and without batches.

1. ``workers=2`` (recorder's own pool, ``batch_size="auto"``) against a
   serial sweep of the same psets of a CPU-bound function of about 10 ms
   (10 ms of CPU time each, measured with ``time.process_time``, so both
   arms do the same work whatever else the machine runs). Several rounds
   in one invocation; the arms alternate which goes first from one round to
   the next. Each round prints its speed-up (serial time / pooled time);
   the closing line gives the median. ``workers=2, batch_size=1`` (a run
   per task, as before batches) is measured alongside, and psweep's pool
   when psweep is installed.
2. Dask (``LocalCluster``, 2 worker processes, one thread each): a sweep of
   runs of about 2 ms with ``batch_size="auto"`` against ``batch_size=1``,
   and ``executor.map`` over the bare function (no recording) for
   reference, in runs per second; arms alternate between rounds.

Every sweep writes a fresh store (``return_df=False``, no progress line).
The figures are wall-clock times of whole sweeps, pool start included.

Usage::

    python benchmarks/bench_pool.py [--runs 200] [--rounds 5] [--dask-runs 2000] [--dask-rounds 3]
                                    [--no-dask] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import recorder as rec


def _spin(seconds: float, a: float) -> float:
    """Pure-Python arithmetic for ``seconds`` of this process's CPU time."""
    total, x = 0.0, a
    deadline = time.process_time() + seconds
    while time.process_time() < deadline:
        for _ in range(200):
            x = (x * 1.0000001 + 0.5) % 7.0
        total += x
    return total


def cpu_10ms(a: float) -> dict:
    """About 10 ms of CPU."""
    return {"total": _spin(0.010, a)}


def cpu_10ms_pset(pset: dict[str, Any]) -> dict:
    """:func:`cpu_10ms` as psweep calls a function: with the pset as one dict."""
    return cpu_10ms(pset["a"])


def cpu_2ms(a: float) -> dict:
    """About 2 ms of CPU."""
    return {"total": _spin(0.002, a)}


def _psets(n: int) -> list[dict[str, float]]:
    return [{"a": float(i)} for i in range(n)]


def _timed_sweep(folder: Path, func: Callable[..., dict], n: int, **options: Any) -> float:
    store = Path(tempfile.mkdtemp(dir=folder))
    t0 = time.perf_counter()
    with rec.Recorder("bench", store=store, git=False) as r:
        r.sweep(func, _psets(n), return_df=False, progress=False, skip=None, **options)
    elapsed = time.perf_counter() - t0
    shutil.rmtree(store)
    return elapsed


def _psweep_pool(folder: Path, n: int) -> float | None:
    """psweep's pool (2 processes) on the same psets (None when psweep is not installed)."""
    try:
        import psweep  # type: ignore[import-not-found]
    except ImportError:
        return None
    from bench_pool import cpu_10ms_pset as func  # type: ignore[import-not-found]

    calc = Path(tempfile.mkdtemp(dir=folder))
    t0 = time.perf_counter()
    psweep.run(func, _psets(n), calc_dir=str(calc), poolsize=2, save=True)
    elapsed = time.perf_counter() - t0
    shutil.rmtree(calc)
    return elapsed


def bench_pool(folder: Path, n: int, rounds: int) -> dict[str, Any]:
    """Serial against ``workers=2``, rounds alternating which arm goes first."""
    # The functions as a module's (this file imported as ``bench_pool``): worker processes import them by name.
    from bench_pool import cpu_10ms as func  # type: ignore[import-not-found]

    arms: dict[str, Callable[[], float | None]] = {
        "serial": lambda: _timed_sweep(folder, func, n),
        "workers2": lambda: _timed_sweep(folder, func, n, workers=2),
        "workers2_batch1": lambda: _timed_sweep(folder, func, n, workers=2, batch_size=1),
        "psweep": lambda: _psweep_pool(folder, n),
    }
    times: dict[str, list[float]] = {name: [] for name in arms}
    _timed_sweep(folder, func, 4, workers=2)  # warm: imports, first fork
    for index in range(rounds):
        order = list(arms) if index % 2 == 0 else list(reversed(arms))
        for name in order:
            elapsed = arms[name]()
            if elapsed is not None:
                times[name].append(elapsed)
        serial = times["serial"][-1]
        line = f"round {index + 1}: serial {serial:.2f} s; workers=2 {serial / times['workers2'][-1]:.2f}×"
        line += f", workers=2 batch_size=1 {serial / times['workers2_batch1'][-1]:.2f}×"
        if times["psweep"]:
            line += f", psweep pool {serial / times['psweep'][-1]:.2f}×"
        print(line, flush=True)
    speedups = {
        name: [s / t for s, t in zip(times["serial"], times[name])] for name in arms if name != "serial" and times[name]
    }
    return {"runs": n, "rounds": rounds, "seconds": times, "speedups": speedups}


def bench_dask(folder: Path, n: int, rounds: int) -> dict[str, Any] | None:
    """Dask: ``batch_size="auto"`` against ``batch_size=1`` and a bare ``executor.map``, in runs per second."""
    try:
        import distributed
    except ImportError:
        print("Dask: distributed is not installed; skipped")
        return None
    from bench_pool import cpu_2ms as func

    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        executor = client.get_executor()

        def bare_map() -> float:
            t0 = time.perf_counter()
            list(executor.map(func, [float(i) for i in range(n)]))
            return time.perf_counter() - t0

        arms: dict[str, Callable[[], float]] = {
            "auto": lambda: _timed_sweep(folder, func, n, executor=executor, batch_size="auto"),
            "batch1": lambda: _timed_sweep(folder, func, n, executor=executor, batch_size=1),
            "bare_map": bare_map,
        }
        _timed_sweep(folder, func, 20, executor=executor)  # warm: the workers import recorder and this module
        times: dict[str, list[float]] = {name: [] for name in arms}
        for index in range(rounds):
            order = list(arms) if index % 2 == 0 else list(reversed(arms))
            for name in order:
                times[name].append(arms[name]())
            rates = {name: n / times[name][-1] for name in arms}
            print(
                f"Dask round {index + 1}: batch_size='auto' {rates['auto']:.0f} runs/s, "
                f"batch_size=1 {rates['batch1']:.0f} runs/s, bare executor.map {rates['bare_map']:.0f} calls/s",
                flush=True,
            )
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "runs": n,
        "rounds": rounds,
        "seconds": times,
        "auto_vs_batch1": medians["batch1"] / medians["auto"],
        "auto_vs_bare_map": medians["auto"] / medians["bare_map"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="psets of the 10 ms function per sweep")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dask-runs", type=int, default=2000, help="psets of the 2 ms function per Dask sweep")
    parser.add_argument("--dask-rounds", type=int, default=3)
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))

    folder = Path(tempfile.mkdtemp(prefix="bench-pool-"))
    try:
        pool = bench_pool(folder, args.runs, args.rounds)
        dask = None if args.no_dask else bench_dask(folder, args.dask_runs, args.dask_rounds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print()
    for name, label in (
        ("workers2", "workers=2"),
        ("workers2_batch1", "workers=2, batch_size=1"),
        ("psweep", "psweep's pool"),
    ):
        values = pool["speedups"].get(name)
        if values:
            print(
                f"{label} vs serial, {args.runs} runs of 10 ms: median {statistics.median(values):.2f}× "
                f"(rounds: {', '.join(f'{v:.2f}' for v in values)})"
            )
    if dask is not None:
        print(
            f"Dask, {args.dask_runs} runs of 2 ms on 2 worker processes: batch_size='auto' is "
            f"{dask['auto_vs_batch1']:.2f}× faster than batch_size=1, and takes {dask['auto_vs_bare_map']:.2f}× "
            "the time of executor.map over the bare function (medians)"
        )
    if args.json is not None:
        args.json.write_text(json.dumps({"pool": pool, "dask": dask}, indent=2))


if __name__ == "__main__":
    main()
