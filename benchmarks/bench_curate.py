"""Curation benchmark: tagging 100,000 runs picked by ``--where`` (issue 18's bar: under 2 s).

1. Build a store of N runs (2 parameters, 2 scalar results) with a sweep, or reuse ``--store``.
2. Time ``recorder tag T --experiment exp --where "b >= 0" --all`` as the library call
   (``rec.tag(experiment=..., where=..., all_runs=True)``): picking the runs through the wide
   view, writing the tags and the curation event; then ``rec.rm`` and ``rec.restore`` of the
   same runs, and ``db.df("exp", tag=T)``.

Usage::

    python benchmarks/bench_curate.py [--runs 100000] [--store DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import recorder as rec


def two_scalars(a: float, b: int) -> dict:
    return {"y": a * b, "z": a + b}


def build(store: Path, n: int) -> float:
    params = rec.grid(a=[i * 0.001 for i in range(n // 100)], b=list(range(100)))
    t0 = time.perf_counter()
    with rec.Recorder("exp", store=store, git=False) as r:
        r.sweep(two_scalars, params, return_df=False, progress=False)
    return time.perf_counter() - t0


def timed(what: str, action) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = action()
    took = time.perf_counter() - t0
    print(f"{what:<40} {took:8.3f} s")
    return took, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--store", type=Path, help="Reuse this store of experiment 'exp' (else one is built).")
    parser.add_argument("--json", type=Path, help="Write the figures here.")
    args = parser.parse_args()
    tmp = None
    if args.store is None:
        tmp = Path(tempfile.mkdtemp(prefix="bench_curate_"))
        store = tmp / "store"
        print(f"building {args.runs} runs: {build(store, args.runs):.1f} s")
    else:
        store = args.store
    try:
        figures: dict[str, float] = {}
        figures["tag_where_s"], tagged = timed(
            "tag by --where (every run, --all)",
            lambda: rec.tag(experiment="exp", where="b >= 0", all_runs=True, tags="bench", store=store),
        )
        n = len(tagged.run_ids)  # type: ignore[attr-defined]
        figures["runs"] = n
        figures["tag_again_s"], _ = timed(
            "tag again (nothing changes)",
            lambda: rec.tag(experiment="exp", where="b >= 0", all_runs=True, tags="bench", store=store),
        )
        with rec.open(store) as db:
            figures["df_tag_s"], df = timed("db.df(tag=...)", lambda: db.df("exp", tag="bench"))
            assert len(df) == n  # type: ignore[arg-type]
        figures["rm_half_s"], _ = timed(
            "rm half by --where", lambda: rec.rm(experiment="exp", where="b < 50", store=store)
        )
        figures["restore_half_s"], _ = timed(
            "restore them", lambda: rec.restore(experiment="exp", all_runs=True, store=store)
        )
        figures["untag_s"], _ = timed(
            "untag by --where (every run)",
            lambda: rec.untag(experiment="exp", where="b >= 0", all_runs=True, tags="bench", store=store),
        )
        print(f"{n} runs; tagging by --where took {figures['tag_where_s']:.3f} s (bar: under 2 s)")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
