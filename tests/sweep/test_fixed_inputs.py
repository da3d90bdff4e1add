"""fixed= (and functools.partial): constant inputs sent once per worker, digests in the session config, not parameters."""

from __future__ import annotations

import concurrent.futures as cf
import functools
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import recorder as rec


class Counted(np.ndarray):
    """An array that notes each time it is pickled (a line in the file named by $RECORDER_TEST_PICKLES)."""

    def __reduce__(self) -> Any:
        path = os.environ["RECORDER_TEST_PICKLES"]
        with open(path, "a") as file:
            file.write(f"{os.getpid()}\n")
            file.flush()
            os.fsync(file.fileno())
        return np.asarray(self).__reduce__()


def uses(a: int, table: np.ndarray, model: dict, scale: float = 1.0) -> dict:
    return {"y": float(table[:4].sum()) * a * scale + model["bias"], "pid": os.getpid()}


def _config(store: Path) -> dict[str, Any]:
    with sqlite3.connect(store / "recorder.sqlite") as conn:
        # The digest entries (JSON); an array's or bytes' own value is beside, as fixed.<name>.value.
        return {
            name: json.loads(value)
            for name, value in conn.execute("SELECT name, value FROM config WHERE kind = 'json'")
        }


def _params(store: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(store / "recorder.sqlite") as conn:
        return [json.loads(p) for (p,) in conn.execute("SELECT params FROM psets ORDER BY pk")]


def test_a_100_mb_array_is_pickled_at_most_once_per_worker(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = tmp_path / "pickles"
    monkeypatch.setenv("RECORDER_TEST_PICKLES", str(counts))
    table = np.ones(100_000_000 // 8).view(Counted)
    with rec.Recorder("fx", store=store, git=False) as r:
        df = r.sweep(uses, rec.plist("a", range(8)), workers=2, fixed={"table": table, "model": {"bias": 0.5}})
    assert set(df["_status"]) == {"done"} and df["y"].tolist() == [4.0 * a + 0.5 for a in range(8)]
    pickles = counts.read_text().splitlines() if counts.exists() else []
    assert 1 <= len(pickles) <= 2, pickles  # once in the sweeping process; never per run
    config = _config(store)
    digest = config["fixed.table"]
    assert digest["type"] == "ndarray" and digest["shape"] == [12_500_000] and len(digest["sha256"]) == 64
    assert config["fixed.model"]["type"] == "json"
    assert sorted(_params(store), key=lambda p: p["a"]) == [{"a": a, "scale": 1.0} for a in range(8)]  # not params


def test_fixed_in_serial_threads_and_the_decorator(store: Path) -> None:
    model = {"bias": 1.0}
    with rec.Recorder("fx", store=store, git=False) as r:
        serial = r.sweep(uses, rec.plist("a", [1]), fixed={"table": np.ones(4), "model": model})
    with cf.ThreadPoolExecutor(2) as pool, rec.Recorder("fx", store=store, git=False) as r:
        threads = r.sweep(uses, rec.plist("a", [2, 3]), executor=pool, fixed={"table": np.ones(4), "model": model})
    assert serial["y"].tolist() == [5.0] and threads["y"].tolist() == [9.0, 13.0]
    exp = rec.experiment("fxd", store=store, git=False)(uses)
    df = exp.sweep(rec.plist("a", [1]), fixed={"table": np.zeros(4), "model": model})
    assert df["y"].tolist() == [1.0]


def test_fixed_on_dask_worker_processes(store: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
        rec.Recorder("fx", store=store, git=False) as r,
    ):
        df = r.sweep(
            uses,
            rec.plist("a", [1, 2]),
            executor=client.get_executor(),
            fixed={"table": np.ones(4), "model": {"bias": 0}},
        )
    assert df["y"].tolist() == [4.0, 8.0] and "fixed.table" in _config(store)


def test_partial_arguments_are_fixed_inputs(store: Path) -> None:
    with rec.Recorder("fx", store=store, git=False) as r:
        df = r.sweep(functools.partial(uses, table=np.ones(4), model={"bias": 2.0}), rec.plist("a", [1]), workers=2)
    assert df["y"].tolist() == [6.0]
    assert _params(store) == [{"a": 1, "scale": 1.0}]
    assert set(_config(store)) == {"fixed.table", "fixed.model"}


def test_bad_fixed_inputs(store: Path) -> None:
    with rec.Recorder("fx", store=store, git=False) as r:
        with pytest.raises(rec.RecorderError, match="'nope' is not a parameter"):
            r.sweep(uses, rec.plist("a", [1]), fixed={"nope": 1})
        with pytest.raises(rec.RecorderError, match="'table' is a fixed input"):
            r.sweep(uses, [{"a": 1, "table": 2}], fixed={"table": np.ones(4), "model": {}})
    with (
        pytest.warns(rec.RecorderWarning, match="cannot be digested.*rerun cannot check"),
        rec.Recorder("fx2", store=store, git=False) as r,
    ):
        r.sweep(uses, rec.plist("a", [1]), fixed={"table": np.ones(4), "model": {"bias": 0.0, "f": object()}})
    entry = _config(store)["fixed.model"]
    assert entry["type"] == "builtins.dict" and "object object" in entry["repr"]
