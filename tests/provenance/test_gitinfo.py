"""Git modes of a session: real repositories in ``tmp_path``, real SQLite stores, no mocks."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
import warnings
from contextlib import closing
from pathlib import Path

import pytest
from conftest import git, make_repo

import recorder as rec
from recorder.errors import DirtyWorkTree, GitError, RecorderError, RecorderWarning
from recorder.provenance import gitinfo
from recorder.version import __version__

SHA_RE = re.compile(r"[0-9a-f]{40}")


# -- helpers -------------------------------------------------------------------


def session_row(store: Path, session_id: str) -> sqlite3.Row:
    """The session's row, read straight from the store's SQLite file."""
    with closing(sqlite3.connect(store / "recorder.sqlite")) as con:
        con.row_factory = sqlite3.Row
        row = con.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
    assert row is not None, f"no session row {session_id}"
    return row


def session_count(store: Path) -> int:
    with closing(sqlite3.connect(store / "recorder.sqlite")) as con:
        return con.execute("SELECT count(*) FROM sessions").fetchone()[0]


def stored_text(store: Path, digest: str) -> str:
    with closing(sqlite3.connect(store / "recorder.sqlite")) as con:
        row = con.execute("SELECT text FROM texts WHERE digest = ?", (digest,)).fetchone()
    assert row is not None, f"no text {digest}"
    return row[0]


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD")


def commit_count(repo: Path) -> int:
    return int(git(repo, "rev-list", "--count", "--all"))


def files_in(repo: Path, rev: str) -> set[str]:
    return set(git(repo, "ls-tree", "-r", "--name-only", rev).splitlines())


def record_session(store: Path, repo: Path | None, git_mode: object, **kwargs: object) -> rec.Recorder:
    """Open and close one session (with one run) and return the closed Recorder."""
    with rec.Recorder("exp", store=store, git=git_mode, repo=repo, **kwargs) as r:
        with r.run(x=1) as run:
            run.log(y=2)
    return r


def recorder_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, RecorderWarning)]


def dirty(repo: Path) -> None:
    """Modify the tracked file ``model.py`` and add an untracked file."""
    (repo / "model.py").write_text("A = 2\n")
    (repo / "scratch.txt").write_text("not tracked\n")


def start_conflict(repo: Path, operation: str) -> None:
    """Leave ``repo`` in the middle of a real, conflicting merge / rebase / cherry-pick."""
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "model.py").write_text("A = 'feature'\n")
    git(repo, "commit", "-q", "-am", "feature")
    git(repo, "checkout", "-q", "main")
    (repo / "model.py").write_text("A = 'main'\n")
    git(repo, "commit", "-q", "-am", "main")
    if operation == "merge":
        command = ["merge", "feature"]
    elif operation == "rebase":
        command = ["rebase", "feature"]
    else:
        command = ["cherry-pick", "feature"]
    result = subprocess.run(["git", *command], cwd=repo, capture_output=True, text=True)
    assert result.returncode != 0, "the operation was meant to stop on a conflict"


# -- auto ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["repo-argument", "working-folder"])
def test_auto_commits_tracked_changes_only(store: Path, repo: Path, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    before = head(repo)
    dirty(repo)
    if how == "working-folder":
        monkeypatch.chdir(repo)
    r = record_session(store, repo if how == "repo-argument" else None, "auto", message="smaller dt")

    new = head(repo)
    assert new != before
    assert git(repo, "rev-parse", "HEAD^") == before
    assert r.env_sha == new
    assert r.git is not None and r.git.auto_committed and r.git.commit == new
    # The commit holds the tracked change, not the untracked file.
    assert git(repo, "show", "HEAD:model.py") == "A = 2"
    assert files_in(repo, "HEAD") == {"model.py"}
    assert (repo / "scratch.txt").exists()
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "main"

    row = session_row(store, r.id)
    assert row["env_sha"] == new
    assert row["git_mode"] == "auto"
    assert row["git_commit"] == new
    assert row["git_branch"] == "main"
    assert row["git_auto_committed"] == 1
    assert row["git_dirty"] == 0
    assert row["git_snapshot_ref"] is None
    assert Path(row["git_repo"]).resolve() == repo.resolve()

    message = git(repo, "log", "-1", "--format=%B")
    assert "exp" in message
    assert r.id in message
    assert "smaller dt" in message


def test_auto_outside_a_repository(store: Path, tmp_path: Path) -> None:
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = record_session(store, outside, "auto")
    notices = recorder_warnings(caught)
    assert len(notices) == 1, notices
    assert "not in a git repository" in notices[0]

    assert r.git is not None and r.git.commit is None
    row = session_row(store, r.id)
    assert row["git_commit"] is None
    assert row["git_auto_committed"] == 0
    assert SHA_RE.fullmatch(row["env_sha"])
    # pypet's rule without git: SHA-1 of experiment name, start time and version.
    expected = hashlib.sha1(f"exp{row['time_start']}{__version__}".encode()).hexdigest()
    assert row["env_sha"] == expected == r.env_sha


def test_git_true_means_auto(store: Path, repo: Path) -> None:
    assert gitinfo.check_mode(True) == "auto"
    (repo / "model.py").write_text("A = 2\n")
    r = record_session(store, repo, True)
    assert session_row(store, r.id)["git_mode"] == "auto"
    assert r.env_sha == head(repo)
    assert r.git is not None and r.git.auto_committed


# -- commit ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "commit"])
def test_commit_when_clean_makes_no_commit(store: Path, repo: Path, mode: str) -> None:
    before = head(repo)
    (repo / "untracked.txt").write_text("untracked files do not make a tree dirty\n")
    r = record_session(store, repo, mode)
    assert head(repo) == before
    assert commit_count(repo) == 1
    assert r.env_sha == before
    row = session_row(store, r.id)
    assert row["git_auto_committed"] == 0
    assert row["git_dirty"] == 0
    assert row["git_commit"] == before


@pytest.mark.parametrize("mode", ["commit", "snapshot"])
def test_no_identity_configured_uses_fallback_for_that_commit(store: Path, tmp_path: Path, mode: str) -> None:
    repo = make_repo(tmp_path / "repo", identity=False)
    # No identity anywhere: not in the repo, not in the (isolated) global config.
    assert subprocess.run(["git", "config", "user.name"], cwd=repo).returncode == 1
    config_before = (repo / ".git" / "config").read_text()
    before = head(repo)
    (repo / "model.py").write_text("A = 2\n")

    r = record_session(store, repo, mode)

    made = r.env_sha
    if mode == "commit":
        assert made == head(repo) != before
    else:
        assert head(repo) == before != made
        assert made == git(repo, "rev-parse", f"refs/recorder/{r.id}")
    assert git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>", made) == (
        "recorder <recorder@localhost>|recorder <recorder@localhost>"
    )
    assert git(repo, "show", f"{made}:model.py") == "A = 2"
    # The user's configuration is unchanged.
    for key in ("user.name", "user.email"):
        assert subprocess.run(["git", "config", key], cwd=repo, capture_output=True).returncode == 1
    assert (repo / ".git" / "config").read_text() == config_before
    assert not (tmp_path / "home" / ".gitconfig").exists()


def test_configured_identity_is_used(store: Path, repo: Path) -> None:
    (repo / "model.py").write_text("A = 2\n")
    r = record_session(store, repo, "commit")
    assert git(repo, "log", "-1", "--format=%an <%ae>", r.env_sha) == "Test User <test@example.com>"


# Hooks a commit (and the ref update it makes) would run; gc --auto may run pre-auto-gc.
COMMIT_HOOKS = (
    "pre-commit",
    "prepare-commit-msg",
    "commit-msg",
    "post-commit",
    "reference-transaction",
    "pre-auto-gc",
)


def install_hooks(hooks_dir: Path, marker: Path, names: tuple[str, ...] = COMMIT_HOOKS) -> None:
    """Hooks that leave a marker and fail (a hook run by git would show or break the commit)."""
    hooks_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        hook = hooks_dir / name
        hook.write_text(f"#!/bin/sh\necho {name} >> '{marker}'\nexit 1\n")
        hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.mark.parametrize("where", ["dot-git-hooks", "core.hooksPath"])
def test_commit_does_not_run_hooks(store: Path, repo: Path, tmp_path: Path, where: str) -> None:
    marker = tmp_path / "hook-ran"
    if where == "dot-git-hooks":
        install_hooks(repo / ".git" / "hooks", marker)
    else:
        install_hooks(tmp_path / "myhooks", marker)
        git(repo, "config", "core.hooksPath", str(tmp_path / "myhooks"))
    # The hooks really are active for an ordinary git commit.
    (repo / "model.py").write_text("A = 2\n")
    assert subprocess.run(["git", "commit", "-qam", "x"], cwd=repo, capture_output=True).returncode != 0
    assert marker.exists()
    marker.unlink()
    before = head(repo)

    r = record_session(store, repo, "commit")

    assert not marker.exists(), marker.read_text()
    assert head(repo) != before
    assert git(repo, "rev-parse", "HEAD^") == before
    assert r.env_sha == head(repo)
    assert git(repo, "show", "HEAD:model.py") == "A = 2"
    assert session_row(store, r.id)["git_auto_committed"] == 1


def test_snapshot_does_not_run_hooks(store: Path, repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "hook-ran"
    install_hooks(repo / ".git" / "hooks", marker)
    (repo / "model.py").write_text("A = 2\n")
    r = record_session(store, repo, "snapshot")
    assert not marker.exists(), marker.read_text()
    assert git(repo, "rev-parse", f"refs/recorder/{r.id}") == r.env_sha


@pytest.mark.parametrize("mode", ["commit", "record"])
def test_no_mode_runs_the_post_index_change_hook(store: Path, repo: Path, tmp_path: Path, mode: str) -> None:
    marker = tmp_path / "hook-ran"
    install_hooks(repo / ".git" / "hooks", marker, names=("post-index-change",))
    (repo / "model.py").write_text("A = 2\n")
    record_session(store, repo, mode)
    assert not marker.exists(), marker.read_text()


@pytest.mark.parametrize("mode", ["commit", "record"])
def test_detached_head(store: Path, repo: Path, mode: str) -> None:
    git(repo, "checkout", "-q", "--detach")
    main_before = git(repo, "rev-parse", "main")
    (repo / "model.py").write_text("A = 2\n")

    r = record_session(store, repo, mode)

    row = session_row(store, r.id)
    assert row["git_branch"] is None
    assert r.git is not None and r.git.branch is None
    assert row["env_sha"] == head(repo)
    assert git(repo, "rev-parse", "main") == main_before  # the branch did not move
    assert subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=repo).returncode != 0  # still detached
    if mode == "commit":
        assert head(repo) != main_before
        assert git(repo, "rev-parse", "HEAD^") == main_before
        assert row["git_auto_committed"] == 1
    else:
        assert head(repo) == main_before


def test_detached_head_snapshot(store: Path, repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    before = head(repo)
    (repo / "model.py").write_text("A = 2\n")
    r = record_session(store, repo, "snapshot")
    assert head(repo) == before
    assert session_row(store, r.id)["git_branch"] is None
    assert git(repo, "rev-parse", f"refs/recorder/{r.id}") == r.env_sha
    assert git(repo, "rev-parse", f"{r.env_sha}^") == before


@pytest.mark.parametrize("mode", ["commit", "snapshot"])
def test_store_inside_the_work_tree_is_never_committed(repo: Path, mode: str) -> None:
    store = repo / "runs"
    (repo / "model.py").write_text("A = 2\n")
    first = record_session(store, repo, mode)
    assert (store / ".gitignore").read_text().splitlines()[-1] == "*"
    # A second session, now that the store (database, WAL, objects, locks) exists in the tree.
    (repo / "model.py").write_text("A = 3\n")
    second = record_session(store, repo, mode)
    assert first.env_sha != second.env_sha

    for rev in (first.env_sha, second.env_sha):
        assert not any(p.startswith("runs/") for p in files_in(repo, rev))
    assert not any(p.startswith("runs/") for p in git(repo, "ls-files").splitlines())
    assert git(repo, "status", "--porcelain", "--untracked-files=all", "--", "runs") == ""
    # Not even `git add -A` would pick it up.
    assert git(repo, "add", "-A", "--dry-run", "--", ".").count("runs/") == 0
    assert session_count(store) == 2


def test_store_inside_the_work_tree_with_auto_commit_is_clean(repo: Path) -> None:
    store = repo / "runs"
    (repo / "model.py").write_text("A = 2\n")
    record_session(store, repo, "auto")
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


# -- snapshot ----------------------------------------------------------------------


def test_snapshot_leaves_head_branch_and_index_alone(store: Path, repo: Path) -> None:
    (repo / "other.py").write_text("B = 1\n")
    (repo / "partial.py").write_text("C = 1\n")
    git(repo, "add", "other.py", "partial.py")
    git(repo, "commit", "-q", "-m", "more files")
    # A modified tracked file (unstaged), a staged change, a file staged then changed
    # again in the work tree, and an untracked file.
    (repo / "model.py").write_text("A = 2\n")
    (repo / "other.py").write_text("B = 2\n")
    git(repo, "add", "other.py")
    (repo / "partial.py").write_text("C = 2\n")
    git(repo, "add", "partial.py")
    (repo / "partial.py").write_text("C = 3\n")
    (repo / "scratch.txt").write_text("untracked\n")

    before = {
        "head": head(repo),
        "branch": git(repo, "symbolic-ref", "HEAD"),
        "main": git(repo, "rev-parse", "refs/heads/main"),
        "cached": git(repo, "diff", "--cached"),
        "unstaged": git(repo, "diff"),
        "tree": git(repo, "write-tree"),
        "status": git(repo, "status", "--porcelain"),
        "count": commit_count(repo),
    }

    r = record_session(store, repo, "snapshot", message="try it")

    after = {
        "head": head(repo),
        "branch": git(repo, "symbolic-ref", "HEAD"),
        "main": git(repo, "rev-parse", "refs/heads/main"),
        "cached": git(repo, "diff", "--cached"),
        "unstaged": git(repo, "diff"),
        "tree": git(repo, "write-tree"),
        "status": git(repo, "status", "--porcelain"),
        "count": commit_count(repo) - 1,  # the snapshot commit, reachable from its ref
    }
    assert after == before
    assert not list((repo / ".git").glob("recorder-index-*"))  # private index removed

    ref = f"refs/recorder/{r.id}"
    snap = git(repo, "rev-parse", ref)
    assert snap == r.env_sha
    assert snap != before["head"]
    assert git(repo, "cat-file", "-t", snap) == "commit"
    assert git(repo, "rev-parse", f"{snap}^") == before["head"]
    assert git(repo, "show", f"{snap}:model.py") == "A = 2"
    assert git(repo, "show", f"{snap}:other.py") == "B = 2"
    assert git(repo, "show", f"{snap}:partial.py") == "C = 3"  # the work tree, not the index
    assert files_in(repo, snap) == {"model.py", "other.py", "partial.py"}
    message = git(repo, "log", "-1", "--format=%B", snap)
    assert r.id in message and "exp" in message and "try it" in message

    row = session_row(store, r.id)
    assert row["git_mode"] == "snapshot"
    assert row["git_commit"] == snap
    assert row["env_sha"] == snap
    assert row["git_snapshot_ref"] == ref
    assert row["git_branch"] == "main"
    assert row["git_dirty"] == 1
    assert row["git_auto_committed"] == 0


def test_snapshot_when_clean_is_head(store: Path, repo: Path) -> None:
    (repo / "scratch.txt").write_text("untracked\n")
    before = head(repo)
    r = record_session(store, repo, "snapshot")
    assert r.env_sha == before == head(repo)
    assert git(repo, "for-each-ref", "refs/recorder") == ""
    row = session_row(store, r.id)
    assert row["git_snapshot_ref"] is None
    assert row["git_commit"] == before
    assert row["git_dirty"] == 0


def test_snapshot_of_a_deleted_file(store: Path, repo: Path) -> None:
    (repo / "other.py").write_text("B = 1\n")
    git(repo, "add", "other.py")
    git(repo, "commit", "-q", "-m", "other")
    (repo / "other.py").unlink()
    r = record_session(store, repo, "snapshot")
    assert files_in(repo, r.env_sha) == {"model.py"}
    assert "other.py" in files_in(repo, "HEAD")
    assert git(repo, "status", "--porcelain") == "D other.py"


# -- require-clean -----------------------------------------------------------------


def test_require_clean_when_clean(store: Path, repo: Path) -> None:
    (repo / "scratch.txt").write_text("untracked files are allowed\n")
    r = record_session(store, repo, "require-clean")
    row = session_row(store, r.id)
    assert row["git_mode"] == "require-clean"
    assert row["git_commit"] == head(repo) == r.env_sha
    assert row["git_dirty"] == 0
    assert row["git_auto_committed"] == 0


@pytest.mark.parametrize("store_exists", [False, True])
@pytest.mark.parametrize("change", ["unstaged", "staged", "deleted"])
def test_require_clean_refuses_a_dirty_tree(store: Path, repo: Path, store_exists: bool, change: str) -> None:
    if store_exists:
        record_session(store, repo, "require-clean")
    before = head(repo)
    if change == "deleted":
        (repo / "model.py").unlink()
    else:
        (repo / "model.py").write_text("A = 2\n")
        if change == "staged":
            git(repo, "add", "model.py")

    with pytest.raises(DirtyWorkTree, match=r"model\.py") as info:
        with rec.Recorder("exp", store=store, git="require-clean", repo=repo):
            pytest.fail("the session must not start")
    assert isinstance(info.value, GitError)
    assert isinstance(info.value, RecorderError)
    assert "require-clean" in str(info.value)

    assert head(repo) == before
    if store_exists:
        assert session_count(store) == 1
    else:
        assert not store.exists()


def test_require_clean_names_renamed_files_correctly(store: Path, repo: Path) -> None:
    git(repo, "mv", "model.py", "renamed.py")
    with pytest.raises(DirtyWorkTree) as info:
        rec.Recorder("exp", store=store, git="require-clean", repo=repo).open()
    message = str(info.value)
    assert "renamed.py" in message
    assert "model.py" in message
    assert ", el.py" not in message


# -- record --------------------------------------------------------------------------


def test_record_stores_head_dirty_flag_and_diff(store: Path, repo: Path) -> None:
    before = head(repo)
    (repo / "model.py").write_text("A = 2\n")
    (repo / "scratch.txt").write_text("untracked\n")

    r = record_session(store, repo, "record")

    assert head(repo) == before
    assert commit_count(repo) == 1
    assert git(repo, "for-each-ref", "refs/recorder") == ""
    assert (repo / "model.py").read_text() == "A = 2\n"
    assert git(repo, "status", "--porcelain").splitlines() == ["M model.py", "?? scratch.txt"]

    row = session_row(store, r.id)
    assert row["git_mode"] == "record"
    assert row["git_commit"] == before == row["env_sha"]
    assert row["git_dirty"] == 1
    assert row["git_auto_committed"] == 0
    assert row["git_diff"] is not None
    diff = stored_text(store, row["git_diff"])
    assert "-A = 1" in diff and "+A = 2" in diff
    assert "model.py" in diff
    assert "scratch.txt" not in diff
    # The stored diff applies to HEAD and gives back the work tree.
    git(repo, "stash", "-q")
    assert (repo / "model.py").read_text() == "A = 1\n"
    subprocess.run(["git", "apply"], cwd=repo, input=diff, text=True, check=True)
    assert (repo / "model.py").read_text() == "A = 2\n"


def test_record_when_clean_stores_no_diff(store: Path, repo: Path) -> None:
    r = record_session(store, repo, "record")
    row = session_row(store, r.id)
    assert row["git_dirty"] == 0
    assert row["git_diff"] is None
    assert row["git_commit"] == head(repo)


# -- no git ----------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["dirty-repo", "outside"])
def test_git_false_records_nothing(store: Path, repo: Path, tmp_path: Path, where: str) -> None:
    if where == "dirty-repo":
        start = repo
        (repo / "model.py").write_text("A = 2\n")
        before = head(repo)
    else:
        start = tmp_path / "elsewhere"
        start.mkdir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = record_session(store, start, False)
    assert recorder_warnings(caught) == []

    row = session_row(store, r.id)
    for column in (
        "git_mode",
        "git_repo",
        "git_commit",
        "git_branch",
        "git_dirty",
        "git_snapshot_ref",
        "git_diff",
        "untracked_modules",
    ):
        assert row[column] is None, column
    assert SHA_RE.fullmatch(row["env_sha"])
    assert row["env_sha"] == hashlib.sha1(f"exp{row['time_start']}{__version__}".encode()).hexdigest()
    if where == "dirty-repo":
        assert head(repo) == before
        assert git(repo, "status", "--porcelain") == "M model.py"


# -- operations in progress ------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "commit", "snapshot", "require-clean"])
def test_merge_in_progress_is_refused(store: Path, repo: Path, mode: str) -> None:
    start_conflict(repo, "merge")
    assert (repo / ".git" / "MERGE_HEAD").exists()
    before = head(repo)
    with pytest.raises(GitError, match="merge"):
        with rec.Recorder("exp", store=store, git=mode, repo=repo):
            pytest.fail("the session must not start")
    assert head(repo) == before
    assert (repo / ".git" / "MERGE_HEAD").exists()
    assert git(repo, "for-each-ref", "refs/recorder") == ""
    assert not store.exists()


@pytest.mark.parametrize("operation", ["rebase", "cherry-pick"])
def test_rebase_or_cherry_pick_in_progress_is_refused(store: Path, repo: Path, operation: str) -> None:
    start_conflict(repo, operation)
    before = head(repo)
    with pytest.raises(GitError, match=operation):
        rec.Recorder("exp", store=store, git="commit", repo=repo).open()
    assert head(repo) == before
    assert not store.exists()


def test_merge_in_progress_record_still_works(store: Path, repo: Path) -> None:
    start_conflict(repo, "merge")
    before = head(repo)
    with pytest.warns(RecorderWarning, match="merge"):
        r = record_session(store, repo, "record")
    assert head(repo) == before
    assert (repo / ".git" / "MERGE_HEAD").exists()
    row = session_row(store, r.id)
    assert row["git_mode"] == "record"
    assert row["git_commit"] == before == row["env_sha"]
    assert row["git_dirty"] == 1
    assert row["git_branch"] == "main"


# -- invalid modes ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["yes", "Auto", "clean", "", 1, 0.0])
def test_invalid_mode_is_refused_before_the_store(store: Path, repo: Path, mode: object) -> None:
    with pytest.raises(GitError) as info:
        rec.Recorder("exp", store=store, git=mode, repo=repo)  # type: ignore[arg-type]
    message = str(info.value)
    for valid in gitinfo.MODES:
        assert repr(valid) in message
    assert "False" in message
    assert not store.exists()
    with pytest.raises(GitError):
        gitinfo.check_mode(mode)


@pytest.mark.parametrize("mode", ["commit", "snapshot", "require-clean", "record"])
def test_modes_needing_a_repository_refuse_outside_one(store: Path, tmp_path: Path, mode: str) -> None:
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    with pytest.raises(GitError, match="not inside"):
        rec.Recorder("exp", store=store, git=mode, repo=outside).open()
    assert not store.exists()


# -- untracked modules ----------------------------------------------------------------------


SCRIPT = """\
import json, sys
import recorder as rec
import helper_mod, tracked_mod

with rec.Recorder("exp", store=sys.argv[1], git=sys.argv[2]) as r:
    with r.run(x=helper_mod.X + tracked_mod.Y) as run:
        run.log(y=1)
print(json.dumps({"id": r.id, "untracked": r.git.untracked_modules}))
"""


@pytest.mark.parametrize("mode", ["auto", "record"])
def test_untracked_imported_module_is_recorded_and_warned(store: Path, repo: Path, mode: str) -> None:
    (repo / "tracked_mod.py").write_text("Y = 2\n")
    (repo / "main_script.py").write_text(SCRIPT)
    git(repo, "add", "tracked_mod.py", "main_script.py")
    git(repo, "commit", "-q", "-m", "script")
    (repo / "helper_mod.py").write_text("X = 1\n")  # imported, never added
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONWARNINGS", None)

    result = subprocess.run(
        [sys.executable, str(repo / "main_script.py"), str(store), mode],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["untracked"] == ["helper_mod.py"]
    assert "RecorderWarning" in result.stderr
    assert "helper_mod.py" in result.stderr
    assert "tracked_mod" not in result.stderr

    row = session_row(store, out["id"])
    assert json.loads(row["untracked_modules"]) == ["helper_mod.py"]
    assert Path(row["script_path"]).resolve() == (repo / "main_script.py").resolve()
    assert row["git_commit"] == head(repo)
    assert "helper_mod.py" not in files_in(repo, "HEAD")  # auto-commit never adds it


WARNING_SCRIPTS = {
    "recorder": """\
import sys
import recorder as rec
import helper_mod

with rec.Recorder("exp", store=sys.argv[1], git="record") as r:  # line 5
    with r.run(x=helper_mod.X) as run:
        run.log(y=1)
""",
    "decorator": """\
import sys
import recorder as rec
import helper_mod

@rec.experiment("exp", store=sys.argv[1], git="record")
def exp(x):
    return {"y": x}

exp(x=helper_mod.X)  # line 9
""",
    "sweep": """\
import sys
import recorder as rec
import helper_mod

@rec.experiment("exp", store=sys.argv[1], git="record")
def exp(x):
    return {"y": x}

exp.sweep([{"x": helper_mod.X}], progress=False)  # line 9
""",
}


@pytest.mark.parametrize(("how", "line"), [("recorder", 5), ("decorator", 9), ("sweep", 9)])
def test_untracked_warning_points_at_the_users_line_and_names_the_main_script(
    store: Path, repo: Path, how: str, line: int
) -> None:
    """The warning's location is the user's line (not recorder's), and the main script is run, not imported."""
    script = repo / "untracked_main.py"
    script.write_text(WARNING_SCRIPTS[how])
    (repo / "helper_mod.py").write_text("X = 1\n")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONWARNINGS", None)
    result = subprocess.run(
        [sys.executable, str(script), str(store)],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    warned = [w for w in result.stderr.splitlines() if "RecorderWarning" in w]
    assert len(warned) == 1, result.stderr
    assert warned[0].startswith(f"{script}:{line}: RecorderWarning: "), warned[0]
    message = warned[0].split("RecorderWarning: ", 1)[1]
    assert "the main script untracked_main.py" in message
    assert "imported module helper_mod.py" in message
    assert "untracked_main.py" not in message.split("imported", 1)[1]  # the script is not called imported


def test_untracked_warning_without_an_untracked_main_script(repo: Path) -> None:
    (repo / "helper_mod.py").write_text("X = 1\n")
    (repo / "other.py").write_text("")
    with pytest.warns(RecorderWarning) as caught:
        gitinfo.capture(
            "record", start=repo, experiment="exp", session_id="s1", modules=[repo / "helper_mod.py", repo / "other.py"]
        )
    (message,) = recorder_warnings(list(caught))
    assert "imported modules helper_mod.py, other.py" in message
    assert "main script" not in message
    assert caught[0].filename == __file__  # this test's line, not recorder's


def test_capture_lists_only_untracked_modules_in_the_work_tree(repo: Path, tmp_path: Path) -> None:
    (repo / "pkg").mkdir()
    (repo / "pkg" / "tracked.py").write_text("")
    git(repo, "add", "pkg/tracked.py")
    git(repo, "commit", "-q", "-m", "pkg")
    untracked = repo / "helper_mod.py"
    untracked.write_text("X = 1\n")
    nested = repo / "pkg" / "new.py"
    nested.write_text("")
    outside = tmp_path / "outside.py"
    outside.write_text("")
    in_git_dir = repo / ".git" / "hooks_helper.py"
    in_git_dir.write_text("")
    modules = [repo / "model.py", repo / "pkg" / "tracked.py", untracked, nested, outside, in_git_dir]

    with pytest.warns(RecorderWarning, match=r"helper_mod\.py") as caught:
        state = gitinfo.capture("record", start=repo, experiment="exp", session_id="s1", modules=modules)
    assert state.untracked_modules == ["helper_mod.py", "pkg/new.py"]
    assert len(recorder_warnings(list(caught))) == 1
    assert "pkg/new.py" in str(caught[0].message)

    with warnings.catch_warnings(record=True) as clean:
        warnings.simplefilter("always")
        state = gitinfo.capture(
            "record",
            start=repo,
            experiment="exp",
            session_id="s2",
            modules=[repo / "model.py", repo / "pkg" / "tracked.py", outside],
        )
    assert state.untracked_modules == []
    assert recorder_warnings(clean) == []


# -- a repository without commits ------------------------------------------------------------


@pytest.mark.parametrize("identity", [True, False])
def test_first_commit_in_an_empty_repository(store: Path, tmp_path: Path, identity: bool) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    if identity:
        git(repo, "config", "user.name", "Test User")
        git(repo, "config", "user.email", "test@example.com")
    (repo / "model.py").write_text("A = 1\n")
    git(repo, "add", "model.py")
    (repo / "scratch.txt").write_text("untracked\n")
    assert subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=repo).returncode != 0

    r = record_session(store, repo, "commit", message="first")

    assert int(git(repo, "rev-list", "--count", "HEAD")) == 1
    assert r.env_sha == head(repo)
    assert files_in(repo, "HEAD") == {"model.py"}
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "main"
    row = session_row(store, r.id)
    assert row["git_commit"] == head(repo)
    assert row["git_branch"] == "main"
    assert row["git_auto_committed"] == 1
    assert row["git_dirty"] == 0
    assert "first" in git(repo, "log", "-1", "--format=%B")


def test_empty_repository_with_nothing_staged(store: Path, tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "scratch.txt").write_text("untracked\n")
    for mode in ("commit", "snapshot", "record"):
        r = record_session(store, repo, mode)
        row = session_row(store, r.id)
        assert row["git_commit"] is None
        assert row["git_branch"] == "main"
        assert SHA_RE.fullmatch(row["env_sha"])
    assert subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=repo).returncode != 0


@pytest.mark.parametrize("mode", ["commit", "auto", "snapshot"])
def test_recorder_commits_never_run_the_signing_program(store: Path, repo: Path, tmp_path: Path, mode: str) -> None:
    """gpg may prompt for a passphrase and hang a sweep: recorder's own commits are never signed."""
    marker = tmp_path / "gpg-ran"
    program = tmp_path / "fake-gpg"
    program.write_text(f"#!/bin/sh\necho ran >> {marker}\nexit 1\n")
    program.chmod(0o755)
    git(repo, "config", "commit.gpgsign", "true")
    git(repo, "config", "gpg.program", str(program))
    (repo / "model.py").write_text("A = 3\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with rec.Recorder("exp", store=store, git=mode, repo=repo) as r:
            pass
    assert not marker.exists()
    assert not [w for w in recorder_warnings(caught) if "sign" in w]
    assert r.git is not None and r.git.commit is not None
    commit = r.git.commit
    assert git(repo, "show", f"{commit}:model.py") == "A = 3"
    assert "gpgsig" not in git(repo, "cat-file", "-p", commit)
    assert git(repo, "config", "commit.gpgsign") == "true"  # the user's setting is untouched


def test_without_a_git_executable_auto_records_no_commit(tmp_path: Path, repo: Path) -> None:
    code = f"""
import warnings
import recorder as rec
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with rec.Recorder("exp", store={str(tmp_path / "store")!r}, repo={str(repo)!r}) as r:
        pass
print("AUTO", r.git.commit, any("git is not installed" in str(w.message) for w in caught))
try:
    rec.Recorder("exp", store={str(tmp_path / "store")!r}, git="commit", repo={str(repo)!r}).open()
except rec.GitError as e:
    print("COMMIT", "git is not installed" in str(e))
"""
    env = {"PATH": str(tmp_path / "no-git-here"), "HOME": str(tmp_path), "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "AUTO None True" in done.stdout and "COMMIT True" in done.stdout
