"""`recorder checkout` and `recorder diff --code` on real repositories.

The repository a store names is not the user's to vouch for: git runs there
with no program the repository configures (external diff, textconv, filters,
fsmonitor, hooks), each of which here writes a marker file if it runs. A
``git="record"`` run checks out as HEAD plus its recorded diff; the default
folder sits beside the repository, named from the run id, never from the
experiment name.
"""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import git

import recorder as rec
from recorder.cli.commands import main
from recorder.errors import DiffDoesNotApply
from recorder.read import show as history

EXP = "lorenz"


def cli(store: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--store", str(store), *args])


def ok(store: Path, *args: str) -> Result:
    result = cli(store, *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def one_line_error(result: Result, *fragments: str) -> str:
    assert result.exit_code == 1, (result.output, result.exception)
    lines = result.stderr.rstrip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("recorder: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def arm(repo: Path, markers: Path) -> dict[str, Path]:
    """Configure every program-running git feature in ``repo``; each writes its own marker when run.

    Returns the marker files by feature. ``.gitattributes`` (committed
    earlier) names the ``evil`` diff and filter drivers for ``*.py``.
    """
    markers.mkdir(exist_ok=True)
    scripts = markers.parent / "scripts"
    scripts.mkdir(exist_ok=True)
    names = ["external", "textconv", "smudge", "clean", "process", "fsmonitor", "post-checkout", "pager"]
    found = {name: markers / name for name in names}
    path = {
        name: executable(scripts / name, f'#!/bin/sh\ntouch "{found[name]}"\ncat "$@" 2>/dev/null\n') for name in names
    }
    # A filter's clean/smudge read stdin; the external diff gets 7 arguments: print nothing.
    executable(scripts / "external", f'#!/bin/sh\ntouch "{found["external"]}"\n')
    for key, value in [
        ("diff.external", str(path["external"])),
        ("diff.evil.textconv", str(path["textconv"])),
        ("diff.evil.command", str(path["external"])),
        ("filter.evil.smudge", str(path["smudge"])),
        ("filter.evil.clean", str(path["clean"])),
        ("filter.evil.required", "true"),
        ("filter.long.process", str(path["process"])),
        ("core.fsmonitor", str(path["fsmonitor"])),
        ("core.pager", str(path["pager"])),
        ("color.ui", "always"),
    ]:
        git(repo, "config", key, value)
    hooks = Path(git(repo, "rev-parse", "--git-path", "hooks"))
    hooks = hooks if hooks.is_absolute() else repo / hooks
    hooks.mkdir(exist_ok=True)
    for hook in ("post-checkout", "post-index-change", "pre-commit", "reference-transaction"):
        executable(hooks / hook, f'#!/bin/sh\ntouch "{found["post-checkout"]}"\n')
    return found


def ran(markers: dict[str, Path]) -> list[str]:
    return [name for name, marker in markers.items() if marker.exists()]


def two_commits(store: Path, repo: Path) -> tuple[str, str, str, str]:
    """Two git='commit' sessions, the second with a changed model.py; ``*.py`` use the evil drivers."""
    (repo / ".gitattributes").write_text("*.py diff=evil filter=evil\n*.txt filter=long\n")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "attributes")
    with rec.Recorder(EXP, store=store, git="commit", repo=repo) as r, r.run(a=1) as run:
        run.log(e=1.0)
    first, commit_a = run.id, r.git.commit
    (repo / "model.py").write_text("A = 1\nB = 'second version'\n")
    with rec.Recorder(EXP, store=store, git="commit", repo=repo) as r, r.run(a=2) as run:
        run.log(e=2.0)
    return first, run.id, commit_a, r.git.commit


# -- 13.5: no program of the recorded repository runs ----------------------------


def test_diff_code_runs_no_program_the_repository_configures(store: Path, repo: Path, tmp_path: Path) -> None:
    run_a, run_b, _, _ = two_commits(store, repo)
    markers = arm(repo, tmp_path / "markers")
    text = ok(store, "diff", run_a, run_b, "--code").output
    assert ran(markers) == []
    # The real patch, not what an external diff or textconv made of it, and no colour codes.
    assert "+B = 'second version'" in text
    assert "\x1b[" not in text


def test_checkout_runs_no_program_the_repository_configures(store: Path, repo: Path, tmp_path: Path) -> None:
    run_a, _, commit_a, _ = two_commits(store, repo)
    markers = arm(repo, tmp_path / "markers")
    target = tmp_path / "code"
    result = ok(store, "checkout", run_a, str(target))
    assert ran(markers) == []
    assert commit_a in result.output
    assert git(target, "rev-parse", "HEAD") == commit_a
    # No smudge filter ran: the file is the blob as committed.
    assert (target / "model.py").read_text() == "A = 1\n"


def test_recording_runs_no_diff_program_nor_fsmonitor_and_stores_an_applicable_diff(
    store: Path, repo: Path, tmp_path: Path
) -> None:
    """The user's own repository at record time: no external diff, textconv, fsmonitor or hook either."""
    (repo / ".gitattributes").write_text("*.py diff=evil\n")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "attributes")
    markers = arm(repo, tmp_path / "markers")
    git(repo, "config", "--unset", "filter.evil.smudge")  # the user's filters are the user's: not under test
    git(repo, "config", "--unset", "filter.evil.clean")
    git(repo, "config", "--unset", "filter.evil.required")
    for marker in markers.values():
        marker.unlink(missing_ok=True)  # `git config` above ran nothing, but be exact
    git(repo, "config", "diff.noprefix", "true")  # a user's taste must not make the diff unappliable
    (repo / "model.py").write_text("A = 'dirty'\n")
    with rec.Recorder(EXP, store=store, git="record", repo=repo) as r, r.run(a=1) as run:
        run.log(e=1.0)
    assert ran(markers) == []
    assert r.git.diff is not None
    assert "+A = 'dirty'" in r.git.diff and "\x1b[" not in r.git.diff
    assert r.git.diff.startswith("diff --git a/model.py b/model.py")
    ok(store, "checkout", run.id, str(tmp_path / "code"))
    assert (tmp_path / "code" / "model.py").read_text() == "A = 'dirty'\n"
    assert ran(markers) == []


# -- 14.11: git="record" checks out HEAD plus the recorded diff -----------------


def record_dirty(store: Path, repo: Path) -> tuple[str, str]:
    (repo / "data.txt").write_text("one\ntwo\n")
    (repo / "blob.bin").write_bytes(bytes(range(256)))
    git(repo, "add", "data.txt", "blob.bin")
    git(repo, "commit", "-q", "-m", "more files")
    head = git(repo, "rev-parse", "HEAD")
    (repo / "model.py").write_text("A = 'uncommitted'\n")
    (repo / "data.txt").unlink()
    (repo / "blob.bin").write_bytes(bytes(range(255, -1, -1)) * 2)
    with rec.Recorder(EXP, store=store, git="record", repo=repo) as r, r.run(a=1) as run:
        run.log(e=1.0)
    assert r.git.commit == head and r.git.dirty and r.git.diff
    # The user moves on: the work tree is reset and a later commit made.
    git(repo, "checkout", "-q", "--", ".")
    (repo / "model.py").write_text("A = 'later'\n")
    git(repo, "commit", "-q", "-am", "later")
    return run.id, head


def test_checkout_of_a_record_run_applies_the_recorded_diff(store: Path, repo: Path, tmp_path: Path) -> None:
    run_id, head = record_dirty(store, repo)
    target = tmp_path / "code"
    result = ok(store, "checkout", run_id, str(target))
    assert "applied the recorded uncommitted changes" in result.output
    assert git(target, "rev-parse", "HEAD") == head
    assert (target / "model.py").read_text() == "A = 'uncommitted'\n"
    assert not (target / "data.txt").exists()
    assert (target / "blob.bin").read_bytes() == bytes(range(255, -1, -1)) * 2
    # Only the work tree carries the changes: the worktree's index is HEAD's.
    assert git(target, "diff", "--cached", "--name-only") == ""
    assert (repo / "model.py").read_text() == "A = 'later'\n"  # the user's tree is untouched


def test_checkout_refuses_a_recorded_diff_that_does_not_apply(store: Path, repo: Path, tmp_path: Path) -> None:
    run_id, _ = record_dirty(store, repo)
    conn = sqlite3.connect(store / "recorder.sqlite")
    with conn:
        digest = conn.execute("SELECT git_diff FROM sessions").fetchone()[0]
        text = conn.execute("SELECT text FROM texts WHERE digest = ?", (digest,)).fetchone()[0]
        conn.execute("UPDATE texts SET text = ? WHERE digest = ?", (text.replace("-A = 1", "-A = 99"), digest))
    conn.close()
    target = tmp_path / "code"
    line = one_line_error(cli(store, "checkout", run_id, str(target)), run_id, "does not apply")
    assert "model.py" in line
    assert not target.exists()  # no half-made checkout is left behind
    assert "code" not in git(repo, "worktree", "list")
    with rec.open(store) as db, pytest.raises(DiffDoesNotApply):
        history.checkout(db, run_id, tmp_path / "code2")


def test_checkout_of_a_clean_record_run_says_nothing_about_a_diff(store: Path, repo: Path, tmp_path: Path) -> None:
    with rec.Recorder(EXP, store=store, git="record", repo=repo) as r, r.run(a=1) as run:
        run.log(e=1.0)
    result = ok(store, "checkout", run.id, str(tmp_path / "code"))
    assert "applied" not in result.output
    assert (tmp_path / "code" / "model.py").read_text() == "A = 1\n"


# -- 14.12 / 13.10: the default folder -------------------------------------------


def commit_run(store: Path, repo: Path) -> tuple[str, str]:
    with rec.Recorder(EXP, store=store, git="commit", repo=repo) as r, r.run(a=1) as run:
        run.log(e=1.0)
    return run.id, r.git.commit


def test_checkout_default_folder_is_beside_the_repository(
    store: Path, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id, commit = commit_run(store, repo)
    (repo / "model.py").write_text("A = 3\n")
    git(repo, "commit", "-q", "-am", "later")
    monkeypatch.chdir(repo)  # where users are when they type it
    before = set(repo.iterdir())
    result = ok(store, "checkout", run_id)
    assert set(repo.iterdir()) == before  # nothing inside the user's repository
    folder = repo.parent / f"{repo.name}-{run_id[-12:]}"
    assert folder.is_dir()
    assert (folder / "model.py").read_text() == "A = 1\n"
    assert git(folder, "rev-parse", "HEAD") == commit
    assert str(folder) in result.output
    assert f"git -C {repo} worktree remove {folder}" in result.output
    # A second checkout of the same run finds the folder taken and says how to choose another.
    one_line_error(cli(store, "checkout", run_id), str(folder), "FOLDER")


def set_experiment_name(store: Path, name: str) -> None:
    """Rename the experiment in the store's database, as a hostile or older store might have it."""
    conn = sqlite3.connect(store / "recorder.sqlite")
    with conn:
        conn.execute("UPDATE experiments SET name = ?", (name,))
    conn.close()


@pytest.mark.parametrize("name", ["../escaped", "/ABSOLUTE/escaped", "a/../../escaped"])
def test_checkout_default_folder_never_comes_from_the_experiment_name(
    store: Path, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    run_id, _ = commit_run(store, repo)
    name = name.replace("/ABSOLUTE", str(tmp_path))
    set_experiment_name(store, name)
    work = tmp_path / "work" / "deeper"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    result = ok(store, "checkout", run_id)
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path / "work" / "escaped").exists()
    folder = repo.parent / f"{repo.name}-{run_id[-12:]}"
    assert folder.is_dir() and str(folder) in result.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(repo.name)) == [repo.name, folder.name]


def test_checkout_api_returns_what_was_done(store: Path, repo: Path, tmp_path: Path) -> None:
    run_id, commit = commit_run(store, repo)
    with rec.open(store) as db:
        done = history.checkout(db, run_id, tmp_path / "code")
    assert done.run_id == run_id and done.commit == commit
    assert done.folder == (tmp_path / "code").absolute()
    assert done.repo == repo and done.diff_applied is False
