"""The @experiment decorator: calls as recorded runs, defaults, failures, options, sweeps, pickling."""

from __future__ import annotations

import json
import pickle
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import git

import recorder as rec
from recorder import GitError, NameRefused, RecorderError
from recorder.codec.hashing import pset_hash, run_seed

META = [
    "_run_id",
    "_pset_hash",
    "_status",
    "_time_start",
    "_duration_s",
    "_session",
    "_env_sha",
    "_exec_host",
    "_exec_pid",
    "_pset_seq",
]


# Module-level experiments: what a process pool (and pickle) can find again by name.
# No store here: each test points $RECORDER_STORE at its own tmp_path store.
@rec.experiment("power", git=False)
def power(x: int, k: int = 2) -> dict:
    """x to the power k."""
    return {"y": x**k}


def plain_power(x: int, k: int = 2) -> dict:
    return {"y": x**k}


def db(store: Path) -> sqlite3.Connection:
    return sqlite3.connect(store / "recorder.sqlite")


def count(store: Path, table: str) -> int:
    if not (store / "recorder.sqlite").exists():
        return 0
    return db(store).execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def runs(store: Path) -> list[tuple]:
    """(run id, session id, params JSON, status, error, seed) of every run, oldest first."""
    return (
        db(store)
        .execute(
            "SELECT lower(hex(r.id)), s.id, p.params, r.status, r.error, r.seed FROM runs r "
            "JOIN psets p ON p.pk = r.pset JOIN sessions s ON s.pk = r.session ORDER BY r.pk"
        )
        .fetchall()
    )


def results(store: Path) -> list[tuple]:
    """(run id, name, kind, value) of every result."""
    return (
        db(store)
        .execute(
            "SELECT lower(hex(r.id)), x.name, x.kind, x.value FROM results_all x JOIN runs r ON r.pk = x.run ORDER BY r.pk, x.name"
        )
        .fetchall()
    )


# -- decorating and calling --------------------------------------------------------


def test_bare_decorator_names_the_experiment_after_the_function(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # not inside a git repository: "auto" records no git
    monkeypatch.setenv("RECORDER_STORE", str(store))

    @rec.experiment
    def relax(x: int, steps: int = 10) -> dict:
        return {"energy": x / steps}

    assert isinstance(relax, rec.Experiment)
    assert relax.name == "relax"
    with pytest.warns(rec.RecorderWarning, match="not in a git repository"):
        assert relax(x=5) == {"energy": 0.5}
    assert db(store).execute("SELECT name FROM experiments").fetchall() == [("relax",)]
    assert [(p, s) for _, _, p, s, _, _ in runs(store)] == [('{"steps":10,"x":5}', "done")]
    assert db(store).execute("SELECT git_commit FROM sessions").fetchall() == [(None,)]


def test_decorator_with_arguments_records_one_run_in_one_session(store: Path) -> None:
    made: list[dict] = []

    @rec.experiment("lorenz", store=store, git=False, config={"solver": "rk4"})
    def simulate(a: float, b: int) -> dict:
        out = {"energy": a * b, "n": 3}
        made.append(out)
        return out

    assert simulate.name == "lorenz"
    assert not store.exists()  # decorating writes nothing
    returned = simulate(0.5, b=4)
    assert returned is made[0]  # the function's dict, unchanged
    assert returned == {"energy": 2.0, "n": 3}
    assert db(store).execute("SELECT name FROM experiments").fetchall() == [("lorenz",)]
    sessions = db(store).execute("SELECT id, status FROM sessions").fetchall()
    assert len(sessions) == 1 and sessions[0][1] == "done"
    [(_run_id, session_id, params, status, error, _)] = runs(store)
    assert session_id == sessions[0][0]
    assert (params, status, error) == ('{"a":0.5,"b":4}', "done", None)
    assert [(n, k, v) for _, n, k, v in results(store)] == [("energy", None, 2.0), ("n", None, 3)]
    assert dict(db(store).execute("SELECT name, value FROM config")) == {"solver": "rk4"}


def test_each_call_is_its_own_session(store: Path) -> None:
    @rec.experiment("e", store=store, git=False)
    def f(x: int) -> dict:
        return {"y": x}

    f(1)
    f(2)
    rows = runs(store)
    assert [p for _, _, p, _, _, _ in rows] == ['{"x":1}', '{"x":2}']
    assert rows[0][1] != rows[1][1]
    assert count(store, "sessions") == 2


def test_defaults_are_recorded_as_parameters(store: Path) -> None:
    @rec.experiment("e", store=store, git=False)
    def f(x: int, dt: float = 0.01, solver: str = "rk4", flag: bool = True) -> dict:
        return {"y": x * dt}

    f(3)
    [(params,)] = db(store).execute("SELECT params FROM psets").fetchall()
    assert json.loads(params) == {"x": 3, "dt": 0.01, "solver": "rk4", "flag": True}
    f(3, solver="euler")
    assert json.loads(runs(store)[1][2]) == {"x": 3, "dt": 0.01, "solver": "euler", "flag": True}


def test_positional_and_keyword_calls_record_the_same_pset(store: Path) -> None:
    @rec.experiment("e", store=store, git=False)
    def f(x: int, k: int = 2) -> dict:
        return {"y": x**k}

    assert f(3) == f(x=3) == f(3, 2) == f(k=2, x=3) == {"y": 9}
    assert count(store, "runs") == 4
    assert db(store).execute("SELECT params FROM psets").fetchall() == [('{"k":2,"x":3}',)]


def test_a_call_with_wrong_arguments_raises_and_records_nothing(store: Path) -> None:
    called = []

    @rec.experiment("e", store=store, git=False)
    def f(x: int, k: int = 2) -> dict:
        called.append(x)
        return {"y": x**k}

    with pytest.raises(RecorderError, match="cannot call"):
        f(nope=1)
    with pytest.raises(RecorderError):
        f(1, 2, 3)
    with pytest.raises(RecorderError):
        f()
    with pytest.raises(RecorderError):
        f(1, x=1)
    assert called == []
    assert count(store, "sessions") == 0 and count(store, "runs") == 0
    f(1)
    with pytest.raises(RecorderError):
        f(y=1)
    assert called == [1]
    assert count(store, "sessions") == 1 and count(store, "runs") == 1


def test_returning_none_records_a_done_run_without_results(store: Path) -> None:
    @rec.experiment("e", store=store, git=False)
    def f(x: int) -> None:
        return None

    assert f(1) is None
    [(_, _, _, status, error, _)] = runs(store)
    assert (status, error) == ("done", None)
    assert results(store) == []


def test_returning_a_non_dict_fails_the_run_and_names_the_function(store: Path) -> None:
    @rec.experiment("e", store=store, git=False)
    def make_list(x: int) -> list:
        return [x, x]

    with pytest.raises(RecorderError, match=r"make_list returned list") as info:
        make_list(1)
    assert "dict" in str(info.value)
    [(_, _, _, status, error, _)] = runs(store)
    assert status == "failed"
    assert "make_list returned list" in error
    assert results(store) == []


def test_an_exception_propagates_and_the_run_keeps_the_traceback(store: Path) -> None:
    @rec.experiment("e", store=store, git=False)
    def explode(x: int) -> dict:
        raise ValueError(f"boom {x}")

    with pytest.raises(ValueError, match="boom 7"):
        explode(7)
    [(_, _, params, status, error, _)] = runs(store)
    assert (params, status) == ('{"x":7}', "failed")
    assert error.startswith("Traceback (most recent call last)")
    assert "in explode" in error
    assert error.rstrip().endswith("ValueError: boom 7")


def test_wraps_keeps_name_doc_and_wrapped(store: Path) -> None:
    def energy(a: float, b: int = 1) -> dict:
        """Compute the energy."""
        return {"e": a * b}

    decorated = rec.experiment("e", store=store, git=False)(energy)
    assert decorated.__name__ == "energy"
    assert decorated.__doc__ == "Compute the energy."
    assert decorated.__qualname__ == energy.__qualname__
    assert decorated.__module__ == __name__
    assert decorated.__wrapped__ is energy
    assert power.__name__ == "power" and power.__doc__ == "x to the power k."


def test_underscore_parameters_are_refused_at_decoration(store: Path) -> None:
    with pytest.raises(NameRefused, match="'_seed'"):

        @rec.experiment("e", store=store, git=False)
        def f(x: int, _seed: int = 0) -> dict:
            return {}

    with pytest.raises(NameRefused, match="'_x'"):

        @rec.experiment
        def g(_x: int) -> dict:
            return {}

    assert not store.exists()


def test_underscore_positional_only_parameter_is_refused_at_decoration(store: Path) -> None:
    with pytest.raises(rec.RecorderError, match="'_x'"):

        @rec.experiment("e", store=store, git=False)
        def f(_x: int, /) -> dict:
            return {}


def test_positional_only_parameters_work_or_are_refused_at_decoration(store: Path) -> None:
    def f(x: int, /, k: int = 2) -> dict:
        return {"y": x**k}

    try:
        decorated = rec.experiment("e", store=store, git=False)(f)
    except RecorderError:
        return  # refused up front, with a clear error: also fine
    assert decorated(3) == {"y": 9}
    assert [(p, s) for _, _, p, s, _, _ in runs(store)] == [('{"k":2,"x":3}', "done")]


def test_var_positional_is_refused_at_decoration(store: Path) -> None:
    with pytest.raises(RecorderError, match=r"\*args"):

        @rec.experiment("e", store=store, git=False)
        def f(x: int, *args: int) -> dict:
            return {}

    assert not store.exists()


def test_options_are_checked_at_decoration(store: Path) -> None:
    def f(x: int) -> dict:
        return {}

    with pytest.raises(GitError, match="nope"):
        rec.experiment("e", store=store, git="nope")(f)
    with pytest.raises(RecorderError, match="seed"):
        rec.experiment("e", store=store, git=False, seed="x")(f)  # type: ignore[arg-type]
    with pytest.raises(RecorderError, match="seed"):
        rec.experiment("e", store=store, git=False, seed=1.5)(f)  # type: ignore[arg-type]
    with pytest.raises(RecorderError, match="experiment name"):
        rec.experiment(123)  # type: ignore[arg-type]
    assert not store.exists()


def test_git_record_mode_records_the_commit(store: Path, repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)

    @rec.experiment("e", store=store, git="record")
    def f(x: int) -> dict:
        return {"y": x}

    f(1)
    head = git(repo, "rev-parse", "HEAD")
    assert db(store).execute("SELECT git_mode, git_commit, env_sha FROM sessions").fetchall() == [
        ("record", head, head)
    ]


# -- sweeps ------------------------------------------------------------------------


def test_sweep_returns_one_row_per_pset_in_one_session(store: Path) -> None:
    @rec.experiment("e", store=store, git=False)
    def f(x: int, y: str, k: int = 2) -> dict:
        return {"energy": x**k + 0.5, "label": f"{y}{x}", "small": np.arange(3), "big": np.zeros(20_000)}

    df = f.sweep(rec.grid(x=[1, 2, 3], y=["a", "b"]))
    assert isinstance(df, pd.DataFrame)
    assert len(df) == 6
    columns = list(df.columns)
    assert columns[-len(META) :] == META
    assert set(columns[: -len(META)]) == {"x", "y", "k", "energy", "label"}  # no array columns
    assert list(zip(df["x"], df["y"], df["k"])) == [
        (1, "a", 2),
        (1, "b", 2),
        (2, "a", 2),
        (2, "b", 2),
        (3, "a", 2),
        (3, "b", 2),
    ]
    assert list(df["energy"]) == [1.5, 1.5, 4.5, 4.5, 9.5, 9.5]
    assert list(df["label"]) == ["a1", "b1", "a2", "b2", "a3", "b3"]
    assert set(df["_status"]) == {"done"}
    assert (df["_duration_s"] >= 0).all()
    assert str(df["_time_start"].dt.tz) == "UTC"

    [(session_id,)] = db(store).execute("SELECT id FROM sessions").fetchall()
    assert set(df["_session"]) == {session_id}
    rows = runs(store)
    assert sorted(df["_run_id"]) == sorted(r[0] for r in rows) and len(set(df["_run_id"])) == 6
    assert {r[1] for r in rows} == {session_id}
    hashes = dict(db(store).execute("SELECT params, lower(hex(hash)) FROM psets"))
    for x, y, k, h in zip(df["x"], df["y"], df["k"], df["_pset_hash"]):
        assert hashes[json.dumps({"k": k, "x": x, "y": y}, separators=(",", ":"))] == h

    kinds = {(name, kind) for _, name, kind, _ in results(store)}
    assert kinds == {("energy", None), ("label", None), ("small", "npy"), ("big", "object")}
    digests = {v for _, name, _, v in results(store) if name == "big"}
    assert len(digests) == 1  # the same array six times is stored once
    [digest] = digests
    assert (store / "objects" / digest[:2] / f"{digest[2:]}.npy").is_file()
    loaded = np.load(store / "objects" / digest[:2] / f"{digest[2:]}.npy")
    assert loaded.shape == (20_000,) and not loaded.any()


def test_seed_comes_from_the_pset_hash_and_the_experiment_seed(store: Path) -> None:
    @rec.experiment("e", store=store, git=False, seed=3)
    def f(x: int, k: int = 2) -> dict:
        return {"y": x}

    f(1)
    df = f.sweep(rec.grid(x=[2, 3]))
    expected_hash = pset_hash('{"k":2,"x":1}')
    seeds = {json.loads(p)["x"]: s for _, _, p, _, _, s in runs(store)}
    assert seeds[1] == run_seed(expected_hash, 3)
    for x, h in zip(df["x"], df["_pset_hash"]):
        assert seeds[x] == run_seed(h, 3)
    assert seeds[1] != run_seed(expected_hash)  # the experiment seed is mixed in


def test_pickling_gives_back_the_same_object() -> None:
    assert pickle.loads(pickle.dumps(power)) is power
    assert pickle.loads(pickle.dumps(power, protocol=2)) is power


def _pairs(df: pd.DataFrame) -> set[tuple]:
    return {(x, k, y) for x, k, y in zip(df["x"], df["k"], df["y"])}


def test_plain_function_with_two_workers_matches_serial(tmp_path: Path) -> None:
    params = rec.grid(x=range(6), k=[1, 2])
    with rec.Recorder("plain", store=tmp_path / "serial", git=False) as r:
        serial = r.sweep(plain_power, params)
    with rec.Recorder("plain", store=tmp_path / "pool", git=False) as r:
        pooled = r.sweep(plain_power, params, workers=2)
    assert set(pooled["_status"]) == {"done"}
    assert _pairs(pooled) == _pairs(serial) and len(_pairs(serial)) == 12


def test_decorated_function_with_two_workers_matches_serial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = rec.grid(x=range(6), k=[1, 2])
    monkeypatch.setenv("RECORDER_STORE", str(tmp_path / "serial"))
    serial = power.sweep(params)
    monkeypatch.setenv("RECORDER_STORE", str(tmp_path / "pool"))
    pooled = power.sweep(params, workers=2)
    assert set(serial["_status"]) == {"done"}
    assert set(pooled["_status"]) == {"done"}, runs(tmp_path / "pool")[0][4]
    assert _pairs(pooled) == _pairs(serial) and len(_pairs(serial)) == 12
    assert len(set(pooled["_session"])) == 1


def test_a_local_function_with_workers_is_refused_before_any_run(store: Path) -> None:
    @rec.experiment("e", store=store, git=False)
    def local(x: int) -> dict:
        return {"y": x}

    with pytest.raises(RecorderError, match="worker processes"):
        local.sweep(rec.grid(x=[1, 2]), workers=2)
    assert count(store, "runs") == 0


# Wrapping an existing function under another name, as one does to record a project without editing it.
fast_power = rec.experiment("fast", git=False)(plain_power)


def test_wrapping_a_function_under_another_name_works_with_a_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECORDER_STORE", str(tmp_path / "pool"))
    df = fast_power.sweep(rec.grid(x=range(4), k=[2]), workers=2)
    assert df["_status"].tolist() == ["done"] * 4, runs(tmp_path / "pool")[0][4]
    assert df["y"].tolist() == [0, 1, 4, 9]


def test_wrapping_a_function_under_another_name_works_with_dask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("RECORDER_STORE", str(tmp_path / "dask"))
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        df = fast_power.sweep(rec.grid(x=range(4), k=[2]), executor=client.get_executor())
        wrapped = power.sweep(rec.grid(x=range(3), k=[3]), executor=client.get_executor())
    assert df["_status"].tolist() == ["done"] * 4 and df["y"].tolist() == [0, 1, 4, 9]
    assert wrapped["_status"].tolist() == ["done"] * 3 and wrapped["y"].tolist() == [0, 1, 8]


WRAPPED_IN_MAIN = """
import sys
import recorder as rec

def compute(x):
    return {"y": 2 * x}

fast = rec.experiment("fast", store=sys.argv[1], git=False)(compute)

# Bound to a second name only: workers find the experiment under it.
renamed = rec.experiment("renamed", store=sys.argv[1], git=False)(lambda x: {"z": x + 1})

if __name__ == "__main__":
    df = fast.sweep([{"x": i} for i in range(4)], workers=2)
    print(df["_status"].tolist(), df["y"].tolist())
    df = renamed.sweep([{"x": i} for i in range(2)], workers=2)
    print(df["_status"].tolist(), df["z"].tolist())
"""


def test_wrapping_a_function_in_main_works_with_a_pool(tmp_path: Path, store: Path) -> None:
    import subprocess
    import sys

    script = tmp_path / "wrap.py"
    script.write_text(WRAPPED_IN_MAIN)
    done = subprocess.run(
        [sys.executable, str(script), str(store)], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["['done', 'done', 'done', 'done'] [0, 2, 4, 6]", "['done', 'done'] [1, 2]"], (
        done.stderr
    )


INTERACTIVE = """
import sys
{prelude}
import recorder as rec

@rec.experiment("inter", store={store!r}, git=False)
def f(x):
    return {{"y": x}}

f.sweep([{{"x": i}} for i in range(3)], workers=2)
print("no error")
"""


@pytest.mark.parametrize("how", ["-c", "stdin"])
@pytest.mark.parametrize("prelude", ["import jax", "import multiprocessing; multiprocessing.set_start_method('spawn')"])
def test_an_interactive_function_with_workers_is_refused_through_the_decorator(
    tmp_path: Path, store: Path, how: str, prelude: str
) -> None:
    import subprocess
    import sys

    if prelude == "import jax":
        pytest.importorskip("jax")
    code = INTERACTIVE.format(prelude=prelude, store=str(store))
    args = [sys.executable, "-c", code] if how == "-c" else [sys.executable, "-"]
    done = subprocess.run(
        args, input=None if how == "-c" else code, capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode != 0 and "no error" not in done.stdout
    assert "FunctionUnavailable" in done.stderr and "defined interactively" in done.stderr, done.stderr
    assert "has no attribute" not in done.stderr and "died" not in done.stderr
    assert count(store, "runs") == 0


UNLOADABLE = """
import importlib.util, multiprocessing, sys
import recorder as rec

if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    # A module the parent loads from a file by path: workers started afresh cannot import it by name.
    spec = importlib.util.spec_from_file_location("elsewhere_mod", sys.argv[2])
    module = importlib.util.module_from_spec(spec)
    sys.modules["elsewhere_mod"] = module
    spec.loader.exec_module(module)
    with rec.Recorder("u", store=sys.argv[1], git=False) as r:
        r.sweep(module.work, [{"x": i} for i in range(5)], workers=2)
"""


def test_a_function_workers_cannot_load_is_reported_once_as_that_error(tmp_path: Path, store: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / "elsewhere_mod.py").write_text("def work(x):\n    return {'y': x}\n")
    script = tmp_path / "main.py"
    script.write_text(UNLOADABLE)
    done = subprocess.run(
        [sys.executable, str(script), str(store), str(tmp_path / "hidden" / "elsewhere_mod.py")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode != 0
    assert done.stderr.count("FunctionUnavailable: the worker processes cannot load work") == 1, done.stderr
    assert "elsewhere_mod" in done.stderr and "died" not in done.stderr
    assert count(store, "runs") == 0


#: The executors whose workers start afresh, as a script makes them (the ``{executor}`` of the scripts below).
FRESH_EXECUTORS = {
    "spawn": "concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context('spawn'))",
    "dask": "distributed.Client(distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, "
    "dashboard_address=None)).get_executor()",
}

INTERACTIVE_EXECUTOR = """
import concurrent.futures, multiprocessing
import recorder as rec
if {dask}:
    import distributed

@rec.experiment("inter", store={store!r}, git=False)
def f(a: int) -> dict:
    return {{"y": a}}

if __name__ == "__main__":
    ex = {executor}
    f.sweep(rec.plist("a", [1, 2, 3]), executor=ex)
    print("no error")
"""


def _status_text(store: Path) -> str:
    from click.testing import CliRunner

    from recorder.cli.commands import main

    result = CliRunner().invoke(main, ["--store", str(store), "status"])
    assert result.exit_code == 0, result.output
    return result.output


def _fresh_executor(kind: str) -> str:
    if kind == "dask":
        pytest.importorskip("distributed")
    return FRESH_EXECUTORS[kind]


@pytest.mark.parametrize("kind", ["spawn", "dask"])
def test_an_interactive_experiment_with_an_executor_of_fresh_processes_is_refused_and_writes_nothing(
    tmp_path: Path, store: Path, kind: str
) -> None:
    import subprocess
    import sys

    executor = _fresh_executor(kind)
    with rec.Recorder("before", store=store, git=False) as r:
        r.sweep(plain_power, rec.plist("x", [1, 2]))
    before = _status_text(store)
    code = INTERACTIVE_EXECUTOR.format(store=str(store), executor=executor, dask=kind == "dask")
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=180, check=False
    )
    assert done.returncode != 0 and "no error" not in done.stdout
    assert "FunctionUnavailable" in done.stderr and "defined interactively" in done.stderr, done.stderr
    assert "module file" in done.stderr and "workers=1" in done.stderr
    assert "has no attribute" not in done.stderr and "interrupted" not in done.stderr
    assert _status_text(store) == before
    assert [name for (name,) in db(store).execute("SELECT name FROM experiments")] == ["before"]
    assert count(store, "sessions") == 1 and count(store, "runs") == 2


def test_an_interactive_experiment_runs_on_dask_threads_of_this_process(tmp_path: Path, store: Path) -> None:
    """Dask with ``processes=False`` runs tasks as threads of this process: an interactive function is fine there."""
    import subprocess
    import sys

    pytest.importorskip("distributed")
    executor = (
        "distributed.Client(distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, "
        "dashboard_address=None)).get_executor()"
    )
    code = INTERACTIVE_EXECUTOR.format(store=str(store), executor=executor, dask=True)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=180, check=False
    )
    assert done.returncode == 0 and "no error" in done.stdout, done.stderr
    assert [status for (status,) in db(store).execute("SELECT status FROM runs")] == ["done"] * 3


UNLOADABLE_EXECUTOR = """
import concurrent.futures, importlib.util, multiprocessing, sys
import recorder as rec
if {dask}:
    import distributed

if __name__ == "__main__":
    # A module the parent loads from a file by path: workers started afresh cannot import it by name.
    spec = importlib.util.spec_from_file_location("elsewhere_mod", sys.argv[2])
    module = importlib.util.module_from_spec(spec)
    sys.modules["elsewhere_mod"] = module
    spec.loader.exec_module(module)
    ex = {executor}
    with rec.Recorder("u", store=sys.argv[1], git=False) as r:
        r.sweep(module.work, [{{"x": i}} for i in range(5)], executor=ex)
    print("no error")
"""


@pytest.mark.parametrize("kind", ["spawn", "dask"])
def test_a_function_an_executors_workers_cannot_load_is_reported_once_as_that_error(
    tmp_path: Path, store: Path, kind: str
) -> None:
    import subprocess
    import sys

    executor = _fresh_executor(kind)
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / "elsewhere_mod.py").write_text("def work(x):\n    return {'y': x}\n")
    script = tmp_path / "main.py"
    script.write_text(UNLOADABLE_EXECUTOR.format(executor=executor, dask=kind == "dask"))
    done = subprocess.run(
        [sys.executable, str(script), str(store), str(tmp_path / "hidden" / "elsewhere_mod.py")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=180,
        check=False,
    )
    assert done.returncode != 0 and "no error" not in done.stdout
    assert done.stderr.count("FunctionUnavailable: the worker processes cannot load work") == 1, done.stderr
    assert "elsewhere_mod" in done.stderr
    assert count(store, "runs") == 0


def test_returning_a_dict_with_non_text_keys_raises_a_named_error(store: Path) -> None:
    @rec.experiment("k", store=store, git=False)
    def numbered(x: int) -> dict:
        return {1: x}

    with pytest.raises(rec.errors.ResultsNotNamed, match=r"the key 1 .*result names are str"):
        numbered(3)
    with pytest.raises(TypeError):
        numbered(4)
