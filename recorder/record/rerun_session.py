"""Rerun a whole recorded session: its main script, at its code, into a scratch store; compare pset by pset.

:func:`rerun_session` reads the session (:func:`read_session`: its script
path, arguments and working folder, checked, since the store is
untrusted), puts its code in a folder (:func:`recorder.record.rerun.code_folder`:
the recorded commit, snapshot ref or diff in a temporary git worktree),
runs ``python SCRIPT ARGS…`` there in a fresh process of this Python
(:func:`run_script`) with every store of that process redirected to a new
scratch store (``$RECORDER_RERUN_STORE``, honoured by
:func:`recorder.store.folder.locate`) and git only read
(``$RECORDER_RERUN_GIT``, honoured by :func:`recorder.provenance.gitinfo.capture`),
then pairs the scratch store's runs of the experiment with the session's
by pset hash, in order of occurrence (:func:`compare_runs`), and compares
each pair (:func:`recorder.read.agreement.differences`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import warnings
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import (
    AmbiguousSessionId,
    RecorderError,
    RecorderWarning,
    RerunRefused,
    RunNotFound,
    SessionNotFound,
)
from ..read.agreement import Difference, check_tolerances, differences
from .rerun import CODE_MODES, CodeFolder, SessionRecord, _plain, code_folder, environment_differences, within

__all__ = [
    "RunOutcome",
    "SessionComparison",
    "compare_runs",
    "read_session",
    "rerun_session",
    "resolve_target",
    "run_script",
]

_HEX = re.compile(r"[0-9a-fA-F]{1,24}")
_SESSION = """
SELECT s.status, e.name, s.script_path, t.text, s.argv, s.cwd, s.untracked_modules
FROM sessions AS s
JOIN experiments AS e ON e.pk = s.experiment
LEFT JOIN texts AS t ON t.digest = s.script
WHERE s.pk = ?
"""
_SESSION_OF_RUN = "SELECT lower(s.id) FROM runs AS r JOIN sessions AS s ON s.pk = r.session WHERE r.id = ?"
_RUNS_OF_SESSION = """
SELECT lower(hex(r.id)), lower(hex(p.hash)), p.params
FROM runs AS r JOIN psets AS p ON p.pk = r.pset
WHERE r.session = ? ORDER BY r.id
"""
_RUNS_OF_EXPERIMENT = """
SELECT lower(hex(r.id)), lower(hex(p.hash)), p.params
FROM runs AS r JOIN psets AS p ON p.pk = r.pset JOIN experiments AS e ON e.pk = r.experiment
WHERE e.name = ? ORDER BY r.id
"""
# The scratch store's sessions ran in a temporary worktree, which is removed: they name the repository.
_NAME_REPOSITORY = "UPDATE sessions SET git_repo = ? WHERE git_repo IN (?, ?)"
#: Seconds a script stopped at its timeout is given to end its sessions (SIGTERM) before SIGKILL.
STOP_GRACE = 10.0


@dataclass(frozen=True)
class RunOutcome:
    """One run of the comparison: a pair of runs of one pset, or a run only one side has.

    ``outcome`` is ``matched``, ``differing``, ``missing`` (only the original
    session has it) or ``extra`` (only the rerun).
    """

    outcome: str
    pset_hash: str
    params: Any
    original: str | None
    rerun: str | None
    differences: tuple[Difference, ...] = ()

    def document(self) -> dict[str, Any]:
        """The outcome as plain JSON values."""
        return {
            "outcome": self.outcome,
            "pset_hash": self.pset_hash,
            "params": self.params,
            "original": self.original,
            "rerun": self.rerun,
            "differences": [
                {"name": d.name, "original": _plain(d.original), "rerun": _plain(d.rerun), "what": d.what}
                for d in self.differences
            ],
        }


@dataclass(frozen=True)
class SessionComparison:
    """What a session's rerun found: each run's outcome, the script's exit status, and where the scratch store is.

    ``match`` is true when every run matched, none is missing or extra, and
    the script did not fail where the original session ended ``done``.
    """

    session: str
    experiment: str
    match: bool
    runs: tuple[RunOutcome, ...]
    exit_status: int
    #: ``"recorded"`` or ``"current"``.
    code: str = "recorded"
    #: The scratch store, when it was kept (something differs, or ``keep=True``); else None (removed).
    store: str | None = None
    environment: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    #: The code folder, when it was kept (``keep=True``); else None.
    folder: str | None = None

    def counts(self) -> dict[str, int]:
        """How many runs had each outcome."""
        found = dict.fromkeys(("matched", "differing", "missing", "extra"), 0)
        for run in self.runs:
            found[run.outcome] += 1
        return found

    def document(self) -> dict[str, Any]:
        """The comparison as plain JSON values (what ``recorder rerun SESSION --json`` prints)."""
        return {
            "session": self.session,
            "experiment": self.experiment,
            "match": self.match,
            "code": self.code,
            "exit_status": self.exit_status,
            **self.counts(),
            "runs": [run.document() for run in self.runs],
            "store": self.store,
            "environment": list(self.environment),
            "notes": list(self.notes),
            "folder": self.folder,
        }


def resolve_target(db: Any, ident: str, *, session: bool = False) -> tuple[str, str]:
    """Return ``("run", id)`` or ``("session", id)``: what ``recorder rerun ID`` reruns.

    ``ident`` is a full id, a unique prefix or a short id (8 digits or more
    of its end), of a run or of a session. Without ``session``, it must name
    one run or one session (a prefix that both a run's and a session's id
    start with is ambiguous). With ``session``, the session is the one
    ``ident`` names, or the session of the run it names.

    :raises RunNotFound: when nothing has that id (``SessionNotFound`` with ``session``).
    :raises AmbiguousRunId, AmbiguousSessionId: when it names more than one thing.
    """
    from ..store.ids import matching, matching_sessions

    if not isinstance(ident, str) or not _HEX.fullmatch(ident.strip()):
        raise RecorderError(
            f"{ascii(ident) if isinstance(ident, str) else repr(ident)} is not a run or session id "
            "(1 to 24 hex digits: a short id from `recorder log`, a prefix, or a session id from `recorder show`)"
        )
    digits = ident.strip().lower()
    runs = matching(db.conn, digits)
    sessions = matching_sessions(db.conn, digits)
    if session:
        owners = set(sessions)
        for run in runs:
            owners.update(row[0] for row in db.conn.execute(_SESSION_OF_RUN, (bytes.fromhex(run),)))
        if not owners:
            raise SessionNotFound(f"no session, and no run, with id {digits!r} in the store {db.root}")
        if len(owners) > 1:
            raise AmbiguousSessionId(
                f"id {digits!r} names more than one session ({', '.join(sorted(owners)[:5])}); give more digits"
            )
        return "session", owners.pop()
    if len(runs) + len(sessions) == 1:
        return ("run", runs[0]) if runs else ("session", sessions[0])
    if not runs and not sessions:
        raise RunNotFound(f"no run and no session with id {digits!r} in the store {db.root}")
    if not sessions:
        return "run", db.run_key(digits)[1]  # raises AmbiguousRunId, as every command does
    if not runs:
        return "session", db.session_key(digits)[1]  # raises AmbiguousSessionId
    raise AmbiguousSessionId(
        f"id {digits!r} names run {runs[0]} and session {sessions[0]}; give more digits, "
        "or --session to rerun the session (rec.rerun_session)"
    )


def read_session(db: Any, session_id: str) -> SessionRecord:
    """Read and check what a rerun of a session needs: its script, arguments and working folder.

    :raises RerunRefused: when the session is still recording, or records no script
        (a notebook, ``python -c``, the interactive interpreter, a rerun's own process).
    :raises SessionNotFound: when there is no such session.
    """
    from ..read.show import session_info

    pk, full = db.session_key(session_id)
    status, experiment, script_path, script, argv, cwd, untracked = db.conn.execute(_SESSION, (pk,)).fetchone()
    if status == "running":
        raise RerunRefused(f"session {full} is still recording; rerun it once it has ended")
    if not isinstance(script_path, str) or not script_path:
        raise RerunRefused(
            f"session {full} records no main script (recorded from a notebook, `python -c` or the interactive "
            "interpreter, or by a rerun), so there is no program to run again; rerun its runs one by one "
            "(recorder rerun RUN)"
        )
    try:
        args = json.loads(argv) if isinstance(argv, str) else None
    except ValueError:
        args = None
    if not isinstance(args, list) or not args or not all(isinstance(a, str) and "\0" not in a for a in args):
        raise RerunRefused(f"session {full}: the store's command line {argv!r:.120} is damaged or crafted")
    try:
        untracked_list = json.loads(untracked) if untracked else []
    except (ValueError, TypeError):
        untracked_list = []
    return SessionRecord(
        session_id=full,
        experiment=str(experiment),
        status=str(status),
        session=session_info(db, full),
        script_path=script_path,
        args=args[1:],
        cwd=cwd if isinstance(cwd, str) else None,
        script=script if isinstance(script, str) else None,
        untracked=[u for u in untracked_list if isinstance(u, str)] if isinstance(untracked_list, list) else [],
    )


def _inside(record: SessionRecord, recorded: str, repo: Path, what: str) -> PurePosixPath | None:
    """``recorded`` (an absolute path from the store) relative to the repository, or None when it is outside.

    :raises RerunRefused: when it is not an absolute path, or climbs with ``..``.
    """
    path = PurePosixPath(recorded)
    if not path.is_absolute() or ".." in path.parts or "\\" in recorded or "\0" in recorded:
        raise RerunRefused(
            f"session {record.session_id}: the store's {what} {recorded!r:.120} is not an absolute path without "
            "'..' (recorder records absolute paths); the store is damaged or crafted"
        )
    for base in (repo, repo.resolve()):
        try:
            return path.relative_to(PurePosixPath(str(base)))
        except ValueError:
            continue
    return None


def script_and_folder(record: SessionRecord, code: CodeFolder) -> tuple[Path, Path, list[str]]:
    """Return the script to run, the folder to run it in, and notes: the recorded ones mapped into ``code``.

    With git, the recorded script path and working folder are taken
    relative to the recorded repository and put inside the code folder
    (never outside it); a working folder outside the repository becomes
    the script's folder (a note says so). Without git, the stored script
    runs in its temporary folder; today's runs in the recorded working folder.

    :raises RerunRefused: when the script is outside the repository, not in the code, or its path is crafted.
    """
    notes: list[str] = []
    if code.temporary == "folder":  # the script the store kept, without git
        script = next(p for p in code.folder.iterdir() if p.suffix == ".py")
        return script, code.folder, notes
    if code.repo is None:  # today's files, without git
        script = Path(record.script_path)
        if not script.is_absolute() or not script.is_file():
            raise RerunRefused(f"session {record.session_id}: its script {record.script_path!r:.120} is not there")
        cwd = Path(record.cwd) if record.cwd and Path(record.cwd).is_absolute() else script.parent
        return script, cwd if cwd.is_dir() else script.parent, notes
    folder = code.folder
    at = f" at {code.commit}" if code.commit else ""
    relative = _inside(record, record.script_path, code.repo, "script path")
    if relative is None:
        raise RerunRefused(
            f"session {record.session_id}: its script {record.script_path!r:.120} is outside the repository "
            f"{str(code.repo)!r}, so its code at the recorded commit is unknown"
        )
    script = folder / relative
    if not within(folder, script) or not script.is_file():
        raise RerunRefused(f"session {record.session_id}: its script {str(relative)!r} is not in the code{at}")
    cwd = script.parent
    inside = _inside(record, record.cwd, code.repo, "working folder") if record.cwd else None
    if inside is not None and within(folder, folder / inside) and (folder / inside).is_dir():
        cwd = folder / inside
    else:
        notes.append(f"the recorded working folder {record.cwd!r:.120} is not in the code; the script's folder is used")
    return script, cwd, notes


def run_script(
    script: Path,
    args: list[str],
    cwd: Path,
    store: Path,
    *,
    git: bool,
    timeout: float | None = None,
) -> int:
    """Run ``python SCRIPT ARGS…`` in ``cwd`` in a fresh process of this Python; return its exit status.

    Every store the script opens is ``store`` (``$RECORDER_RERUN_STORE``);
    with ``git``, every session it records reads git and changes nothing
    (``$RECORDER_RERUN_GIT=record``). Its output goes to stderr (stdout is
    ``--json``'s). At ``timeout`` seconds it is sent SIGTERM (its sessions
    end ``interrupted``), then SIGKILL after :data:`STOP_GRACE` seconds.

    :raises RerunRefused: when it ran past ``timeout``.
    """
    from ..provenance.gitinfo import RERUN_GIT_ENV
    from ..store.layout import RERUN_STORE_ENV, STORE_ENV

    env = dict(os.environ)
    env[RERUN_STORE_ENV] = str(store)
    env.pop(STORE_ENV, None)
    if git:
        env[RERUN_GIT_ENV] = "record"
    else:
        env.pop(RERUN_GIT_ENV, None)
    try:
        sys.stderr.flush()
        out: int | None = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        out = None  # a stderr without a file (a test's capture): collect the output, then write it
    process = subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=out if out is not None else subprocess.PIPE,
        stderr=out if out is not None else subprocess.STDOUT,
        start_new_session=True,  # its own process group: a timeout stops its workers too
    )
    try:
        captured, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(process)
        raise RerunRefused(
            f"the script {script.name} ran past the timeout of {timeout:g} s and was stopped; what it recorded "
            f"is in the scratch store {store}"
        ) from None
    except BaseException:
        _stop(process)
        raise
    if captured:
        sys.stderr.write(captured.decode("utf-8", "replace"))
    return process.returncode


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a script's process group: SIGTERM, then SIGKILL if it has not ended within :data:`STOP_GRACE`."""
    for sig, grace in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.communicate(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue


def compare_runs(db: Any, session_pk: int, experiment: str, scratch: Any, rtol: float, atol: float) -> list[RunOutcome]:
    """Pair the session's runs with the scratch store's runs of ``experiment`` by pset hash, and compare each pair.

    Runs of one pset are paired in order of occurrence (their ids); the
    rest are ``missing`` (only in the session) or ``extra`` (only in the
    rerun). ``scratch`` is the scratch store's Database, or None when the
    script recorded nothing.
    """
    original = db.conn.execute(_RUNS_OF_SESSION, (session_pk,)).fetchall()
    again = scratch.conn.execute(_RUNS_OF_EXPERIMENT, (experiment,)).fetchall() if scratch is not None else []
    waiting: dict[str, deque[str]] = defaultdict(deque)
    for run, pset, _ in again:
        waiting[pset].append(run)
    found: list[RunOutcome] = []
    for run, pset, params in original:
        shown = _params(params)
        if not waiting[pset]:
            found.append(RunOutcome("missing", pset, shown, run, None))
            continue
        new = waiting[pset].popleft()
        diff = differences(db, run, new, rtol=rtol, atol=atol, rerun_db=scratch)
        found.append(RunOutcome("differing" if diff else "matched", pset, shown, run, new, tuple(diff)))
    left = {run for runs in waiting.values() for run in runs}
    found += [RunOutcome("extra", pset, _params(params), None, run) for run, pset, params in again if run in left]
    return found


def _params(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return str(text)


def _name_repository(store: Path, folder: Path, repo: Path) -> None:
    """Make the scratch store's sessions name the repository, not the temporary worktree they ran in."""
    from ..store.db import transaction
    from ..store.folder import Store

    opened = Store.open(store, create=False)
    try:
        with transaction(opened.conn) as conn:
            conn.execute(_NAME_REPOSITORY, (str(repo), str(folder), str(folder.resolve())))
    finally:
        opened.close()


def rerun_session(
    session_id: str,
    code: str = "recorded",
    rtol: float = 0,
    atol: float = 0,
    store: str | os.PathLike[str] | None = None,
    *,
    keep: bool = False,
    timeout: float | None = None,
) -> SessionComparison:
    """Run a recorded session's main script again, at its code, into a scratch store; compare pset by pset.

    ``session_id`` names the session (full id, prefix or short id), or one
    of its runs. The script runs as ``python SCRIPT ARGS…`` (the recorded
    arguments) in the recorded working folder, in a fresh process of this
    Python; ``code="recorded"`` (default) puts its code in a temporary git
    worktree (the session's snapshot ref, else its commit, a
    ``git="record"`` diff applied), ``"current"`` runs the work tree as it
    is. Every store the script opens, whatever its ``store=``, is a new
    scratch store, and git is only read, so neither the store nor the
    repository changes. The scratch store is removed when everything
    matches (unless ``keep``), else kept (its path is in the comparison).

    :param timeout: seconds the script may run; past it, it is stopped and :class:`RerunRefused` raised.
    :raises RerunRefused: when the session cannot be rerun (see :func:`read_session`, :func:`script_and_folder`).
    """
    from ..read.database import open as open_store

    rtol, atol = check_tolerances(rtol, atol)
    if code not in CODE_MODES:
        raise RecorderError(f"code={code!r} is not one of {', '.join(map(repr, CODE_MODES))}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise RecorderError(f"timeout={timeout!r} is not a number of seconds (> 0)")
    with open_store(store) as db:
        _, full = resolve_target(db, session_id, session=True)
        record = read_session(db, full)
        root = Path(db.root)
        environment = environment_differences(record.session)
        if environment:
            warnings.warn(
                f"recorder: the environment differs from that of session {record.session_id}: "
                + "; ".join(environment),
                RecorderWarning,
                stacklevel=2,
            )
        if record.untracked:
            warnings.warn(
                f"recorder: session {record.session_id} imported modules git did not track "
                f"({', '.join(record.untracked[:5])}); the rerun has them only where they still are",
                RecorderWarning,
                stacklevel=2,
            )
        folder = code_folder(db, record, code)
    notes = list(folder.notes)
    for note in folder.notes:
        warnings.warn(f"recorder: {note}", RecorderWarning, stacklevel=2)
    scratch = Path(tempfile.mkdtemp(prefix="recorder-rerun-store-"))
    try:
        script, cwd, more = script_and_folder(record, folder)
        notes += more
        status = run_script(script, record.args, cwd, scratch, git=folder.repo is not None, timeout=timeout)
        recorded_anything = (scratch / "recorder.sqlite").is_file()
        if recorded_anything and folder.temporary == "worktree" and folder.repo is not None:
            _name_repository(scratch, folder.folder, folder.repo)
    except BaseException:
        if not any(scratch.iterdir()):
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    finally:
        if not keep:
            folder.remove()
    with open_store(root) as db:
        pk, _ = db.session_key(record.session_id)
        if recorded_anything:
            with open_store(scratch) as again:
                runs = compare_runs(db, pk, record.experiment, again, rtol, atol)
        else:
            runs = compare_runs(db, pk, record.experiment, None, rtol, atol)
    failed = status != 0 and record.status == "done"
    if status != 0:
        notes.append(f"the script exited with status {status} (the session ended {record.status})")
    match = not failed and all(run.outcome == "matched" for run in runs)
    kept = keep or not match
    if not kept:
        shutil.rmtree(scratch, ignore_errors=True)
    return SessionComparison(
        session=record.session_id,
        experiment=record.experiment,
        match=match,
        runs=tuple(runs),
        exit_status=status,
        code=code,
        store=str(scratch) if kept else None,
        environment=tuple(environment),
        notes=tuple(notes),
        folder=str(folder.folder) if keep and folder.temporary else None,
    )
