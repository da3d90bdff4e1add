"""Shards: rec.merge / rec.extract and `recorder merge` / `recorder extract`, on real stores.

Shards recorded without git are compared by the digest of their main script
(their fallback env SHAs differ for every session): the shards made in this
process all have the same one (``_one_main_script``: under pytest-xdist a
worker's ``__main__`` has no file), so they merge; the tests about code
versions use real git commits, or real scripts run in other processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import git

import recorder as rec
from recorder.cli.commands import main

EXP = "exp"
CONFIG = {"dt": 0.1}


@pytest.fixture(autouse=True)
def _one_main_script(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Give this process a main script file, as ``python -m pytest`` has and an xdist worker has not."""
    script = tmp_path_factory.mktemp("main") / "main_script.py"  # not in tmp_path: tests list it
    script.write_text("# the main script of every shard recorded in this process\n")
    monkeypatch.setattr(sys.modules["__main__"], "__file__", str(script), raising=False)


def model(a: float, b: int = 1) -> dict:
    """Scalars, a str, and an array too large to be inline (80 KB > 64 KiB): it goes to objects/."""
    return {"y": a * b, "label": f"a={a}", "curve": np.full(10_000, a)}


def shard(store: Path, psets: Any, *, config: dict | None = None, experiment: str = EXP, func: Any = model) -> Path:
    """Record a sweep of ``psets`` into the store ``store`` (a session of its own, without git)."""
    with rec.Recorder(experiment, store=store, git=False, config=CONFIG if config is None else config) as r:
        r.sweep(func, psets, progress=False)
    return store


def db_bytes(store: Path) -> bytes:
    return (store / "recorder.sqlite").read_bytes()


def object_files(store: Path) -> list[str]:
    """Every file under objects/ (temp files included), relative to it."""
    root = store / "objects"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def run_ids(store: Path, experiment: str | None = None) -> set[str]:
    with rec.open(store) as db:
        query = "SELECT run_id FROM overview_runs" + (" WHERE experiment = ?" if experiment else "")
        return set(db.sql(query, (experiment,) if experiment else ())["run_id"])


def count(store: Path, query: str = "SELECT count(*) FROM runs") -> int:
    with rec.open(store) as db:
        return int(db.sql(query).iloc[0, 0])


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        digest = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
        return ("array", value.dtype.str, value.shape, digest)
    return value


_RUNS = """
SELECT lower(hex(r.id)) AS id, p.params, r.status, r.error, c.text AS comment, t.text AS output
FROM runs AS r JOIN psets AS p ON p.pk = r.pset JOIN experiments AS e ON e.pk = r.experiment
LEFT JOIN comments AS c ON c.pk = r.comment LEFT JOIN texts AS t ON t.digest = r.output
WHERE e.name = ?
"""
_RESULTS = """
SELECT x.name, c.text AS comment FROM results_all AS x JOIN runs AS r ON r.pk = x.run
LEFT JOIN comments AS c ON c.pk = x.comment WHERE lower(hex(r.id)) = ? ORDER BY x.name
"""


def _text(value: Any) -> str | None:
    """A text column of db.sql(): pandas may show NULL as NaN."""
    return value if isinstance(value, str) else None


def contents(store: Path, experiment: str = EXP) -> dict[str, list[tuple]]:
    """Per pset (its canonical JSON): each run's status, error, comment, output and results (arrays by content)."""
    found: dict[str, list[tuple]] = {}
    with rec.open(store) as db:
        for run_id, params, status, error, comment, output in db.sql(_RUNS, (experiment,)).itertuples(index=False):
            results = tuple(
                (name, _plain(db.result(run_id, name)), _text(note))
                for name, note in db.sql(_RESULTS, (run_id,)).itertuples(index=False)
            )
            error = _text(error)
            last_line = error.strip().splitlines()[-1] if error else None
            found.setdefault(params, []).append((status, last_line, _text(comment), _text(output), results))
    return {params: sorted(runs, key=repr) for params, runs in found.items()}


# -- shards from separate processes ------------------------------------------------------

SHARD_JOB = """
import sys
import numpy as np
import recorder as rec

def model(a: float, b: int) -> dict:
    print(f"solving a={a}, b={b}")
    if a == 2.5 and b == 2:
        raise ValueError("unstable at a=2.5, b=2")
    return {"y": a * b, "label": f"a={a}", "curve": np.full(10_000, a)}

store, task, tasks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
grid = list(rec.grid(a=[0.5, 1.5, 2.5], b=[1, 2]))
with rec.Recorder("exp", store=store, git=False, config={"dt": 0.1}) as r:
    r.sweep(model, grid[task::tasks], progress=False, capture=True)
    if task == tasks - 1:  # a hand-made run with comments, in the last shard
        with r.run(a=9.0, b=0) as run:
            run.log(y=0.0, curve=np.full(10_000, 9.0))
            run.log(weight=2.0, comment="hand-made")
            run.log(comment="a run outside the grid")
"""


def test_shards_from_separate_processes_merge_into_the_store_of_one_job(tmp_path: Path) -> None:
    jobs = {
        name: subprocess.Popen(
            [sys.executable, "-c", SHARD_JOB, str(tmp_path / name), task, tasks],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, task, tasks in [("shard0", "0", "2"), ("shard1", "1", "2"), ("whole", "0", "1")]
    }
    for name, job in jobs.items():
        _, err = job.communicate(timeout=120)
        assert job.returncode == 0, f"{name}: {err}"
    shards = [tmp_path / "shard0", tmp_path / "shard1"]
    dest = tmp_path / "merged"

    report = rec.merge(shards, dest, allow_code_mismatch=True, progress=False)

    # 6 grid psets (one of them failed) and the hand-made run; arrays of a = 0.5, 1.5, 2.5 and 9.0
    assert (report.runs, report.skipped, report.objects) == (7, 0, 4)
    assert report.object_bytes == sum((dest / "objects" / f).stat().st_size for f in object_files(dest))
    merged, whole = contents(dest), contents(tmp_path / "whole")
    assert merged == whole
    assert len(merged) == 7
    statuses = sorted(status for runs in merged.values() for status, *_ in runs)
    assert statuses == ["done"] * 6 + ["failed"]
    assert merged['{"a":2.5,"b":2}'][0][1] == "ValueError: unstable at a=2.5, b=2"
    assert merged['{"a":9.0,"b":0}'][0][2] == "a run outside the grid"
    assert merged['{"a":0.5,"b":2}'][0][3] == "solving a=0.5, b=2\n"  # the captured output
    # the runs keep their ids: the merged store holds exactly the shards' runs
    ids = run_ids(dest)
    assert ids == run_ids(shards[0]) | run_ids(shards[1]) and len(ids) == 7
    assert not ids & run_ids(tmp_path / "whole")
    with rec.open(dest) as db:
        config = db.sql("SELECT session_id, name, value FROM overview_config ORDER BY session_id")
        sessions = set(db.sql("SELECT session_id FROM overview_sessions")["session_id"])
    assert config[["name", "value"]].values.tolist() == [["dt", 0.1], ["dt", 0.1]]
    shard_sessions = set()
    for s in shards:
        with rec.open(s) as db:
            shard_sessions |= set(db.sql("SELECT session_id FROM overview_sessions")["session_id"])
    assert sessions == set(config["session_id"]) == shard_sessions


# -- idempotence -----------------------------------------------------------------------


def test_merging_twice_changes_nothing(tmp_path: Path) -> None:
    a = shard(tmp_path / "a", rec.grid(a=[1.0, 2.0], b=[1]))
    b = shard(tmp_path / "b", rec.grid(a=[1.0, 3.0], b=[2]))
    dest = tmp_path / "dest"
    first = rec.merge([a, b], dest, allow_code_mismatch=True, progress=False)
    assert (first.runs, first.skipped, first.objects) == (4, 0, 3)
    before, files = db_bytes(dest), object_files(dest)

    second = rec.merge([a, b], dest, allow_code_mismatch=True, progress=False)

    assert second == rec.MergeReport(runs=0, skipped=4, objects=0, object_bytes=0)
    assert db_bytes(dest) == before and object_files(dest) == files
    # one shard alone again: its code is known to the destination now, so no flag is needed
    assert rec.merge(b, dest, progress=False) == rec.MergeReport(0, 2, 0, 0)
    assert db_bytes(dest) == before
    assert count(dest) == 4 and count(dest, "SELECT count(*) FROM sessions") == 2


# -- refusals: config, code, names -----------------------------------------------------------


def test_conflicting_config_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    dest = shard(tmp_path / "dest", rec.plist("a", [1.0]))
    other = shard(tmp_path / "other", rec.plist("a", [2.0, 3.0]), config={"dt": 0.2})
    before, files = db_bytes(dest), object_files(dest)

    with pytest.raises(rec.RecorderError) as info:
        rec.merge(other, dest, allow_code_mismatch=True, progress=False)

    message = str(info.value).replace(str(other), "OTHER")
    assert "'exp'" in message and "'dt'" in message
    assert "0.2" in message and "0.1" in message and message.index("0.2") < message.index("0.1")
    assert db_bytes(dest) == before and object_files(dest) == files
    # into a new destination: refused too, and nothing is left at that path (nor beside it)
    fresh = tmp_path / "fresh"
    with pytest.raises(rec.RecorderError, match="'dt'"):
        rec.merge([dest, other], fresh, allow_code_mismatch=True, progress=False)
    assert not fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest", "home", "other"]


def test_a_config_key_missing_from_a_shard_is_a_conflict(tmp_path: Path) -> None:
    dest = shard(tmp_path / "dest", rec.plist("a", [1.0]))
    bare = shard(tmp_path / "bare", rec.plist("a", [2.0]), config={})
    before = db_bytes(dest)
    with pytest.raises(rec.RecorderError, match=r"'dt'.*\(not set\)"):
        rec.merge(bare, dest, allow_code_mismatch=True, progress=False)
    assert db_bytes(dest) == before


def _record_at_head(store: Path, repo: Path, psets: Any) -> str:
    with rec.Recorder(EXP, store=store, git="record", repo=repo, config=CONFIG) as r:
        r.sweep(model, psets, progress=False)
    return r.env_sha  # type: ignore[return-value]


def test_code_versions_must_agree_unless_allowed(tmp_path: Path, repo: Path) -> None:
    first_sha = git(repo, "rev-parse", "HEAD")
    assert _record_at_head(tmp_path / "a", repo, rec.plist("a", [1.0])) == first_sha
    assert _record_at_head(tmp_path / "a2", repo, rec.plist("a", [2.0])) == first_sha
    (repo / "model.py").write_text("A = 2\n")
    git(repo, "commit", "-q", "-am", "change the model")
    second_sha = git(repo, "rev-parse", "HEAD")
    assert _record_at_head(tmp_path / "b", repo, rec.plist("a", [3.0])) == second_sha
    dest = tmp_path / "dest"

    # shards of the same commit merge without any flag
    assert rec.merge([tmp_path / "a", tmp_path / "a2"], dest, progress=False).runs == 2
    before, files = db_bytes(dest), object_files(dest)
    with pytest.raises(rec.RecorderError, match="allow_code_mismatch") as info:
        rec.merge(tmp_path / "b", dest, progress=False)
    assert second_sha in str(info.value) and first_sha in str(info.value)
    assert db_bytes(dest) == before and object_files(dest) == files
    with pytest.raises(rec.RecorderError, match=second_sha):
        rec.merge([tmp_path / "a", tmp_path / "b"], tmp_path / "fresh", progress=False)
    assert not (tmp_path / "fresh").exists()

    report = rec.merge(tmp_path / "b", dest, allow_code_mismatch=True, progress=False)
    assert (report.runs, report.skipped) == (1, 0)
    with rec.open(dest) as db:
        commits = set(db.sql("SELECT git_commit FROM overview_sessions")["git_commit"])
    assert commits == {first_sha, second_sha}


SCRIPT_JOB = """
import sys
import numpy as np
import recorder as rec

def model(a: float) -> dict:
    return {"y": 2 * a, "curve": np.full(10_000, a)}

with rec.Recorder("exp", store=sys.argv[1], git=False, config={"dt": 0.1}) as r:
    r.sweep(model, rec.plist("a", [float(sys.argv[2])]), progress=False, return_df=False)
"""


def script_shard(tmp_path: Path, script: str, store: str, a: float, *, extra: str = "") -> Path:
    """Run the job script ``script`` (written from SCRIPT_JOB plus ``extra``) into ``store``, without git."""
    path = tmp_path / script
    path.write_text(SCRIPT_JOB + extra)
    done = subprocess.run(
        [sys.executable, str(path), str(tmp_path / store), str(a)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return tmp_path / store


def test_shards_without_git_from_the_same_script_merge(tmp_path: Path) -> None:
    """Two jobs of one script without git: their env SHAs differ (pypet's rule), their code does not."""
    a = script_shard(tmp_path, "job.py", "a", 1.0)
    b = script_shard(tmp_path, "job.py", "b", 2.0)
    with rec.open(a) as da, rec.open(b) as db:
        sha_a, sha_b = (d.sql("SELECT env_sha FROM sessions")["env_sha"][0] for d in (da, db))
    assert sha_a != sha_b  # kept: pypet's fallback hash of name and start time
    report = rec.merge([a, b], tmp_path / "dest", progress=False)
    assert report.runs == 2 and run_ids(tmp_path / "dest") == run_ids(a) | run_ids(b)
    c = script_shard(tmp_path, "job.py", "c", 3.0)
    assert rec.merge(c, tmp_path / "dest", progress=False).runs == 1  # into an existing destination too


def test_shards_without_git_from_different_scripts_are_refused_naming_both(tmp_path: Path) -> None:
    a = script_shard(tmp_path, "job.py", "a", 1.0)
    b = script_shard(tmp_path, "job_b.py", "b", 2.0, extra="# another version of the model\n")
    digests = [hashlib.sha256(path.read_bytes()).hexdigest() for path in (tmp_path / "job.py", tmp_path / "job_b.py")]
    with pytest.raises(rec.RecorderError, match="main script") as info:
        rec.merge([a, b], tmp_path / "dest", progress=False)
    message = str(info.value)
    assert digests[1] in message and digests[0] in message and "without git" in message
    assert message.index(digests[1]) < message.index(digests[0])  # "there" (the source), then the destination
    assert not (tmp_path / "dest").exists()
    report = rec.merge([a, b], tmp_path / "dest", allow_code_mismatch=True, progress=False)
    assert report.runs == 2


def test_shards_without_git_or_a_script_are_refused_unless_allowed(tmp_path: Path) -> None:
    """``python -c`` has no main script file: nothing identifies the code, so the shards are refused."""
    stores = []
    for name, a in (("a", 1.0), ("b", 2.0)):
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT_JOB, str(tmp_path / name), str(a)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        stores.append(tmp_path / name)
    with pytest.raises(rec.RecorderError, match="without a main script file"):
        rec.merge(stores, tmp_path / "dest", progress=False)
    assert rec.merge(stores, tmp_path / "dest", allow_code_mismatch=True, progress=False).runs == 2


def test_shards_of_one_process_without_git_merge(tmp_path: Path) -> None:
    a = shard(tmp_path / "a", rec.plist("a", [1.0]))
    b = shard(tmp_path / "b", rec.plist("a", [2.0]))
    report = rec.merge([a, b], tmp_path / "dest", progress=False)
    assert report.runs == 2 and run_ids(tmp_path / "dest") == run_ids(a) | run_ids(b)


@pytest.mark.parametrize(("name", "role"), [("x", "param"), ("X", "param"), ("Y", "result")])
def test_a_name_cannot_be_a_parameter_and_a_result(tmp_path: Path, name: str, role: str) -> None:
    def by_x(x: float) -> dict:
        return {"y": 2 * x}

    def named(a: float) -> dict:
        return {name: a}

    dest = shard(tmp_path / "dest", rec.plist("x", [1.0]), func=by_x)
    source = shard(tmp_path / "source", rec.plist("a", [1.0]), func=named)
    before = db_bytes(dest)
    with pytest.raises(rec.RecorderError) as info:
        rec.merge(source, dest, allow_code_mismatch=True, progress=False)
    message = str(info.value)
    assert f"{name!r} is a result" in message and f"{name.lower()!r} is a {role}" in message
    assert db_bytes(dest) == before
    with pytest.raises(rec.RecorderError, match=repr(name)):
        rec.merge([dest, source], tmp_path / "fresh", allow_code_mismatch=True, progress=False)
    assert not (tmp_path / "fresh").exists()


# -- extract -----------------------------------------------------------------------------


def with_extra(a: float, b: int) -> dict:
    """A result ``extra`` only for b = 3."""
    return {**model(a, b), **({"extra": a} if b == 3 else {})}


def extract_source(store: Path) -> tuple[str, str]:
    """Two sessions of ``exp`` (b = 1 and 3, then b = 2 and a commented run) and an experiment ``other``."""
    with rec.Recorder(EXP, store=store, git=False, config=CONFIG) as r1:
        r1.sweep(with_extra, rec.grid(a=[1.0, 2.0, 3.0], b=[1, 3]), progress=False)
    with rec.Recorder(EXP, store=store, git=False, config=CONFIG) as r2:
        r2.sweep(with_extra, rec.grid(a=[1.0, 2.0, 3.0], b=[2]), progress=False)
        with r2.run(a=7.0, b=2) as run:
            run.log(y=14.0, label="hand-made", curve=np.full(10_000, 7.0))
            run.log(weight=1.0, comment="checked by hand")
    with rec.Recorder("other", store=store, git=False) as r3:
        r3.sweep(lambda c: {"d": c * 2.0}, rec.plist("c", [1, 2]), progress=False)
    return r1.id, r2.id  # type: ignore[return-value]


def test_extract_copies_the_selected_runs_and_what_they_need(tmp_path: Path) -> None:
    source, part = tmp_path / "source", tmp_path / "part"
    _, second = extract_source(source)
    with rec.open(source) as db:
        wanted = set(db.sql("SELECT run_id FROM exp WHERE b = 2")["run_id"])
    assert len(wanted) == 4

    report = rec.extract(source, part, where="b = 2", experiment=EXP, progress=False)

    assert (report.runs, report.skipped, report.objects) == (4, 0, 4)
    assert run_ids(part) == wanted
    expected = {k: v for k, v in contents(source).items() if json.loads(k)["b"] == 2}
    assert contents(part) == expected and len(expected) == 4
    with rec.open(part) as db:
        assert db.experiments() == [EXP]
        assert db.sql("SELECT session_id FROM overview_sessions")["session_id"].tolist() == [second]
        assert db.sql("SELECT session_id, name, value FROM overview_config").values.tolist() == [[second, "dt", 0.1]]
        # the names and the wide view list what was copied: no 'extra' (only b = 3 had it)
        names = set(db.sql("SELECT name FROM fields")["name"])
        assert names == {"a", "b", "y", "label", "curve", "weight"}
        df = db.df(EXP)
        assert sorted(df["a"]) == [1.0, 2.0, 3.0, 7.0] and set(df["b"]) == {2}
        assert "extra" not in df.columns and "weight" in df.columns
        view = db.sql(f"SELECT * FROM {EXP}")
        assert "extra" not in view.columns and {"a", "b", "y", "label", "weight"} <= set(view.columns)
        assert len(view) == 4
        assert db.array(df["_run_id"][df["a"] == 7.0].item(), "curve")[0] == 7.0
        with pytest.raises(rec.RecorderError):
            db.sql("SELECT * FROM other")


def test_extract_then_merge_back_gives_the_original_store(tmp_path: Path) -> None:
    source, part, rebuilt = tmp_path / "source", tmp_path / "part", tmp_path / "rebuilt"
    extract_source(source)
    rec.extract(source, part, where="b = 2", experiment=EXP, progress=False)
    total = count(source)

    assert rec.merge(part, rebuilt, progress=False).runs == 4
    rest = rec.merge(source, rebuilt, allow_code_mismatch=True, progress=False)

    assert (rest.runs, rest.skipped) == (total - 4, 4)
    assert run_ids(rebuilt) == run_ids(source)
    for experiment in (EXP, "other"):
        assert contents(rebuilt, experiment) == contents(source, experiment)
    with rec.open(rebuilt) as new, rec.open(source) as old:
        fields = "SELECT e.name, f.role, f.name, f.kind FROM fields f JOIN experiments e ON e.pk = f.experiment"
        assert set(map(tuple, new.sql(fields).values)) == set(map(tuple, old.sql(fields).values))
        # the same columns (in the order the destination first saw them)
        assert set(new.sql(f"SELECT * FROM {EXP}").columns) == set(old.sql(f"SELECT * FROM {EXP}").columns)
        assert len(new.df(EXP)) == len(old.df(EXP)) == 10


def test_extract_one_experiment(tmp_path: Path) -> None:
    source = tmp_path / "source"
    extract_source(source)
    report = rec.extract(source, tmp_path / "only", experiment="other", progress=False)
    assert (report.runs, report.objects) == (2, 0)
    assert run_ids(tmp_path / "only") == run_ids(source, "other")
    with rec.open(tmp_path / "only") as db:
        assert db.experiments() == ["other"]
        assert sorted(db.df("other")["d"]) == [2.0, 4.0]
    with pytest.raises(rec.RecorderError, match="no experiment 'nope'"):
        rec.extract(source, tmp_path / "none", experiment="nope", progress=False)
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("where", ["no_such_column = 1", "b = = 2", "1; DELETE FROM runs"])
def test_extract_with_an_invalid_condition_is_refused(tmp_path: Path, where: str) -> None:
    source = shard(tmp_path / "source", rec.grid(a=[1.0], b=[1, 2]))
    before = db_bytes(source)
    with pytest.raises(rec.RecorderError, match="cannot select runs of experiment 'exp'"):
        rec.extract(source, tmp_path / "part", where=where, progress=False)
    assert not (tmp_path / "part").exists()
    assert db_bytes(source) == before and count(source) == 2


# -- objects -----------------------------------------------------------------------------


def test_an_array_shared_by_shards_is_stored_once(tmp_path: Path) -> None:
    a = shard(tmp_path / "a", rec.grid(a=[1.0], b=[1]))
    b = shard(tmp_path / "b", rec.grid(a=[1.0], b=[2]))
    dest = tmp_path / "dest"
    report = rec.merge([a, b], dest, allow_code_mismatch=True, progress=False)
    files = object_files(dest)
    assert len(files) == 1 and files == object_files(a) == object_files(b)
    assert report.runs == 2 and report.objects == 1
    assert report.object_bytes == (dest / "objects" / files[0]).stat().st_size > 80_000
    # same file system: hard-linked, not copied
    assert os.path.samefile(dest / "objects" / files[0], a / "objects" / files[0])
    with rec.open(dest) as db:
        digests = set(db.sql("SELECT value FROM results_all WHERE name = 'curve'")["value"])
        assert len(digests) == 1 and db.sql("SELECT count(*) FROM objects").iloc[0, 0] == 1
        for run_id in run_ids(dest):
            assert np.array_equal(db.array(run_id, "curve"), np.full(10_000, 1.0))


def _digest_of(store: Path, a: float) -> tuple[str, str]:
    """The run id and the object digest of the curve of the run with parameter a."""
    with rec.open(store) as db:
        row = db.sql("SELECT run_id, a FROM exp").set_index("a").loc[a]
        digest = db.sql(
            "SELECT x.value FROM results x JOIN runs r ON r.pk = x.run WHERE x.name = 'curve' AND lower(hex(r.id)) = ?",
            (row["run_id"],),
        ).iloc[0, 0]
    return row["run_id"], digest


def _spoil(store: Path, how: str) -> tuple[str, str]:
    """Corrupt or remove one object of a two-run shard: the one whose digest sorts last."""
    (run_a, digest_a), (run_b, digest_b) = _digest_of(store, 1.0), _digest_of(store, 2.0)
    run_id, digest = max((run_a, digest_a), (run_b, digest_b), key=lambda pair: pair[1])
    path = rec.ObjectStore(store / "objects").path(digest)
    if how == "corrupt":
        data = bytearray(path.read_bytes())
        data[-1] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        path.unlink()
    return run_id, digest


@pytest.mark.parametrize("how", ["corrupt", "missing"])
def test_a_bad_object_in_a_source_is_refused(tmp_path: Path, how: str) -> None:
    dest = shard(tmp_path / "dest", rec.plist("a", [5.0]))
    source = shard(tmp_path / "source", rec.plist("a", [1.0, 2.0]))
    run_id, digest = _spoil(source, how)
    before = db_bytes(dest)
    with pytest.raises(rec.ObjectError) as info:
        rec.merge(source, dest, allow_code_mismatch=True, progress=False)
    message = str(info.value)
    assert run_id in message and "'curve'" in message and digest in message and how in message
    assert db_bytes(dest) == before and count(dest) == 1
    with pytest.raises(rec.ObjectError, match=how):
        rec.merge([dest, source], tmp_path / "fresh", allow_code_mismatch=True, progress=False)
    assert not (tmp_path / "fresh").exists()


@pytest.mark.parametrize("how", ["corrupt", "missing"])
def test_a_refused_bad_object_adds_no_object_files(tmp_path: Path, how: str) -> None:
    dest = shard(tmp_path / "dest", rec.plist("a", [5.0]))
    source = shard(tmp_path / "source", rec.plist("a", [1.0, 2.0]))
    _spoil(source, how)
    files = object_files(dest)
    with pytest.raises(rec.ObjectError):
        rec.merge(source, dest, allow_code_mismatch=True, progress=False)
    assert object_files(dest) == files


def test_a_config_array_in_objects_is_merged(tmp_path: Path) -> None:
    mesh = np.linspace(0.0, 1.0, 10_000)
    source = shard(tmp_path / "source", rec.plist("a", [1.0]), config={"mesh": mesh})
    dest = tmp_path / "dest"
    rec.merge(source, dest, progress=False)
    with rec.open(dest) as db:
        (digest,) = db.sql("SELECT value FROM config WHERE name = 'mesh'")["value"]
        assert db.sql("SELECT count(*) FROM objects WHERE digest = ?", (digest,)).iloc[0, 0] == 1
    assert np.array_equal(rec.ObjectStore(dest / "objects").get(digest), mesh)


# -- runs of the same pset, resuming ---------------------------------------------------------


def test_runs_of_one_pset_from_several_shards_are_all_kept(tmp_path: Path) -> None:
    grid = rec.grid(a=[1.0, 2.0], b=[1])
    a, b = shard(tmp_path / "a", grid), shard(tmp_path / "b", grid)
    dest = tmp_path / "dest"
    assert rec.merge([a, b], dest, allow_code_mismatch=True, progress=False).runs == 4
    with rec.open(dest) as db:
        per_pset = db.sql("SELECT params, count(*) AS n FROM overview_runs GROUP BY params")
    assert sorted(per_pset["n"]) == [2, 2]
    merged = run_ids(dest)

    with rec.Recorder(EXP, store=dest, git=False, config=CONFIG) as r:
        df = r.sweep(model, grid, progress=False)

    assert r.runs_recorded == 0 and count(dest) == 4 and run_ids(dest) == merged
    assert set(df["_status"]) == {"done"} and set(df["_run_id"]) <= merged


# -- sources that cannot be merged -----------------------------------------------------------


def test_a_store_still_recording_is_refused(tmp_path: Path) -> None:
    source, dest = tmp_path / "source", tmp_path / "dest"
    with rec.Recorder(EXP, store=source, git=False, config=CONFIG) as r:
        with r.run(a=1.0) as run:
            run.log(y=1.0, curve=np.full(10_000, 1.0))
        r.flush()
        with pytest.raises(rec.RecorderError, match="still recording") as info:
            rec.merge(source, dest, progress=False)
        assert r.id in str(info.value)
        with pytest.raises(rec.RecorderError, match="still recording"):
            rec.extract(source, dest, progress=False)
        assert not dest.exists()
    assert rec.merge(source, dest, progress=False).runs == 1


KILLED_JOB = """
import os, signal, sys
import numpy as np
import recorder as rec

r = rec.Recorder("exp", store=sys.argv[1], git=False, config={"dt": 0.1}).open()
for a in [1.0, 2.0]:
    with r.run(a=a) as run:
        run.log(y=a, curve=np.full(10_000, a))
r.flush()
with r.run(a=3.0) as run:
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_shard_of_a_killed_job_is_recovered_and_merged(tmp_path: Path) -> None:
    source = tmp_path / "source"
    job = subprocess.run(
        [sys.executable, "-c", KILLED_JOB, str(source)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert job.returncode == -9, job.stderr
    report = rec.merge(source, tmp_path / "dest", progress=False)
    assert (report.runs, report.objects) == (2, 2)
    with rec.open(tmp_path / "dest") as db:
        assert db.sql("SELECT status FROM sessions")["status"].tolist() == ["interrupted"]
        assert sorted(db.df(EXP)["y"]) == [1.0, 2.0]


def test_a_store_cannot_be_merged_into_itself(tmp_path: Path) -> None:
    store = shard(tmp_path / "store", rec.plist("a", [1.0]))
    other = shard(tmp_path / "other", rec.plist("a", [2.0]))
    (tmp_path / "link").symlink_to(store)
    before = db_bytes(store)
    for into in (store, store / "recorder.sqlite", tmp_path / "link", tmp_path / "other" / ".." / "store"):
        with pytest.raises(rec.RecorderError, match="into itself"):
            rec.merge([other, store], into, allow_code_mismatch=True, progress=False)
    with pytest.raises(rec.RecorderError, match="into itself"):
        rec.extract(store, store, where="a = 1.0", progress=False)
    assert db_bytes(store) == before and count(store) == 1


def test_missing_sources_are_refused(tmp_path: Path) -> None:
    with pytest.raises(rec.RecorderError, match="no source"):
        rec.merge([], tmp_path / "dest")
    with pytest.raises(rec.StoreError, match="no store"):
        rec.merge(tmp_path / "nowhere", tmp_path / "dest")
    assert not (tmp_path / "dest").exists() and not (tmp_path / "nowhere").exists()


# -- many sources ------------------------------------------------------------------------------


def test_more_sources_than_sqlite_attaches_at_once(tmp_path: Path) -> None:
    shards = [shard(tmp_path / f"s{i:02d}", rec.plist("a", [float(i)])) for i in range(12)]
    dest = tmp_path / "dest"
    dest.mkdir()  # an empty folder is a new destination too
    bad = shard(tmp_path / "bad", rec.plist("a", [99.0]), config={"dt": 0.2})

    # a conflict in the second group of sources writes nothing of the first group either
    with pytest.raises(rec.RecorderError, match="'dt'"):
        rec.merge([*shards[:11], bad], dest, allow_code_mismatch=True, progress=False)
    assert list(dest.iterdir()) == []

    report = rec.merge(shards, dest, allow_code_mismatch=True, progress=False)

    assert (report.runs, report.skipped, report.objects) == (12, 0, 12)
    assert run_ids(dest) == set().union(*(run_ids(s) for s in shards))
    assert count(dest) == 12 and count(dest, "SELECT count(*) FROM sessions") == 12
    with rec.open(dest) as db:
        assert sorted(db.df(EXP)["a"]) == [float(i) for i in range(12)]
    again = rec.merge(shards, dest, allow_code_mismatch=True, progress=False)
    assert again == rec.MergeReport(0, 12, 0, 0)


# -- the command line ---------------------------------------------------------------------------


def test_cli_merge_and_extract(tmp_path: Path) -> None:
    a = shard(tmp_path / "a", rec.grid(a=[1.0, 2.0], b=[1]))
    b = shard(tmp_path / "b", rec.grid(a=[1.0, 3.0], b=[2]))
    dest, part = str(tmp_path / "dest"), str(tmp_path / "part")
    runner = CliRunner()

    result = runner.invoke(main, ["merge", str(a), str(b), "--into", dest, "--allow-code-mismatch"])
    assert result.exit_code == 0, result.output
    assert f"merged 2 stores into {dest}: 4 runs added, 0 already there, 3 arrays added (0.2 MB)" in result.stdout
    result = runner.invoke(main, ["merge", str(a), str(b), "--into", dest])
    assert result.exit_code == 0, result.output
    assert "0 runs added, 4 already there, 0 arrays added (0.0 MB)" in result.stdout

    result = runner.invoke(main, ["extract", dest, "--into", part, "--where", "b = 2", "--experiment", EXP])
    assert result.exit_code == 0, result.output
    assert f"extracted 2 runs into {part} (0 already there), 2 arrays (0.2 MB)" in result.stdout
    assert run_ids(Path(part)) == run_ids(b)


def test_cli_errors_are_one_line_unless_debug(tmp_path: Path) -> None:
    a = script_shard(tmp_path, "job.py", "a", 1.0)
    b = script_shard(tmp_path, "job_b.py", "b", 2.0, extra="# another version\n")
    dest = str(tmp_path / "dest")
    runner = CliRunner()

    result = runner.invoke(main, ["merge", str(a), str(b), "--into", dest])
    assert result.exit_code == 10  # MergeRefused: the code differs
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"recorder: error: cannot merge {b}: experiment 'exp' ran code")
    assert "Traceback" not in result.output
    assert not Path(dest).exists()

    result = runner.invoke(main, ["extract", str(a), "--into", dest, "--where", "nope > 1"])
    assert result.exit_code == 1
    assert result.stderr.startswith("recorder: error: cannot select runs") and len(result.stderr.splitlines()) == 1

    result = runner.invoke(main, ["--debug", "merge", str(a), str(b), "--into", dest])
    assert result.exit_code == 1
    assert isinstance(result.exception, rec.RecorderError) and "ran code" in str(result.exception)
    assert not Path(dest).exists()


# -- duplicates, leftovers of killed merges, links ------------------------------------------


def test_the_same_shard_twice_is_refused_up_front(tmp_path: Path) -> None:
    """Given twice (by the same path, another spelling, a link or a hard link), a shard is refused at once."""
    from recorder.errors import DuplicateSource

    a = shard(tmp_path / "a", rec.plist("a", [1.0]))
    (tmp_path / "link").symlink_to(a)
    (tmp_path / "hard").mkdir()
    (tmp_path / "sub").mkdir()
    os.link(a / "recorder.sqlite", tmp_path / "hard" / "recorder.sqlite")
    dest = tmp_path / "dest"
    for twice in ([a, a], [a, tmp_path / "sub" / ".." / "a"], [a, tmp_path / "link"], [a, tmp_path / "hard"]):
        with pytest.raises(DuplicateSource, match="give each source once") as info:
            rec.merge(twice, dest, progress=False)
        assert str(twice[1]) in str(info.value) and str(twice[0]) in str(info.value)
        assert isinstance(info.value, ValueError)
        assert not dest.exists()
    result = CliRunner().invoke(main, ["merge", str(a), str(a), "--into", str(dest)])
    assert result.exit_code == 1 and "give each source once" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and not dest.exists()


def _leftovers(tmp_path: Path, name: str = "dest") -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(f".{name}."))


def test_folders_of_killed_merges_are_removed_by_the_next_merge(tmp_path: Path) -> None:
    a = shard(tmp_path / "a", rec.plist("a", [1.0]))
    b = shard(tmp_path / "b", rec.plist("a", [2.0]))
    for name in (".dest.staging-0123abcd", ".dest.merging-89abcdef"):  # what a SIGKILLed merge leaves
        (tmp_path / name / "objects" / "ab").mkdir(parents=True)
        (tmp_path / name / "recorder.sqlite").write_bytes(b"half a store")
    keep = [tmp_path / ".dest.staging-not-hex", tmp_path / ".other.merging-0123abcd"]  # not a merge's into dest
    for path in keep:
        path.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "data").write_text("keep me")
    (tmp_path / ".dest.merging-feedf00d").symlink_to(victim)  # a link is never a merge's folder
    rec.merge([a, b], tmp_path / "dest", allow_code_mismatch=True, progress=False)
    assert _leftovers(tmp_path) == [".dest.merging-feedf00d", ".dest.staging-not-hex"]
    assert all(path.is_dir() for path in keep) and (victim / "data").read_text() == "keep me"
    assert count(tmp_path / "dest") == 2


LIVE_MERGE = """
import importlib, sys, time, pathlib
import recorder as rec
merging = importlib.import_module("recorder.shards.merge")  # rec.merge is the function

sources, dest, marker, go = sys.argv[1:3], sys.argv[3], pathlib.Path(sys.argv[4]), pathlib.Path(sys.argv[5])
checked = merging._objects_to_copy

def paused(*args, **kwargs):
    found = checked(*args, **kwargs)
    marker.write_text("checked")
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return found

merging._objects_to_copy = paused
print(rec.merge(sources, dest, allow_code_mismatch=True, progress=False).runs)
"""


def test_a_live_merges_folder_is_never_removed(tmp_path: Path) -> None:
    """A merge paused while its fresh destination is half built: another merge into it removes nothing."""
    a = shard(tmp_path / "a", rec.plist("a", [1.0]))
    b = shard(tmp_path / "b", rec.plist("a", [2.0]))
    marker, go = tmp_path / "checked", tmp_path / "go"
    live = subprocess.Popen(
        [sys.executable, "-c", LIVE_MERGE, str(a), str(b), str(tmp_path / "dest"), str(marker), str(go)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(marker, live)
        assert ".dest.merge.lock" in _leftovers(tmp_path, "dest")
        (building,) = [name for name in _leftovers(tmp_path, "dest") if name.startswith(".dest.merging-")]
        stale = tmp_path / ".dest.staging-00000000"
        stale.mkdir()
        other = tmp_path / "other"
        rec.merge(a, other, progress=False)  # another destination beside it: its own lock
        assert (tmp_path / building).is_dir() and stale.is_dir()
        from recorder.shards.merge import _MergeClaim

        with _MergeClaim(tmp_path / "dest"):  # what the next merge into dest takes first
            assert (tmp_path / building).is_dir() and stale.is_dir()
    finally:
        go.write_text("go")
        out, err = live.communicate(timeout=120)
    assert live.returncode == 0, err
    assert out.split() == ["2"] and count(tmp_path / "dest") == 2
    rec.merge(a, tmp_path / "dest", progress=False)  # no merge is live now: the stale folder goes
    assert _leftovers(tmp_path, "dest") == []


def _wait_for(marker: Path, process: subprocess.Popen) -> None:
    """Wait (bounded) until ``process`` writes ``marker``; fail with its stderr if it ends first."""
    import time

    deadline = time.monotonic() + 60
    while not marker.exists():
        if process.poll() is not None:
            raise AssertionError(f"the process ended first: {process.communicate()[1]}")
        assert time.monotonic() < deadline, "the process never reached its marker"
        time.sleep(0.01)


@pytest.mark.parametrize("where", ["file", "folder"])
def test_a_source_whose_object_is_a_link_is_refused(tmp_path: Path, where: str) -> None:
    from recorder.errors import ObjectOutsideStore

    source = shard(tmp_path / "source", rec.plist("a", [1.0]))
    (path,) = (source / "objects").rglob("*.npy")
    outside = tmp_path / "outside" / path.parent.name
    outside.mkdir(parents=True)
    shutil.copyfile(path, outside / path.name)  # the right bytes, reached the wrong way
    if where == "file":
        path.unlink()
        path.symlink_to(outside / path.name)
    else:
        shutil.rmtree(path.parent)
        path.parent.symlink_to(outside)
    for call in (
        lambda: rec.merge(source, tmp_path / "dest", progress=False),
        lambda: rec.extract(source, tmp_path / "dest", progress=False),
    ):
        with pytest.raises(ObjectOutsideStore, match="symbolic link"):
            call()
        assert not (tmp_path / "dest").exists()
    assert (outside / path.name).exists()


def test_merging_creates_nothing_in_a_source(tmp_path: Path) -> None:
    """A source is only read: a shard without objects/ or .gitignore (copied by hand) stays so."""
    source = shard(tmp_path / "s0", rec.grid(a=[1.0], b=[1]), func=lambda a, b=1: {"y": a * b})
    shutil.rmtree(source / "objects")
    (source / ".gitignore").unlink()
    rec.merge([source], tmp_path / "dest")
    assert not (source / "objects").exists()
    assert not (source / ".gitignore").exists()
    assert len(run_ids(tmp_path / "dest")) == 1


def test_merge_keeps_where_a_run_ran_and_its_origin(tmp_path: Path) -> None:
    """Schema 7's run columns (host, pid, pset_seq, origin) travel with the run."""
    import sqlite3

    src, dest = shard(tmp_path / "src", [{"a": 1.0}]), tmp_path / "dest"
    conn = sqlite3.connect(src / "recorder.sqlite")
    conn.execute("UPDATE runs SET host = 'node7', pid = 4242, pset_seq = 3, origin = 'psweep:abc'")
    conn.commit()
    conn.close()
    rec.merge([src], into=dest)
    conn = sqlite3.connect(dest / "recorder.sqlite")
    assert conn.execute("SELECT host, pid, pset_seq, origin FROM runs").fetchall() == [("node7", 4242, 3, "psweep:abc")]
    conn.close()
