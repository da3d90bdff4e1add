"""recorder rerun SESSION / rec.rerun_session: a session's script run again into a scratch store, compared pset by pset.

Real git repositories (conftest's make_repo), the scripts recorded and rerun
as real subprocesses, the real console script.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import git, make_repo

import recorder as rec

ROOT = Path(__file__).resolve().parents[2]

# Three psets, numpy randomness seeded by rec.current_seed(); a scale read from a file named on the
# command line, relative to the working folder (so that argv and the working folder must be mapped).
WALK = """\
import sys
from pathlib import Path

import numpy as np
import recorder as rec

scale = float(Path(sys.argv[1]).read_text())
with rec.Recorder("walk", seed=11, git={git!r}{store}) as r:
    for a in [0.5, 1.0, 2.0]:
        with r.run(a=a) as run:
            rng = np.random.default_rng(rec.current_seed())
            run.log(y=float(a * scale * rng.normal()), x=rng.normal(size=50) * a, label=f"a={{a}}")
"""


def _env(tmp: Path, **more: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp)}
    env.pop("RECORDER_STORE", None)
    return {**env, **more}


def record(repo: Path, store: Path, args: list[str], cwd: Path) -> None:
    """Run the script as a user does (the store from $RECORDER_STORE unless the script names one)."""
    tmp = repo.parent / "tmp"
    tmp.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=_env(tmp, RECORDER_STORE=str(store)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def cli(store: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real console script; temporary folders (worktrees, scratch stores) go to ``tmp`` beside the repository."""
    tmp = cwd.parent / "tmp" if (cwd.parent / "tmp").is_dir() else cwd / "tmp"
    tmp.mkdir(exist_ok=True)
    return subprocess.run(
        ["recorder", "--store", str(store), *args], cwd=cwd, env=_env(tmp), capture_output=True, text=True, timeout=300
    )


def scratch_stores(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("recorder-rerun-store-*"))


def session_ids(store: Path) -> list[str]:
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        return [i for (i,) in conn.execute("SELECT id FROM sessions ORDER BY pk")]
    finally:
        conn.close()


def dump(store: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """The store's database as SQL, and its files with their sizes (what must not change)."""
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        sql = list(conn.iterdump())
    finally:
        conn.close()
    files = sorted(
        (str(p.relative_to(store)), p.stat().st_size)
        for p in store.rglob("*")
        if p.is_file() and not p.name.startswith("recorder.sqlite")
    )
    return sql, files


@pytest.fixture
def walked(tmp_path: Path) -> tuple[Path, Path, str]:
    """A repository with scripts/walk.py and data/scale.txt (committed), and a store with one session of it.

    Recorded from the repository's top folder as ``python scripts/walk.py data/scale.txt``.
    """
    repo = make_repo(tmp_path / "repo")
    (repo / "scripts").mkdir()
    (repo / "data").mkdir()
    (repo / "scripts" / "walk.py").write_text(WALK.format(git="auto", store=""))
    (repo / "data" / "scale.txt").write_text("1.5\n")
    git(repo, "add", "scripts", "data")
    git(repo, "commit", "-q", "-m", "walk")
    store = tmp_path / "store"
    record(repo, store, ["scripts/walk.py", "data/scale.txt"], repo)
    (session,) = session_ids(store)
    return repo, store, session


def test_the_bar_a_session_reruns_at_its_recorded_code_and_differs_at_the_changed_current_code(
    walked: tuple[Path, Path, str],
) -> None:
    repo, store, session = walked
    tmp = repo.parent / "tmp"
    before = dump(store)
    head = git(repo, "rev-parse", "HEAD")
    done = cli(store, "rerun", session, cwd=repo)
    assert done.returncode == 0, done.stderr
    assert "3 matched, 0 differing, 0 missing, 0 extra" in done.stdout
    assert done.stdout.strip().endswith("match")
    assert scratch_stores(tmp) == []  # everything matched: the scratch store is removed
    assert dump(store) == before  # the original store is untouched
    # the script and its data change, and are committed: the recorded code still matches
    (repo / "scripts" / "walk.py").write_text(WALK.format(git="auto", store="").replace("a * scale", "a * scale * 2"))
    (repo / "data" / "scale.txt").write_text("3.0\n")
    git(repo, "commit", "-q", "-am", "twice")
    done = cli(store, "rerun", session[-10:], cwd=repo)  # a short id
    assert done.returncode == 0, done.stderr
    assert "3 matched" in done.stdout and scratch_stores(tmp) == []
    # today's code differs in y, not in x or label
    done = cli(store, "rerun", session, "--code", "current", cwd=repo)
    assert done.returncode == 1, done.stderr
    assert "0 matched, 3 differing, 0 missing, 0 extra" in done.stdout
    rows = [line for line in done.stdout.splitlines() if "differing" in line and "a=" in line]
    assert len(rows) == 3 and all(row.rstrip().endswith("y") for row in rows)
    (kept,) = scratch_stores(tmp)
    assert f"scratch store kept: {kept}" in done.stdout
    with rec.open(kept) as db:  # the rerun's runs, in the scratch store
        assert len(db.df("walk")) == 3
        assert set(db.sql("SELECT git_mode, git_repo FROM sessions").itertuples(index=False)) == {("record", str(repo))}
    assert dump(store) == before
    assert git(repo, "rev-parse", "HEAD") != head and git(repo, "log", "--format=%s", "-1") == "twice"
    assert git(repo, "status", "--porcelain") == ""  # nothing committed, nothing left by a rerun
    assert git(repo, "worktree", "list").count("\n") == 0


def test_rec_rerun_session_and_json_and_a_run_naming_its_session(walked: tuple[Path, Path, str]) -> None:
    repo, store, session = walked
    with rec.open(store) as db:
        run = db.df("walk")["_run_id"].iloc[1]
    found = rec.rerun_session(session, store=store)
    assert isinstance(found, rec.SessionComparison)
    assert found.match and found.session == session and found.store is None and found.exit_status == 0
    assert [r.outcome for r in found.runs] == ["matched"] * 3
    assert [r.params for r in found.runs] == [{"a": 0.5}, {"a": 1.0}, {"a": 2.0}]
    # a run of a `with r.run(...)` session: `recorder rerun RUN` says how to rerun its session
    done = cli(store, "rerun", run, cwd=repo)
    assert done.returncode == 13 and f"recorder rerun --session {run}" in done.stderr
    done = cli(store, "rerun", "--session", run, "--json", cwd=repo)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["session"] == session and document["match"] is True
    assert (document["matched"], document["differing"], document["missing"], document["extra"]) == (3, 0, 0, 0)
    assert document["store"] is None and len(document["runs"]) == 3


def test_an_id_a_run_and_its_session_both_start_with_is_ambiguous_unless_session_is_asked(
    walked: tuple[Path, Path, str],
) -> None:
    repo, store, session = walked
    with rec.open(store) as db:
        runs = list(db.df("walk")["_run_id"])
    ids = [session, *runs]
    shared = next((i for i in range(24) if len({x[i] for x in ids}) > 1), 24)
    prefix = session[:shared]  # the milliseconds' high digits: shared
    assert prefix
    done = cli(store, "rerun", prefix, cwd=repo)
    assert done.returncode == 5, done.stderr
    assert "give more digits, or --session" in done.stderr
    done = cli(store, "rerun", "--session", prefix, cwd=repo)
    assert done.returncode == 0, done.stderr
    done = cli(store, "rerun", "--session", "ffffffff", cwd=repo)
    assert done.returncode == 4 and "no session, and no run, with id 'ffffffff'" in done.stderr


def test_a_result_that_depends_on_a_changed_file_outside_the_repository_differs_and_keeps_the_store(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "walk.py").write_text(WALK.format(git="auto", store=""))
    git(repo, "add", "walk.py")
    git(repo, "commit", "-q", "-m", "walk")
    outside = tmp_path / "scale.txt"
    outside.write_text("1.0\n")
    store = tmp_path / "store"
    record(repo, store, ["walk.py", str(outside)], repo)
    (session,) = session_ids(store)
    outside.write_text("1.25\n")
    done = cli(store, "rerun", session, cwd=repo)
    assert done.returncode == 1, done.stderr
    assert "0 matched, 3 differing" in done.stdout and done.stdout.count("differing  y") == 3
    (kept,) = scratch_stores(tmp_path / "tmp")
    assert f"scratch store kept: {kept}" in done.stdout
    done = cli(store, "rerun", session, "--rtol", "0.3", cwd=repo)  # within the tolerance
    assert done.returncode == 0, done.stderr
    assert len(scratch_stores(tmp_path / "tmp")) == 1


@pytest.mark.parametrize("mode", ["snapshot", "record"])
def test_a_snapshot_or_record_session_reruns_its_uncommitted_code(tmp_path: Path, mode: str) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "walk.py").write_text(WALK.format(git=mode, store=""))
    (repo / "scale.txt").write_text("2.0\n")
    git(repo, "add", "walk.py", "scale.txt")
    git(repo, "commit", "-q", "-m", "walk")
    changed = WALK.format(git=mode, store="").replace("y=float(", "y=100 + float(")
    (repo / "walk.py").write_text(changed)  # not committed: the session's snapshot ref (or diff) holds it
    store = tmp_path / "store"
    record(repo, store, ["walk.py", "scale.txt"], repo)
    (session,) = session_ids(store)
    with rec.open(store) as db:
        assert (db.df("walk")["y"] > 50).all()
        (ref,) = db.sql("SELECT git_snapshot_ref FROM sessions")["git_snapshot_ref"]
    assert ref.startswith("refs/recorder/") if mode == "snapshot" else ref is None
    git(repo, "checkout", "--", "walk.py")  # the work tree is back at the commit
    refs = git(repo, "for-each-ref", "refs/recorder/")
    done = cli(store, "rerun", session, cwd=repo)
    assert done.returncode == 0, done.stderr
    assert "3 matched" in done.stdout
    assert git(repo, "for-each-ref", "refs/recorder/") == refs  # the rerun made no snapshot
    done = cli(store, "rerun", session, "--code", "current", cwd=repo)  # the committed code: no "+ 100"
    assert done.returncode == 1 and "3 differing" in done.stdout


def test_a_script_that_names_its_store_writes_only_to_the_scratch_store(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    store = tmp_path / "store"
    (repo / "walk.py").write_text(WALK.format(git="auto", store=f", store={str(store)!r}"))
    (repo / "scale.txt").write_text("2.0\n")
    git(repo, "add", "walk.py", "scale.txt")
    git(repo, "commit", "-q", "-m", "walk")
    record(repo, store, ["walk.py", "scale.txt"], repo)
    (session,) = session_ids(store)
    before = dump(store)
    done = cli(store, "rerun", session, "--keep", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert "3 matched" in done.stdout
    assert dump(store) == before  # not a row, not a file more: the script's store= was the scratch store
    (kept,) = scratch_stores(tmp_path / "tmp")  # --keep
    assert f"scratch store kept: {kept}" in done.stdout
    with rec.open(kept) as db:
        assert len(db.df("walk")) == 3


def test_a_sweep_session_reruns_its_script(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "sweep.py").write_text(
        "import numpy as np\nimport recorder as rec\n\n\n"
        "def f(n: int) -> dict:\n"
        "    return {'m': float(np.random.default_rng(rec.current_seed()).normal(size=n).mean())}\n\n\n"
        "if __name__ == '__main__':\n"
        "    with rec.Recorder('sw', seed=3) as r:\n"
        "        r.sweep(f, rec.grid(n=[2, 4]), progress=False)\n"
        "        r.sweep(f, rec.grid(n=[3, 4]), skip=None, progress=False)\n"
    )
    git(repo, "add", "sweep.py")
    git(repo, "commit", "-q", "-m", "sweep")
    store = tmp_path / "store"
    record(repo, store, ["sweep.py"], repo)
    (session,) = session_ids(store)
    done = cli(store, "rerun", session, "--json", cwd=repo)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["matched"] == 4  # n=4 twice: paired in order of occurrence
    # run again into the same store: skip="done" skips n=2 and n=4 in the first sweep
    record(repo, store, ["sweep.py"], repo)
    second = session_ids(store)[1]
    done = cli(store, "rerun", second, "--json", cwd=repo)
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert (document["matched"], document["extra"]) == (2, 2)  # the scratch store had nothing to skip
    assert sorted(r["params"]["n"] for r in document["runs"] if r["outcome"] == "extra") == [2, 4]


def test_a_session_without_git_reruns_its_stored_script_and_warns(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "walk.py").write_text(WALK.format(git=False, store=""))
    (work / "scale.txt").write_text("2.0\n")
    store = tmp_path / "store"
    record(work, store, ["walk.py", str(work / "scale.txt")], work)
    (session,) = session_ids(store)
    (work / "walk.py").write_text("raise SystemExit('not this one')\n")  # the store's copy is what runs
    done = cli(store, "rerun", session, cwd=work)
    assert done.returncode == 0, done.stderr
    assert "3 matched" in done.stdout
    assert "recorded without git: the version of its code is unknown" in done.stderr


def test_hostile_session_records_are_refused(walked: tuple[Path, Path, str]) -> None:
    repo, store, session = walked
    outside = repo.parent / "x.py"
    outside.write_text("open('PWNED', 'w').write('')\n")
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        (script_path, cwd, argv) = conn.execute("SELECT script_path, cwd, argv FROM sessions").fetchone()
    finally:
        conn.close()
    cases = [
        ("script_path", "../../x.py", "is not an absolute path without '..'"),
        ("script_path", f"{repo}/../x.py", "is not an absolute path without '..'"),
        ("script_path", str(outside), "is outside the repository"),
        ("script_path", f"{repo}/scripts/nothere.py", "is not in the code"),
        ("cwd", f"{repo}/../..", "is not an absolute path without '..'"),
        ("argv", '{"not": "a list"}', "command line"),
        ("script_path", None, "records no main script"),
    ]
    for column, value, message in cases:
        conn = sqlite3.connect(store / "recorder.sqlite")
        with conn:
            conn.execute(f"UPDATE sessions SET {column} = ?", (value,))
        conn.close()
        done = cli(store, "rerun", session, cwd=repo)
        assert done.returncode == 13, (column, value, done.stdout, done.stderr)
        assert message in done.stderr, (column, value, done.stderr)
        conn = sqlite3.connect(store / "recorder.sqlite")
        with conn:
            conn.execute("UPDATE sessions SET script_path = ?, cwd = ?, argv = ?", (script_path, cwd, argv))
        conn.close()
    assert not list(repo.parent.rglob("PWNED"))
    assert git(repo, "worktree", "list").count("\n") == 0
    assert scratch_stores(repo.parent / "tmp") == []


def test_a_running_session_is_refused_and_a_timeout_stops_the_script(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "slow.py").write_text(
        "import os, time\nimport recorder as rec\n\n"
        "with rec.Recorder('slow') as r:\n"
        "    with r.run(a=1) as run:\n"
        "        run.log(y=1)\n"
        "    if os.environ.get('RECORDER_RERUN_STORE'):\n"
        "        time.sleep(120)\n"
    )
    git(repo, "add", "slow.py")
    git(repo, "commit", "-q", "-m", "slow")
    store = tmp_path / "store"
    record(repo, store, ["slow.py"], repo)
    (session,) = session_ids(store)
    done = cli(store, "rerun", session, "--timeout", "3", cwd=repo)
    assert done.returncode == 13, done.stderr
    assert "ran past the timeout of 3 s and was stopped" in done.stderr
    (kept,) = scratch_stores(tmp_path / "tmp")
    assert str(kept) in done.stderr
    with rec.open(kept) as db:  # SIGTERM: the session ended, its run kept
        assert list(db.sql("SELECT status FROM sessions")["status"]) == ["interrupted"]
        assert len(db.df("slow")) == 1


def test_a_session_still_recording_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with rec.Recorder("live", store=store, git=False) as r:
        with r.run(a=1) as run:
            run.log(y=1)
        assert r.id is not None
        with pytest.raises(rec.RerunRefused, match="is still recording"):
            rec.rerun_session(r.id, store=store)


COUNT = """\
import sys
from pathlib import Path

import recorder as rec

n = int(Path(sys.argv[1]).read_text())
with rec.Recorder("count", git="auto") as r:
    for i in range(n):
        with r.run(i=i) as run:
            run.log(y=i * i)
"""


def test_runs_only_the_session_or_only_the_rerun_has_are_missing_or_extra_and_a_failed_script_differs(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "count.py").write_text(COUNT)
    git(repo, "add", "count.py")
    git(repo, "commit", "-q", "-m", "count")
    outside = tmp_path / "n.txt"
    outside.write_text("3")
    store = tmp_path / "store"
    record(repo, store, ["count.py", str(outside)], repo)
    (session,) = session_ids(store)
    for n, counts in (("2", (2, 0, 1, 0)), ("4", (3, 0, 0, 1))):
        outside.write_text(n)
        done = cli(store, "rerun", session, "--json", cwd=repo)
        assert done.returncode == 1, done.stderr
        document = json.loads(done.stdout)
        assert (document["matched"], document["differing"], document["missing"], document["extra"]) == counts
        assert document["store"] is not None and Path(document["store"]).is_dir()
    outside.write_text("three")  # the script fails before recording anything
    done = cli(store, "rerun", session, cwd=repo)
    assert done.returncode == 1, done.stderr
    assert "0 matched, 0 differing, 3 missing, 0 extra" in done.stdout
    assert "the script exited with status 1 (the session ended done)" in done.stdout
