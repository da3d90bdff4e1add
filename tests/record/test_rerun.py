"""recorder rerun / rec.rerun: a run called again from its record, at the recorded or today's code, and compared.

Real git repositories (conftest's make_repo), real subprocesses (the sweeps
and the reruns run in fresh interpreters), the real console script.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import git, make_repo

import recorder as rec
from recorder.cli.commands import main
from recorder.errors import FunctionMissing, RecorderError, RerunRefused

ROOT = Path(__file__).resolve().parents[2]

MODULE = """\
import numpy as np
import recorder as rec


def simulate(n: int, scale: float = 1.0) -> dict:
    rng = np.random.default_rng(rec.current_seed())
    x = rng.normal(size=n) * scale
    return {"mean": float(x.mean()), "n_out": n, "label": f"n={n}", "x": x}
"""

SWEEP = """\
import recorder as rec
from expmod import simulate

with rec.Recorder("sim", store={store!r}, seed=7, git={git!r}) as r:
    r.sweep(simulate, rec.grid(n=[3, 5, 2000]), progress=False)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done


def cli(store: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real console script (its recorder is this worktree's, by PYTHONPATH)."""
    return subprocess.run(
        ["recorder", "--store", str(store), *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=180
    )


def run_ids(store: Path) -> list[str]:
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        return [i.hex() for (i,) in conn.execute("SELECT id FROM runs WHERE rerun_of IS NULL ORDER BY pk")]
    finally:
        conn.close()


@pytest.fixture
def swept(tmp_path: Path) -> tuple[Path, Path]:
    """A repository with the module expmod (committed) and a store with a sweep of 3 psets of it."""
    repo = make_repo(tmp_path / "repo")
    (repo / "expmod.py").write_text(MODULE)
    git(repo, "add", "expmod.py")
    git(repo, "commit", "-q", "-m", "expmod")
    store = tmp_path / "store"
    python(SWEEP.format(store=str(store), git="auto"), repo)
    return repo, store


def test_the_bar_rerun_matches_at_the_recorded_code_and_differs_at_the_changed_current_code(
    swept: tuple[Path, Path],
) -> None:
    repo, store = swept
    ids = run_ids(store)
    assert len(ids) == 3
    big = ids[2]  # n=2000: x is an array in objects/
    done = cli(store, "rerun", big, cwd=repo)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("match")
    # the function changes, and is committed
    (repo / "expmod.py").write_text(MODULE.replace("* scale", "* scale * 2"))
    git(repo, "commit", "-q", "-am", "scale twice")
    done = cli(store, "rerun", big, cwd=repo)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("match")
    done = cli(store, "rerun", big, "--code", "current", cwd=repo)
    assert done.returncode == 1, done.stderr
    table = done.stdout
    assert "mean" in table and "x" in table and "changed" in table
    assert "n_out" not in table and "label" not in table  # what did not change is not in the table
    # the reruns are runs of the experiment, linked to the original
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        linked = conn.execute("SELECT rerun_of FROM overview_runs WHERE rerun_of IS NOT NULL").fetchall()
        wide = conn.execute("SELECT rerun_of FROM sim WHERE rerun_of IS NOT NULL").fetchall()
        sessions = conn.execute(
            "SELECT message, git_mode, git_repo FROM sessions WHERE message LIKE 'rerun%'"
        ).fetchall()
    finally:
        conn.close()
    assert linked == [(big,)] * 3 and wide == [(big,)] * 3
    assert {m for m, _, _ in sessions} == {f"rerun of {big}"}
    assert {mode for _, mode, _ in sessions} == {"record"}  # nothing committed into the user's repository
    assert {r for _, _, r in sessions} == {str(repo)}  # the repository, not the removed temporary worktree
    assert git(repo, "log", "--format=%s", "-1") == "scale twice"
    assert git(repo, "worktree", "list").count("\n") == 0  # the temporary worktrees are gone
    log = cli(store, "log", "-n", "1", cwd=repo).stdout
    assert f"(rerun of {big})" in log
    assert f"(rerun of {big[-8:]})" in cli(store, "log", "--oneline", "-n", "1", cwd=repo).stdout
    show = cli(store, "show", big, cwd=repo).stdout
    assert "function     expmod:simulate   (import expmod.py)" in show


def test_rec_rerun_returns_a_comparison_and_json(swept: tuple[Path, Path]) -> None:
    repo, store = swept
    first = run_ids(store)[0]
    found = rec.rerun(first[-8:], store=store)
    assert isinstance(found, rec.Comparison)
    assert found.match and found.original == first and found.differences == () and found.code == "recorded"
    with rec.open(store) as db:
        assert db.sql("SELECT rerun_of FROM overview_runs WHERE run_id = ?", [found.rerun])["rerun_of"][0] == first
        assert db.result(found.rerun, "mean") == db.result(first, "mean")
    done = cli(store, "rerun", first, "--json", cwd=repo)
    document = json.loads(done.stdout)
    assert done.returncode == 0 and document["match"] is True and document["original"] == first
    assert set(document) >= {"original", "rerun", "match", "differences", "environment"}


def test_set_makes_a_new_pset_and_says_it_is_not_a_check(swept: tuple[Path, Path]) -> None:
    _repo, store = swept
    first = run_ids(store)[0]
    done = CliRunner().invoke(main, ["--store", str(store), "rerun", first, "--set", "scale=3.0"])
    assert done.exit_code == 1, done.output
    assert "not a check" in done.output and "mean" in done.output
    with rec.open(store) as db:
        rerun_id = db.sql("SELECT run_id FROM overview_runs WHERE rerun_of = ?", [first])["run_id"][0]
        assert rec.open(store).sql("SELECT params FROM overview_runs WHERE run_id = ?", [rerun_id])["params"][0] == (
            '{"n":3,"scale":3.0}'
        )


def test_tolerances_let_close_floats_and_arrays_match(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with rec.Recorder("e", store=store, git=False) as r:
        with r.run(a=1) as one:
            one.log(y=1.0, big=np.linspace(0, 1, 5000), k=3, s="x")
        with r.run(a=2) as two:
            two.log(y=1.0 + 1e-12, big=np.linspace(0, 1, 5000) + 1e-12, k=3, s="x")
    from recorder.read.agreement import differences

    with rec.open(store) as db:
        assert {d.name for d in differences(db, one.id, two.id)} == {"y", "big"}  # bitwise by default
        assert differences(db, one.id, two.id, atol=1e-9) == []
        assert {d.name for d in differences(db, one.id, two.id, rtol=1e-15)} == {"y", "big"}


def test_missing_extra_results_and_a_changed_status_are_differences(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with rec.Recorder("e", store=store, git=False) as r:
        with r.run(a=1) as one:
            one.log(y=1, only_first=2)
        with pytest.raises(ValueError), r.run(a=2) as two:
            two.log(y=1, only_second=3)
            raise ValueError("boom")
    from recorder.read.agreement import differences

    with rec.open(store) as db:
        found = {d.name: d.what for d in differences(db, one.id, two.id)}
    assert found == {"(status)": "changed", "(error)": "changed", "only_first": "missing", "only_second": "extra"}


def test_a_function_renamed_in_the_current_code_is_named_clearly(swept: tuple[Path, Path]) -> None:
    repo, store = swept
    first = run_ids(store)[0]
    (repo / "expmod.py").write_text(MODULE.replace("def simulate", "def simulate2"))
    with pytest.raises(FunctionMissing, match="expmod:simulate"):
        rec.rerun(first, code="current", store=store)
    done = cli(store, "rerun", first, "--code", "current", cwd=repo)
    assert done.returncode == 13 and "expmod:simulate" in done.stderr and "renamed or removed" in done.stderr


def test_a_function_removed_at_the_recorded_commit_names_it_and_the_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "expmod.py").write_text(MODULE)
    git(repo, "add", "expmod.py")
    git(repo, "commit", "-q", "-m", "expmod")
    store = tmp_path / "store"
    python(SWEEP.format(store=str(store), git="auto"), repo)
    first = run_ids(store)[0]
    # the store names another commit of the repository, where the module has no such function
    old = git(repo, "rev-list", "--max-parents=0", "HEAD")
    conn = sqlite3.connect(store / "recorder.sqlite")
    conn.execute("UPDATE sessions SET git_commit = ?", (old,))
    conn.commit()
    conn.close()
    with pytest.raises(FunctionMissing, match=f"expmod:simulate.*{old}"):
        rec.rerun(first, store=store)


def test_a_commit_not_in_the_repository_is_refused(swept: tuple[Path, Path]) -> None:
    repo, store = swept
    first = run_ids(store)[0]
    conn = sqlite3.connect(store / "recorder.sqlite")
    conn.execute("UPDATE sessions SET git_commit = ?", ("ab" * 20,))
    conn.commit()
    conn.close()
    with pytest.raises(rec.CommitMissing, match="not in the repository"):
        rec.rerun(first, store=store)
    done = cli(store, "rerun", first, cwd=repo)
    assert done.returncode == 13 and "not in the repository" in done.stderr  # never 1: that is "differs"


def test_a_dirty_work_tree_is_rerun_with_code_current_and_its_diff_recorded(swept: tuple[Path, Path]) -> None:
    repo, store = swept
    first = run_ids(store)[0]
    (repo / "expmod.py").write_text(MODULE + "\n# an uncommitted comment\n")
    found = rec.rerun(first, code="current", store=store)
    assert found.match
    with rec.open(store) as db:
        session = db.sql(
            "SELECT s.git_mode, s.git_dirty, s.git_diff FROM runs AS r JOIN sessions AS s ON s.pk = r.session "
            "WHERE lower(hex(r.id)) = ?",
            [found.rerun],
        )
    assert session["git_mode"][0] == "record" and session["git_dirty"][0] == 1 and session["git_diff"][0] is not None
    assert "uncommitted" not in git(repo, "log", "-p", "-1")  # nothing was committed


def test_a_lambda_a_session_of_runs_and_a_running_run_are_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with rec.Recorder("e", store=store, git=False) as r:
        r.sweep(lambda a: {"y": a}, [{"a": 1}], progress=False)
        with r.run(a=2) as plain:
            plain.log(y=2)
    with rec.open(store) as db:
        swept = db.sql("SELECT run_id FROM overview_runs ORDER BY time_start")["run_id"][0]
    with pytest.raises(RerunRefused, match=r"is a lambda.*rerun the session instead"):
        rec.rerun(swept, store=store)
    with pytest.raises(RerunRefused, match="records no experiment function"):
        rec.rerun(plain.id, store=store)
    with rec.Recorder("e", store=store, git=False, flush_interval=0) as r, r.run(a=3) as running:
        r.flush()
        with pytest.raises(RerunRefused, match="still running"):
            rec.rerun(running.id, store=store)


SCRIPT = """\
import recorder as rec


def model(a: int) -> dict:
    return {{"y": a * rec.current_seed() % 1000}}


if __name__ == "__main__":
    with rec.Recorder("s", store={store!r}, git=False) as r:
        r.sweep(model, [{{"a": 1}}, {{"a": 2}}], progress=False)
"""


def test_a_run_recorded_without_git_reruns_its_stored_script_and_warns(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    store = tmp_path / "store"
    (work / "job.py").write_text(SCRIPT.format(store=str(store)))
    done = subprocess.run([sys.executable, "job.py"], cwd=work, env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (work / "job.py").write_text("raise SystemExit('the script changed')\n")  # the stored text is what runs
    first = run_ids(store)[1]
    with pytest.warns(rec.RecorderWarning, match="version of its code is unknown"):
        found = rec.rerun(first, store=store)
    assert found.match and any("unknown" in note for note in found.notes)
    with rec.open(store) as db:
        function = db.sql(
            "SELECT f.module, f.qualname, f.how FROM runs AS r JOIN functions AS f ON f.pk = r.function "
            "WHERE lower(hex(r.id)) = ?",
            [found.rerun],
        )
    assert function.values.tolist() == [["__main__", "model", "script"]]  # recorded as the script it is


def test_a_module_imported_without_git_is_refused_at_the_recorded_code(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "expmod.py").write_text(MODULE)
    store = tmp_path / "store"
    python(SWEEP.format(store=str(store), git=False), work)
    first = run_ids(store)[0]
    with pytest.raises(RerunRefused, match=r"does not keep.*--code current"):
        rec.rerun(first, store=store)
    # The file comes from the store: the warning names it, so a store cannot run a program unseen.
    with pytest.warns(rec.RecorderWarning, match=f"unknown.*today's file {re.escape(str(work / 'expmod.py'))} is run"):
        assert rec.rerun(first, code="current", store=store).match


def test_an_interrupted_run_may_be_rerun(swept: tuple[Path, Path]) -> None:
    _repo, store = swept
    first = run_ids(store)[0]
    conn = sqlite3.connect(store / "recorder.sqlite")
    conn.execute("UPDATE runs SET status = 'interrupted' WHERE lower(hex(id)) = ?", (first,))
    conn.commit()
    conn.close()
    found = rec.rerun(first, store=store)
    assert [(d.name, d.original, d.rerun) for d in found.differences] == [("(status)", "interrupted", "done")]


def test_the_environment_is_compared_and_warned_about(swept: tuple[Path, Path]) -> None:
    _repo, store = swept
    first = run_ids(store)[0]
    conn = sqlite3.connect(store / "recorder.sqlite")
    conn.execute("UPDATE sessions SET python = 'CPython 2.7.18'")
    conn.commit()
    conn.close()
    with pytest.warns(rec.RecorderWarning, match="environment differs.*python: CPython 2.7.18 then"):
        found = rec.rerun(first, store=store)
    assert found.match and found.environment[0].startswith("python: CPython 2.7.18 then")
    done = cli(store, "rerun", first, "--json", cwd=store.parent)
    assert done.returncode == 0  # a warning, never a failure
    assert "recorder: warning: the environment differs" in done.stderr
    assert json.loads(done.stdout)["environment"][0].startswith("python: CPython 2.7.18 then")


def test_hostile_function_records_are_refused(swept: tuple[Path, Path]) -> None:
    _repo, store = swept
    first = run_ids(store)[0]
    for changes, problem in (
        ({"module": "os;import sys"}, "not a dotted name"),
        ({"qualname": "simulate()"}, "not a dotted name"),
        ({"path": "../../etc/x.py"}, "not a relative path"),
        ({"path": "/etc/x.py", "how": "script"}, "not a relative path"),  # a script is run by its path
        ({"how": "exec"}, "damaged or crafted"),
    ):
        conn = sqlite3.connect(store / "recorder.sqlite")
        original = conn.execute("SELECT module, qualname, path, how FROM functions").fetchone()
        for column, value in changes.items():
            conn.execute(f"UPDATE functions SET {column} = ?", (value,))
        conn.commit()
        with pytest.raises(RerunRefused, match=problem):
            rec.rerun(first, store=store)
        conn.execute("UPDATE functions SET module = ?, qualname = ?, path = ?, how = ?", original)
        conn.commit()
        conn.close()


def test_a_decorated_experiment_records_its_function_and_reruns_without_a_new_decorated_session(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo")
    store = tmp_path / "store"
    (repo / "decomod.py").write_text(
        textwrap.dedent(f"""\
        import recorder as rec

        @rec.experiment("deco", store={str(store)!r})
        def model(a: int) -> dict:
            return {{"y": a + rec.current_seed() % 7}}
        """)
    )
    git(repo, "add", "decomod.py")
    git(repo, "commit", "-q", "-m", "decomod")
    python("from decomod import model; model(a=1); model.sweep([{'a': 2}], progress=False)", repo)
    with rec.open(store) as db:
        ids = db.sql("SELECT run_id FROM overview_runs ORDER BY time_start")["run_id"].tolist()
        functions = db.sql("SELECT module, qualname, path, how FROM functions").values.tolist()
    assert functions == [["decomod", "model", "decomod.py", "import"]]
    for run_id in ids:
        assert rec.rerun(run_id, store=store).match
    with rec.open(store) as db:
        assert db.sql("SELECT count(*) AS n FROM overview_runs WHERE rerun_of IS NOT NULL")["n"][0] == 2


def test_a_vsweep_run_is_rerun_by_a_plain_call_and_says_so(tmp_path: Path) -> None:
    pytest.importorskip("jax")
    repo = make_repo(tmp_path / "repo")
    store = tmp_path / "store"
    (repo / "jmod.py").write_text("def f(a):\n    return {'y': a * 2.0}\n")
    git(repo, "add", "jmod.py")
    git(repo, "commit", "-q", "-m", "jmod")
    python(
        "import jax, recorder as rec\nfrom jmod import f\n"
        f"with rec.Recorder('v', store={str(store)!r}) as r:\n"
        "    r.vsweep(f, [{'a': 1.0}, {'a': 2.0}], progress=False)\n",
        repo,
    )
    first = run_ids(store)[0]
    found = rec.rerun(first, store=store)
    assert any("vsweep" in note and "plain call" in note for note in found.notes)
    assert [d.name for d in found.differences] in ([], ["y"])  # float32 from jax, a float from the plain call


@pytest.mark.parametrize("mode", ["record", "snapshot"])
def test_uncommitted_code_of_a_record_or_snapshot_session_is_what_reruns(tmp_path: Path, mode: str) -> None:
    """The run ran modified, uncommitted code: its recorded diff (record) or snapshot ref holds it, HEAD does not."""
    repo = make_repo(tmp_path / "repo")
    (repo / "expmod.py").write_text(MODULE)
    git(repo, "add", "expmod.py")
    git(repo, "commit", "-q", "-m", "expmod")
    (repo / "expmod.py").write_text(MODULE.replace("* scale", "* scale * 3"))  # not committed
    store = tmp_path / "store"
    python(SWEEP.format(store=str(store), git=mode), repo)
    git(repo, "checkout", "-q", "--", "expmod.py")  # the modification is gone from the work tree
    first = run_ids(store)[0]
    found = rec.rerun(first, store=store, keep=True)
    assert found.match, found.differences
    kept = Path(found.folder or "")
    assert "* scale * 3" in (kept / "expmod.py").read_text()  # --keep: the code folder stays
    assert not rec.rerun(first, code="current", store=store).match  # today's code lacks the change
    done = cli(store, "show", found.rerun, cwd=repo)
    assert f"rerun of     {first}" in done.stdout


def test_untracked_modules_of_the_session_are_warned_about(swept: tuple[Path, Path], tmp_path: Path) -> None:
    repo, _ = swept
    store = tmp_path / "store2"
    (repo / "helper.py").write_text("K = 1\n")  # imported by the session, never added to git
    python("import helper\n" + SWEEP.format(store=str(store), git="auto"), repo)
    first = run_ids(store)[0]
    with pytest.warns(rec.RecorderWarning, match=r"did not track \(helper.py"):
        assert rec.rerun(first, store=store).match


def test_a_merged_store_keeps_the_function_and_rerun_of(swept: tuple[Path, Path], tmp_path: Path) -> None:
    _repo, store = swept
    first = run_ids(store)[0]
    found = rec.rerun(first, store=store)
    merged = tmp_path / "merged"
    rec.merge([store], into=merged)
    with rec.open(merged) as db:
        rows = db.sql(
            "SELECT o.run_id, o.rerun_of, f.module, f.qualname, f.path FROM overview_runs AS o "
            "JOIN runs AS r ON lower(hex(r.id)) = o.run_id JOIN functions AS f ON f.pk = r.function"
        )
    assert len(rows) == 4 and set(rows["module"]) == {"expmod"} and set(rows["path"]) == {"expmod.py"}
    assert rows.set_index("run_id")["rerun_of"][found.rerun] == first
    assert rec.rerun(first, store=merged).match  # a merged store's runs can be rerun too


def test_a_store_naming_a_loaded_module_runs_nothing_of_it(swept: tuple[Path, Path], tmp_path: Path) -> None:
    """A crafted function record (os:system, a pset with a command) must not run: the module imported is checked."""
    _repo, store = swept
    first = run_ids(store)[0]
    marker = tmp_path / "PWNED"
    conn = sqlite3.connect(store / "recorder.sqlite")
    conn.execute("UPDATE functions SET module = 'os', qualname = 'system', path = 'os.py', how = 'import'")
    conn.execute("UPDATE psets SET params = ?", (json.dumps({"command": f"touch {marker}"}),))
    conn.commit()
    conn.close()
    for code in ("recorded", "current"):
        with pytest.raises(RecorderError, match="not from the recorded file"):
            rec.rerun(first, code=code, store=store)
        assert not marker.exists()


def test_a_working_folder_from_the_store_cannot_stand_in_for_recorder(swept: tuple[Path, Path], tmp_path: Path) -> None:
    """A committed folder holding a package named recorder, named as the run's working folder, is never imported."""
    repo, store = swept
    marker = tmp_path / "PWNED"
    shadow = repo / "sub" / "recorder"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('shadowed')\nraise SystemExit(9)\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a folder that shadows recorder")
    conn = sqlite3.connect(store / "recorder.sqlite")
    conn.execute("UPDATE sessions SET cwd = ?", (str(repo / "sub"),))
    conn.commit()
    conn.close()
    first = run_ids(store)[0]
    assert rec.rerun(first, code="current", store=store).match
    assert not marker.exists()
