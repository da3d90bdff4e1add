"""Hostile stores against `recorder diff --code` and `recorder checkout`.

What a store says about git (the repository's path, the commit, the
snapshot ref, the recorded diff) is untrusted: each crafted value must be
refused with one clear line, run nothing, and create or write nothing
outside the folder the user asked for.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import git, make_repo

import recorder as rec
from recorder.cli.commands import main
from recorder.errors import DiffDoesNotApply, GitRecordRefused, RepositoryMissing
from recorder.provenance import gitinfo

EXP = "lorenz"


def cli(store: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--store", str(store), *args])


def one_line_error(result: Result, *fragments: str) -> str:
    assert result.exit_code == 1, (result.output, result.exception)
    lines = result.stderr.rstrip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("recorder: error: "), result.stderr
    assert "Traceback" not in result.output
    assert "\x1b" not in result.stderr  # a crafted value reaches the terminal escaped
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def two_runs(store: Path, repo: Path) -> tuple[str, str]:
    with rec.Recorder(EXP, store=store, git="commit", repo=repo) as r, r.run(a=1) as run:
        run.log(e=1.0)
    first = run.id
    (repo / "model.py").write_text("A = 2\n")
    with rec.Recorder(EXP, store=store, git="commit", repo=repo) as r, r.run(a=2) as run:
        run.log(e=2.0)
    return first, run.id


def set_sessions(store: Path, column: str, value: object) -> None:
    conn = sqlite3.connect(store / "recorder.sqlite")
    with conn:
        conn.execute(f'UPDATE sessions SET "{column}" = ?', (value,))
    conn.close()


def repository_values(tmp_path: Path, repo: Path) -> dict[str, object]:
    plain = tmp_path / "plain"
    plain.mkdir()
    (tmp_path / "file").write_text("")
    (repo / "sub").mkdir()
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    moved = make_repo(tmp_path / "moved")
    git(moved, "config", "core.worktree", str(plain))  # the repository says its work tree is elsewhere
    return {
        "missing": str(tmp_path / "gone"),
        "relative": "repo",
        "plain folder": str(plain),
        "file": str(tmp_path / "file"),
        "subfolder": str(repo / "sub"),
        "bare": str(bare),
        "work tree elsewhere": str(moved),
        "newline": str(repo) + "\n",
        "escape": str(repo) + "\x1b[2J",
        "number": 12,
        "empty": "",
    }


REFUSED = ("relative", "newline", "escape", "number", "empty")  # GitRecordRefused; the others RepositoryMissing


def test_a_crafted_repository_path_is_refused(store: Path, repo: Path, tmp_path: Path) -> None:
    run_a, run_b = two_runs(store, repo)
    for case, value in repository_values(tmp_path, repo).items():
        set_sessions(store, "git_repo", value)
        before = sorted(p.name for p in tmp_path.iterdir())
        for args in (
            ["diff", run_a, run_b, "--code"],
            ["checkout", run_a, str(tmp_path / "code")],
            ["checkout", run_a],
        ):
            one_line_error(cli(store, *args), "repository")
        assert sorted(p.name for p in tmp_path.iterdir()) == before, case  # nothing created anywhere
        with pytest.raises(GitRecordRefused if case in REFUSED else RepositoryMissing):
            gitinfo.repository(value)


COMMITS = [
    "--output=OUT",
    "-p",
    "HEAD",
    "main",
    "refs/heads/main",
    "HEAD~1",
    "refs/recorder/../heads/main",
    "0" * 39,
    "@{-1}",
]


@pytest.mark.parametrize("column", ["git_commit", "git_snapshot_ref"])
def test_a_crafted_commit_is_refused_and_never_reaches_git_as_an_option(
    store: Path, repo: Path, tmp_path: Path, column: str
) -> None:
    run_a, run_b = two_runs(store, repo)
    out = tmp_path / "written-by-git"
    for value in COMMITS:
        shown = value.replace("OUT", str(out))
        set_sessions(store, column, shown)
        one_line_error(cli(store, "diff", run_a, run_b, "--code"), repr(shown))
        one_line_error(cli(store, "checkout", run_a, str(tmp_path / "code")), repr(shown))
        with pytest.raises(GitRecordRefused):
            gitinfo.checked_commit(repo, shown)
        assert not out.exists()
        assert not (tmp_path / "code").exists()


def test_a_commit_the_repository_does_not_have_is_a_clear_error(store: Path, repo: Path, tmp_path: Path) -> None:
    run_a, run_b = two_runs(store, repo)
    set_sessions(store, "git_commit", "ab" * 20)
    one_line_error(cli(store, "diff", run_a, run_b, "--code"), "ab" * 20, "not in the repository")
    one_line_error(cli(store, "checkout", run_a, str(tmp_path / "code")), "ab" * 20, "not in the repository")
    assert not (tmp_path / "code").exists()


ESCAPING = """\
diff --git a/../outside.txt b/../outside.txt
new file mode 100644
index 0000000..5626abf
--- /dev/null
+++ b/../outside.txt
@@ -0,0 +1 @@
+pwned
"""

THROUGH_A_LINK = """\
diff --git a/link b/link
new file mode 120000
index 0000000..0000000
--- /dev/null
+++ b/link
@@ -0,0 +1 @@
+TARGET
\\ No newline at end of file
diff --git a/link/outside.txt b/link/outside.txt
new file mode 100644
index 0000000..5626abf
--- /dev/null
+++ b/link/outside.txt
@@ -0,0 +1 @@
+pwned
"""


@pytest.mark.parametrize("patch", [ESCAPING, THROUGH_A_LINK], ids=["dotdot", "symlink"])
def test_a_crafted_recorded_diff_writes_nothing_outside_the_checkout(
    store: Path, repo: Path, tmp_path: Path, patch: str
) -> None:
    (repo / "model.py").write_text("A = 'dirty'\n")
    with rec.Recorder(EXP, store=store, git="record", repo=repo) as r, r.run(a=1) as run:
        run.log(e=1.0)
    victim = tmp_path / "victim"
    victim.mkdir()
    conn = sqlite3.connect(store / "recorder.sqlite")
    with conn:
        digest = conn.execute("SELECT git_diff FROM sessions").fetchone()[0]
        conn.execute("UPDATE texts SET text = ? WHERE digest = ?", (patch.replace("TARGET", str(victim)), digest))
    conn.close()
    one_line_error(cli(store, "checkout", run.id, str(tmp_path / "code")), "does not apply")
    assert list(victim.iterdir()) == []
    assert not (tmp_path / "outside.txt").exists()
    assert not (tmp_path / "code").exists()
    with rec.open(store) as db, pytest.raises(DiffDoesNotApply):
        from recorder.read import show as history

        history.checkout(db, run.id, tmp_path / "code")


def test_a_recorded_diff_missing_from_the_store_is_a_clear_error(store: Path, repo: Path, tmp_path: Path) -> None:
    """Checking out HEAD alone would silently give code the run did not run: refuse instead."""
    (repo / "model.py").write_text("A = 'dirty'\n")
    with rec.Recorder(EXP, store=store, git="record", repo=repo) as r, r.run(a=1) as run:
        run.log(e=1.0)
    conn = sqlite3.connect(store / "recorder.sqlite")
    with conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("DELETE FROM texts WHERE digest = (SELECT git_diff FROM sessions)")
    conn.close()
    one_line_error(cli(store, "checkout", run.id, str(tmp_path / "code")), run.id, "lost")
    assert not (tmp_path / "code").exists()
