"""Merge stores, and extract part of a store into another: shards of cluster jobs.

On a cluster each job writes its own store (SQLite must not be shared by
many writers over a network file system); :func:`merge` then brings the
shards together, and :func:`extract` is its dual, a store with only some
runs. Rows are matched by what identifies them everywhere: experiments by
name, sessions and runs by id, psets by hash, texts and objects by digest,
comments by text. So merging is idempotent: a run already in the
destination is skipped.

Before anything is written every source is checked against the
destination (and the sources before it): an experiment's config values
must agree, and so must the code (env SHAs) unless
``allow_code_mismatch``. Object files are hard-linked when on the same file
system, else copied, and checked against their digest. The rows then go in
one transaction, so a crash or a conflict leaves the destination as it
was. (SQLite reads at most :data:`MAX_ATTACHED` databases at once; more
sources are first merged into a staging store beside the destination.)

From deciding which objects the destination has until its rows are
committed, a merge holds the destination's objects lock shared, so a gc
cannot delete an object the merge counts on (see
:class:`~recorder.objects.ObjectsLock`). Every merge into a destination
also holds ``.<name>.merge.lock`` beside it shared; the next merge that can
take it exclusively removes the ``.staging-*``/``.merging-*`` folders that
killed merges left. Symbolic links in a source's or the destination's
``objects/`` are refused, never followed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from ..errors import (
    DuplicateSource,
    NoStoreError,
    ObjectError,
    ObjectOutsideStore,
    RecorderError,
    SessionRecording,
)
from ..store import catalog
from ..store.db import connect, transaction
from ..store.objects import ObjectStore
from .precheck import Expected

try:
    import fcntl
except ImportError:  # Windows: no flock; folders of killed merges are then left for the user
    fcntl = None  # type: ignore[assignment]
from ..store.folder import Store, locate
from ..store.layout import DB_NAME, OBJECTS
from ..store.quoting import quote_ident
from ..sweep.progress import Progress

__all__ = ["MAX_ATTACHED", "MergeReport", "merge", "extract"]

#: Sources merged in one transaction (SQLite attaches at most 10 databases).
MAX_ATTACHED = 10

_COLUMNS = "SELECT name FROM pragma_table_info(?) ORDER BY cid"
_RUNNING = "SELECT id, host, pid FROM sessions WHERE status = 'running'"
_MAX_RUN = "SELECT coalesce(max(pk), 0) FROM main.runs"
_EXPERIMENT_KEYS = "SELECT pk FROM experiments ORDER BY pk"
_EXPERIMENT_NAME = "SELECT name FROM experiments WHERE pk = ?"
_OF_EXPERIMENT = "SELECT pk FROM runs WHERE experiment = ? AND pk IN (SELECT value FROM json_each(?))"
_COUNT_NEW_RUNS = "SELECT count(*) FROM main.runs WHERE pk > ?"


class MergeReport(NamedTuple):
    """What a merge or an extract did."""

    runs: int  # runs added to the destination
    skipped: int  # runs of the sources that the destination had already
    objects: int  # object files added (linked or copied)
    object_bytes: int


class _Source(NamedTuple):
    root: Path
    selected: list[int] | None  # run keys to copy; None for every run


def _identity(path: Path) -> tuple[int, int] | None:
    """The file's identity (device, inode): the same database whatever path names it; None if missing."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _refuse_duplicates(paths: Sequence[str | os.PathLike[str]], roots: Sequence[Path]) -> None:
    """Refuse a source given twice (same folder, or the same database through another path or a link).

    :raises DuplicateSource: naming both arguments.
    """
    seen: dict[tuple[int, int] | Path, int] = {}
    for index, root in enumerate(roots):
        key = _identity(root / DB_NAME) or root.resolve()
        first = seen.setdefault(key, index)
        if first != index:
            raise DuplicateSource(
                f"the source store {str(paths[index])!r} is the same store as {str(paths[first])!r} "
                f"({root / DB_NAME}); give each source once"
            )


def _open_source(store: str | os.PathLike[str]) -> Path:
    """Find a source store; recover its dead sessions (and upgrade it) when it is writable."""
    root = locate(store, create=False)
    if not (root / DB_NAME).is_file():
        raise NoStoreError(f"no store at {root} (no {DB_NAME} there)")
    if os.access(root / DB_NAME, os.W_OK) and os.access(root, os.W_OK):
        Store.open(root, create=False).close()  # a source is read: nothing is created in it
    conn = connect(root / DB_NAME, readonly=True)
    try:
        running = conn.execute(_RUNNING).fetchall()
    finally:
        conn.close()
    if running:
        session_id, host, pid = running[0]
        raise SessionRecording(
            f"the store {root} has a session still recording ({session_id} on {host}, pid {pid}); "
            "merge it once the session has ended"
        )
    return root


# The objects the selected runs use: their results, and their sessions' config values.
_OBJECTS_USED = """
SELECT digest, min(user), min(name) FROM (
    SELECT x.value AS digest, lower(hex(r.id)) AS user, x.name AS name
    FROM {db}.results AS x JOIN {db}.runs AS r ON r.pk = x.run
    WHERE x.kind IN ('object', 'file') AND {runs}
    UNION ALL
    SELECT c.value, 'session ' || s.id, 'config ' || c.name
    FROM {db}.config AS c JOIN {db}.sessions AS s ON s.pk = c.session
    WHERE c.kind = 'object' AND s.pk IN (SELECT r.session FROM {db}.runs AS r WHERE {runs})
)
GROUP BY digest
"""


# -- writing -------------------------------------------------------------------------


def _columns(conn: sqlite3.Connection, table: str, skip: Sequence[str] = ()) -> list[str]:
    return [name for (name,) in conn.execute(_COLUMNS, (table,)) if name not in skip]


def _statements(conn: sqlite3.Connection, db: str, runs: str) -> list[str]:
    """The INSERTs that copy what the selected runs of ``db`` need, in an order foreign keys accept.

    ``runs`` is an SQL condition on ``r`` (a run of the source) that selects the runs.
    """
    q = quote_ident(db)
    sessions = f"s.pk IN (SELECT r.session FROM {q}.runs AS r WHERE {runs})"
    session_cols = _columns(conn, "sessions", ("pk", "experiment"))
    object_cols = _columns(conn, "objects")
    comment = "(SELECT min(mc.pk) FROM main.comments AS mc WHERE mc.text = {alias}.text)"
    return [
        # texts: the scripts, package lists and diffs of the sessions, and the runs' output
        f"""INSERT OR IGNORE INTO main.texts (digest, text)
            SELECT t.digest, t.text FROM {q}.texts AS t WHERE t.digest IN (
                SELECT s.script FROM {q}.sessions AS s WHERE {sessions}
                UNION SELECT s.packages FROM {q}.sessions AS s WHERE {sessions}
                UNION SELECT s.git_diff FROM {q}.sessions AS s WHERE {sessions}
                UNION SELECT r.output FROM {q}.runs AS r WHERE {runs})""",
        f"""INSERT INTO main.sessions (experiment, {", ".join(map(quote_ident, session_cols))})
            SELECT me.pk, {", ".join("s." + quote_ident(c) for c in session_cols)}
            FROM {q}.sessions AS s JOIN {q}.experiments AS se ON se.pk = s.experiment
            JOIN main.experiments AS me ON me.name = se.name
            WHERE {sessions} AND s.id NOT IN (SELECT id FROM main.sessions)""",
        f"""INSERT OR IGNORE INTO main.config (session, name, kind, value)
            SELECT ms.pk, c.name, c.kind, c.value FROM {q}.config AS c
            JOIN {q}.sessions AS s ON s.pk = c.session JOIN main.sessions AS ms ON ms.id = s.id
            WHERE {sessions}""",
        f"""INSERT OR IGNORE INTO main.psets (hash, params)
            SELECT p.hash, p.params FROM {q}.psets AS p
            WHERE p.pk IN (SELECT r.pset FROM {q}.runs AS r WHERE {runs})""",
        f"""INSERT INTO main.comments (text)
            SELECT DISTINCT c.text FROM {q}.comments AS c
            WHERE c.pk IN (SELECT r.comment FROM {q}.runs AS r WHERE {runs}
                           UNION SELECT x.comment FROM {q}.results AS x JOIN {q}.runs AS r ON r.pk = x.run
                           WHERE {runs})
              AND NOT EXISTS (SELECT 1 FROM main.comments AS mc WHERE mc.text = c.text)""",
        f"""INSERT OR IGNORE INTO main.objects ({", ".join(map(quote_ident, object_cols))})
            SELECT {", ".join("o." + quote_ident(c) for c in object_cols)} FROM {q}.objects AS o
            WHERE o.digest IN (SELECT x.value FROM {q}.results AS x JOIN {q}.runs AS r ON r.pk = x.run
                               WHERE x.kind IN ('object', 'file') AND {runs}
                               UNION SELECT c.value FROM {q}.config AS c JOIN {q}.sessions AS s
                               ON s.pk = c.session WHERE c.kind = 'object' AND {sessions})""",
        # The experiment functions of the runs (rows matched by value; a NULL path matches a NULL path).
        f"""INSERT INTO main.functions (module, qualname, path, how)
            SELECT DISTINCT f.module, f.qualname, f.path, f.how FROM {q}.functions AS f
            WHERE f.pk IN (SELECT r.function FROM {q}.runs AS r WHERE {runs})
              AND NOT EXISTS (SELECT 1 FROM main.functions AS mf WHERE mf.module = f.module
                              AND mf.qualname = f.qualname AND mf.path IS f.path AND mf.how = f.how)""",
        f"""INSERT INTO main.runs (id, experiment, session, pset, status, time_start_ms, duration_us, seed,
                                   comment, error, output, scalars, function, rerun_of, host, pid, pset_seq, origin)
            SELECT r.id, me.pk, ms.pk, mp.pk, r.status, r.time_start_ms, r.duration_us, r.seed,
                   {comment.format(alias="rc")}, r.error, r.output, r.scalars,
                   (SELECT min(mf.pk) FROM {q}.functions AS sf JOIN main.functions AS mf
                    ON mf.module = sf.module AND mf.qualname = sf.qualname AND mf.path IS sf.path AND mf.how = sf.how
                    WHERE sf.pk = r.function),
                   r.rerun_of, r.host, r.pid, r.pset_seq, r.origin
            FROM {q}.runs AS r
            JOIN {q}.experiments AS se ON se.pk = r.experiment JOIN main.experiments AS me ON me.name = se.name
            JOIN {q}.sessions AS ss ON ss.pk = r.session JOIN main.sessions AS ms ON ms.id = ss.id
            JOIN {q}.psets AS sp ON sp.pk = r.pset JOIN main.psets AS mp ON mp.hash = sp.hash
            LEFT JOIN {q}.comments AS rc ON rc.pk = r.comment
            WHERE {runs} AND r.id NOT IN (SELECT id FROM main.runs)
            ORDER BY r.pk""",
        f"""INSERT INTO main.results (run, name, kind, value, comment)
            SELECT mr.pk, x.name, x.kind, x.value, {comment.format(alias="xc")}
            FROM main.runs AS mr JOIN {q}.runs AS r ON r.id = mr.id
            JOIN {q}.results AS x ON x.run = r.pk LEFT JOIN {q}.comments AS xc ON xc.pk = x.comment
            WHERE mr.pk > :before""",
    ]


def _curation_statements(db: str, runs: str, *, events: bool) -> list[str]:
    """The INSERTs that carry the curation of the selected runs of ``db``: tags and notes as unions
    (a note already there, same run, text, time, user and host, is not added again), and with
    ``events`` the source's curation events the destination lacks (the same test)."""
    q = quote_ident(db)
    statements = [
        f"""INSERT OR IGNORE INTO main.run_tags (run, tag)
            SELECT mr.pk, t.tag FROM {q}.run_tags AS t JOIN {q}.runs AS r ON r.pk = t.run
            JOIN main.runs AS mr ON mr.id = r.id WHERE {runs}""",
        f"""INSERT INTO main.run_notes (run, text, time, user, host)
            SELECT mr.pk, n.text, n.time, n.user, n.host FROM {q}.run_notes AS n JOIN {q}.runs AS r ON r.pk = n.run
            JOIN main.runs AS mr ON mr.id = r.id
            WHERE {runs} AND NOT EXISTS (
                SELECT 1 FROM main.run_notes AS m WHERE m.run = mr.pk AND m.text = n.text AND m.time = n.time
                AND m.user IS n.user AND m.host = n.host)
            ORDER BY n.time, n.pk""",
    ]
    if events:
        statements.append(
            f"""INSERT INTO main.curation_events (time, user, host, action, detail)
                SELECT c.time, c.user, c.host, c.action, c.detail FROM {q}.curation_events AS c
                WHERE NOT EXISTS (
                    SELECT 1 FROM main.curation_events AS m WHERE m.time = c.time AND m.action = c.action
                    AND m.host = c.host AND m.user IS c.user AND m.detail = c.detail)
                ORDER BY c.time, c.pk"""
        )
    return statements


# Per run named by an rm or restore event, the latest such event (by time, then key): SQLite takes
# the other columns of an aggregate query with max() from the row that has the maximum.
_LAST_DELETIONS = """
SELECT j.value, c.pk, c.action, max(c.time || printf('%020d', c.pk))
FROM main.curation_events AS c, json_each(c.detail, '$.runs') AS j
WHERE c.action IN ('rm', 'restore') AND j.type = 'text' AND json_valid(c.detail)
GROUP BY j.value
"""
_SET_DELETED = "UPDATE main.runs SET deleted = ? WHERE id = ? AND deleted IS NOT ?"


def _settle_deletions(conn: sqlite3.Connection) -> None:
    """Delete or restore each run as the latest rm or restore event naming it says (after events merged).

    A run deleted in either store stays deleted unless restored later, whichever store's event that was.
    """
    changes = []
    for run_id, event, action, _ in conn.execute(_LAST_DELETIONS):
        if isinstance(run_id, str) and len(run_id) == 24 and all(c in "0123456789abcdef" for c in run_id):
            deleted = event if action == "rm" else None
            changes.append((deleted, bytes.fromhex(run_id), deleted))
    conn.executemany(_SET_DELETED, changes)


def _copy_experiments(conn: sqlite3.Connection, db: str, runs: str) -> list[int]:
    """Create the experiments of the selected runs that the destination lacks; return their keys."""
    q = quote_ident(db)
    rows = conn.execute(
        f"""SELECT DISTINCT e.name, e.id, e.time_created FROM {q}.experiments AS e
            JOIN {q}.runs AS r ON r.experiment = e.pk WHERE {runs}
            UNION SELECT e.name, e.id, e.time_created FROM {q}.experiments AS e
            JOIN {q}.sessions AS s ON s.experiment = e.pk
            WHERE s.pk IN (SELECT r.session FROM {q}.runs AS r WHERE {runs})"""
    ).fetchall()
    return [catalog.experiment_pk(conn, name, created, id_=id_) for name, id_, created in rows]


def _objects_to_copy(conn: sqlite3.Connection, db: str, source: Path, runs: str, into: ObjectStore) -> list[str]:
    """The objects the selected runs use that ``into`` lacks, each checked against its digest in the source.

    :raises ObjectError: naming the run and result of an object missing or corrupt in the source.
    """
    src = ObjectStore(source / OBJECTS)
    needed = []
    for digest, user, name in conn.execute(_OBJECTS_USED.format(db=quote_ident(db), runs=runs)).fetchall():
        if into.exists(digest) and into.verify(digest):
            continue
        try:
            sound = src.verify(digest)
        except ObjectOutsideStore as e:
            raise ObjectOutsideStore(f"cannot merge {source}: {e}") from e
        except ObjectError as e:  # a malformed digest: the row was altered outside recorder
            raise ObjectError(f"cannot merge {source}: {e}; run `recorder verify` on it") from e
        if not sound:
            what = (
                f"the config value {name[7:]!r} of {user}"
                if name.startswith("config ")
                else (f"the array {name!r} of run {user}")
            )
            raise ObjectError(
                f"cannot merge {source}: {what} (object {digest}) is "
                f"{'corrupt' if src.path(digest).exists() else 'missing'} there; run `recorder verify` on it"
            )
        needed.append(digest)
    return needed


def _link_objects(source: Path, digests: list[str], into: ObjectStore) -> tuple[int, int]:
    """Hard-link (or copy) objects of ``source`` into ``into``; return how many, and their bytes."""
    src = ObjectStore(source / OBJECTS)
    added = added_bytes = 0
    for digest in digests:
        target, path = into.file(digest), src.file(digest)  # neither reached through a link
        if target.exists() and into.verify(digest):
            continue  # another source of this merge had it too
        tmp = into.folder(digest) / f".merge-{digest[2:10]}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            try:
                os.link(path, tmp, follow_symlinks=False)  # same file system: no bytes copied
            except OSError:
                shutil.copyfile(path, tmp, follow_symlinks=False)
                with open(tmp, "rb+") as file:
                    os.fsync(file.fileno())
            os.replace(tmp, target)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise ObjectError(f"cannot copy object {digest} into {into.root}: {e}") from e
        if not into.verify(digest):
            target.unlink(missing_ok=True)
            raise ObjectError(f"object {digest} changed while it was copied from {source}; merge again")
        added += 1
        added_bytes += target.stat().st_size
    return added, added_bytes


@contextlib.contextmanager
def _attached(conn: sqlite3.Connection, sources: list[_Source]) -> Iterator[list[str]]:
    names = [f"src{i}" for i in range(len(sources))]
    try:
        for name, source in zip(names, sources):
            conn.execute(f"ATTACH DATABASE ? AS {quote_ident(name)}", (str(source.root / DB_NAME),))
        yield names
    finally:
        for name in names:
            with contextlib.suppress(sqlite3.OperationalError):  # not attached: the ATTACH failed
                conn.execute(f"DETACH DATABASE {quote_ident(name)}")


def _selection(conn: sqlite3.Connection, db: str, selected: list[int] | None) -> str:
    """The SQL condition on ``r`` for the selected runs of ``db`` (a temp table of their keys)."""
    if selected is None:
        return "1"
    table = f"selected_{db}"
    conn.execute(f"DROP TABLE IF EXISTS temp.{quote_ident(table)}")
    conn.execute(f"CREATE TEMP TABLE {quote_ident(table)} (pk INTEGER PRIMARY KEY)")
    conn.executemany(f"INSERT INTO temp.{quote_ident(table)} (pk) VALUES (?)", ((pk,) for pk in selected))
    return f"r.pk IN (SELECT pk FROM temp.{quote_ident(table)})"


def _copy_fields(conn: sqlite3.Connection, db: str) -> None:
    """Add the source's parameter and result names; rebuild the views of experiments that gained one."""
    q = quote_ident(db)
    before = conn.execute("SELECT coalesce(max(pk), 0) FROM main.fields").fetchone()[0]
    conn.execute(
        f"""INSERT OR IGNORE INTO main.fields (experiment, role, name, kind, first_run)
            SELECT me.pk, f.role, f.name, f.kind, (SELECT mr.pk FROM main.runs AS mr WHERE mr.id = fr.id)
            FROM {q}.fields AS f JOIN {q}.experiments AS se ON se.pk = f.experiment
            JOIN main.experiments AS me ON me.name = se.name
            LEFT JOIN {q}.runs AS fr ON fr.pk = f.first_run
            ORDER BY f.pk"""
    )
    for (experiment,) in conn.execute("SELECT DISTINCT experiment FROM main.fields WHERE pk > ?", (before,)).fetchall():
        catalog.refresh_view(conn, experiment)


class _MergeClaim:
    """``.<name>.merge.lock`` beside the destination: held shared by every merge into it.

    Whoever takes it exclusively knows that no merge into the destination
    is running, so the ``.staging-*``/``.merging-*`` folders beside it were
    left by killed merges: they are removed, then the lock is held shared
    like any merge's. Folders are only ever created while holding it. The
    lock file is removed by the last merge out (checked by inode on taking
    it, so a merge never holds a removed file's lock).
    """

    def __init__(self, final: Path) -> None:
        self.final = final
        self.path = final.parent / f".{final.name}.merge.lock"
        self._fd: int | None = None

    def __enter__(self) -> _MergeClaim:
        if fcntl is None:
            return self
        with contextlib.suppress(OSError):  # else the merge fails later, saying why
            self.final.parent.mkdir(parents=True, exist_ok=True)  # the merge creates it anyway
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
            except OSError:
                return self  # a read-only parent: the merge fails later with a clear error; no cleaning
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    exclusive = True
                except BlockingIOError:
                    fcntl.flock(fd, fcntl.LOCK_SH)  # other merges hold it shared: wait for no one long
                    exclusive = False
                if _identity_fd(fd) != _identity(self.path):
                    os.close(fd)  # removed by the last merge out meanwhile: take the new file's
                    continue
                if exclusive:
                    _remove_stale(self.final)
                    fcntl.flock(fd, fcntl.LOCK_SH)
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is None:
            return
        assert fcntl is not None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.path.unlink(missing_ok=True)  # the last merge out: leave nothing beside the destination
        except BlockingIOError:
            pass  # another merge still holds it
        finally:
            os.close(self._fd)
            self._fd = None


def _identity_fd(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def _remove_stale(final: Path) -> None:
    """Remove the staging and unfinished destination folders of killed merges into ``final``.

    Only real folders (not links) named as :func:`_merge` names them; called
    while holding the merge lock exclusively, so none is a live merge's.
    """
    pattern = re.compile(rf"\.{re.escape(final.name)}\.(?:staging|merging)-[0-9a-f]{{8}}")
    with contextlib.suppress(OSError), os.scandir(final.parent) as entries:
        for entry in entries:
            if pattern.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)


def _merge(
    sources: list[_Source], into: str | os.PathLike[str], *, allow_code_mismatch: bool, progress: bool | None
) -> MergeReport:
    """Merge ``sources`` into ``into`` while holding the merge lock beside it (see :class:`_MergeClaim`)."""
    final = locate(into)
    with _MergeClaim(final):
        return _merge_claimed(sources, final, allow_code_mismatch=allow_code_mismatch, progress=progress)


def _merge_claimed(
    sources: list[_Source], final: Path, *, allow_code_mismatch: bool, progress: bool | None
) -> MergeReport:
    """Check every source, then write them into ``into`` in one transaction.

    A destination that does not exist yet is built beside it and renamed into
    place at the end, so that a failed merge leaves nothing there. More
    sources than SQLite attaches at once are first merged into a staging
    store beside the destination (a group per transaction), which then goes
    into the destination in one transaction.
    """
    final_db = _identity(final / DB_NAME)
    if final.resolve() in {s.root.resolve() for s in sources} or (
        final_db is not None and final_db in {_identity(s.root / DB_NAME) for s in sources}
    ):
        raise RecorderError(f"cannot merge the store {final} into itself")
    fresh = not (final / DB_NAME).exists() and (not final.exists() or not any(final.iterdir()))
    target = final.parent / f".{final.name}.merging-{secrets.token_hex(4)}" if fresh else final
    staging = final.parent / f".{final.name}.staging-{secrets.token_hex(4)}"
    try:
        if len(sources) > MAX_ATTACHED:
            staged = _merge_into(sources, staging, allow_code_mismatch=allow_code_mismatch, progress=progress)
            report = _merge_into(
                [_Source(staging, None)], target, allow_code_mismatch=allow_code_mismatch, progress=False
            )
            # The staged store's runs are the sources' runs; count what the destination had already.
            report = report._replace(skipped=report.skipped + staged.skipped)
        else:
            report = _merge_into(sources, target, allow_code_mismatch=allow_code_mismatch, progress=progress)
        if fresh:
            os.replace(target, final)  # an empty folder there is replaced too
    except BaseException:
        if fresh:
            shutil.rmtree(target, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _merge_into(sources: list[_Source], into: Path, *, allow_code_mismatch: bool, progress: bool | None) -> MergeReport:
    destination = Store.open(into)
    # From deciding which objects the destination has to the commit of the rows naming them.
    guard = destination.objects.lock()
    groups = [sources[i : i + MAX_ATTACHED] for i in range(0, len(sources), MAX_ATTACHED)]
    added = skipped = objects = object_bytes = 0
    bar = Progress(len(sources), progress, "merge", unit="stores")
    try:
        guard.acquire()
        conn = destination.conn
        expected = Expected()
        expected.add(conn, "main", "1")
        to_copy: list[list[str]] = []
        for group in groups:  # first every check: a conflict or a bad object anywhere writes nothing
            with _attached(conn, group) as names:
                for name, source in zip(names, group):
                    runs = _selection(conn, name, source.selected)
                    sessions = f"s.pk IN (SELECT r.session FROM {quote_ident(name)}.runs AS r WHERE {runs})"
                    expected.check(conn, quote_ident(name), source.root, sessions, allow_code_mismatch)
                    to_copy.append(_objects_to_copy(conn, name, source.root, runs, destination.objects))
        for number, group in enumerate(groups):
            with _attached(conn, group) as names:
                conditions = [_selection(conn, name, source.selected) for name, source in zip(names, group)]
                with transaction(conn):
                    # Object files in place before the rows that name them, under the objects lock
                    # (gc would take them, or the ones found there already, for unused otherwise).
                    for index, source in enumerate(group):
                        n, size = _link_objects(
                            source.root, to_copy[number * MAX_ATTACHED + index], destination.objects
                        )
                        objects, object_bytes = objects + n, object_bytes + size
                    for name, source, runs in zip(names, group, conditions):
                        before = conn.execute(_MAX_RUN).fetchone()[0]
                        experiments = _copy_experiments(conn, name, runs)
                        for statement in _statements(conn, name, runs):
                            conn.execute(statement, {"before": before} if ":before" in statement else ())
                        # Curation: a merge brings the source's events and settles deletions by them;
                        # an extract brings the tags and notes of the runs it copies.
                        for statement in _curation_statements(name, runs, events=source.selected is None):
                            conn.execute(statement)
                        if source.selected is None:
                            _settle_deletions(conn)
                        new = conn.execute(_COUNT_NEW_RUNS, (before,)).fetchone()[0]
                        total = conn.execute(
                            f"SELECT count(*) FROM {quote_ident(name)}.runs AS r WHERE {runs}"
                        ).fetchone()[0]
                        added, skipped = added + new, skipped + total - new
                        if source.selected is None:
                            _copy_fields(conn, name)
                        else:  # names (and first runs) of what was copied, not of the whole source
                            for experiment in experiments:
                                catalog.rebuild_fields(conn, experiment)
                        bar.add("done")
    finally:
        bar.close()
        guard.release()
        destination.close()
    return MergeReport(added, skipped, objects, object_bytes)


def merge(
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    into: str | os.PathLike[str],
    *,
    allow_code_mismatch: bool = False,
    progress: bool | None = None,
) -> MergeReport:
    """Merge the stores ``sources`` into the store ``into`` (created if needed).

    Idempotent: runs the destination has already (same id) are skipped, so
    merging a shard twice changes nothing.

    :param allow_code_mismatch: merge runs of an experiment even when their
        code (env SHA) differs from the destination's.
    :param progress: a progress line on stderr; default only on a terminal.
    :raises MergeRefused: when a source disagrees with the destination (an
        experiment's config values, its code, a name's role); nothing is written then.
    :raises SessionRecording: when a source has a session still recording.
    :raises RecorderError: when a source misses an object; nothing is written then.
    :raises DuplicateSource: when a source is given twice (by any path).
    """
    paths = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    if not paths:
        raise RecorderError("no source stores to merge")
    roots = [_open_source(p) for p in paths]
    _refuse_duplicates(paths, roots)  # before attaching any: the same database twice locks itself
    return _merge(
        [_Source(root, None) for root in roots], into, allow_code_mismatch=allow_code_mismatch, progress=progress
    )


def extract(
    source: str | os.PathLike[str],
    into: str | os.PathLike[str],
    *,
    where: str | None = None,
    experiment: str | None = None,
    progress: bool | None = None,
) -> MergeReport:
    """Copy some runs of ``source``, and what they reference, into the store ``into`` (the dual of merge).

    :param where: an SQL condition over the wide view of each experiment
        (e.g. ``"b = 8 AND energy > 1"``); default every run.
    :param experiment: only this experiment's runs.
    """
    from ..read.database import (
        Database,  # its connection refuses writes, ATTACH and pragmas that set
    )

    root = _open_source(source)
    database = Database(root)
    conn = database.conn
    try:
        if experiment is not None:
            experiments = [database.experiment_key(experiment)]  # names the known ones if it is not there
        else:
            experiments = [pk for (pk,) in conn.execute(_EXPERIMENT_KEYS)]
        selected: list[int] = []
        for pk in experiments:
            params, results = catalog.columns(catalog.fields_of(conn, pk))
            wide = catalog.select_sql(pk, params, results, with_pk=True)
            sql = f"SELECT _pk FROM (\n{wide}\n)" + (f" WHERE {where}" if where is not None else "")
            try:
                picked = json.dumps([run for (run,) in conn.execute(sql)])
                # Whatever the condition's text, only this experiment's runs are taken.
                selected += [run for (run,) in conn.execute(_OF_EXPERIMENT, (pk, picked))]
            except sqlite3.Error as e:
                name = conn.execute(_EXPERIMENT_NAME, (pk,)).fetchone()[0]
                hint = (
                    ""
                    if experiment is not None
                    else (" (the condition applies to every experiment; pick one with experiment= / --experiment)")
                )
                raise RecorderError(f"cannot select runs of experiment {name!r} where {where!r}: {e}{hint}") from e
    finally:
        database.close()
    return _merge([_Source(root, sorted(selected))], into, allow_code_mismatch=True, progress=progress)
