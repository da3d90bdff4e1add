"""Vectorised JAX sweeps (recorder.sweep.vectorised): same runs as sweep, one compilation per chunk shape, cache, provenance."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

from conftest import ROOT  # noqa: E402

import recorder as rec  # noqa: E402
from recorder.sweep.vectorised import chunk_size_for  # noqa: E402

_COMPILES: list[float] = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kw: (
        _COMPILES.append(duration) if event == "/jax/core/compile/backend_compile_duration" else None
    )
)


def logistic(r: float, x0: float = 0.5, steps: int = 50) -> dict[str, Any]:
    """The logistic map: final value, Lyapunov exponent, and the last 4 iterates as an array."""

    def body(i: Any, carry: Any) -> Any:
        x, lyap = carry
        x = r * x * (1 - x)
        return x, lyap + jnp.log(jnp.abs(r * (1 - 2 * x)))

    x, lyap = jax.lax.fori_loop(0, steps, body, (x0 * jnp.ones(()), jnp.zeros(())))
    tail = x * jnp.arange(1.0, 5.0)
    return {"x": x, "lyapunov": lyap / steps, "tail": tail, "periodic": lyap < 0, "count": jnp.int32(steps)}


def psets(n: int) -> rec.ParamSequence:
    return rec.plist("r", [float(v) for v in np.linspace(2.5, 4.0, n)])


def db(store: Path) -> sqlite3.Connection:
    return sqlite3.connect(store / "recorder.sqlite")


def test_vsweep_equals_sweep_on_the_same_psets(tmp_path: Path) -> None:
    params = rec.pgrid(psets(23), rec.plist("x0", [0.25, 0.5]))
    jitted = jax.jit(logistic, static_argnames="steps")

    def looped(r: float, x0: float = 0.5, steps: int = 50) -> dict[str, Any]:
        return jitted(r=r, x0=x0, steps=steps)

    with rec.Recorder("map", store=tmp_path / "a", git=False) as r:
        serial = r.sweep(looped, params, progress=False)
    with rec.Recorder("map", store=tmp_path / "b", git=False) as r:
        vector = r.vsweep(logistic, params, static="steps", chunk_size=8, progress=False)
    assert list(vector.columns) == list(serial.columns)
    assert (vector["_pset_hash"] == serial["_pset_hash"]).all()
    assert (vector["_status"] == "done").all()
    for column in ("r", "x0", "steps", "count", "periodic"):
        assert vector[column].tolist() == serial[column].tolist()
    np.testing.assert_allclose(vector["x"], serial["x"], rtol=1e-5)
    np.testing.assert_allclose(vector["lyapunov"], serial["lyapunov"], rtol=1e-4, atol=1e-6)
    a, b = rec.open(tmp_path / "a"), rec.open(tmp_path / "b")
    for i in (0, 17, 45):
        np.testing.assert_allclose(
            b.array(vector["_run_id"][i], "tail"), a.array(serial["_run_id"][i], "tail"), rtol=1e-5
        )
    # Stored alike: the same kinds of cells, so SQL sees the same columns.
    kinds = "SELECT name, kind FROM results GROUP BY name, kind ORDER BY name"
    assert db(tmp_path / "a").execute(kinds).fetchall() == db(tmp_path / "b").execute(kinds).fetchall()
    assert b.sql("SELECT count(*) AS n FROM map WHERE periodic = 1")["n"][0] == int(vector["periodic"].sum())


def test_jax_numbers_are_stored_as_plain_numbers(store: Path) -> None:
    with rec.Recorder("plain", store=store, git=False) as r, r.run(a=1) as run:
        run.log(f32=jnp.float32(0.1), i32=jnp.int32(7), flag=jnp.bool_(True), vec=jnp.arange(3.0))
    (scalars,) = db(store).execute("SELECT scalars FROM runs").fetchone()
    assert json.loads(scalars) == {"f32": float(np.float32(0.1)), "i32": 7, "flag": True}  # exact, plain
    assert db(store).execute("SELECT name, kind FROM results").fetchall() == [("vec", "npy")]


def test_a_grid_not_a_multiple_of_the_chunk_compiles_once(store: Path) -> None:
    experiment = rec.experiment("chunks", store=store, git=False)(logistic)
    experiment.vsweep(psets(5), static="steps", chunk_size=7, progress=False)  # compile the rest once
    before = len(_COMPILES)
    df = experiment.vsweep(psets(30), static="steps", chunk_size=7, progress=False)  # 25 new: 4 chunks, the last 4
    assert len(_COMPILES) - before == 1
    assert len(df) == 30 and (df["_status"] == "done").all()
    before = len(_COMPILES)
    experiment.vsweep(rec.pgrid(rec.plist("steps", [20, 30]), psets(30)), static="steps", chunk_size=7, progress=False)
    assert len(_COMPILES) - before == 2  # one per value of the static parameter
    info = json.loads(db(store).execute("SELECT jax FROM sessions ORDER BY pk DESC").fetchone()[0])
    assert [p["static"] for p in info["vsweep"]] == [{"steps": 20}, {"steps": 30}]
    assert all(p["chunk_size"] == 7 for p in info["vsweep"])


def test_an_explicit_chunk_size_larger_than_the_sweep_is_clipped(store: Path) -> None:
    experiment = rec.experiment("clipped", store=store, git=False)(logistic)
    df = experiment.vsweep(psets(3), static="steps", chunk_size=100, progress=False)
    assert len(df) == 3 and (df["_status"] == "done").all()
    info = json.loads(db(store).execute("SELECT jax FROM sessions").fetchone()[0])
    assert [p["chunk_size"] for p in info["vsweep"]] == [3]


def test_skip_done_works_across_sweep_and_vsweep(store: Path) -> None:
    experiment = rec.experiment("mixed", store=store, git=False)(logistic)
    first = experiment.sweep(psets(10)[:4], progress=False)
    df = experiment.vsweep(psets(10), static="steps", chunk_size=4, progress=False)
    assert df["_run_id"][:4].tolist() == first["_run_id"].tolist()  # skipped: the sweep's runs
    assert db(store).execute("SELECT count(*) FROM runs").fetchone()[0] == 10
    again = experiment.sweep(psets(10), progress=False)
    assert again["_run_id"].tolist() == df["_run_id"].tolist()
    assert db(store).execute("SELECT count(*) FROM runs WHERE status = 'done'").fetchone()[0] == 10


def test_auto_chunk_size_is_chosen_and_recorded(store: Path) -> None:
    experiment = rec.experiment("auto", store=store, git=False)(logistic)
    df = experiment.vsweep(psets(50), static="steps", memory_budget=10_000, progress=False)
    assert len(df) == 50
    (text,) = db(store).execute("SELECT jax FROM sessions").fetchone()
    (program,) = json.loads(text)["vsweep"]
    assert program["budget_bytes"] == 10_000 and program["per_pset_bytes"] > 0
    assert program["chunk_size"] == chunk_size_for(program["per_pset_bytes"], 10_000, 50)
    assert program["chunk_size"] < 50  # the budget forced several chunks


@pytest.mark.parametrize(
    ("per_pset", "budget", "total", "expected"),
    [
        (100, 10_000, None, 50),  # two chunks alive at a time: half the budget each
        (100, 10_000, 120, 40),  # 3 equal chunks rather than 50 + 50 + 20 padded to 50
        (100, 10**12, 100_000, 25_000),  # enough psets: at least 4 chunks, so recording overlaps
        (100, 10**12, 3_000, 3_000),  # few psets: one chunk
        (10**12, 10, None, 1),  # never below one pset
        (1, 10**15, None, 1 << 16),  # nor above the cap
    ],
)
def test_chunk_size_for(per_pset: int, budget: int, total: int | None, expected: int) -> None:
    assert chunk_size_for(per_pset, budget, total) == expected


def test_parameters_that_cannot_be_stacked_are_refused_with_a_hint(store: Path) -> None:
    def model(a: float, method: str = "rk4") -> dict[str, Any]:
        return {"y": a * 2}

    experiment = rec.experiment("refused", store=store, git=False)(model)
    with pytest.raises(rec.RecorderError, match=r"parameter 'method' is str .*static=\['method'\].*\.sweep\(\)"):
        experiment.vsweep(rec.plist("a", [1.0, 2.0]), progress=False)
    with pytest.raises(rec.RecorderError, match=r"parameter 'a' is int \(2\) in pset 1 but float .*1\.0"):
        experiment.vsweep(rec.plist("a", [1.0, 2]), static="method", progress=False)
    assert experiment.vsweep(rec.plist("a", [1.0, 2.0]), static="method", progress=False)["y"].tolist() == [2, 4]
    with pytest.raises(rec.RecorderError, match="static names 'b', which is not a parameter"):
        experiment.vsweep(rec.plist("a", [1.0]), static=["b"])
    with pytest.raises(rec.RecorderError, match="chunk_size=0"):
        experiment.vsweep(rec.plist("a", [1.0]), chunk_size=0)
    with pytest.raises(rec.RecorderError, match="int32"):
        experiment.vsweep(rec.plist("a", [1, 2**40]), static="method", progress=False)


def test_functions_that_cannot_be_vectorised_are_refused_before_any_run(store: Path) -> None:
    def branchy(a: float) -> dict[str, Any]:
        return {"y": 1.0 if a > 0 else -1.0}  # Python if on a traced value

    def returns_a_tuple(a: float) -> Any:
        return a, a

    def param_named_result(a: float) -> dict[str, Any]:
        return {"A": a}

    with rec.Recorder("bad", store=store, git=False) as r:
        with pytest.raises(rec.RecorderError, match=r"(?s)cannot trace .*branchy.*lax.cond"):
            r.vsweep(branchy, rec.plist("a", [1.0, -1.0]), progress=False)
        with pytest.raises(rec.RecorderError, match="returned tuple; an experiment function returns a dict"):
            r.vsweep(returns_a_tuple, rec.plist("a", [1.0]), progress=False)
        with pytest.raises(rec.NameRefused):
            r.vsweep(param_named_result, rec.plist("a", [1.0]), progress=False)
    assert db(store).execute("SELECT count(*) FROM runs").fetchone()[0] == 0


def test_a_chunk_that_fails_at_run_time_is_recorded_failed(store: Path) -> None:
    def check(r: Any) -> Any:
        if np.any(np.asarray(r) > 3.5):
            raise ValueError("r too large")
        return np.asarray(r, dtype=np.float32)

    def guarded(r: float) -> dict[str, Any]:
        return {"y": jax.pure_callback(check, jax.ShapeDtypeStruct((), jnp.float32), r, vmap_method="sequential")}

    with rec.Recorder("fails", store=store, git=False) as r:
        df = r.vsweep(guarded, psets(8), chunk_size=4, progress=False)
        assert df["_status"].tolist() == ["done"] * 4 + ["failed"] * 4
        with pytest.raises(rec.RecorderError, match="failed"):
            r.vsweep(guarded, psets(8), chunk_size=4, progress=False, on_error="raise", skip="done")
    error = db(store).execute("SELECT error FROM runs WHERE status = 'failed' LIMIT 1").fetchone()[0]
    assert "r too large" in error and "smaller chunk_size" in error


def test_simulate_runs_nothing(store: Path) -> None:
    experiment = rec.experiment("dry", store=store, git=False)(logistic)
    df = experiment.vsweep(psets(3), simulate=True)
    assert df["_status"].tolist() == ["would run"] * 3
    assert not store.exists()


def _run(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


_CACHED = """
import sys, jax, jax.numpy as jnp
import recorder as rec
hits = []
jax.monitoring.register_event_listener(lambda event, **kw: hits.append(event))

@rec.experiment("cached", store=sys.argv[1], git=False)
def square(a: float, b: float):
    return {"y": jnp.sin(a) * b}

square.vsweep(rec.grid(a=[float(i) for i in range(int(sys.argv[2]))], b=[1.0, 2.0]), chunk_size=4,
              compile_cache=True, progress=False)
print(hits.count("/jax/compilation_cache/cache_hits"), hits.count("/jax/compilation_cache/cache_misses"))
"""


@pytest.mark.slow  # two processes compile
def test_a_second_process_with_the_compile_cache_finds_its_entries(store: Path) -> None:
    hits, misses = map(int, _run(_CACHED, str(store), "3").split())
    assert (hits, misses) == (0, 1)
    entries = list((store / "jax-cache").iterdir())
    assert entries
    hits, misses = map(int, _run(_CACHED, str(store), "5").split())  # new psets, same chunk shape
    assert (hits, misses) == (1, 0)
    assert db(store).execute("SELECT count(*) FROM runs").fetchone()[0] == 10


def test_use_compile_cache_points_jax_at_the_store(store: Path) -> None:
    out = _run(
        """
        import sys, jax, recorder as rec
        print(rec.jax.use_compile_cache(sys.argv[1]))
        print(jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs,
              jax.config.jax_persistent_cache_min_entry_size_bytes)
        """,
        str(store),
    )
    folder, settings = out.splitlines()
    assert Path(folder) == store.absolute() / "jax-cache" and folder.strip() in settings
    assert settings.split()[1:] == ["0.0", "-1"]


def test_the_session_describes_jax_even_when_opened_before_jax_was_imported(store: Path) -> None:
    out = _run(
        """
        import sys
        import recorder as rec
        with rec.Recorder("late", store=sys.argv[1], git=False) as r:
            assert "jax" not in sys.modules
            import jax.numpy as jnp
            r.vsweep(lambda a: {"y": jnp.cos(a)}, rec.plist("a", [0.0, 1.0]), progress=False)
        print("ok")
        """,
        str(store),
        env={"XLA_FLAGS": "--xla_cpu_enable_fast_math=false", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"},
    )
    assert out.strip() == "ok"
    info = json.loads(db(store).execute("SELECT jax FROM sessions").fetchone()[0])
    assert info["jax"] == jax.__version__ and info["backend"] == "cpu" and info["x64"] is False
    assert info["env"] == {"XLA_FLAGS": "--xla_cpu_enable_fast_math=false", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    assert info["device_kinds"] and info["device_count"] >= 1 and info["vsweep"][0]["vectorised"] == ["a"]


def test_import_recorder_does_not_import_jax() -> None:
    out = _run("import sys, recorder; print('jax' in sys.modules); recorder.jax; print('jax' in sys.modules)")
    assert out.split() == ["False", "True"]


_INTERRUPTED = """
import sys, jax, jax.numpy as jnp
import recorder as rec

@rec.experiment("stopped", store=sys.argv[1], git=False, flush_interval=0.05)
def model(a: float, steps: int = 1_000_000):
    x = jax.lax.fori_loop(0, steps, lambda i, x: a * x * (1 - x), 0.5 * jnp.ones(()))
    return {"y": x}

try:
    model.vsweep(rec.plist("a", [2.5 + i / 1000 for i in range(int(sys.argv[2]))]), static="steps",
                 chunk_size=4, progress=False)
except KeyboardInterrupt:
    print("interrupted")
"""


@pytest.mark.slow
def test_ctrl_c_records_finished_chunks_and_marks_those_in_flight(store: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED, str(store), "400"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    done = 0
    while done < 8 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if (store / "recorder.sqlite").exists():
            with contextlib.closing(db(store)) as con:
                with contextlib.suppress(sqlite3.OperationalError):  # the schema may not be there yet
                    done = con.execute("SELECT count(*) FROM runs WHERE status = 'done'").fetchone()[0]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert out.strip() == "interrupted", err
    con = db(store)
    statuses = dict(con.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
    assert statuses["done"] >= 8 and statuses["interrupted"] >= 1 and sum(statuses.values()) < 400
    assert set(statuses) == {"done", "interrupted"}
    assert con.execute("SELECT count(DISTINCT pset) FROM runs").fetchone()[0] == sum(statuses.values())
    assert con.execute("SELECT status FROM sessions").fetchone()[0] == "interrupted"
    assert _run(_INTERRUPTED, str(store), "400").strip() == ""  # the rerun completes the rest
    assert con.execute("SELECT count(*), count(DISTINCT pset) FROM runs WHERE status = 'done'").fetchone() == (400, 400)


_POOLED = """
import sys, warnings
import jax.numpy as jnp
import recorder as rec

@rec.experiment("pooled", store=sys.argv[1], git=False)
def model(a: float):
    return {"y": float(jnp.sin(a))}

if __name__ == "__main__":
    warnings.simplefilter("error")  # JAX warns when a process that runs its threads forks
    df = model.sweep(rec.plist("a", [0.0, 1.0, 2.0, 3.0]), workers=2, progress=False)
    print(df["_status"].tolist().count("done"))
"""


def test_a_process_pool_after_jax_is_imported_does_not_fork(tmp_path: Path, store: Path) -> None:
    script = tmp_path / "pooled.py"
    script.write_text(_POOLED)
    done = subprocess.run(
        [sys.executable, str(script), str(store)], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "4" and "fork" not in done.stderr


_POOL_KILLED = """
import os, sys, time
import jax
import recorder as rec

@rec.experiment("slow", store=sys.argv[1], git=False)
def slow(a: int):
    with open(os.path.join(sys.argv[2], str(os.getpid())), "w"):
        pass
    time.sleep(60)
    return {"a2": a * 2}

if __name__ == "__main__":
    slow.sweep(rec.plist("a", range(8)), workers=2, progress=False)
"""


def test_forkserver_workers_end_when_the_sweeping_process_is_killed(tmp_path: Path, store: Path) -> None:
    script, pids = tmp_path / "killed.py", tmp_path / "pids"
    script.write_text(_POOL_KILLED)
    pids.mkdir()
    sweeping = subprocess.Popen(
        [sys.executable, str(script), str(store), str(pids)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while len(list(pids.iterdir())) < 2:
            assert sweeping.poll() is None, sweeping.stderr.read().decode() if sweeping.stderr else ""
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.05)
        workers = [int(p.name) for p in pids.iterdir()]
        sweeping.kill()
        sweeping.wait()
        deadline = time.monotonic() + 10  # each worker checks its parent every 0.5 s; the forkserver ends first
        while any(_alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "a worker outlived the killed sweeping process"
            time.sleep(0.1)
    finally:
        if sweeping.poll() is None:
            sweeping.kill()
            sweeping.wait()


def test_an_interactive_function_is_refused_for_a_pool_once_jax_is_imported(store: Path) -> None:
    out = _run(
        """
        import sys, jax
        import recorder as rec
        def model(a):
            return {"y": a}
        with rec.Recorder("interactive", store=sys.argv[1], git=False) as r:
            try:
                r.sweep(model, rec.plist("a", [1, 2]), workers=2, progress=False)
            except rec.RecorderError as e:
                print(e)
            print(r.sweep(model, rec.plist("a", [1, 2]), progress=False)["y"].tolist())
        """,
        str(store),
    )
    assert "defined interactively" in out and "jax is imported" in out and "workers=1" in out
    assert out.strip().endswith("[1, 2]")  # and the serial sweep of the same function runs


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def test_with_x64_parameters_and_results_are_64_bit(store: Path) -> None:
    out = _run(
        """
        import sys, jax, jax.numpy as jnp
        import recorder as rec

        @rec.experiment("wide", store=sys.argv[1], git=False)
        def model(a: float, n: int):
            return {"y": a / 3, "m": n * 2**33}

        psets = rec.grid(a=[0.1, 0.2], n=[1, 2])
        vector = model.vsweep(psets, progress=False)
        serial = model.sweep(psets, skip=None, progress=False)
        print(vector["y"].tolist() == serial["y"].tolist() == [a / 3 for a in (0.1, 0.1, 0.2, 0.2)])
        print(vector["m"].tolist() == serial["m"].tolist() == [2**33, 2**34, 2**33, 2**34])
        """,
        str(store),
        env={"JAX_ENABLE_X64": "1"},
    )
    assert out.split() == ["True", "True"]
    info = json.loads(db(store).execute("SELECT jax FROM sessions ORDER BY pk").fetchone()[0])
    assert info["x64"] is True and info["env"]["JAX_ENABLE_X64"] == "1"


def test_a_chunk_recorded_in_one_go_gives_the_rows_of_the_per_run_way(tmp_path: Path) -> None:
    """Numbers per pset (floats, ints, bools, -0.0, NaN, ±inf) are stored exactly as sweep stores them."""

    def numbers(r: float) -> dict[str, Any]:
        odd = jnp.where(r > 3.5, jnp.nan, jnp.where(r < 2.7, jnp.inf, r * 2))
        return {"f": r * 0.5, "neg": -0.0 * r, "i": jnp.int32(r * 4), "b": r > 3, "odd": odd}

    jitted = jax.jit(numbers)

    def looped(r: float) -> dict[str, Any]:
        return jitted(r)

    params = psets(40)
    with rec.Recorder("num", store=tmp_path / "a", git=False) as r:
        serial = r.sweep(looped, params, progress=False)
    with rec.Recorder("num", store=tmp_path / "b", git=False) as r:
        vector = r.vsweep(numbers, params, chunk_size=16, progress=False)
    rows = "SELECT p.params, r.status, r.scalars FROM runs AS r JOIN psets AS p ON p.pk = r.pset ORDER BY p.params"
    results = "SELECT p.params, x.name, x.kind, x.value FROM results AS x JOIN runs AS r ON r.pk = x.run "
    results += "JOIN psets AS p ON p.pk = r.pset ORDER BY p.params, x.name"
    fields = "SELECT role, name, kind FROM fields ORDER BY role, name, kind"
    for sql in (rows, results, fields):
        assert db(tmp_path / "b").execute(sql).fetchall() == db(tmp_path / "a").execute(sql).fetchall()
    assert db(tmp_path / "b").execute("SELECT count(*) FROM results").fetchone()[0] > 0  # NaN and inf: cells
    for column in ("f", "i", "b", "_status"):
        assert vector[column].tolist() == serial[column].tolist()
    assert vector["odd"].isna().tolist() == serial["odd"].isna().tolist()


def stochastic(r: float, steps: int = 3) -> dict[str, Any]:
    """A noisy map: draws from the run's own key, as vsweep and sweep both give it."""
    noise = jax.random.normal(rec.jax.key(), (steps,))
    return {"y": r + noise.sum(), "u": jax.random.uniform(jax.random.fold_in(rec.jax.key(), 1))}


def test_vsweep_and_sweep_draw_the_same_numbers_from_the_per_pset_key(tmp_path: Path) -> None:
    params = rec.pgrid(psets(12), rec.plist("steps", [3]))
    with rec.Recorder("noisy", store=tmp_path / "a", git=False, seed=5) as r:
        serial = r.sweep(stochastic, params, progress=False)
    with rec.Recorder("noisy", store=tmp_path / "b", git=False, seed=5) as r:
        vector = r.vsweep(stochastic, params, static="steps", chunk_size=5, progress=False)
    assert (vector["_status"] == "done").all() and (serial["_status"] == "done").all()
    seeds = "SELECT p.hash, r.seed FROM runs AS r JOIN psets AS p ON p.pk = r.pset ORDER BY p.hash"
    assert db(tmp_path / "a").execute(seeds).fetchall() == db(tmp_path / "b").execute(seeds).fetchall()
    np.testing.assert_allclose(vector["y"], serial["y"], rtol=1e-6)
    np.testing.assert_array_equal(vector["u"], serial["u"])
    assert vector["u"].nunique() == len(vector)  # each pset its own numbers
    with rec.Recorder("noisy", store=tmp_path / "c", git=False, seed=6) as r:  # another experiment seed
        other = r.vsweep(stochastic, params, static="steps", progress=False)
    assert not np.any(other["u"].to_numpy() == vector["u"].to_numpy())


def test_the_key_is_refused_outside_a_run_and_inside_jit_in_a_sweep(store: Path) -> None:
    with pytest.raises(rec.RecorderError, match="only known inside a recorded run"):
        rec.jax.key()

    @jax.jit
    def inner(r: Any) -> Any:
        return r + jax.random.normal(rec.jax.key())

    def jitted(r: float) -> dict[str, Any]:
        return {"y": inner(r)}

    with rec.Recorder("jitted", store=store, git=False) as r:
        df = r.sweep(jitted, psets(2), progress=False)
    assert df["_status"].tolist() == ["failed", "failed"]
    (error,) = db(store).execute("SELECT error FROM runs LIMIT 1").fetchone()
    assert "inside jax.jit" in error


def test_an_explicit_chunk_size_larger_than_the_psets_left_is_clipped(store: Path) -> None:
    experiment = rec.experiment("clip", store=store, git=False)(logistic)
    experiment.vsweep(psets(10)[:7], static="steps", chunk_size=100, progress=False)
    experiment.vsweep(psets(10), static="steps", chunk_size=100, progress=False)  # 3 left to run
    more = ({"r": 2.0 + i / 10} for i in range(4))  # a generator: no len
    experiment.vsweep(more, static="steps", chunk_size=100, progress=False)
    sizes = [
        p["chunk_size"]
        for (text,) in db(store).execute("SELECT jax FROM sessions ORDER BY pk")
        for p in json.loads(text)["vsweep"]
    ]
    assert sizes == [7, 3, 4]


def test_each_run_names_its_chunk_and_its_duration_is_its_share(store: Path) -> None:
    experiment = rec.experiment("chunked", store=store, git=False)(logistic)
    df = experiment.vsweep(psets(10), static="steps", chunk_size=4, progress=False)
    (text,) = db(store).execute("SELECT jax FROM sessions").fetchone()
    chunks = json.loads(text)["chunks"]
    assert [c["index"] for c in chunks] == [0, 1, 2] and [c["psets"] for c in chunks] == [4, 4, 2]
    assert all(c["program"] == 0 for c in chunks)
    starts = {c["time_start_ms"]: c for c in chunks}
    assert len(starts) == 3  # each chunk its own start
    runs = db(store).execute("SELECT time_start_ms, duration_us FROM runs ORDER BY id").fetchall()
    assert [starts[t]["index"] for t, _ in runs] == [0] * 4 + [1] * 4 + [2] * 2
    for t, duration in runs:  # the chunk's seconds are kept to the microsecond: a run's share to within one
        assert abs(duration - starts[t]["seconds"] / starts[t]["psets"] * 1e6) <= 1
    assert len(df) == 10


def test_repeated_and_done_psets_are_run_once_as_sweep_runs_them(store: Path) -> None:
    experiment = rec.experiment("repeats", store=store, git=False)(logistic)
    done = experiment.sweep(psets(700)[:3], progress=False)
    params = list(psets(700)) + list(psets(700))[5:9] + list(psets(700))[:2]  # repeats, some in a later block
    df = experiment.vsweep(params, static="steps", chunk_size=256, progress=False)
    assert len(df) == 706 and (df["_status"] == "done").all()
    assert df["_run_id"][:3].tolist() == done["_run_id"].tolist()  # done before: skipped, filled from the store
    assert df["_run_id"][700:704].tolist() == df["_run_id"][5:9].tolist()  # repeated: run once
    assert df["_run_id"][704:].tolist() == df["_run_id"][:2].tolist()
    assert db(store).execute("SELECT count(*), count(DISTINCT pset) FROM runs").fetchone() == (700, 700)
