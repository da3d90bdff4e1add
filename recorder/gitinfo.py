"""Git state of the code a session runs, and auto-commit (the only module importing git).

Modes (the ``git=`` argument of :class:`~recorder.Recorder`):

``"auto"`` (default)
    ``"commit"`` inside a git work tree; outside one, no git (one notice).
``"commit"``
    ``git add -u`` and commit tracked changes (untracked files are never
    added); a no-op when the work tree is clean. Hooks are not run, and a
    fallback identity is used for that commit alone when none is configured.
``"snapshot"``
    Record the working tree (tracked files, as ``git add -u`` would stage
    them) as a commit object under ``refs/recorder/<session>``, without
    moving HEAD or touching the branch or the index.
``"require-clean"``
    Refuse to start when tracked files are modified.
``"record"``
    Record HEAD, the dirty flag and the diff against HEAD; change nothing.
``False``
    No git at all.

Whatever the mode, modules the program imported from inside the work tree
that git does not track are recorded and warned about: the commit alone
cannot reproduce a run that used them.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import DirtyWorkTree, GitError, RecorderWarning

if TYPE_CHECKING:
    import git

__all__ = ["MODES", "GitState", "capture", "check_mode"]

MODES = ("auto", "commit", "snapshot", "require-clean", "record")
FALLBACK_NAME = "recorder"
FALLBACK_EMAIL = "recorder@localhost"
_IN_PROGRESS = {
    "MERGE_HEAD": "a merge",
    "rebase-merge": "a rebase",
    "rebase-apply": "a rebase or git am",
    "CHERRY_PICK_HEAD": "a cherry-pick",
    "REVERT_HEAD": "a revert",
}
# Git options for every command recorder runs: never run the user's hooks
# (git status and add refresh the index, which runs post-index-change).
_NO_HOOKS = ("-c", f"core.hooksPath={os.devnull}")
_noticed_no_repo: set[str] = set()


@dataclass
class GitState:
    """What a session records about the code it runs."""

    mode: str | None
    repo: str | None = None
    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None
    auto_committed: bool = False
    snapshot_ref: str | None = None
    diff: str | None = None
    untracked_modules: list[str] = field(default_factory=list)


def check_mode(mode: object) -> str | None:
    """Return the normalised git mode (None for no git), or raise for an unknown one."""
    if mode is False or mode is None:
        return None
    if mode is True:
        return "auto"
    if mode not in MODES:
        raise GitError(f"git={mode!r} is not a git mode; use one of {', '.join(map(repr, MODES))} or False")
    return str(mode)


def _open_repo(start: Path) -> git.Repo | None:
    """Return the repository around ``start``, or None outside one.

    :raises GitError: when git itself is missing (GitPython cannot import).
    """
    try:
        import git
    except ImportError as e:  # GitPython refuses to import when no git executable is found
        raise GitError(f"git is not installed or not on PATH ({e.__class__.__name__}: {e})") from e

    try:
        repo = git.Repo(start, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    except git.GitError as e:
        raise GitError(f"cannot read the git repository at {start}: {e}") from e
    if repo.bare:
        return None
    return repo


def _run(repo: git.Repo, *args: str, env: dict[str, str] | None = None, strip: bool = True) -> str:
    """Run one git command (without hooks) in the work tree and return its output."""
    import git

    try:
        return repo.git.execute(
            ["git", *_NO_HOOKS, *args], env=env, strip_newline_in_stdout=strip, with_extended_output=False
        )
    except git.GitCommandError as e:
        detail = (e.stderr or "").strip().replace("\n", " ") or str(e)
        raise GitError(f"git {args[0]} failed in {repo.working_tree_dir}: {detail}") from e


def _identity_env(repo: git.Repo) -> dict[str, str]:
    """Return a fallback author/committer for one commit, when the user configured none.

    The user's configuration is never changed: the identity goes into this
    one command's environment.
    """
    env: dict[str, str] = {}
    for key, fallback, names in (
        ("user.name", FALLBACK_NAME, ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME")),
        ("user.email", FALLBACK_EMAIL, ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL")),
    ):
        try:
            configured = _run(repo, "config", "--get", key)
        except GitError:  # exit status 1: not set anywhere
            configured = ""
        if not configured:
            for name in names:
                if not os.environ.get(name):
                    env[name] = fallback
    return env


def _head(repo: git.Repo) -> str | None:
    """Return HEAD's commit SHA, or None in a repository without commits."""
    try:
        return repo.head.commit.hexsha
    except ValueError:  # unborn branch: no commit yet
        return None


def _branch(repo: git.Repo) -> str | None:
    if repo.head.is_detached:
        return None
    return repo.head.ref.name


def _operation_in_progress(repo: git.Repo) -> str | None:
    git_dir = Path(repo.git_dir)
    for name, what in _IN_PROGRESS.items():
        if (git_dir / name).exists():
            return what
    return None


def _modified_files(repo: git.Repo) -> list[str]:
    """Return tracked files changed in the index or the work tree."""
    fields = iter(_run(repo, "status", "--porcelain=v1", "--untracked-files=no", "-z", strip=False).split("\0"))
    files = []
    for entry in fields:
        if not entry:
            continue
        path = entry[3:]
        if entry[0] in "RC":  # a rename or copy: the next field is the original path
            path = f"{next(fields, '?')} -> {path}"
        files.append(path)
    return files


def _commit_message(experiment: str, session_id: str, message: str | None) -> str:
    subject = f"recorder: {experiment} session {session_id}"
    return f"{subject}\n\n{message}" if message else subject


def _commit(repo: git.Repo, experiment: str, session_id: str, message: str | None) -> str:
    """``git add -u`` and commit tracked changes, without hooks; return the new HEAD."""
    _run(repo, "add", "-u")
    env = _identity_env(repo) or None
    command = ["commit", "--no-verify", "--quiet", "-m", _commit_message(experiment, session_id, message)]
    try:
        _run(repo, *command, env=env)
    except GitError as e:
        if "gpg" not in str(e).lower():
            raise
        # Signing is configured but cannot work here (no key, no agent): an
        # unsigned commit beats no record of the code.
        _run(repo, *command, "--no-gpg-sign", env=env)
        warnings.warn(f"recorder: could not sign the auto-commit, made it unsigned ({e})", RecorderWarning, stacklevel=6)
    head = _head(repo)
    assert head is not None  # a commit was just made
    return head


def _snapshot(
    repo: git.Repo, head: str | None, experiment: str, session_id: str, message: str | None
) -> tuple[str, str | None]:
    """Record the work tree as a commit under ``refs/recorder/<session>``.

    A private copy of the index takes ``git add -u``, so the user's index,
    HEAD and branch are untouched. Returns ``(commit, ref)``; the ref is
    None when the work tree equals HEAD (HEAD is then the commit).
    """
    real_index = Path(repo.index.path)
    private = Path(repo.git_dir) / f"recorder-index-{os.getpid()}-{session_id}"
    try:
        if real_index.exists():
            shutil.copyfile(real_index, private)
        env = {"GIT_INDEX_FILE": str(private)}
        if head is not None and not real_index.exists():
            _run(repo, "read-tree", head, env=env)
        _run(repo, "add", "-u", env=env)
        tree = _run(repo, "write-tree", env=env)
    finally:
        private.unlink(missing_ok=True)
    if head is not None and tree == _run(repo, "rev-parse", f"{head}^{{tree}}"):
        return head, None
    parents = ["-p", head] if head is not None else []
    commit = _run(
        repo, "commit-tree", tree, *parents, "-m", _commit_message(experiment, session_id, message),
        env=_identity_env(repo) or None,
    )
    ref = f"refs/recorder/{session_id}"
    _run(repo, "update-ref", "-m", "recorder snapshot", ref, commit)
    return commit, ref


def _module_files() -> list[Path]:
    """Return the source files of imported modules and of the main script, outside installed packages."""
    installed = {
        Path(p).resolve()
        for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, *sysconfig.get_paths().values())
        if p
    }
    files: set[Path] = set()
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if not file:
            continue
        path = Path(file)
        if path.suffix == ".pyc":
            continue
        files.add(path.resolve())
    return sorted(
        f
        for f in files
        if not any(part in ("site-packages", "dist-packages") for part in f.parts)
        and not any(f.is_relative_to(root) for root in installed)
        and f.is_file()
    )


def _untracked_modules(repo: git.Repo, candidates: Iterable[Path]) -> list[str]:
    """Return the work-tree-relative paths of ``candidates`` inside the work tree that git does not track."""
    top = Path(repo.working_tree_dir).resolve()
    git_dir = Path(repo.git_dir).resolve()
    inside = sorted(
        str(p.relative_to(top)) for p in candidates if p.is_relative_to(top) and not p.is_relative_to(git_dir)
    )
    if not inside:
        return []
    tracked = set(_run(repo, "ls-files", "-z", "--", *inside, strip=False).split("\0"))
    return [p for p in inside if Path(p).as_posix() not in tracked]


def capture(
    mode: object,
    *,
    start: Path,
    experiment: str,
    session_id: str,
    message: str | None = None,
    modules: Iterable[Path] | None = None,
) -> GitState:
    """Record (and, in ``commit``/``snapshot`` mode, save) the state of the code.

    :param mode: a git mode, see the module docstring.
    :param start: folder from which the repository is searched (upwards).
    :param modules: source files to check for being untracked; by default
        the files of every imported module and of the main script.
    :raises GitError: when the mode needs a repository and there is none,
        when a merge or rebase is in progress, or when git fails.
    :raises DirtyWorkTree: in ``require-clean`` mode with modified tracked files.
    """
    mode = check_mode(mode)
    if mode is None:
        return GitState(mode=None)
    why = f"{start} is not in a git repository"
    try:
        repo = _open_repo(start)
    except GitError as e:
        if mode != "auto":
            raise
        repo, why = None, str(e)  # "auto" without git: record no commit, with the notice below
    if repo is None:
        if mode != "auto":
            raise GitError(
                f"git={mode!r} needs a git repository, and {start} is not inside one; "
                "run from your repository, pass repo=PATH, or use git=False"
            )
        if why not in _noticed_no_repo:
            _noticed_no_repo.add(why)
            warnings.warn(
                f"recorder: {why}, so no commit is recorded (git=False silences this)",
                RecorderWarning,
                stacklevel=4,
            )
        return GitState(mode="auto")
    with repo:
        return _capture_in(repo, mode, experiment, session_id, message, modules)


def _capture_in(
    repo: git.Repo,
    mode: str,
    experiment: str,
    session_id: str,
    message: str | None,
    modules: Iterable[Path] | None,
) -> GitState:
    top = repo.working_tree_dir
    state = GitState(mode=mode, repo=str(top), branch=_branch(repo))
    in_progress = _operation_in_progress(repo)
    if in_progress and mode != "record":
        raise GitError(
            f"{in_progress} is in progress in {top}; finish or abort it first "
            "(or use git='record' to record the state as it is, or git=False)"
        )
    head = _head(repo)
    modified = _modified_files(repo)
    state.dirty = bool(modified)
    if mode == "require-clean" and modified:
        shown = ", ".join(modified[:5]) + (f" and {len(modified) - 5} more" if len(modified) > 5 else "")
        raise DirtyWorkTree(
            f"git='require-clean' and tracked files are modified in {top}: {shown}; "
            "commit or stash them, or use git='commit' or git='snapshot'"
        )
    if mode in ("auto", "commit") and modified:
        head = _commit(repo, experiment, session_id, message)
        state.auto_committed, state.dirty = True, False
    elif mode == "snapshot" and modified:
        head, state.snapshot_ref = _snapshot(repo, head, experiment, session_id, message)
    elif mode == "record" and modified and head is not None:
        state.diff = _run(repo, "diff", "--no-ext-diff", "--binary", "HEAD", strip=False)
    state.commit = head
    untracked = _untracked_modules(repo, _module_files() if modules is None else modules)
    if untracked:
        state.untracked_modules = untracked
        shown = ", ".join(untracked[:5]) + (f" and {len(untracked) - 5} more" if len(untracked) > 5 else "")
        warnings.warn(
            f"recorder: this program imported files that git does not track: {shown}; "
            "the recorded commit alone cannot reproduce it (git add them)",
            RecorderWarning,
            stacklevel=5,
        )
    if in_progress:
        warnings.warn(f"recorder: {in_progress} is in progress in {top}", RecorderWarning, stacklevel=5)
    return state


def worktree(repo_path: str | os.PathLike[str], commit: str, folder: Path) -> Path:
    """Check out ``commit`` (a SHA or a ref such as a snapshot's) as a new git worktree in ``folder``.

    The user's branch, index and work tree are untouched; remove it later with
    ``git worktree remove FOLDER``.

    :raises GitError: when the repository is gone, the commit is unknown or the folder is taken.
    """
    repo = _open_repo(Path(repo_path)) if Path(repo_path).exists() else None
    if repo is None:
        raise GitError(f"the repository {repo_path} that recorded this run is not there any more")
    with repo:
        if folder.exists() and any(folder.iterdir()):
            raise GitError(f"{folder} exists and is not empty; choose another folder")
        _run(repo, "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")
        _run(repo, "worktree", "add", "--detach", str(folder.absolute()), commit)
    return folder


def code_diff(repo_path: str | os.PathLike[str], commit_a: str, commit_b: str) -> str:
    """Return ``git diff`` between two recorded commits (or snapshot refs).

    :raises GitError: when the repository is gone or a commit is unknown there.
    """
    repo = _open_repo(Path(repo_path)) if Path(repo_path).exists() else None
    if repo is None:
        raise GitError(f"the repository {repo_path} that recorded these runs is not there any more")
    with repo:
        return _run(repo, "diff", commit_a, commit_b, strip=False)
