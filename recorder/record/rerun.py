"""Rerun a recorded run from its record, and say whether it gives the same results.

:func:`rerun` reads the run (its parameters, seed, session and experiment
function), compares the recorded environment with this one (a warning,
never a failure), puts the code in a folder (:func:`code_folder`: the
recorded commit checked out into a temporary git worktree, or today's work
tree), calls the function once in a fresh process of the same Python with
that folder first on its import path (:func:`run_child`), which records one
run in the same experiment marked ``rerun_of``, and compares the two runs
(:func:`recorder.read.agreement.differences`). Each step is a function of
its own, so that a rerun of a whole session can use them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import FunctionMissing, RecorderError, RecorderWarning, RerunRefused
from ..provenance.environment import RERUN_SCRIPT_MODULE
from ..read.agreement import Difference, check_tolerances, differences

__all__ = [
    "CODE_MODES",
    "Comparison",
    "CodeFolder",
    "RunRecord",
    "SessionRecord",
    "code_folder",
    "environment_differences",
    "read_run",
    "rerun",
    "run_child",
]

CODE_MODES = ("recorded", "current")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_SESSION_OF_RUN = """
SELECT s.seed, s.untracked_modules, s.script_path, t.text, s.jax, s.cwd, s.git_mode
FROM runs AS r
JOIN sessions AS s ON s.pk = r.session
LEFT JOIN texts AS t ON t.digest = s.script
WHERE r.pk = ?
"""
# A rerun of recorded code ran in a temporary worktree of the repository, which is removed: its session
# names the repository instead (the worktree's commit is the repository's).
_SET_SESSION_REPO = "UPDATE sessions SET git_repo = ? WHERE pk = (SELECT session FROM runs WHERE id = ?)"
_FAILED_CHILD = 3  # the child's exit status when it could not find the function (its message on stderr)
# The fixed inputs (``fixed=``, a partial's arguments) of the run's session: digest entries and stored values.
_FIXED_OF_RUN = """
SELECT c.name, c.kind, c.value FROM config AS c JOIN runs AS r ON r.session = c.session
WHERE r.pk = ? AND c.name LIKE 'fixed.%'
"""
_KWARG = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Comparison:
    """What a rerun found: the two runs, whether they agree, and how they differ.

    ``differences`` lists each result (or ``(status)``, ``(error)``) that
    differs; ``environment`` each difference of the environment (Python,
    platform, packages) between the original session and this process;
    ``notes`` what makes this rerun not a plain check (``set=`` made a new
    pset, a vsweep run was rerun by a plain call, the code version is unknown).
    """

    original: str
    rerun: str
    match: bool
    differences: tuple[Difference, ...] = ()
    environment: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    #: ``"recorded"`` or ``"current"``.
    code: str = "recorded"
    #: The code folder, when it was kept (``keep=True``); else None.
    folder: str | None = None

    def document(self) -> dict[str, Any]:
        """The comparison as plain JSON values (what ``recorder rerun --json`` prints)."""
        return {
            "original": self.original,
            "rerun": self.rerun,
            "match": self.match,
            "code": self.code,
            "differences": [
                {"name": d.name, "original": _plain(d.original), "rerun": _plain(d.rerun), "what": d.what}
                for d in self.differences
            ],
            "environment": list(self.environment),
            "notes": list(self.notes),
            "folder": self.folder,
        }


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    return value


@dataclass(frozen=True)
class RunRecord:
    """What a rerun needs of a recorded run, read from the store and checked (the store is untrusted)."""

    run_id: str
    experiment: str
    status: str
    params: dict[str, Any]
    module: str
    qualname: str
    #: The function's file, relative to the repository root (git), or absolute (no git), or None.
    path: str | None
    how: str
    #: The session's experiment seed (so that ``rec.current_seed()`` is the same).
    seed: int | None
    session: dict[str, Any]
    untracked: list[str] = field(default_factory=list)
    #: The main script's text as stored (sessions.script), for a run recorded without git.
    script: str | None = None
    script_path: str | None = None
    cwd: str | None = None
    vsweep: bool = False
    #: The constant inputs its sweep passed (``fixed=``, a partial's arguments), read back and checked.
    fixed: dict[str, Any] = field(default_factory=dict)


def read_run(db: Any, run_id: str) -> RunRecord:
    """Read and check what a rerun of ``run_id`` needs.

    :raises RerunRefused: when the run is still running, records no
        function, or its function cannot be called by name (a lambda, a
        function defined inside another), or a fixed input of its sweep
        cannot be passed back (see :func:`fixed_inputs`).
    :raises RunNotFound: when there is no such run.
    """
    from ..read.show import show

    info = show(db, run_id)
    full = info["run_id"]
    if info["status"] == "running":
        raise RerunRefused(f"run {full} is still running; rerun it once it has ended")
    function = info["function"]
    if function is None:
        raise RerunRefused(
            f"run {full} records no experiment function (recorded with `with r.run(...)`, or before "
            "recorder recorded functions), so it cannot be called again; rerun its whole session instead: "
            f"recorder rerun --session {full}"
        )
    module, qualname, path, how = function["module"], function["qualname"], function["path"], function["how"]
    if how not in ("import", "script") or not isinstance(module, str) or not isinstance(qualname, str):
        raise RerunRefused(f"run {full}: the store's function record {function!r:.200} is damaged or crafted")
    if "<lambda>" in qualname or "<locals>" in qualname:
        kind = "a lambda" if "<lambda>" in qualname else "a local function (defined inside another function)"
        raise RerunRefused(
            f"run {full} called {module}:{qualname}, which is {kind} and cannot be found again by name; "
            "rerun the session instead"
        )
    if not _DOTTED.fullmatch(module) or not _DOTTED.fullmatch(qualname):
        raise RerunRefused(
            f"run {full}: the store's function {module!r:.80}:{qualname!r:.80} is not a dotted name; "
            "the store is damaged or crafted"
        )
    if path is not None and not isinstance(path, str):
        raise RerunRefused(f"run {full}: the store's function path {path!r:.80} is not text")
    pk, _ = db.run_key(full)
    seed, untracked, script_path, script, jax, cwd, _git_mode = db.conn.execute(_SESSION_OF_RUN, (pk,)).fetchone()
    try:
        untracked_list = json.loads(untracked) if untracked else []
        vsweep = bool(jax) and "vsweep" in json.loads(jax)
    except (ValueError, TypeError):
        untracked_list, vsweep = [], False
    return RunRecord(
        run_id=full,
        experiment=info["experiment"],
        status=info["status"],
        params=info["params"],
        module=module,
        qualname=qualname,
        path=path,
        how=how,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        session=info["session"],
        untracked=[u for u in untracked_list if isinstance(u, str)] if isinstance(untracked_list, list) else [],
        script=script if isinstance(script, str) else None,
        script_path=script_path if isinstance(script_path, str) else None,
        cwd=cwd if isinstance(cwd, str) else None,
        vsweep=vsweep,
        fixed=fixed_inputs(db, pk, full),
    )


def fixed_inputs(db: Any, pk: int, run_id: str) -> dict[str, Any]:
    """The fixed inputs of a run's session (``fixed.<name>`` config entries), as a rerun passes them back.

    Each stored value is checked against its recorded digest
    (:func:`recorder.sweep.fixed.check_stored`).

    :raises RerunRefused: naming the input, for one recorded by its type and
        ``repr`` only, by its digest only, or whose stored value is missing,
        damaged or does not match its digest.
    """
    from ..codec.values import decode
    from ..errors import ObjectError
    from ..sweep.fixed import VALUE_SUFFIX, check_stored

    cells: dict[str, tuple[Any, Any]] = {}
    for name, kind, value in db.conn.execute(_FIXED_OF_RUN, (pk,)):
        cells[name] = (kind, value)
    found = {}
    for key in sorted(cells):
        name = key[len("fixed.") :]
        if key.endswith(VALUE_SUFFIX):
            continue
        refuse = f"run {run_id} cannot be rerun: its fixed input {name!r:.80}"
        if not _KWARG.fullmatch(name):
            raise RerunRefused(f"{refuse} is not a keyword argument's name (a damaged or crafted store)")
        try:
            entry = decode(*cells[key], db.objects)
            stored = cells.get(key + VALUE_SUFFIX)
            value = decode(*stored, db.objects, mmap=False) if stored is not None else None
            found[name] = check_stored(name, entry, value)
        except RerunRefused:
            raise
        except (RecorderError, ObjectError, OSError, ValueError, TypeError) as e:
            raise RerunRefused(f"{refuse}: {e}") from None
    return found


def environment_differences(session: Mapping[str, Any]) -> list[str]:
    """Return how this process's environment differs from a recorded session's: Python, platform, packages."""
    from ..provenance.environment import environment

    now = environment()
    found = []
    for label, then, today in (
        ("python", session.get("python"), now.python),
        ("platform", session.get("platform"), now.platform),
    ):
        if then != today:
            found.append(f"{label}: {then} then, {today} now")
    recorded = session.get("packages") or {}
    current = json.loads(now.packages)
    if isinstance(recorded, dict):
        for name in sorted(recorded.keys() | current.keys(), key=str.lower):
            if name == "recorder":
                continue  # the rerun's own version: reported by the sessions, not a difference of the code
            then, today = recorded.get(name), current.get(name)
            if then != today:
                found.append(f"package {name}: {then or '(absent)'} then, {today or '(absent)'} now")
    return found


@dataclass
class CodeFolder:
    """Where a rerun's code is: a folder, the import root inside it, and how to remove it afterwards."""

    #: The folder holding the code (a temporary worktree, the user's work tree, or a folder with the stored script).
    folder: Path
    #: The repository the run recorded (None without git).
    repo: Path | None
    #: Whether :meth:`remove` removes the folder (a temporary one), and how: ``worktree`` or ``folder``.
    temporary: str | None = None
    #: The commit checked out (or the snapshot ref), when one was.
    commit: str | None = None
    notes: list[str] = field(default_factory=list)

    def remove(self) -> None:
        """Remove a temporary folder (a worktree with ``git worktree remove --force``, then ``prune``)."""
        from ..provenance.gitinfo import remove_worktree

        if self.temporary == "worktree" and self.repo is not None:
            try:
                remove_worktree(self.repo, self.folder)
            finally:
                shutil.rmtree(self.folder.parent, ignore_errors=True)
        elif self.temporary == "folder":
            shutil.rmtree(self.folder, ignore_errors=True)


@dataclass(frozen=True)
class SessionRecord:
    """What a rerun of a whole session needs of it, read from the store and checked (the store is untrusted)."""

    session_id: str
    experiment: str
    status: str
    #: The session as :func:`recorder.read.show.session_info` gives it (code, environment, argv, cwd).
    session: dict[str, Any]
    #: The main script's absolute path as recorded.
    script_path: str
    #: The command line's arguments after the script.
    args: list[str]
    cwd: str | None
    #: The main script's text as stored (sessions.script), for a session recorded without git.
    script: str | None = None
    untracked: list[str] = field(default_factory=list)


def _label(record: RunRecord | SessionRecord) -> str:
    return f"run {record.run_id}" if isinstance(record, RunRecord) else f"session {record.session_id}"


def code_folder(db: Any, record: RunRecord | SessionRecord, code: str) -> CodeFolder:
    """Put the code of a rerun in a folder: the recorded code (``code="recorded"``) or today's (``"current"``).

    Recorded code of a git session is the session's snapshot ref, else its
    commit, checked out into a temporary worktree (a ``git="record"``
    session's diff applied). A session without git has no code version: a
    function of its main script (or, for a whole session, the script) is
    run from the script the store kept; one imported from a module cannot
    be. Today's code is the repository's work tree as it is, modified files
    included (the rerun records their diff).

    :raises RerunRefused: when the code cannot be had (see above).
    :raises CommitMissing: when the repository does not have the commit.
    :raises DiffDoesNotApply: when the recorded diff does not apply.
    """
    from ..provenance.gitinfo import repository
    from ..read.show import checkout_session

    if code not in CODE_MODES:
        raise RecorderError(f"code={code!r} is not one of {', '.join(map(repr, CODE_MODES))}")
    label = _label(record)
    session = record.session
    has_git = session.get("git_commit") is not None and session.get("git_repo") is not None
    if has_git:
        repo = repository(session["git_repo"])
        if code == "current":
            return CodeFolder(repo, repo)
        scratch = Path(tempfile.mkdtemp(prefix="recorder-rerun-"))
        try:
            done = checkout_session(db, session["id"], scratch / repo.name)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return CodeFolder(done.folder, repo, "worktree", done.commit)
    note = f"{label} was recorded without git: the version of its code is unknown"
    if code == "current":
        if isinstance(record, SessionRecord):
            shown = note + f"; today's script {record.script_path} is run"  # a path from the store: named
            return CodeFolder(Path(record.script_path).parent, None, notes=[shown])
        if record.path is None or not Path(record.path).is_absolute():
            raise RerunRefused(f"run {record.run_id} was recorded without git and records no file of its function")
        # The path comes from the store: say which file runs, so that a store cannot run a program unseen.
        shown = note + f"; today's file {record.path} is run"
        return CodeFolder(_import_root(record, Path(record.path)), None, notes=[shown])
    if isinstance(record, RunRecord) and record.how == "import":
        raise RerunRefused(
            f"run {record.run_id} was recorded without git, and its function {record.module}:{record.qualname} "
            "was imported from a module whose code the store does not keep; rerun it with code='current' "
            "(--code current) to call today's version"
        )
    if record.script is None:
        raise RerunRefused(
            f"{label} was recorded without git and the store kept no script for its session; "
            "rerun it with code='current' (--code current)"
        )
    scratch = Path(tempfile.mkdtemp(prefix="recorder-rerun-"))
    name = PurePosixPath(record.script_path or "script.py").name
    if not name.endswith(".py") or name.startswith("."):
        name = "script.py"  # the stored path is untrusted: only a plain file name is used
    (scratch / name).write_text(record.script, encoding="utf-8", errors="surrogateescape")
    return CodeFolder(scratch, None, "folder", notes=[note + "; the script the store kept is run"])


def _import_root(record: RunRecord, file: Path) -> Path:
    """The folder to put first on the import path so that ``import module`` finds ``file``.

    :raises RerunRefused: when ``file`` is not where ``module`` would be found.
    """
    if record.how == "script":
        return file.parent
    parts = record.module.split(".")
    steps = parts if file.name == "__init__.py" else parts[:-1]
    if file.name != "__init__.py" and file.stem != parts[-1]:
        raise RerunRefused(
            f"run {record.run_id}: the store's file {str(file)!r} of module {record.module!r} does not match it"
        )
    root = file.parent
    for part in reversed(steps):
        if root.name != part:
            raise RerunRefused(
                f"run {record.run_id}: the store's file {str(file)!r} is not where module {record.module!r} is"
            )
        root = root.parent
    return root


def _relative_file(record: RunRecord) -> PurePosixPath:
    """The function's file relative to the code folder, once checked (relative, no ``..``).

    :raises RerunRefused: when the store's path is absolute, climbs out, or is missing.
    """
    if record.path is None:
        raise RerunRefused(f"run {record.run_id} records no file for its function (a notebook?); it cannot be rerun")
    path = PurePosixPath(record.path)
    if path.is_absolute() or ".." in path.parts or not path.parts or "\\" in record.path or "\0" in record.path:
        raise RerunRefused(
            f"run {record.run_id}: the store's function path {record.path!r:.120} is not a relative path inside "
            "the repository; the store is damaged or crafted"
        )
    return path


def run_child(
    record: RunRecord,
    code: CodeFolder,
    store: Path,
    params: Mapping[str, Any],
    *,
    use_git: bool,
    message: str,
) -> str:
    """Call the run's function once on ``params`` in a fresh process of this Python; return the new run's id.

    The child imports the code from ``code.folder`` (first on ``PYTHONPATH``),
    records one run in ``store`` and the run's experiment, with the
    recorded experiment seed, marked as a rerun of ``record.run_id``, and
    passes the run's fixed inputs (``record.fixed``) back as they were:
    arrays as ``.npy`` files (loaded without pickle), bytes as files,
    JSON values in its spec.

    :raises FunctionMissing: when the function is not in the code (renamed or removed).
    :raises RerunRefused: when the child fails otherwise (its last line of error).
    """
    folder = code.folder
    if code.temporary == "folder":  # the stored script of a session without git
        file = next(p for p in folder.iterdir() if p.suffix == ".py")
        root = folder
    elif code.repo is None:  # today's files of a session without git: the recorded absolute path
        file = Path(record.path or "")
        root = code.folder
    elif record.how == "import" and record.path is not None and PurePosixPath(record.path).is_absolute():
        # A module from outside the repository (an installed package): imported as this Python finds it,
        # and only when that is the recorded file. Both come from the store: say what runs.
        file, root = Path(record.path), None
        warnings.warn(
            f"recorder: run {record.run_id} calls {record.module}:{record.qualname} from {file}, outside the "
            "repository: that file's code runs as it is today",
            RecorderWarning,
            stacklevel=2,
        )
    else:
        file = folder / _relative_file(record)
        root = _import_root(record, file)
    cwd = folder
    if record.cwd and code.repo is not None:
        try:  # the recorded working folder, mapped into the code folder, when it was inside the repository
            inside = Path(record.cwd).relative_to(code.repo)
            if ".." not in inside.parts and (folder / inside).is_dir() and within(folder, folder / inside):
                cwd = folder / inside
        except ValueError:
            pass
    spec = {
        "experiment": record.experiment,
        "store": str(store),
        "seed": record.seed,
        "module": record.module,
        "qualname": record.qualname,
        "how": record.how,
        "file": str(file),
        "params": dict(params),
        "rerun_of": record.run_id,
        "git": use_git,
        "repo": str(folder),
        "message": message,
    }
    with tempfile.TemporaryDirectory(prefix="recorder-rerun-spec-") as scratch:
        spec_path, out_path = Path(scratch) / "spec.json", Path(scratch) / "out.json"
        spec["out"] = str(out_path)
        spec["fixed"] = _fixed_spec(record.fixed, Path(scratch))
        spec_path.write_text(json.dumps(spec))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(p) for p in (root, env.get("PYTHONPATH")) if p])
        env.pop("RECORDER_STORE", None)  # the store is named in the spec
        done = subprocess.run(
            # -c puts the working folder (chosen from the store) first on sys.path: drop it before
            # anything is imported, so that no module there can stand in for recorder or the code.
            [sys.executable, "-c", _CHILD, str(spec_path)],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        sys.stderr.write(done.stdout.decode("utf-8", "replace"))  # the function's prints: stdout is --json's
        errors = done.stderr.decode("utf-8", "replace")
        where = f" at {code.commit}" if code.commit else ""
        if done.returncode == _FAILED_CHILD:
            raise FunctionMissing(f"{errors.strip().splitlines()[-1] if errors.strip() else 'not found'}{where}")
        if done.returncode != 0 or not out_path.is_file():
            last = errors.strip().splitlines()[-1] if errors.strip() else f"exit status {done.returncode}"
            raise RerunRefused(f"the rerun of run {record.run_id} failed before recording a run: {last}")
        run_id: str = json.loads(out_path.read_text())["run_id"]
    return run_id


_CHILD = "import sys; del sys.path[0]; from recorder.record.rerun import child_main; child_main()"


def _fixed_spec(fixed: Mapping[str, Any], folder: Path) -> dict[str, list[Any]]:
    """The fixed inputs as the child's spec names them: ``name → [kind, value or file]``, arrays and bytes in files."""
    spec: dict[str, list[Any]] = {}
    for index, (name, value) in enumerate(fixed.items()):
        if isinstance(value, (bytes, bytearray)):
            path = folder / f"fixed-{index}.bytes"
            path.write_bytes(value)
            spec[name] = [type(value).__name__, str(path)]
        elif type(value).__module__ == "numpy":
            import numpy as np

            path = folder / f"fixed-{index}.npy"
            np.save(path, value, allow_pickle=False)
            spec[name] = ["ndarray", str(path)]
        else:
            spec[name] = ["json", value]
    return spec


def _fixed_of_spec(spec: Mapping[str, list[Any]]) -> dict[str, Any]:
    """The fixed inputs of the child's spec (see :func:`_fixed_spec`)."""
    fixed: dict[str, Any] = {}
    for name, (kind, value) in spec.items():
        if kind == "ndarray":
            import numpy as np

            fixed[name] = np.load(value, allow_pickle=False)
        elif kind in ("bytes", "bytearray"):
            data = Path(value).read_bytes()
            fixed[name] = bytearray(data) if kind == "bytearray" else data
        else:
            fixed[name] = value
    return fixed


def _taken_by(func: Any, fixed: dict[str, Any]) -> dict[str, Any]:
    """The fixed inputs ``func`` takes (a session's other sweeps may have had others); all when it takes ``**kwargs``."""
    import inspect

    try:
        parameters = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return fixed
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return fixed
    return {name: value for name, value in fixed.items() if name in parameters}


def within(folder: Path, path: Path) -> bool:
    """Whether ``path`` is inside ``folder`` once symbolic links are followed (a committed link may point out)."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def child_main() -> None:
    """The rerun's child process: find the function, record one run of it (see :func:`run_child`)."""
    import importlib
    import runpy
    import types

    spec = json.loads(Path(sys.argv[1]).read_text())
    module, qualname = spec["module"], spec["qualname"]
    try:
        if spec["how"] == "import":
            found: Any = importlib.import_module(module)
            imported = getattr(found, "__file__", None)
            if imported is None or Path(imported).resolve() != Path(spec["file"]).resolve():
                # A module already loaded (os, subprocess) or found elsewhere is not the recorded code.
                raise ImportError(
                    f"module {module} was imported from {imported}, not from the recorded file {spec['file']}"
                )
        else:
            file = spec["file"]
            holder = types.ModuleType(RERUN_SCRIPT_MODULE)
            holder.__file__ = file
            sys.modules[RERUN_SCRIPT_MODULE] = holder  # function_identity records it as the script it is
            found = types.SimpleNamespace(**runpy.run_path(file, run_name=RERUN_SCRIPT_MODULE))
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as e:
        print(
            f"the function {module}:{qualname} is not in the code ({type(e).__name__}: {e}); "
            "was it renamed or removed?",
            file=sys.stderr,
        )
        sys.exit(_FAILED_CHILD)
    func = getattr(found, "__recorder_function__", found)  # an @experiment: its function, not a new session
    if not callable(func):
        print(f"{module}:{qualname} is a {type(func).__name__}, not a function", file=sys.stderr)
        sys.exit(_FAILED_CHILD)
    from ..sweep.loop import sweep
    from .recorder import Recorder

    with Recorder(
        spec["experiment"],
        store=spec["store"],
        git="record" if spec["git"] else False,
        repo=spec["repo"],
        seed=spec["seed"],
        message=spec["message"],
    ) as r:
        fixed = _taken_by(func, _fixed_of_spec(spec.get("fixed") or {}))
        table = sweep(
            r, func, [spec["params"]], skip=None, progress=False, rerun_of=spec["rerun_of"], fixed=fixed or None
        )
    assert table is not None
    Path(spec["out"]).write_text(json.dumps({"run_id": str(table["_run_id"].iloc[0])}))


def _name_repository(root: Path, run_id: str, repo: Path) -> None:
    """Make the session of the rerun ``run_id`` name the repository, not the temporary worktree it ran in."""
    from ..store.db import transaction
    from ..store.folder import Store

    store = Store.open(root)
    try:
        with transaction(store.conn) as conn:
            conn.execute(_SET_SESSION_REPO, (str(repo), bytes.fromhex(run_id)))
    finally:
        store.close()


def rerun(
    run_id: str,
    code: str = "recorded",
    set: Mapping[str, Any] | None = None,
    rtol: float = 0,
    atol: float = 0,
    store: str | os.PathLike[str] | None = None,
    *,
    keep: bool = False,
) -> Comparison:
    """Run a recorded run's function again on its parameters and seed; compare the two runs' results.

    The new run is recorded in the same store and experiment, as a normal
    run with ``rerun_of`` set to the original's id. ``code="recorded"``
    (default) runs the code the run ran (its commit, or snapshot, checked
    out into a temporary git worktree, removed afterwards unless ``keep``);
    ``code="current"`` runs the repository's work tree as it is. The
    function runs in a fresh process of this Python, so it imports that
    code, not what this process imported. Environment differences (Python,
    platform, package versions) are warned about (:class:`RecorderWarning`)
    and listed in the comparison, never a failure.

    :param set: parameters to change (name → value): a new pset, so not a check (said in ``notes``).
    :param rtol, atol: tolerances for floats and arrays (default: bitwise equal).
    :param keep: keep the temporary code folder (its path is in the comparison).
    :raises RerunRefused: when the run cannot be rerun (see :func:`read_run`, :func:`code_folder`).
    :raises FunctionMissing: when the function is not in the code any more.
    """
    from ..read.database import open as open_store

    rtol, atol = check_tolerances(rtol, atol)
    if code not in CODE_MODES:
        raise RecorderError(f"code={code!r} is not one of {', '.join(map(repr, CODE_MODES))}")
    changes = dict(set or {})
    with open_store(store) as db:
        record = read_run(db, run_id)
        root = Path(db.root)
        notes: list[str] = []
        environment = environment_differences(record.session)
        if environment:
            warnings.warn(
                f"recorder: the environment differs from that of run {record.run_id}: " + "; ".join(environment),
                RecorderWarning,
                stacklevel=2,
            )
        if record.untracked:
            warnings.warn(
                f"recorder: run {record.run_id} imported modules git did not track ({', '.join(record.untracked[:5])}); "
                "the rerun has them only where they still are",
                RecorderWarning,
                stacklevel=2,
            )
        unknown = sorted(changes.keys() - record.params.keys())
        if unknown:
            notes.append(f"new parameter(s) {', '.join(unknown)} given")
        if changes:
            notes.append("parameters changed with set=: a new pset, so this is not a check of the original")
        if record.vsweep:
            notes.append("a vsweep run: rerun through a plain call of the function on its pset (sweep, not vsweep)")
        folder = code_folder(db, record, code)
    notes += folder.notes
    for note in folder.notes:
        warnings.warn(f"recorder: {note}", RecorderWarning, stacklevel=2)
    try:
        new = run_child(
            record,
            folder,
            root,
            {**record.params, **changes},
            use_git=folder.repo is not None,
            message=f"rerun of {record.run_id}",
        )
    finally:
        if not keep:
            folder.remove()
    if folder.temporary == "worktree" and folder.repo is not None:
        _name_repository(root, new, folder.repo)
    with open_store(root) as db:
        found = differences(db, record.run_id, new, rtol=rtol, atol=atol)
    return Comparison(
        original=record.run_id,
        rerun=new,
        match=not found,
        differences=tuple(found),
        environment=tuple(environment),
        notes=tuple(notes),
        code=code,
        folder=str(folder.folder) if keep and folder.temporary else None,
    )
