"""What the command line shows: runs newest first, one run in full, two runs side by side, the store.

Plain dicts and lists, so that the CLI only formats them (a table for
people, ``--json`` for programs). Everything reads through a
:class:`recorder.Database` (read-only); nothing here imports pandas.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from ..codec.values import decode, is_scalar_kind
from ..errors import DiffDoesNotApply, RecorderError, UnreadableValue
from ..store.ids import short_id, short_ids
from ..store.layout import DB_NAME, JAX_CACHE, OBJECTS, folder_files
from .failures import exception_line

if TYPE_CHECKING:
    from .database import Database

__all__ = ["log", "entries", "show", "diff", "status", "checkout", "checkout_session", "session_info", "parse_since"]

_LOG = """
SELECT r.pk, lower(hex(r.id)), e.name, r.status, r.time_start_ms, r.duration_us, p.params, r.scalars, s.env_sha,
       r.error, nullif(lower(hex(r.rerun_of)), ''),
       (SELECT group_concat(t.tag, ',') FROM run_tags AS t WHERE t.run = r.pk),
       (SELECT n.text FROM run_notes AS n WHERE n.run = r.pk ORDER BY n.pk DESC LIMIT 1)
FROM runs AS r
JOIN experiments AS e ON e.pk = r.experiment
JOIN psets AS p ON p.pk = r.pset
JOIN sessions AS s ON s.pk = r.session
WHERE {condition}
ORDER BY {order}
"""
# An experiment's names in the order they were first recorded (the function's order), as df() has them.
_FIELD_ORDER = """
SELECT f.role, f.name FROM fields AS f JOIN experiments AS e ON e.pk = f.experiment WHERE e.name = ? ORDER BY f.pk
"""
_ROW_RESULTS = "SELECT name, kind, value FROM results WHERE run = ? ORDER BY name"
_ROW_KEPT = """
SELECT DISTINCT e.name FROM fields AS f JOIN experiments AS e ON e.pk = f.experiment
WHERE f.role = 'result' AND (f.kind IN ('', 'text', 'nan', 'bool', 'int') OR f.kind LIKE 'np:%')
"""
_RUN = """
SELECT r.pk, lower(hex(r.id)), e.name, r.status, r.time_start_ms, r.duration_us, r.seed, p.params,
       lower(hex(p.hash)), r.scalars, r.error, t.text, c.text, r.session
FROM runs AS r
JOIN experiments AS e ON e.pk = r.experiment
JOIN psets AS p ON p.pk = r.pset
LEFT JOIN texts AS t ON t.digest = r.output
LEFT JOIN comments AS c ON c.pk = r.comment
WHERE r.pk = ?
"""
# The run a rerun repeats (hex, like run ids), the experiment function the run called, and where it
# ran (its host, only when not its session's; the process; its pset's position in its sweep).
_RERUN_OF = """
SELECT nullif(lower(hex(r.rerun_of)), ''), f.module, f.qualname, f.path, f.how, r.host, r.pid, r.pset_seq
FROM runs AS r LEFT JOIN functions AS f ON f.pk = r.function
WHERE r.pk = ?
"""
_TAGS_OF = "SELECT tag FROM run_tags WHERE run = ? ORDER BY tag"
# Where an imported run came from ("<tool>:<source run id>"; NULL for runs recorded here).
_ORIGIN_OF = "SELECT origin FROM runs WHERE pk = ?"
_NOTES_OF = "SELECT text, time, user, host FROM run_notes WHERE run = ? ORDER BY pk"
_DELETED_BY = """
SELECT c.time, c.user, c.host FROM runs AS r LEFT JOIN curation_events AS c ON c.pk = r.deleted
WHERE r.pk = ? AND r.deleted IS NOT NULL
"""
_RESULTS = """
SELECT x.name, x.kind, x.value, c.text, o.dtype, o.shape, o.size
FROM results AS x
LEFT JOIN comments AS c ON c.pk = x.comment
LEFT JOIN objects AS o ON x.kind IN ('object', 'file') AND o.digest = x.value
WHERE x.run = ? ORDER BY x.name
"""
_SESSION = """
SELECT id, status, time_start, time_end, message, comment, env_sha, git_mode, git_commit, git_branch, git_dirty,
       git_auto_committed, git_snapshot_ref, host, user, platform, python, recorder_version, fingerprint,
       argv, cwd, script_path, packages, git_repo
FROM sessions WHERE pk = ?
"""
_PACKAGES = "SELECT text FROM texts WHERE digest = ?"
_CONFIG = """
SELECT x.name, x.kind, x.value, o.dtype, o.shape, o.size
FROM config AS x LEFT JOIN objects AS o ON x.kind = 'object' AND o.digest = x.value
WHERE x.session = ? ORDER BY x.name
"""
_INFO = "SELECT experiment, runs, done, failed, interrupted, running FROM overview_info ORDER BY experiment"
_OBJECTS = "SELECT count(*), coalesce(sum(size), 0) FROM objects"
_STALE = """
SELECT s.id, s.host, s.pid, count(r.pk) FROM sessions AS s LEFT JOIN runs AS r
ON r.session = s.pk AND r.status = 'running' WHERE s.status = 'running' GROUP BY s.pk
"""


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _ms(text: str | None) -> str | None:
    """A session's time (stored to the microsecond) to the millisecond, as runs' times are shown."""
    if text is None or len(text) != 27 or text[19] != "." or text[-1] != "Z":
        return text
    return text[:23] + "Z"


def _loads(text: str | None, run_id: str, what: str) -> Any:
    """JSON read from a store; a crafted or damaged cell is one clear error, not a traceback."""
    try:
        return json.loads(text) if text else None
    except (ValueError, TypeError, RecursionError) as e:
        raise UnreadableValue(
            f"run {run_id}: its {what} cannot be read ({type(e).__name__}: {e}); "
            "the store is damaged or was edited by hand; `recorder verify` checks it"
        ) from e


def _decode(kind: str | None, value: Any, db: Database, run_id: str, what: str) -> Any:
    """A value cell decoded; a crafted or damaged one is one clear error naming the run and the value."""
    try:
        return decode(kind, value, db.objects)
    except Exception as e:  # whatever a hand-made cell makes numpy or json raise
        raise UnreadableValue(
            f"run {run_id}: {what} (kind {kind!r}) cannot be read ({type(e).__name__}: {e}); "
            "the store is damaged or was edited by hand; `recorder verify` checks it"
        ) from e


def parse_since(text: str) -> int:
    """Return a date (``2026-11-23``, ``2026-11-23T08:00``, with or without a zone; UTC if none) in ms.

    :raises RecorderError: for anything else.
    """
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as e:
        raise RecorderError(f"--since {text!r} is not a date; write it like 2026-11-23 or 2026-11-23T08:00") from e
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return round(moment.timestamp() * 1000)


def _scalars(db: Database, pk: int, run_id: str, compact: str | None, in_rows: bool) -> dict[str, Any]:
    """The scalar results of a run: those in runs.scalars and (when ``in_rows``) the scalar rows of results."""
    values = _loads(compact, run_id, "scalar results")
    if not isinstance(values, dict):
        values = {} if values is None else _not_a_dict(run_id, "scalar results")
    if in_rows:
        for name, kind, value in db.conn.execute(_ROW_RESULTS, (pk,)):
            if is_scalar_kind(kind):
                values[name] = _decode(kind, value, db, run_id, f"result {name!r}")
    return dict(sorted(values.items()))


def _not_a_dict(run_id: str, what: str) -> NoReturn:
    raise UnreadableValue(
        f"run {run_id}: its {what} cannot be read (not a JSON object); the store is damaged "
        "or was edited by hand; `recorder verify` checks it"
    )


def _params(text: str | None, run_id: str) -> dict[str, Any]:
    params = _loads(text, run_id, "parameters")
    return params if isinstance(params, dict) else _not_a_dict(run_id, "parameters")


def log(
    db: Database,
    experiment: str | None = None,
    *,
    limit: int | None = None,
    status: str | None = None,
    since: str | None = None,
    tag: str | None = None,
    deleted: bool = False,
) -> Iterator[dict[str, Any]]:
    """Yield runs newest first: id, short id, experiment, status, start, duration, params, scalar results,
    the error's last line (None unless the run failed), env SHA, the run it reruns (``rerun_of``, else None),
    its tags (a sorted list) and its latest note (``note``, else None).

    :param tag: only the runs with this tag.
    :param deleted: the deleted runs (``recorder rm``) instead of the live ones.
    :raises UnreadableValue: when a run's parameters or results cannot be read back (a damaged or hand-made store).
    """
    condition = f"r.deleted IS {'NOT ' if deleted else ''}NULL"
    values: list[Any] = []
    if tag is not None:
        condition += " AND r.pk IN (SELECT t.run FROM run_tags AS t WHERE t.tag = ?)"
        values.append(tag)
    if experiment is not None:
        condition += " AND r.experiment = ?"
        values.append(db.experiment_key(experiment))
    if status is not None:
        from .frame import STATUSES

        if status not in STATUSES:
            raise RecorderError(f"--status {status!r} is not one of {', '.join(STATUSES)}")
        condition += " AND r.status = ?"
        values.append(status)
    if since is not None:
        condition += " AND r.time_start_ms >= ?"
        values.append(parse_since(since))
    return entries(db, condition, values, limit=limit)


def entries(
    db: Database, condition: str, values: Sequence[Any], *, limit: int | None = None, order: str = "r.pk DESC"
) -> Iterator[dict[str, Any]]:
    """Yield the runs a WHERE clause over ``runs AS r`` picks, as :func:`log` does, in ``order``.

    :param condition: SQL over ``runs AS r``, its values bound (see :func:`recorder.read.frame.selection`).
    :param order: an ORDER BY clause over ``runs AS r`` (SQL written here, never user text).
    """
    # Experiments that keep some scalar results as rows (text, NaN, numpy scalars, commented
    # values): only their runs need a query of their own; plain numbers are in runs.scalars.
    with_rows = {name for (name,) in db.conn.execute(_ROW_KEPT)}
    orders: dict[str, dict[str, dict[str, int]]] = {}  # experiment → role → name → position
    sql = _LOG.format(condition=condition, order=order) + (" LIMIT ?" if limit is not None else "")
    cursor = db.conn.execute(sql, [*values, limit] if limit is not None else list(values))
    while True:
        batch = cursor.fetchmany(256)
        if not batch:
            return
        shorts = short_ids(db.conn, [row[1] for row in batch])
        for (
            pk,
            run_id,
            name,
            run_status,
            start,
            duration,
            params,
            compact,
            env_sha,
            error,
            rerun_of,
            tags,
            note,
        ) in batch:
            short = shorts[run_id]
            fields = orders.get(name)
            if fields is None:
                fields = orders[name] = _field_order(db, name)
            yield {
                "run_id": run_id,
                "short_id": short,
                "experiment": name,
                "status": run_status,
                "time_start": _iso(start),
                "duration_s": None if duration is None else duration / 1e6,
                "params": _ordered(_params(params, short), fields["param"]),
                "results": _ordered(_scalars(db, pk, short, compact, name in with_rows), fields["result"]),
                "error": exception_line(error),
                "env_sha": env_sha,
                "rerun_of": rerun_of,
                "tags": tags.split(",") if tags else [],
                "note": note,
            }


def _field_order(db: Database, experiment: str) -> dict[str, dict[str, int]]:
    """Where each parameter and result of an experiment comes, in the order its names were first recorded."""
    order: dict[str, dict[str, int]] = {"param": {}, "result": {}}
    for role, name in db.conn.execute(_FIELD_ORDER, (experiment,)):
        names = order.setdefault(role, {})
        names.setdefault(name, len(names))
    return order


def _ordered(values: dict[str, Any], order: dict[str, int]) -> dict[str, Any]:
    """``values`` in the recorded order (a name not recorded, after the others, alphabetically)."""
    last = len(order)
    return dict(sorted(values.items(), key=lambda item: (order.get(item[0], last), item[0])))


def _array_summary(dtype: Any, shape: Any, size: Any, digest: Any, run_id: str) -> dict[str, Any]:
    shape = _loads(shape, run_id, f"array {digest!r}'s shape") if shape else None
    return {"dtype": dtype, "shape": shape, "bytes": size, "digest": digest}


def _entry(
    db: Database, kind: str | None, value: Any, dtype: Any, shape: Any, size: Any, run_id: str, what: str
) -> dict[str, Any]:
    """A result or config cell as show gives it: the value, or an array's dtype, shape, size and digest."""
    if kind == "object":
        return {"array": _array_summary(dtype, shape, size, value, run_id)}
    if kind == "file":  # a file the run left in its folder (recorder files RUN copies it out)
        return {"file": {"bytes": size, "digest": value}}
    if kind == "link":  # a symbolic link the run left there: its target, never followed
        return {"link": value if isinstance(value, str) else repr(value)}
    if kind in ("npy", "npyscalar"):
        array = _decode(kind, value, db, run_id, what)
        if kind == "npyscalar":
            return {"value": repr(array)}
        # The digest it would have in objects/ (that of the same .npy bytes), so that diff compares it as any array.
        digest = hashlib.sha256(value).hexdigest()
        return {
            "array": {
                "dtype": str(array.dtype),
                "shape": list(array.shape),
                "bytes": len(value),
                "digest": digest,
                "inline": True,
            }
        }
    if kind == "bytes":
        return {"bytes": len(value) if isinstance(value, (bytes, str)) else None}
    decoded = _decode(kind, value, db, run_id, what)
    return {"value": decoded if isinstance(decoded, (bool, int, float, str, list, dict, type(None))) else repr(decoded)}


def _session(db: Database, pk: int, run_id: str) -> dict[str, Any]:
    row = db.conn.execute(_SESSION, (pk,)).fetchone()
    keys = [
        "id",
        "status",
        "time_start",
        "time_end",
        "message",
        "comment",
        "env_sha",
        "git_mode",
        "git_commit",
        "git_branch",
        "git_dirty",
        "git_auto_committed",
        "git_snapshot_ref",
        "host",
        "user",
        "platform",
        "python",
        "recorder_version",
        "fingerprint",
        "argv",
        "cwd",
        "script_path",
        "packages",
        "git_repo",
    ]
    session = dict(zip(keys, row))
    session["time_start"], session["time_end"] = _ms(session["time_start"]), _ms(session["time_end"])
    for flag in ("git_dirty", "git_auto_committed"):
        if session[flag] is not None:
            session[flag] = bool(session[flag])
    session["argv"] = _loads(session["argv"], run_id, "session's argv")
    digest = session.pop("packages")
    text = db.conn.execute(_PACKAGES, (digest,)).fetchone() if digest else None
    packages = _loads(text[0], run_id, "session's package list") if text else {}
    session["packages"] = packages if isinstance(packages, dict) else _not_a_dict(run_id, "session's packages")
    session["config"] = {
        name: _entry(db, kind, value, dtype, shape, size, run_id, f"config {name!r}")
        for name, kind, value, dtype, shape, size in db.conn.execute(_CONFIG, (pk,))
    }
    return session


def show(db: Database, run_id: str) -> dict[str, Any]:
    """Everything about one run: params, results (arrays as dtype, shape, digest), status, error, output, session.

    :raises UnreadableValue: when a value of the run cannot be read back (a damaged or hand-made store).
    """
    pk, _ = db.run_key(run_id)
    (
        pk,
        full,
        experiment,
        run_status,
        start,
        duration,
        seed,
        params,
        pset_hash,
        compact,
        error,
        output,
        comment,
        session,
    ) = db.conn.execute(_RUN, (pk,)).fetchone()
    short = short_id(db.conn, full)
    scalars = _loads(compact, short, "scalar results") or {}
    if not isinstance(scalars, dict):
        _not_a_dict(short, "scalar results")
    results: dict[str, Any] = {name: {"value": value} for name, value in scalars.items()}
    for name, kind, value, result_comment, dtype, shape, size in db.conn.execute(_RESULTS, (pk,)):
        entry = _entry(db, kind, value, dtype, shape, size, short, f"result {name!r}")
        if result_comment is not None:
            entry["comment"] = result_comment
        results[name] = entry
    rerun_of, module, qualname, path, how, host, pid, pset_seq = db.conn.execute(_RERUN_OF, (pk,)).fetchone()
    function = None if module is None else {"module": module, "qualname": qualname, "path": path, "how": how}
    deleted = db.conn.execute(_DELETED_BY, (pk,)).fetchone()
    session_info = _session(db, session, short)
    origin = db.conn.execute(_ORIGIN_OF, (pk,)).fetchone()[0]
    return {
        "run_id": full,
        "short_id": short,
        "experiment": experiment,
        "status": run_status,
        # An imported run whose source had no start time is stored at 0 (the column is NOT NULL): unknown.
        "time_start": None if start == 0 and origin is not None else _iso(start),
        "duration_s": None if duration is None else duration / 1e6,
        "seed": seed,
        "origin": origin,
        "params": _params(params, short),
        "pset_hash": pset_hash,
        "results": dict(sorted(results.items())),
        "comment": comment,
        "error": error,
        "error_line": exception_line(error),
        "output": output,
        "rerun_of": rerun_of,
        "function": function,
        # Where it ran: the host (its session's unless a worker elsewhere ran it), the process id, and
        # the pset's position in its sweep (None outside a sweep, and for runs recorded before schema 7).
        "exec_host": host if host is not None else session_info["host"],
        "exec_pid": pid,
        "pset_seq": pset_seq,
        "tags": [tag for (tag,) in db.conn.execute(_TAGS_OF, (pk,))],
        "notes": [
            {"text": text, "time": time, "user": user, "host": host}
            for text, time, user, host in db.conn.execute(_NOTES_OF, (pk,))
        ],
        "deleted": None if deleted is None else {"time": deleted[0], "user": deleted[1], "host": deleted[2]},
        "session": session_info,
    }


def _summary(entry: dict[str, Any]) -> Any:
    """A result as a diff compares it: the value, or an array's dtype, shape and digest."""
    if "array" in entry:
        a = entry["array"]
        return f"array {a['dtype']} {tuple(a['shape'] or ())} {(a.get('digest') or 'inline')[:12]}"
    if "file" in entry:
        return f"file {entry['file']['digest'][:12]}"
    return entry.get("value", entry)


def diff(db: Database, run_a: str, run_b: str) -> dict[str, Any]:
    """Differences between two runs: status, parameters, results, config, environment (packages, Python, host, code)."""
    a, b = show(db, run_a), show(db, run_b)
    sa, sb = a["session"], b["session"]

    def changes(left: dict[str, Any], right: dict[str, Any]) -> dict[str, list[Any]]:
        return {
            k: [left.get(k), right.get(k)] for k in sorted(left.keys() | right.keys()) if left.get(k) != right.get(k)
        }

    env_keys = [
        "env_sha",
        "git_commit",
        "git_branch",
        "git_dirty",
        "host",
        "user",
        "platform",
        "python",
        "recorder_version",
        "fingerprint",
    ]
    packages_a, packages_b = sa["packages"], sb["packages"]
    return {
        "runs": [a["run_id"], b["run_id"]],
        "short_ids": [a["short_id"], b["short_id"]],
        "experiments": [a["experiment"], b["experiment"]],
        "status": [a["status"], b["status"]] if a["status"] != b["status"] else None,
        "config": changes(
            {k: _summary(v) for k, v in sa["config"].items()}, {k: _summary(v) for k, v in sb["config"].items()}
        ),
        "params": changes(a["params"], b["params"]),
        "results": changes(
            {k: _summary(v) for k, v in a["results"].items()}, {k: _summary(v) for k, v in b["results"].items()}
        ),
        "environment": changes({k: sa[k] for k in env_keys}, {k: sb[k] for k in env_keys}),
        "packages": {
            "added": {k: packages_b[k] for k in sorted(packages_b.keys() - packages_a.keys())},
            "removed": {k: packages_a[k] for k in sorted(packages_a.keys() - packages_b.keys())},
            "changed": {
                k: [packages_a[k], packages_b[k]]
                for k in sorted(packages_a.keys() & packages_b.keys())
                if packages_a[k] != packages_b[k]
            },
        },
        "commits": [sa["git_snapshot_ref"] or sa["git_commit"], sb["git_snapshot_ref"] or sb["git_commit"]],
        "repos": [sa["git_repo"], sb["git_repo"]],
    }


def status(db: Database) -> dict[str, Any]:
    """The store: path, size, experiments with runs by status, open or stale sessions, objects, schema."""
    from ..store.db import SCHEMA_VERSION

    root: Path = db.root
    size = sum(os.path.getsize(p) for p in (root / DB_NAME, root / f"{DB_NAME}-wal") if os.path.exists(p))
    experiments = [
        dict(zip(["experiment", "runs", "done", "failed", "interrupted", "running"], row))
        for row in db.conn.execute(_INFO)
    ]
    objects, object_bytes = db.conn.execute(_OBJECTS).fetchone()
    open_sessions = [
        {"session_id": sid, "host": host, "pid": pid, "running_runs": n}
        for sid, host, pid, n in db.conn.execute(_STALE)
    ]
    # JAX's compiled programs (vsweep's compile_cache), emptied by `recorder gc --jax-cache`; None: no such folder.
    cache = root / JAX_CACHE
    cache_bytes = sum(n for _, n in folder_files(cache)) if cache.is_dir() and not cache.is_symlink() else None
    return {
        "store": str(root),
        "database_bytes": size,
        "schema_version": SCHEMA_VERSION,
        "experiments": experiments,
        "open_sessions": open_sessions,
        "objects": objects,
        "object_bytes": object_bytes,
        "objects_folder": str(root / OBJECTS),
        "jax_cache_bytes": cache_bytes,
    }


_SESSION_DIFF = """
SELECT s.git_diff, t.text
FROM sessions AS s
LEFT JOIN texts AS t ON t.digest = s.git_diff
WHERE s.pk = ?
"""
_SESSION_OF = "SELECT session FROM runs WHERE pk = ?"


class CheckedOut(NamedTuple):
    """What :func:`checkout` did."""

    run_id: str
    #: The commit (or snapshot ref) checked out.
    commit: str
    #: The new worktree, absolute.
    folder: Path
    #: The repository it belongs to (``git -C REPO worktree remove FOLDER`` removes it).
    repo: Path
    #: Whether the run's recorded uncommitted changes (``git="record"``) were applied.
    diff_applied: bool


def checkout(db: Database, run_id: str, folder: str | os.PathLike[str] | None = None) -> CheckedOut:
    """Check out the code a run ran (its session's snapshot ref, else its commit) as a git worktree.

    A run recorded with ``git="record"`` on a modified work tree gets its
    recorded diff applied to the worktree's files, so the folder holds the
    code as it ran.

    :param folder: where; default ``<repository>-<last 12 digits of the run id>`` beside the
        repository (never inside it, and never named after the experiment: a store's names are untrusted).
    :raises RecorderError: when the run was recorded without git, or git refuses.
    :raises DiffDoesNotApply: when the recorded diff does not apply (nothing is left checked out).
    """
    info = show(db, run_id)
    pk, _ = db.run_key(info["run_id"])
    (session_pk,) = db.conn.execute(_SESSION_OF, (pk,)).fetchone()
    return _checkout(db, f"run {info['run_id']}", info["run_id"], info["session"], session_pk, folder)


def session_info(db: Database, session_id: str) -> dict[str, Any]:
    """Everything about one session, as :func:`show` gives a run's ``session`` (config, code, environment).

    :raises SessionNotFound: when there is no such session (see :meth:`Database.session_key`).
    """
    pk, full = db.session_key(session_id)
    return _session(db, pk, full)


def checkout_session(db: Database, session_id: str, folder: str | os.PathLike[str] | None = None) -> CheckedOut:
    """Check out the code a session ran (:func:`checkout` of a session): ``CheckedOut.run_id`` is the session's id."""
    pk, full = db.session_key(session_id)
    return _checkout(db, f"session {full}", full, _session(db, pk, full), pk, folder)


def _checkout(
    db: Database,
    label: str,
    full: str,
    session: dict[str, Any],
    session_pk: int,
    folder: str | os.PathLike[str] | None,
) -> CheckedOut:
    from ..provenance.gitinfo import repository, worktree

    commit = session["git_snapshot_ref"] or session["git_commit"]
    if commit is None or session["git_repo"] is None:
        raise RecorderError(f"{label} was recorded without git, so there is no commit to check out")
    digest, diff = db.conn.execute(_SESSION_DIFF, (session_pk,)).fetchone()
    if digest is not None and diff is None:
        raise RecorderError(
            f"{label} recorded uncommitted changes (git='record') but the store has lost them "
            f"(text {digest!r} is missing); run recorder verify"
        )
    if diff is not None and not isinstance(diff, str):
        raise RecorderError(f"{label}: the store's recorded diff is not text; the store is damaged")
    repo = repository(session["git_repo"])
    if folder is not None:
        target = Path(folder)
    else:
        # Beside the repository, named from the id (hex, checked here
        # because the store is untrusted), so it stays next to the repository.
        suffix = full[-12:]
        target = repo.parent / f"{repo.name}-{suffix}"
        if not all(c in "0123456789abcdef" for c in suffix) or target.parent != repo.parent:
            raise RecorderError(f"cannot name a folder for {label}; give a FOLDER")
    try:
        done = worktree(str(repo), commit, target, diff=diff)
    except DiffDoesNotApply as e:
        raise DiffDoesNotApply(f"{label}: {e}") from e
    return CheckedOut(full, commit, done, repo, diff is not None)
