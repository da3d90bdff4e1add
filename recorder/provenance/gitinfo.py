"""Git state of the code a session runs, and auto-commit (the only module importing git).

Modes (the ``git=`` argument of :class:`~recorder.Recorder`):

``"auto"`` (default)
    ``"commit"`` inside a git work tree; outside one, no git (one notice).
``"commit"``
    ``git add -u`` and commit tracked changes (untracked files are never
    added); a no-op when the work tree is clean. Hooks are not run, the
    commit is not signed, and a fallback identity is used for that commit
    alone when none is configured.
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

Whatever the mode, the main script and the modules the program imported
from inside the work tree that git does not track are recorded and warned
about: the commit alone cannot reproduce a run that used them.

Git runs no hook, fsmonitor, pager, external diff or textconv driver for
recorder, whether in the user's own repository while recording or in the
repository a store names (for ``recorder diff --code`` and ``recorder
checkout``); recorder's own commits are never signed (no gpg). Recording
does run the user's clean filters (``git add -u`` and ``git diff`` need
them: git-lfs stores files through one). That repository's
path, commits and recorded diff come from the store and are untrusted:
they are validated before git sees them, and git runs there without the
repository's own filter drivers and without any network transport.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from ..errors import (
    CommitMissing,
    DiffDoesNotApply,
    DirtyWorkTree,
    GitError,
    GitRecordRefused,
    RecorderWarning,
    RepositoryMissing,
)

if TYPE_CHECKING:
    import git

__all__ = [
    "MODES",
    "RERUN_GIT_ENV",
    "GitState",
    "capture",
    "check_mode",
    "repository",
    "checked_commit",
    "worktree",
    "remove_worktree",
    "code_diff",
    "commits_mentioning",
]

MODES = ("auto", "commit", "snapshot", "require-clean", "record")
#: Set (to ``record``) by ``recorder rerun SESSION`` in the process of the script it reruns: whatever
#: mode the script asks for, git is only read (``"record"``), so that a rerun never commits nor makes
#: a snapshot ref in the user's repository. Internal; not for users to set.
RERUN_GIT_ENV = "RECORDER_RERUN_GIT"
FALLBACK_NAME = "recorder"
FALLBACK_EMAIL = "recorder@localhost"
_IN_PROGRESS = {
    "MERGE_HEAD": "a merge",
    "rebase-merge": "a rebase",
    "rebase-apply": "a rebase or git am",
    "CHERRY_PICK_HEAD": "a cherry-pick",
    "REVERT_HEAD": "a revert",
}
# Git options for every command recorder runs, in the user's repository as
# in one a store names: no hooks (git status and add refresh the index,
# which runs post-index-change; worktree add runs post-checkout), no
# fsmonitor (a hook by another name, or a daemon), no pager.
_SAFE_OPTIONS = (
    "--no-pager",
    "-c",
    f"core.hooksPath={os.devnull}",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.pager=cat",
)
# Options of recorder's own commits (auto-commit and snapshot): never
# signed, as gpg (or ssh-keygen) may ask for a passphrase and hang a sweep,
# or fail without an agent. The user's configuration is not changed.
_UNSIGNED = ("-c", "commit.gpgSign=false")
# Options of every `git diff` recorder runs: no external diff or textconv
# program (a textconv diff is for reading and does not apply), no colour
# codes, and the standard a/ b/ prefixes `git apply` expects.
_DIFF_OPTIONS = ("--no-ext-diff", "--no-textconv", "--no-color", "--src-prefix=a/", "--dst-prefix=b/")
# And for a repository a store names: no network (a partial clone's lazy
# fetch, a submodule's clone), no submodule update commands, no automatic gc.
_UNTRUSTED_CONFIG = (
    ("protocol.allow", "never"),
    ("submodule.recurse", "false"),
    ("gc.auto", "0"),
)
# Environment variables of the user's that would point git elsewhere
# (GIT_DIR, GIT_WORK_TREE, GIT_INDEX_FILE...) or run something
# (GIT_EXTERNAL_DIFF, GIT_PAGER, GIT_SSH...) are dropped for a repository a
# store names; these only say which of the user's config files to read.
_KEPT_GIT_VARIABLES = frozenset({"GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM", "GIT_EXEC_PATH"})
# What recorder writes: a full SHA-1 or SHA-256 commit, or its own snapshot
# ref named by a session id (hex).
_COMMIT_RE = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?\Z")
_SNAPSHOT_RE = re.compile(r"refs/recorder/[0-9a-f]{8,64}\Z")
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # the recorder package
_noticed_no_repo: set[str] = set()


def _warn(message: str) -> None:
    """Warn, attributing the warning to the user's line: the first caller outside recorder.

    A fixed ``stacklevel`` is right for one call path only (``Recorder``,
    the decorator and ``sweep`` reach here through different depths).
    """
    frame = sys._getframe(1)
    level = 2  # 1 would be this function
    while frame.f_back is not None and _is_own_frame(frame):
        frame = frame.f_back
        level += 1
    warnings.warn(message, RecorderWarning, stacklevel=level)


def _is_own_frame(frame: FrameType) -> bool:
    """Whether a frame runs recorder's code (or contextlib's, which ``with`` blocks in recorder go through)."""
    filename = os.path.abspath(frame.f_code.co_filename)
    return filename.startswith(_PACKAGE_DIR) or os.path.basename(filename) == "contextlib.py"


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


def _work_tree(repo: git.Repo) -> Path:
    """Return the resolved work tree of a repository :func:`_open_repo` gave (never a bare one)."""
    if repo.working_tree_dir is None:
        raise GitError(f"the git repository at {repo.git_dir} has no work tree (a bare repository)")
    return Path(repo.working_tree_dir).resolve()


def _run(
    repo: git.Repo, *args: str, env: dict[str, str] | None = None, strip: bool = True, options: tuple[str, ...] = ()
) -> str:
    """Run one git command (without hooks) in the work tree and return its output.

    :param options: git options before the command (``-c key=value``), besides :data:`_SAFE_OPTIONS`.
    """
    import git

    try:
        return repo.git.execute(
            ["git", *_SAFE_OPTIONS, *options, *args],
            env=env,
            strip_newline_in_stdout=strip,
            with_extended_output=False,
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
    """``git add -u`` and commit tracked changes, without hooks or signing; return the new HEAD.

    ``git add -u`` runs the user's clean filters (git-lfs needs them to store
    what the commit records); nothing else of the repository's runs.
    """
    _run(repo, "add", "-u")
    _run(
        repo,
        "commit",
        "--no-verify",
        "--quiet",
        "-m",
        _commit_message(experiment, session_id, message),
        env=_identity_env(repo) or None,
        options=_UNSIGNED,
    )
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
        repo,
        "commit-tree",
        tree,
        *parents,
        "-m",
        _commit_message(experiment, session_id, message),
        env=_identity_env(repo) or None,
        options=_UNSIGNED,
    )
    ref = f"refs/recorder/{session_id}"
    _run(repo, "update-ref", "-m", "recorder snapshot", ref, commit)
    return commit, ref


def _module_files() -> list[Path]:
    """Return the source files of imported modules and of the main script, outside installed packages."""
    installed = {
        Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, *sysconfig.get_paths().values()) if p
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
    top = _work_tree(repo)
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

    In the process of a script that ``recorder rerun SESSION`` runs
    (``$RECORDER_RERUN_GIT`` is ``record``), any mode that finds a repository
    records as ``"record"`` does.
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
            _warn(f"recorder: {why}, so no commit is recorded (git=False silences this)")
        return GitState(mode="auto")
    if os.environ.get(RERUN_GIT_ENV) == "record":
        mode = "record"  # a session's rerun: read the code's state, change nothing
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
        state.diff = _run(repo, "diff", *_DIFF_OPTIONS, "--binary", "HEAD", strip=False)
    state.commit = head
    untracked = _untracked_modules(repo, _module_files() if modules is None else modules)
    if untracked:
        state.untracked_modules = untracked
        _warn(_untracked_message(repo, untracked))
    if in_progress:
        _warn(f"recorder: {in_progress} is in progress in {top}")
    return state


def _untracked_message(repo: git.Repo, untracked: list[str]) -> str:
    """Say which untracked files the program uses: the main script (run, not imported) apart from modules."""
    from .environment import main_script

    script = main_script()
    top = _work_tree(repo)
    script_name = None
    if script is not None and script.is_relative_to(top) and str(script.relative_to(top)) in untracked:
        script_name = str(script.relative_to(top))
    modules = [p for p in untracked if p != script_name]
    parts = [f"the main script {script_name}"] if script_name else []
    if modules:
        shown = ", ".join(modules[:5]) + (f" and {len(modules) - 5} more" if len(modules) > 5 else "")
        parts.append(f"the imported module{'s' if len(modules) > 1 else ''} {shown}")
    return (
        f"recorder: git does not track {' and '.join(parts)}; "
        f"the recorded commit alone cannot reproduce this run (git add {'it' if len(untracked) == 1 else 'them'})"
    )


# -- the repository a store names (untrusted) ------------------------------------


def _refuse_text(value: object, what: str) -> str:
    """Return ``value`` if it is a non-empty string without control characters, else refuse it."""
    if not isinstance(value, str) or not value:
        raise GitRecordRefused(
            f"the store's {what} {value!r} is not a non-empty string; the store is damaged or crafted"
        )
    if any(ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029" for c in value):
        raise GitRecordRefused(
            f"the store's {what} {value!r} contains control characters; the store is damaged or crafted"
        )
    return value


def _untrusted_env(filters: tuple[str, ...] = ()) -> dict[str, str]:
    """Return the environment of git commands in a repository a store names.

    Configuration goes through ``GIT_CONFIG_COUNT`` (command-line scope,
    above the repository's own), where keys are not split at ``=`` as
    ``-c`` splits them: a filter driver's name is the repository's choice.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in _KEPT_GIT_VARIABLES}
    config = list(_UNTRUSTED_CONFIG)
    for name in filters:  # an empty command is no filter; `required` would make that an error
        config += [(f"filter.{name}.{key}", "") for key in ("clean", "smudge", "process")]
        config.append((f"filter.{name}.required", "false"))
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for i, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    env.update(GIT_PAGER="cat", PAGER="cat", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return env


def _git(
    cwd: Path, *args: str, filters: tuple[str, ...] = (), stdin: bytes | None = None, what: str | None = None
) -> str:
    """Run one git command in a repository a store names: hardened, no program of the repository runs.

    :param filters: the repository's filter drivers to neutralise (see :func:`_own_filters`).
    :param what: the error's subject; default ``git <command> failed in <cwd>``.
    :raises GitError: when git fails (its message, on one line).
    """
    try:
        done = subprocess.run(
            ["git", *_SAFE_OPTIONS, *args],
            cwd=cwd,
            env=_untrusted_env(filters),
            input=stdin,
            capture_output=True,
            check=False,
        )
    except OSError as e:  # no git executable, or cwd vanished
        raise GitError(f"cannot run git in {str(cwd)!r}: {e}") from e
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().replace("\n", " ") or f"exit status {done.returncode}"
        raise GitError(f"{what or f'git {args[0]} failed in {str(cwd)!r}'}: {detail}")
    return done.stdout.decode("utf-8", "surrogateescape")


def _own_filters(repo: Path) -> tuple[str, ...]:
    """Return the filter drivers the repository's own configuration defines (its config and what it includes).

    They would run on checkout (smudge) and apply (clean). The user's
    global and system drivers (git-lfs, say) are the user's and stay.
    """
    try:
        listing = _git(repo, "config", "-z", "--show-scope", "--get-regexp", r"^filter\.")
    except GitError:
        # Exit status 1 is "no such key"; any other failure (an old git
        # without --show-scope) is met by neutralising every filter.
        try:
            listing = _git(repo, "config", "-z", "--get-regexp", r"^filter\.")
        except GitError:
            return ()
        entries = [("local", entry) for entry in listing.split("\0") if entry]
    else:
        fields = listing.split("\0")
        entries = list(zip(fields[0::2], fields[1::2]))
    names = set()
    for scope, entry in entries:
        key = entry.split("\n", 1)[0]
        if scope not in ("system", "global") and key.count(".") >= 2:
            names.add(key[len("filter.") : key.rindex(".")])
    return tuple(sorted(names))


def repository(path: object) -> Path:
    """Return the repository path a store recorded, once checked to be the top folder of a git work tree.

    :raises GitRecordRefused: when the value is not an absolute path without control characters.
    :raises RepositoryMissing: when no git work tree has its top folder there.
    """
    text = _refuse_text(path, "repository path")
    folder = Path(text)
    if not folder.is_absolute():
        raise GitRecordRefused(
            f"the store's repository path {text!r} is not absolute (recorder records absolute paths); "
            "the store is damaged or crafted"
        )
    if not folder.is_dir():
        raise RepositoryMissing(
            f"the repository {text!r} that recorded this run is not there any more "
            "(moved or deleted? check it out from a clone with git worktree add)"
        )
    try:
        top = _git(folder, "rev-parse", "--show-toplevel").rstrip("\n")
    except GitError as e:
        raise RepositoryMissing(
            f"the repository path {text!r} recorded in the store is not a git work tree ({e})"
        ) from e
    if not top or not os.path.samefile(top, folder):
        raise RepositoryMissing(
            f"the repository path {text!r} recorded in the store is not the top folder of a git work tree "
            f"(git finds {top!r} there)"
        )
    return folder


def checked_commit(repo: Path, commit: object) -> str:
    """Return a commit (a full SHA) or snapshot ref a store recorded, once checked to be one, and in ``repo``.

    :raises GitRecordRefused: when the value is not a full SHA nor a ``refs/recorder/`` ref.
    :raises CommitMissing: when the repository does not have it.
    """
    text = _refuse_text(commit, "commit")
    if not (_COMMIT_RE.match(text) or _SNAPSHOT_RE.match(text)):
        raise GitRecordRefused(
            f"the store's commit {text!r} is neither a full commit SHA nor a refs/recorder/ snapshot ref; "
            "the store is damaged or crafted"
        )
    try:
        _git(repo, "rev-parse", "--verify", "--quiet", f"{text}^{{commit}}")  # the pattern above: no option
    except GitError as e:
        raise CommitMissing(
            f"the commit {text!r} is not in the repository {str(repo)!r} (history rewritten, snapshot ref "
            "deleted, or a different repository?)"
        ) from e
    return text


def worktree(repo_path: object, commit: object, folder: Path, *, diff: str | None = None) -> Path:
    """Check out ``commit`` (a SHA or a snapshot ref) as a new git worktree in ``folder``, then apply ``diff``.

    ``repo_path``, ``commit`` and ``diff`` come from a store and are
    checked here. The user's branch, index and work tree are untouched;
    the diff changes the new worktree's files only (not its index). When
    it does not apply, the new worktree is removed again. Remove it later
    with ``git -C REPO worktree remove FOLDER``.

    :returns: the folder, absolute.
    :raises GitError: when the folder is taken or git fails.
    :raises DiffDoesNotApply: when the diff does not apply to the commit.
    """
    repo = repository(repo_path)
    sha = checked_commit(repo, commit)
    folder = folder.absolute()
    existed = folder.exists()
    if existed and not folder.is_dir():
        raise GitError(f"{str(folder)!r} exists and is not a folder; choose another FOLDER")
    if existed and any(folder.iterdir()):
        raise GitError(f"{str(folder)!r} exists and is not empty; choose another FOLDER")
    filters = _own_filters(repo)
    _git(repo, "worktree", "add", "--detach", "--end-of-options", str(folder), sha, filters=filters)
    if diff is None:
        return folder
    try:
        _git(
            folder,
            "apply",
            "--whitespace=nowarn",
            "-",
            filters=filters,
            stdin=diff.encode("utf-8", "surrogateescape"),
            what=f"the recorded diff does not apply to {sha}",
        )
    except GitError as e:
        try:
            _git(repo, "worktree", "remove", "--force", "--end-of-options", str(folder), filters=filters)
        finally:
            if existed:
                folder.mkdir(exist_ok=True)  # the user's empty folder, as it was
        raise DiffDoesNotApply(f"{e}; the store's diff is damaged, or was not recorded against this commit") from e
    return folder


def remove_worktree(repo: Path, folder: Path) -> None:
    """Remove a worktree :func:`worktree` made (its files too, changed or not) and prune git's record of it.

    :raises GitError: when git fails.
    """
    filters = _own_filters(repo)
    _git(repo, "worktree", "remove", "--force", "--end-of-options", str(folder), filters=filters)
    _git(repo, "worktree", "prune", filters=filters)


def code_diff(repo_path: object, commit_a: object, commit_b: object) -> str:
    """Return ``git diff`` between two recorded commits (or snapshot refs), as a patch.

    :raises GitError: when the repository is gone or a commit is unknown there (see :func:`repository`).
    """
    repo = repository(repo_path)
    a, b = checked_commit(repo, commit_a), checked_commit(repo, commit_b)
    return _git(repo, "diff", *_DIFF_OPTIONS, "--end-of-options", a, b, filters=_own_filters(repo))


def commits_mentioning(folder: Path, text: str) -> list[tuple[str, tuple[str, ...], str]]:
    """Return the commits (of any ref) whose message holds ``text``: ``(sha, parents, subject)``, newest first.

    For importers reading what another tool committed (psweep commits its
    results as ``psweep: <dir>: run_id=<id>``). Read-only, and hardened as
    in a repository a store names: no program of the repository runs.

    :raises GitError: when ``folder`` is not in a git work tree, or git fails.
    """
    listing = _git(folder, "log", "--all", "--fixed-strings", f"--grep={text}", "--format=%H%x00%P%x00%s%x00")
    fields = listing.split("\0")
    found = []
    for i in range(0, len(fields) - 2, 3):
        sha = fields[i].strip()
        if _COMMIT_RE.match(sha):
            found.append((sha, tuple(fields[i + 1].split()), fields[i + 2]))
    return found
