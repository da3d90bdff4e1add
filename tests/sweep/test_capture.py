"""capture=True: each run's output is its own, whatever runs it (threads, Dask), and the streams come back."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import io
import sqlite3
import sys
import threading
from pathlib import Path

import pytest

import recorder as rec
from recorder.sweep.capture import captured

_barrier: threading.Barrier | None = None


def talks(a: int) -> dict:
    """Print lines naming this run, interleaved with the other threads' (a barrier makes them overlap)."""
    print(f"out {a} first")
    if _barrier is not None:
        with contextlib.suppress(threading.BrokenBarrierError):
            _barrier.wait(timeout=10)
    for k in range(20):
        print(f"out {a} line {k}")
        print(f"err {a} line {k}", file=sys.stderr)
    return {"y": a}


def _expected(a: int) -> str:
    lines = [f"out {a} first"]
    for k in range(20):
        lines += [f"out {a} line {k}", f"err {a} line {k}"]
    return "\n".join(lines) + "\n"


def _outputs(store: Path) -> dict[int, str]:
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        rows = conn.execute(
            "SELECT json_extract(p.params, '$.a'), t.text FROM runs r JOIN psets p ON p.pk = r.pset "
            "JOIN texts t ON t.digest = r.output"
        ).fetchall()
    finally:
        conn.close()
    return {a: output for a, output in rows}


def test_threads_each_capture_their_own_output_and_the_streams_come_back(store: Path) -> None:
    global _barrier
    stdout, stderr = sys.stdout, sys.stderr
    _barrier = threading.Barrier(4)
    try:
        with cf.ThreadPoolExecutor(4) as pool, rec.Recorder("c", store=store, git=False) as r:
            df = r.sweep(talks, rec.plist("a", range(12)), executor=pool, capture=True)
    finally:
        _barrier = None
    assert sys.stdout is stdout and sys.stderr is stderr
    assert set(df["_status"]) == {"done"}
    outputs = _outputs(store)
    assert outputs == {a: _expected(a) for a in range(12)}


def test_output_outside_any_capture_goes_to_the_original_stream() -> None:
    original = sys.stdout
    elsewhere = io.StringIO()
    sys.stdout = elsewhere
    try:
        started, release = threading.Event(), threading.Event()

        def in_capture() -> str:
            with captured() as buffer:
                print("inside")
                started.set()
                release.wait(10)
            return buffer.getvalue()

        with cf.ThreadPoolExecutor(1) as pool:
            future = pool.submit(in_capture)
            assert started.wait(10)
            print("outside, meanwhile")  # this thread is not capturing
            release.set()
            inside = future.result(10)
        assert sys.stdout is elsewhere
    finally:
        sys.stdout = original
    assert inside == "inside\n"
    assert elsewhere.getvalue() == "outside, meanwhile\n"


def test_nested_captures_restore_the_streams_exactly() -> None:
    stdout, stderr = sys.stdout, sys.stderr
    with captured() as outer:
        print("a")
        with captured() as inner:
            print("b")
        print("c")
    assert sys.stdout is stdout and sys.stderr is stderr
    assert outer.getvalue() == "a\nc\n" and inner.getvalue() == "b\n"


def test_dask_threads_each_capture_their_own_output(store: Path) -> None:
    distributed = pytest.importorskip("distributed")
    global _barrier
    stdout, stderr = sys.stdout, sys.stderr
    _barrier = threading.Barrier(4)
    try:
        with (
            distributed.LocalCluster(
                n_workers=1, threads_per_worker=4, processes=False, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            with rec.Recorder("c", store=store, git=False) as r:
                df = r.sweep(talks, rec.plist("a", range(20)), executor=client.get_executor(), capture=True)
    finally:
        _barrier = None
    assert sys.stdout is stdout and sys.stderr is stderr
    assert set(df["_status"]) == {"done"}
    assert _outputs(store) == {a: _expected(a) for a in range(20)}
