"""capture=True records ``logging`` records too: each run's own, in threads and worker processes."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import sqlite3
import threading
from pathlib import Path

import pytest

import recorder as rec

_barrier: threading.Barrier | None = None
log = logging.getLogger("model.train")


def logs(a: int) -> dict:
    """Log lines naming this run, interleaved with other threads' (a barrier makes them overlap)."""
    log.warning("run %d starts", a)
    if _barrier is not None:
        with contextlib.suppress(threading.BrokenBarrierError):
            _barrier.wait(timeout=10)
    for k in range(5):
        log.error("run %d step %d", a, k)
    log.info("run %d info", a)  # below the configured level unless the user lowers it
    return {"y": a}


def _outputs(store: Path) -> dict[int, str]:
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        rows = conn.execute(
            "SELECT json_extract(p.params, '$.a'), t.text FROM runs r JOIN psets p ON p.pk = r.pset "
            "LEFT JOIN texts t ON t.digest = r.output"
        ).fetchall()
    finally:
        conn.close()
    return dict(rows)


def _check(outputs: dict[int, str], runs: range, info: bool = False) -> None:
    assert set(outputs) == set(runs)
    for a, text in outputs.items():
        lines = text.splitlines()
        messages = [line.split(" ", 2)[2] for line in lines]  # after the date and time
        expected = [f"WARNING model.train: run {a} starts"]
        expected += [f"ERROR model.train: run {a} step {k}" for k in range(5)]
        expected += [f"INFO model.train: run {a} info"] if info else []
        assert messages == expected, text


def test_logging_of_runs_in_a_thread_pool_goes_to_each_runs_own_output(store: Path) -> None:
    global _barrier
    _barrier = threading.Barrier(4)
    try:
        with cf.ThreadPoolExecutor(4) as pool, rec.Recorder("l", store=store, git=False) as r:
            df = r.sweep(logs, rec.plist("a", range(12)), executor=pool, capture=True)
    finally:
        _barrier = None
    assert set(df["_status"]) == {"done"}
    _check(_outputs(store), range(12))
    assert not any(
        isinstance(h, logging.Handler) and type(h).__name__ == "_LogHandler" for h in logging.getLogger().handlers
    )


def test_logging_in_worker_processes(store: Path) -> None:
    with rec.Recorder("l", store=store, git=False) as r:
        r.sweep(logs, rec.plist("a", range(4)), workers=2, capture=True)
    _check(_outputs(store), range(4))


def test_logging_at_the_level_the_user_configured(store: Path) -> None:
    log.setLevel(logging.INFO)
    try:
        with rec.Recorder("l", store=store, git=False) as r:
            r.sweep(logs, rec.plist("a", range(2)), capture=True)
    finally:
        log.setLevel(logging.NOTSET)
    _check(_outputs(store), range(2), info=True)


def test_without_capture_logging_is_left_alone(store: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), rec.Recorder("l", store=store, git=False) as r:
        r.sweep(logs, rec.plist("a", [1]))
    assert _outputs(store) == {1: None}
    assert "run 1 starts" in caplog.text
