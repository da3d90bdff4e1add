"""Keeping a store sound: verify every object and reference, remove objects nothing refers to.

Both need the store itself, not just a read-only connection: ``verify``
reads every object file; ``gc`` deletes files and rows, and refuses while
a session is recording (a worker may have written an object whose row is
not committed yet).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import NamedTuple

from .db import transaction
from .errors import RecorderError
from .progress import Progress
from .store import Store

__all__ = ["Problem", "verify", "GcReport", "gc"]

# Every reference to an object: results of runs, and config values of sessions.
_REFERENCES = """
SELECT x.value, lower(hex(r.id)), x.name FROM results AS x JOIN runs AS r ON r.pk = x.run WHERE x.kind = 'object'
UNION ALL
SELECT c.value, 'session ' || s.id, 'config ' || c.name FROM config AS c JOIN sessions AS s ON s.pk = c.session
WHERE c.kind = 'object'
"""
_OBJECT_ROWS = "SELECT digest FROM objects"
_DELETE_OBJECT_ROW = "DELETE FROM objects WHERE digest = ?"
_RUNNING = "SELECT id, host, pid FROM sessions WHERE status = 'running'"
_TMP_AGE_S = 3600  # a temporary file this old is left over from a crash


class Problem(NamedTuple):
    """Something wrong in a store."""

    what: str  # "missing", "corrupt", "no object row", "database"
    digest: str | None
    run_id: str | None  # or "session <id>" for a config value
    name: str | None  # the result (or "config <name>")
    detail: str


def verify(store: str | os.PathLike[str] | None = None, *, progress: bool | None = None) -> list[Problem]:
    """Re-hash every object and check every reference; return what is wrong (an empty list when sound)."""
    problems: list[Problem] = []
    with Store.open(store, create=False) as opened:
        conn = opened.conn
        for (detail,) in conn.execute("PRAGMA quick_check"):
            if detail != "ok":
                problems.append(Problem("database", None, None, None, detail))
        for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check"):
            problems.append(Problem("database", None, None, None, f"{table} row {rowid} refers to a missing {parent}"))
        rows = {digest for (digest,) in conn.execute(_OBJECT_ROWS)}
        users: dict[str, tuple[str, str]] = {}
        for digest, run_id, name in conn.execute(_REFERENCES):
            users.setdefault(digest, (run_id, name))
        bar = Progress(len(users), progress, "verify")
        try:
            for digest, (run_id, name) in sorted(users.items()):
                path = opened.objects.path(digest)
                if not path.exists():
                    problems.append(Problem("missing", digest, run_id, name, f"{path} does not exist"))
                elif not opened.objects.verify(digest):
                    problems.append(Problem("corrupt", digest, run_id, name, f"{path} does not hash to its name"))
                if digest not in rows:
                    problems.append(Problem("no object row", digest, run_id, name, "the objects table lacks it"))
                bar.add("done")
        finally:
            bar.close()
    return problems


class GcReport(NamedTuple):
    """What :func:`gc` removed (or would remove, in a dry run)."""

    files: int
    bytes: int
    rows: int
    dry_run: bool


def _object_files(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return [p for folder in root.iterdir() if folder.is_dir() for p in folder.iterdir() if p.is_file()]


def gc(store: str | os.PathLike[str] | None = None, *, dry_run: bool = False) -> GcReport:
    """Remove object files and rows that no result or config value refers to; report bytes freed.

    Temporary files left by a crash (older than an hour) go too. It all
    happens while holding the store's write lock, so no session can start
    and no merge can commit meanwhile (a merge links its files under that
    lock too).

    :raises RecorderError: while a session is recording in the store.
    """
    with Store.open(store, create=False) as opened, transaction(opened.conn) as conn:
        running = conn.execute(_RUNNING).fetchone()
        if running is not None:
            raise RecorderError(
                f"session {running[0]} (on {running[1]}, pid {running[2]}) is recording in {opened.root}; "
                "run gc when it has ended (its workers may have written arrays not yet recorded)"
            )
        used = {digest for digest, _, _ in conn.execute(_REFERENCES)}
        now = time.time()
        doomed: list[tuple[Path, int]] = []
        for path in _object_files(opened.objects.root):
            try:
                info = path.stat()
            except FileNotFoundError:
                continue  # removed meanwhile (a temporary file renamed into place)
            if path.name.startswith("."):  # a temporary file: only if a crash left it long ago
                if now - info.st_mtime > _TMP_AGE_S:
                    doomed.append((path, info.st_size))
                continue
            digest = path.parent.name + path.name.removesuffix(".npy")
            if digest not in used:
                doomed.append((path, info.st_size))
        stale_rows = [d for (d,) in conn.execute(_OBJECT_ROWS) if d not in used]
        if not dry_run:
            conn.executemany(_DELETE_OBJECT_ROW, [(d,) for d in stale_rows])
            for path, _ in doomed:
                path.unlink(missing_ok=True)
    return GcReport(len(doomed), sum(size for _, size in doomed), len(stale_rows), dry_run)
