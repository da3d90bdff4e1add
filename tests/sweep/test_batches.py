"""batch_size: runs sent to workers and executors in batches give what single runs give; "auto" grows; bad values refused."""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import logging
import re
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import recorder as rec
from recorder.sweep import pool as pool_module

PSETS = 60


def work(i: int, scale: float = 1.0) -> dict:
    """Results, seed and run id as the function saw them; an array the worker writes; run 13 fails."""
    if i == 13:
        raise ValueError("thirteen is refused")
    return {
        "y": i * scale,
        "seed": rec.current_seed(),
        "seen_id": rec.current_run().id,
        "curve": np.full(20_000, float(i)),  # above the inline limit: the worker writes an object
    }


def _runs(store: Path) -> list[tuple[Any, ...]]:
    """Every run as ``(params, status, seed, y)``, sorted; the run ids separately checked by the callers."""
    with sqlite3.connect(store / "recorder.sqlite") as conn:
        return sorted(
            conn.execute(
                "SELECT p.params, r.status, r.seed, "
                "(SELECT value FROM results_all res WHERE res.run = r.pk AND res.name = 'y') "
                "FROM runs r JOIN psets p ON p.pk = r.pset"
            ).fetchall()
        )


def _check_like_serial(df: Any, store: Path, serial: list[tuple[Any, ...]]) -> None:
    assert _runs(store) == serial
    assert len(df) == PSETS and df["_run_id"].nunique() == PSETS
    done = df[df["_status"] == "done"]
    assert len(done) == PSETS - 1 and (done["seen_id"] == done["_run_id"]).all()  # the id the function saw
    failed = df[df["_status"] == "failed"]
    assert failed["i"].tolist() == [13] and "thirteen is refused" in failed["_error"].iloc[0]
    objects = rec.ObjectStore(store / "objects")
    with sqlite3.connect(store / "recorder.sqlite") as conn:
        digests = [d for (d,) in conn.execute("SELECT value FROM results_all WHERE kind = 'object'")]
    assert len(digests) == PSETS - 1 and all(objects.verify(d) for d in digests)


def _serial(tmp_path: Path) -> list[tuple[Any, ...]]:
    with pytest.warns(rec.RecorderWarning, match="1 of 60 runs failed"):
        with rec.Recorder("b", store=tmp_path / "serial", git=False, seed=7) as r:
            r.sweep(work, rec.plist("i", range(PSETS)))
    return _runs(tmp_path / "serial")


def _sweep(store: Path, **options: Any) -> Any:
    with pytest.warns(rec.RecorderWarning, match="1 of 60 runs failed"):
        with rec.Recorder("b", store=store, git=False, seed=7) as r:
            return r.sweep(work, rec.plist("i", range(PSETS)), **options)


def _sizes(caplog: pytest.LogCaptureFixture) -> list[int]:
    """The sizes of the batches submitted, in order (recorder.sweep.pool logs each at DEBUG)."""
    found = [re.fullmatch(r"batch \d+ of (\d+) runs", r.getMessage()) for r in caplog.records]
    return [int(m.group(1)) for m in found if m]


@pytest.mark.parametrize("batch_size", [1, 7, "auto"])
def test_batched_pool_runs_as_single_runs_do(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, batch_size: int | str
) -> None:
    serial = _serial(tmp_path)
    caplog.set_level(logging.DEBUG, logger="recorder.sweep.pool")
    df = _sweep(tmp_path / "pool", workers=2, batch_size=batch_size)
    _check_like_serial(df, tmp_path / "pool", serial)
    sizes = _sizes(caplog)
    assert sum(sizes) == PSETS
    if batch_size == 7:
        assert sizes == [7] * 8 + [4]


@pytest.mark.parametrize("kind", ["threads", "processes"])
@pytest.mark.parametrize("batch_size", [1, 5, "auto"])
def test_batched_executors_run_as_single_runs_do(tmp_path: Path, kind: str, batch_size: int | str) -> None:
    serial = _serial(tmp_path)
    make = cf.ThreadPoolExecutor if kind == "threads" else cf.ProcessPoolExecutor
    with make(max_workers=3) as executor:
        df = _sweep(tmp_path / kind, executor=executor, batch_size=batch_size)
    _check_like_serial(df, tmp_path / kind, serial)


def quick(i: int) -> dict:
    return {"y": i}


def test_auto_batches_start_small_grow_and_shrink_towards_the_end(
    store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Runs of microseconds: "auto" starts with single runs, at most doubles, and leaves no worker the tail."""
    caplog.set_level(logging.DEBUG, logger="recorder.sweep.pool")
    with rec.Recorder("q", store=store, git=False) as r:
        df = r.sweep(quick, rec.plist("i", range(2_000)), workers=2)
    assert set(df["_status"]) == {"done"} and df["y"].tolist() == list(range(2_000))
    sizes = _sizes(caplog)
    assert sum(sizes) == 2_000
    assert sizes[:4] == [1, 1, 1, 1]  # nothing measured yet: one run each, a batch per worker and ahead
    assert max(sizes) >= 64  # grown: far fewer batches than runs
    assert len(sizes) < 200
    assert all(b <= 2 * a for a, b in itertools.pairwise(sizes))  # never more than doubling
    left = 2_000
    for size in sizes:  # a batch holds at most a quarter of what is left (2 workers)
        assert size <= max(1, -(-left // 4)), (size, left)
        left -= size
    assert sizes[-1] == 1


def test_fixed_batch_sizes_are_kept_in_serial_too(store: Path) -> None:
    with rec.Recorder("q", store=store, git=False) as r:
        df = r.sweep(quick, rec.plist("i", range(5)), batch_size=3)  # serial: nothing to batch, accepted
    assert df["y"].tolist() == list(range(5))


@pytest.mark.parametrize("bad", [0, -3, 2.5, "big", "AUTO", True, None])
def test_a_bad_batch_size_is_refused_naming_it(store: Path, bad: object) -> None:
    for workers in (1, 2):
        with rec.Recorder("q", store=store, git=False) as r:
            with pytest.raises(rec.BatchSizeRefused, match=re.escape(f"batch_size={bad!r} is not 'auto'")) as e:
                r.sweep(quick, rec.plist("i", [1]), workers=workers, batch_size=bad)  # type: ignore[arg-type]
        assert isinstance(e.value, ValueError) and isinstance(e.value, rec.RecorderError)
    exp = rec.experiment("qd", store=store, git=False)(quick)
    with pytest.raises(rec.BatchSizeRefused, match="is not 'auto' or a number of runs per batch"):
        exp.sweep(rec.plist("i", [1]), workers=2, batch_size=bad)  # type: ignore[arg-type]
    if (store / "recorder.sqlite").exists():
        with sqlite3.connect(store / "recorder.sqlite") as conn:
            assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0


def uses_table(i: int, table: np.ndarray) -> dict:
    return {"y": float(table[i % 4]) * i, "seen_id": rec.current_run().id}


def _arrivals(key: str) -> int:
    """In a Dask worker: how many times the sweep's constant inputs arrived there."""
    return pool_module.ARRIVALS.get(key, 0)


def test_dask_batches_and_fixed_inputs_scattered_once(tmp_path: Path) -> None:
    """On Dask worker processes: batched as unbatched, the run ids the function saw, fixed= sent once per worker."""
    distributed = pytest.importorskip("distributed")
    serial = _serial(tmp_path)
    table = np.arange(4.0)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        for batch_size in (1, "auto"):
            store = tmp_path / f"dask-{batch_size}"
            df = _sweep(store, executor=client.get_executor(), batch_size=batch_size)
            _check_like_serial(df, store, serial)
        with rec.Recorder("f", store=tmp_path / "fixed", git=False) as r:
            df = r.sweep(
                uses_table,
                rec.plist("i", range(20)),
                executor=client.get_executor(),
                batch_size=1,
                fixed={"table": table},
            )
        assert df["y"].tolist() == [float(table[i % 4]) * i for i in range(20)]
        assert (df["seen_id"] == df["_run_id"]).all()
        key = pool_module._fixed_payload({"table": table}, "uses_table")[0]  # type: ignore[index]
        arrivals = client.run(_arrivals, key)
    # 20 batches of one run on 2 workers: the constant inputs arrived once in each, not with each batch.
    assert sorted(arrivals.values()) == [1, 1], arrivals
    with sqlite3.connect(tmp_path / "fixed" / "recorder.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM config WHERE name = 'fixed.table'").fetchone()[0] == 1


def test_other_executors_get_the_constant_inputs_with_each_batch(tmp_path: Path) -> None:
    """Without Dask's scatter the pickle goes with each batch, unpickled once per worker process."""
    with cf.ProcessPoolExecutor(max_workers=1) as executor:
        with rec.Recorder("f", store=tmp_path / "s", git=False) as r:
            df = r.sweep(
                uses_table, rec.plist("i", range(6)), executor=executor, batch_size=2, fixed={"table": np.ones(4)}
            )
        assert df["y"].tolist() == [float(i) for i in range(6)]
        key = pool_module._fixed_payload({"table": np.ones(4)}, "uses_table")[0]  # type: ignore[index]
        assert executor.submit(_arrivals, key).result() == 3  # three batches of two
