"""Curating runs after the fact: tags, notes, delete and restore, purge; each one a recorded event.

The read side (:class:`recorder.Database`) stays read-only: these functions
open the store for writing themselves, pick the runs through a read-only
:class:`~recorder.Database` (so a user's ``where`` runs under its
authorizer, never on the writing connection), then write in one
transaction that also appends one row to ``curation_events`` (who, when,
on which host, what). Nothing is written when no run is picked.

Deleting is soft: ``runs.deleted`` holds the event that deleted the run,
and every view and reader for users (the wide views, the overview views,
``db.df``, ``log``, ``runs``, the ``skip="done"`` look-ups) shows only live
runs; :func:`restore` clears it. :func:`purge` removes deleted runs for
good, with what only they used, and then the objects no row refers to.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from ..codec.hashing import not_text
from ..errors import CurationRefused, NameRefused, RecorderError, SessionRecording, ValueRefused
from ..read.database import Database
from ..read.frame import STATUSES, selection
from ..store import catalog
from ..store.db import transaction
from ..store.folder import Store, locate
from ..store.ids import now_utc
from ..store.objects import ObjectsLock
from .maintenance import _collect

__all__ = [
    "NOTE_MAX_BYTES",
    "TAG_MAX_LENGTH",
    "Curated",
    "Purged",
    "check_tag",
    "tag",
    "untag",
    "note",
    "rm",
    "restore",
    "purge",
    "events",
]

#: The longest note, in bytes of UTF-8: notes are remarks, not files (keep those as results).
NOTE_MAX_BYTES = 64 * 1024
#: The longest tag, in characters.
TAG_MAX_LENGTH = 64

_PKS = "SELECT value FROM json_each(?)"
_INSERT_EVENT = "INSERT INTO curation_events (time, user, host, action, detail) VALUES (?, ?, ?, ?, ?)"
_IDS_OF = "SELECT lower(hex(id)) FROM runs WHERE pk IN (SELECT value FROM json_each(?)) ORDER BY pk"
_RUNNING_OF = "SELECT lower(hex(id)) FROM runs WHERE pk IN (SELECT value FROM json_each(?)) AND status = 'running'"
_TAG = "INSERT OR IGNORE INTO run_tags (run, tag) SELECT r.pk, ? FROM runs AS r WHERE r.pk IN (SELECT value FROM json_each(?))"
_UNTAG = "DELETE FROM run_tags WHERE tag = ? AND run IN (SELECT value FROM json_each(?))"
_NOTE = """
INSERT INTO run_notes (run, text, time, user, host)
SELECT r.pk, ?, ?, ?, ? FROM runs AS r WHERE r.pk IN (SELECT value FROM json_each(?)) ORDER BY r.pk
"""
_DELETE = "UPDATE runs SET deleted = ? WHERE pk IN (SELECT value FROM json_each(?)) AND deleted IS NULL"
_RESTORE = "UPDATE runs SET deleted = NULL WHERE pk IN (SELECT value FROM json_each(?)) AND deleted IS NOT NULL"
_EVENTS = "SELECT pk, time, user, host, action, detail FROM curation_events ORDER BY pk"

# purge: the deleted runs (whose deleting event is older than a time), and what only they use.
_DOOMED = """
SELECT r.pk, r.experiment FROM runs AS r JOIN curation_events AS c ON c.pk = r.deleted
WHERE r.deleted IS NOT NULL AND c.time < ?
"""
_RECORDING = """
SELECT s.id, s.host, s.pid, e.name FROM sessions AS s JOIN experiments AS e ON e.pk = s.experiment
WHERE s.status = 'running' AND s.experiment IN (SELECT value FROM json_each(?))
"""
# What the doomed runs use, read before they go: their psets, outputs (texts), and comments (theirs and their results').
_USED_BY = """
SELECT json_group_array(DISTINCT pset), json_group_array(DISTINCT output),
       (SELECT json_group_array(c) FROM (
           SELECT comment AS c FROM runs WHERE pk IN (SELECT value FROM json_each(?1)) AND comment IS NOT NULL
           UNION SELECT comment FROM results WHERE run IN (SELECT value FROM json_each(?1)) AND comment IS NOT NULL))
FROM runs WHERE pk IN (SELECT value FROM json_each(?1))
"""
_PURGE = (
    "DELETE FROM run_tags WHERE run IN (SELECT value FROM json_each(:runs))",
    "DELETE FROM run_notes WHERE run IN (SELECT value FROM json_each(:runs))",
    "DELETE FROM results WHERE run IN (SELECT value FROM json_each(:runs))",
    # fields.first_run names runs: the experiments' fields are rebuilt from the runs left.
    "DELETE FROM fields WHERE experiment IN (SELECT value FROM json_each(:experiments))",
    "DELETE FROM runs WHERE pk IN (SELECT value FROM json_each(:runs))",
    """DELETE FROM psets WHERE pk IN (SELECT value FROM json_each(:psets))
       AND NOT EXISTS (SELECT 1 FROM runs AS r WHERE r.pset = psets.pk)""",
    """DELETE FROM comments WHERE pk IN (SELECT value FROM json_each(:comments))
       AND pk NOT IN (SELECT comment FROM runs WHERE comment IS NOT NULL)
       AND pk NOT IN (SELECT comment FROM results WHERE comment IS NOT NULL)""",
    """DELETE FROM texts WHERE digest IN (SELECT value FROM json_each(:outputs))
       AND digest NOT IN (SELECT output FROM runs WHERE output IS NOT NULL)
       AND digest NOT IN (SELECT git_diff FROM sessions WHERE git_diff IS NOT NULL
                          UNION SELECT packages FROM sessions WHERE packages IS NOT NULL
                          UNION SELECT script FROM sessions WHERE script IS NOT NULL)""",
)


class Curated(NamedTuple):
    """What a curation did (or, with ``dry_run``, would do)."""

    action: str
    #: The runs picked (full ids, oldest first).
    run_ids: list[str]
    #: How many rows it changed: tags added or removed, notes added, runs deleted or restored.
    changed: int
    dry_run: bool


class Purged(NamedTuple):
    """What :func:`purge` removed (or would remove): runs, object files and their bytes."""

    runs: int
    files: int
    bytes: int
    dry_run: bool


def check_tag(name: object) -> str:
    """Return ``name`` if it may be a tag: a short name, visible text without spaces or commas.

    :raises NameRefused: otherwise (tags are shown comma-joined in the views, and typed in commands).
    """
    if type(name) is not str or not name:
        raise NameRefused(f"tag {name!r} is not a non-empty string")
    bad = not_text(name)
    if bad is not None or any(c.isspace() or c == "," for c in name):
        shown = repr(bad) if bad is not None else "a space or comma"
        raise NameRefused(
            f"tag {name!a} holds {shown}; a tag is one short name without spaces, commas or "
            "control characters (tags are shown comma-joined): e.g. 'good' or 'lr-sweep'"
        )
    if name.startswith("-"):
        raise NameRefused(f"tag {name!r} starts with '-', which commands read as an option; rename it")
    if len(name) > TAG_MAX_LENGTH:
        raise NameRefused(f"tag {name[:20]!r}… is {len(name)} characters long; a tag has at most {TAG_MAX_LENGTH}")
    return name


def _tags(tags: str | Iterable[str]) -> list[str]:
    names = [tags] if isinstance(tags, str) else list(tags)
    if not names:
        raise NameRefused("no tag given: name at least one tag")
    return sorted({check_tag(t) for t in names})


def _who() -> tuple[str, str | None, str]:
    try:
        user: str | None = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers) and no $USER
        user = None
    return now_utc(), user, socket.gethostname()


def _pick(
    db: Database,
    run_ids: str | Sequence[str] | None,
    experiment: str | None,
    where: str | None,
    status: str | None,
    all_runs: bool,
    *,
    deleted: bool = False,
) -> list[int]:
    """Return the keys of the runs named by id, or selected in an experiment; in run order.

    :param deleted: select deleted runs (for :func:`restore`) instead of live ones.
    """
    if run_ids is not None:
        if experiment is not None or where is not None or status is not None or all_runs:
            raise RecorderError("name runs either by id or by experiment (with where, status or all), not both")
        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        if not ids:
            raise RecorderError("no run named: give run ids, or an experiment with where, status or all")
        return sorted({db.run_key(i)[0] for i in ids})
    if experiment is None:
        raise RecorderError("no run named: give run ids, or an experiment with where, status or all")
    if where is None and status is None and not all_runs:
        raise CurationRefused(
            f"this would pick every run of experiment {experiment!r}: narrow it with where (--where) or "
            "status (--status), or say so with all_runs=True (--all)"
        )
    if status is not None and status not in STATUSES:
        raise RecorderError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    pk = db.experiment_key(experiment)
    params, results = catalog.columns(catalog.fields_of(db.conn, pk))
    statuses = None if status is None else [status]
    condition, values = selection(db.conn, pk, statuses, where, params, results, deleted=deleted)
    try:
        picked = [r for (r,) in db.conn.execute(f"SELECT r.pk FROM runs AS r WHERE {condition} ORDER BY r.pk", values)]
        if picked and where is not None and not all_runs:
            every, _ = selection(db.conn, pk, statuses, None, params, results, deleted=deleted)
            (total,) = db.conn.execute(f"SELECT count(*) FROM runs AS r WHERE {every}", [pk]).fetchone()
            if len(picked) == total:
                raise CurationRefused(
                    f"where {where!r} selects every one of the {total} runs of experiment {experiment!r}; "
                    "if that is meant, add all_runs=True (--all)"
                )
    except sqlite3.Error as e:
        raise RecorderError(f"cannot select the runs of {experiment!r}: {e}") from e
    return picked


def _curate(
    action: str,
    store: str | os.PathLike[str] | None,
    run_ids: str | Sequence[str] | None,
    experiment: str | None,
    where: str | None,
    status: str | None,
    all_runs: bool,
    dry_run: bool,
    detail: dict[str, Any],
    write: Any,
    *,
    deleted: bool = False,
) -> Curated:
    """Pick the runs, then (unless ``dry_run`` or none is picked) write and record the event in one transaction.

    :param write: ``write(conn, event_pk, pks_json) -> int``, the rows it changed.
    """
    root = locate(store, create=False)
    # Opened for writing first: that migrates an older store, which the read-only Database refuses.
    with Store.open(root, create=False) as opened:
        return _curate_in(opened, action, run_ids, experiment, where, status, all_runs, dry_run, detail, write, deleted)


def _curate_in(
    opened: Store,
    action: str,
    run_ids: str | Sequence[str] | None,
    experiment: str | None,
    where: str | None,
    status: str | None,
    all_runs: bool,
    dry_run: bool,
    detail: dict[str, Any],
    write: Any,
    deleted: bool,
) -> Curated:
    with Database(opened.root) as db:
        pks = _pick(db, run_ids, experiment, where, status, all_runs, deleted=deleted)
        if not dry_run and action == "rm" and pks:
            running = [i for (i,) in db.conn.execute(_RUNNING_OF, (json.dumps(pks),))]
            if running:
                raise CurationRefused(
                    f"run {running[0]} is running{f' (and {len(running) - 1} more)' if len(running) > 1 else ''}; "
                    "a running run cannot be deleted: wait until it ends, or leave it out"
                )
        ids = [i for (i,) in db.conn.execute(_IDS_OF, (json.dumps(pks),))] if pks else []
    if dry_run or not pks:
        return Curated(action, ids, 0, dry_run)
    when, user, host = _who()
    detail = {**detail, "runs": ids}
    if experiment is not None:
        detail = {"experiment": experiment, "where": where, "status": status, **detail}
    with transaction(opened.conn) as conn:
        cursor = conn.execute(_INSERT_EVENT, (when, user, host, action, json.dumps(detail, sort_keys=True)))
        event = int(cursor.lastrowid)  # type: ignore[arg-type]
        if action == "rm":  # checked again inside the transaction: a run may have begun since
            running = conn.execute(_RUNNING_OF, (json.dumps(pks),)).fetchone()
            if running is not None:
                raise CurationRefused(f"run {running[0]} is running; a running run cannot be deleted")
        changed = int(write(conn, event, json.dumps(pks), when, user, host))
    return Curated(action, ids, changed, False)


def tag(
    run_ids: str | Sequence[str] | None = None,
    *,
    tags: str | Iterable[str],
    experiment: str | None = None,
    where: str | None = None,
    status: str | None = None,
    all_runs: bool = False,
    store: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
) -> Curated:
    """Give runs one or more tags (runs named by id, or picked in ``experiment`` by ``where``/``status``/``all_runs``).

    A run that already has a tag keeps it (tagging twice changes nothing).

    :raises NameRefused: for a tag with a space, a comma or a control character, or longer than
        :data:`TAG_MAX_LENGTH`.
    :raises CurationRefused: when ``where`` selects every run of the experiment without ``all_runs``.
    :raises RunNotFound: for a run id that names no run.
    :raises AmbiguousRunId: for a run id that names several runs.
    """
    names = _tags(tags)

    def write(conn: sqlite3.Connection, event: int, pks: str, *_: Any) -> int:
        return sum(conn.execute(_TAG, (name, pks)).rowcount for name in names)

    return _curate("tag", store, run_ids, experiment, where, status, all_runs, dry_run, {"tags": names}, write)


def untag(
    run_ids: str | Sequence[str] | None = None,
    *,
    tags: str | Iterable[str],
    experiment: str | None = None,
    where: str | None = None,
    status: str | None = None,
    all_runs: bool = False,
    store: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
) -> Curated:
    """Take tags off runs (picked as by :func:`tag`); a run without the tag is left as it is."""
    names = _tags(tags)

    def write(conn: sqlite3.Connection, event: int, pks: str, *_: Any) -> int:
        return sum(conn.execute(_UNTAG, (name, pks)).rowcount for name in names)

    return _curate("untag", store, run_ids, experiment, where, status, all_runs, dry_run, {"tags": names}, write)


def note(
    run_ids: str | Sequence[str] | None = None,
    *,
    text: str,
    experiment: str | None = None,
    where: str | None = None,
    status: str | None = None,
    all_runs: bool = False,
    store: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
) -> Curated:
    """Add a note to runs (picked as by :func:`tag`), with its time, user and host.

    Notes are never edited: a run may have several, and the latest is the one ``log`` and
    ``runs`` show; ``show`` lists them all.

    :raises ValueRefused: for a note that is not text, is empty, or is longer than
        :data:`NOTE_MAX_BYTES` bytes of UTF-8 (64 KiB).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueRefused(f"note {text!r} is not a non-empty text")
    try:
        size = len(text.encode())
    except UnicodeEncodeError as e:
        raise ValueRefused(f"note holds a character that is not text ({e.reason}); remove it") from e
    if size > NOTE_MAX_BYTES:
        raise ValueRefused(
            f"note of {size} bytes is longer than the {NOTE_MAX_BYTES} bytes (64 KiB) a note may have; "
            "keep long texts as a result of the run, or as a file"
        )

    def write(conn: sqlite3.Connection, event: int, pks: str, when: str, user: str | None, host: str) -> int:
        return int(conn.execute(_NOTE, (text, when, user, host, pks)).rowcount)

    return _curate("note", store, run_ids, experiment, where, status, all_runs, dry_run, {"text": text}, write)


def rm(
    run_ids: str | Sequence[str] | None = None,
    *,
    experiment: str | None = None,
    where: str | None = None,
    status: str | None = None,
    all_runs: bool = False,
    store: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
) -> Curated:
    """Delete runs softly: they leave every view, ``df``, ``log``, ``runs`` and ``skip="done"``, until
    :func:`restore` or :func:`purge`.

    :raises CurationRefused: for a running run (nothing is deleted), or a ``where`` that selects
        every run without ``all_runs``.
    """

    def write(conn: sqlite3.Connection, event: int, pks: str, *_: Any) -> int:
        return int(conn.execute(_DELETE, (event, pks)).rowcount)

    return _curate("rm", store, run_ids, experiment, where, status, all_runs, dry_run, {}, write)


def restore(
    run_ids: str | Sequence[str] | None = None,
    *,
    experiment: str | None = None,
    where: str | None = None,
    status: str | None = None,
    all_runs: bool = False,
    store: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
) -> Curated:
    """Bring deleted runs back (named by id, or picked among an experiment's deleted runs)."""

    def write(conn: sqlite3.Connection, event: int, pks: str, *_: Any) -> int:
        return int(conn.execute(_RESTORE, (pks,)).rowcount)

    return _curate("restore", store, run_ids, experiment, where, status, all_runs, dry_run, {}, write, deleted=True)


class _DryRun(Exception):
    """Raised inside purge's transaction to roll a dry run back, carrying what it would have done."""

    def __init__(self, purged: Purged) -> None:
        super().__init__()
        self.purged = purged


def purge(
    store: str | os.PathLike[str] | None = None,
    *,
    older_than_s: float | None = None,
    dry_run: bool = False,
) -> Purged:
    """Remove deleted runs for good, with their results, tags and notes, the psets, comments and
    outputs no other run uses, then the object files and rows nothing refers to any more.

    All in one transaction holding the objects lock, as :func:`recorder.gc` does (which it
    includes). A dry run does it all and rolls it back.

    :param older_than_s: only runs deleted at least this many seconds ago.
    :raises SessionRecording: while a session is recording in the store (its workers may have
        written arrays not yet recorded; a purge of another experiment waits too).
    :raises StoreBusy: while a session is starting or a merge is writing into the store.
    """
    import time

    from ..store.ids import iso_utc

    cutoff = iso_utc(time.time() - older_than_s) if older_than_s is not None else "9999"
    root = locate(store, create=False)
    try:
        with Store.open(root, create=False) as opened, transaction(opened.conn) as conn:
            guard = ObjectsLock(opened.root, exclusive=True).acquire()
            try:
                return _purge(opened, conn, cutoff, dry_run)
            finally:
                guard.release()
    except _DryRun as done:
        return done.purged


def _purge(opened: Store, conn: sqlite3.Connection, cutoff: str, dry_run: bool) -> Purged:
    doomed = conn.execute(_DOOMED, (cutoff,)).fetchall()
    runs = json.dumps([pk for pk, _ in doomed])
    experiments = sorted({e for _, e in doomed})
    recording = conn.execute(_RECORDING, (json.dumps(experiments),)).fetchone()
    if recording is not None:
        raise SessionRecording(
            f"session {recording[0]} (on {recording[1]}, pid {recording[2]}) is recording experiment "
            f"{recording[3]!r} in {opened.root}; purge when it has ended"
        )
    if doomed:
        psets, outputs, comments = conn.execute(_USED_BY, (runs,)).fetchone()
        values = {
            "runs": runs,
            "experiments": json.dumps(experiments),
            "psets": psets,
            "comments": comments,
            "outputs": outputs,
        }
        for statement in _PURGE:
            conn.execute(statement, values)
        for experiment in experiments:
            catalog.rebuild_fields(conn, experiment)
    freed = _collect(opened, conn, dry_run)  # refuses while any session records
    purged = Purged(len(doomed), freed.files, freed.bytes, dry_run)
    if dry_run:
        raise _DryRun(purged)
    if doomed or freed.files:
        when, user, host = _who()
        detail = {"runs": len(doomed), "files": freed.files, "bytes": freed.bytes}
        conn.execute(_INSERT_EVENT, (when, user, host, "purge", json.dumps(detail, sort_keys=True)))
    return purged


def events(store: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Return every curation event of the store, oldest first: time, user, host, action, detail (parsed)."""
    root = locate(store, create=False)
    with Database(root) as db:
        rows = db.conn.execute(_EVENTS).fetchall()
    out = []
    for pk, when, user, host, action, detail in rows:
        try:
            parsed = json.loads(detail)
        except (ValueError, TypeError):
            parsed = {"unreadable": str(detail)[:80]}
        out.append({"event": pk, "time": when, "user": user, "host": host, "action": action, "detail": parsed})
    return out
