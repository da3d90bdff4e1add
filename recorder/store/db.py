"""Open or create a store's SQLite database: PRAGMAs, tables, views, migrations.

The database runs in WAL mode (readers never block the writer), with
foreign keys on and a busy timeout so that concurrent writers wait instead
of failing. ``PRAGMA user_version`` holds the schema version: a store newer
than this library is refused, an older one is migrated in one transaction.
``PRAGMA application_id`` marks the file as a store; whether a file is one
is checked by reading it before anything is written, so another
application's SQLite file is refused untouched.
Creating a store is safe when several processes do it at the same moment:
the schema is written inside ``BEGIN IMMEDIATE`` after re-reading the
version, so exactly one process creates it and the others see it done.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from ..errors import ForeignStoreError, NoStoreError, StoreError, StoreVersionError
from .catalog import refresh_all_views
from .quoting import quote_ident

__all__ = [
    "SCHEMA_VERSION",
    "APPLICATION_ID",
    "BUSY_TIMEOUT_S",
    "connect",
    "read_uri",
    "damage_hint",
    "sqlite_code",
    "SQLITE_ERROR",
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_READONLY",
    "SQLITE_CORRUPT",
    "SQLITE_FULL",
    "SQLITE_CANTOPEN",
    "SQLITE_CONSTRAINT",
    "SQLITE_AUTH",
    "SQLITE_NOTADB",
    "transaction",
    "quote_ident",
    "schema_path",
]

#: Version of the schema this library writes (``PRAGMA user_version``).
SCHEMA_VERSION = 7
#: ``PRAGMA application_id`` of every store created since it was introduced ("Rcdr");
#: stores written before carry 0 and are recognised by their tables.
APPLICATION_ID = 0x52636472
#: How long a writer waits for another one before giving up.
BUSY_TIMEOUT_S = 60.0

_VIEW_NAME = re.compile(r"(?:--[^\n]*\n\s*)*CREATE VIEW\s+\"?([A-Za-z_][A-Za-z0-9_]*)\"?", re.IGNORECASE)
_TABLE_NAMES = "SELECT name FROM sqlite_schema WHERE type = 'table'"
_GET_APPLICATION_ID = "PRAGMA application_id"
_BEGIN = "BEGIN IMMEDIATE"
_COMMIT = "COMMIT"
_ROLLBACK = "ROLLBACK"
_GET_VERSION = "PRAGMA user_version"
_GET_JOURNAL_MODE = "PRAGMA journal_mode"
_SET_WAL = "PRAGMA journal_mode = WAL"
_PRAGMAS = (
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",  # durable against a process crash; WAL keeps it consistent
)


def schema_path(name: str) -> Path:
    """Return the path of a file of the top-level ``schema/`` folder.

    Looks in the installed package first (the wheel puts ``schema/`` in
    ``recorder/schema``), then beside the package's parent folder, which is
    where it is in a source checkout and an editable install.
    """
    packaged = resources.files("recorder") / "schema" / name
    if packaged.is_file():
        return Path(str(packaged))
    source = Path(__file__).resolve().parents[2] / "schema" / name
    if source.is_file():
        return source
    raise StoreError(f"recorder's schema file {name!r} is missing; reinstall recorder")


def _statements(sql: str) -> Iterator[str]:
    """Split an SQL script into complete statements (so they run inside our transaction)."""
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    rest = "".join(line for line in pending.splitlines() if not line.strip().startswith("--"))
    if rest.strip():
        raise StoreError(f"incomplete SQL statement in recorder's schema: {rest.strip()[:80]!r}")


def connect(path: Path, *, readonly: bool = False, create: bool = True) -> sqlite3.Connection:
    """Open (and, unless ``readonly``, create or migrate) the database at ``path``.

    The file's identity (application id, schema version, tables) is checked
    on a read-only connection closed before this one opens (see
    :func:`_identify`), so an SQLite file of another application is refused
    untouched. A read-only connection to a store whose folder cannot
    be written (a read-only mount) falls back to SQLite's ``immutable=1``
    when the store was closed cleanly (no ``-wal`` file to read).

    The connection is in autocommit mode; use :func:`transaction` to write.

    :param create: whether a missing database file may be created (writing only).
    :raises NoStoreError: when the file is missing and may not be created.
    :raises ForeignStoreError: when the file is another application's database.
    :raises StoreVersionError: when the store is newer than this library.
    :raises StoreError: when the file is not a recorder database or cannot be opened.
    """
    if (readonly or not create) and not path.is_file():
        raise NoStoreError(f"no store at {path.parent} (no {path.name} there)")
    if path.is_file():
        # Closing a read-write connection checkpoints another application's -wal into its file
        # and deletes its -wal and -shm, and a mode=ro one leaves an empty -wal and -shm beside
        # a cleanly closed one: whether the file is ours is settled before either opens.
        _identify(path)
    try:
        if readonly:
            conn = _connect_read_only(path)
        else:
            conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    except sqlite3.Error as e:
        raise StoreError(f"cannot open the database {path}: {e}") from e
    try:
        for pragma in _PRAGMAS[: 1 if readonly else None]:
            conn.execute(pragma)
        version = _check_identity(conn, path)  # reads only: nothing is written to a file that is not ours
        if version == 0 and (readonly or not create):  # an empty file: reading never makes it a store
            raise NoStoreError(f"no store at {path.parent} ({path.name} there is empty)")
        if readonly:
            if version < SCHEMA_VERSION:
                raise StoreVersionError(
                    f"the store {path.parent} has schema version {version}, older than this recorder's "
                    f"{SCHEMA_VERSION}, and cannot be upgraded here (it is not writable); open it once "
                    "where it is writable, e.g. with recorder.open() or `recorder status`"
                )
        else:
            _enable_wal(conn, path)
            _ensure_schema(conn, path)
    except sqlite3.DatabaseError as e:
        conn.close()
        raise StoreError(f"{path} is not a usable recorder database: {e}{damage_hint(e)}") from e
    except BaseException:
        conn.close()
        raise
    return conn


# SQLite's primary result codes (https://sqlite.org/rescode.html) that recorder tells apart.
SQLITE_ERROR = 1  # a generic error (a statement refused by the authorizer's function check, say)
SQLITE_BUSY = 5  # another connection holds a lock the statement needs
SQLITE_LOCKED = 6  # a table is locked by this same connection (shared cache, a pending statement)
SQLITE_READONLY = 8  # the database (or this connection, query_only) is read-only
SQLITE_CORRUPT = 11  # the database file is damaged
SQLITE_FULL = 13  # the disk (or the quota) is full
SQLITE_CANTOPEN = 14  # the file (or its -wal, -shm) cannot be opened
SQLITE_CONSTRAINT = 19  # a UNIQUE, CHECK, NOT NULL or foreign key constraint failed
SQLITE_AUTH = 23  # the authorizer refused the statement
SQLITE_NOTADB = 26  # the file is not an SQLite database

# Python 3.10's sqlite3 errors carry no result code, only SQLite's message for it, which SQLite
# fixes per code (sqlite3ErrStr); most specific first ("database table is locked" before "is locked").
_MESSAGES = (
    ("database table is locked", SQLITE_LOCKED),
    ("database schema is locked", SQLITE_LOCKED),
    ("database is locked", SQLITE_BUSY),
    ("attempt to write a readonly database", SQLITE_READONLY),
    ("database disk image is malformed", SQLITE_CORRUPT),
    ("database or disk is full", SQLITE_FULL),
    ("unable to open database file", SQLITE_CANTOPEN),
    ("constraint failed", SQLITE_CONSTRAINT),
    ("not authorized", SQLITE_AUTH),
    ("file is not a database", SQLITE_NOTADB),
)


def sqlite_code(error: BaseException) -> int | None:
    """Return SQLite's primary result code of an :mod:`sqlite3` error, or ``None`` when it has none.

    Python 3.11+ gives the (extended) code as ``sqlite_errorcode``; its low
    byte is the primary code. Before, and for an error made by hand, the
    code is read from SQLite's fixed message for it; this is the only place
    that reads SQLite's message text.
    """
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    if not isinstance(error, sqlite3.Error):
        return None
    text = str(error)
    for message, primary in _MESSAGES:
        if message in text:
            return primary
    return None


def damage_hint(error: BaseException) -> str:
    """``"; the file is damaged: …"`` when SQLite found the database corrupt, else ``""`` (to end a message)."""
    return "; the file is damaged: restore it from a copy" if SQLITE_CORRUPT in _codes(error) else ""


def _codes(error: BaseException) -> set[int]:
    """SQLite's primary result codes of an error and its causes."""
    codes = set()
    seen: BaseException | None = error
    while seen is not None:
        code = sqlite_code(seen)
        if code is not None:
            codes.add(code)
        seen = seen.__cause__
    return codes


# The URI each database was last opened read-only with (helper processes reading it use the same).
_READ_URIS: dict[str, str] = {}


def read_uri(path: Path) -> str:
    """Return the SQLite URI to open the database at ``path`` read-only, as :func:`connect` last did."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    return _READ_URIS.get(uri, uri)


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """Open read-only; in a folder that cannot be written, with ``immutable=1`` when nothing is in a WAL.

    SQLite reads a WAL database through its ``-shm`` file, which it must be
    able to create; in a read-only folder a cleanly closed store (no
    ``-wal``, no ``-shm``) therefore cannot be opened with ``mode=ro``. All
    of such a store is in the main file, and nothing can change it there, so
    ``immutable=1`` (no locks, no WAL) reads it exactly.
    """
    uri = f"{path.resolve().as_uri()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    try:
        conn.execute(_GET_VERSION).fetchone()  # SQLite opens the file (and the -shm) lazily
    except sqlite3.Error as e:
        conn.close()
        wal = path.with_name(path.name + "-wal")
        if sqlite_code(e) != SQLITE_CANTOPEN or os.access(path.parent, os.W_OK):
            raise
        if wal.exists() and wal.stat().st_size > 0:
            raise StoreError(
                f"cannot read the store {path.parent}: its folder is read-only and {wal.name} there holds "
                "changes SQLite can only read with a writable folder; copy the store to a writable folder"
            ) from e
    else:
        _READ_URIS.pop(uri, None)  # the folder may have become writable since
        return conn
    immutable = f"{path.resolve().as_uri()}?immutable=1"
    conn = sqlite3.connect(immutable, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    _READ_URIS[uri] = immutable
    return conn


def _identify(path: Path) -> int:
    """Check, on a read-only connection closed before returning, that the database is a store; return its version.

    The file itself is never opened here, only by SQLite: closing any
    descriptor of a file drops every POSIX lock this process holds on it,
    SQLite's included, so a plain ``open()`` and ``close()`` while a session
    of this process has the store open would let another process take the
    database for unused, checkpoint it and delete the ``-wal`` that session
    still writes to (its commits would then be lost on a crash).

    Without a ``-wal`` (a store closed cleanly, or a file in another journal
    mode) everything is in the main file, where a ``mode=ro`` connection to
    a WAL database would still leave an empty ``-wal`` and ``-shm`` behind;
    it is read with ``immutable=1``, which creates nothing, and a refusal is
    trusted only when the file did not change meanwhile (another process may
    have opened it). Otherwise ``mode=ro``: it never checkpoints, though it
    may mark its read in an existing ``-shm``.

    :raises ForeignStoreError: when it is another application's database.
    :raises StoreVersionError: when it is a store newer than this library.
    :raises StoreError: when the file cannot be read as a database.
    """
    wal = path.with_name(path.name + "-wal")
    try:
        before = path.stat()
    except OSError as e:
        raise StoreError(f"cannot read the database {path}: {e}") from e
    if not wal.exists():
        try:
            return _identify_with(f"{path.resolve().as_uri()}?immutable=1", path)
        except StoreError:  # ForeignStoreError and StoreVersionError too
            if not _changed(path, before) and not wal.exists():
                raise
            # It changed while it was read (another process opened it): read it again, as a reader among writers.
    try:
        conn = _connect_read_only(path)
    except sqlite3.OperationalError as e:  # unable to open, locked, I/O
        raise StoreError(f"cannot open the database {path}: {e}") from e
    except sqlite3.DatabaseError as e:  # not a database, damaged
        raise StoreError(f"{path} is not a usable recorder database: {e}{damage_hint(e)}") from e
    return _identified(conn, path)


def _changed(path: Path, before: os.stat_result) -> bool:
    """Whether the file at ``path`` is gone or was written since ``before`` was taken."""
    try:
        after = path.stat()
    except OSError:
        return True
    return (after.st_ino, after.st_size, after.st_mtime_ns) != (before.st_ino, before.st_size, before.st_mtime_ns)


def _identify_with(uri: str, path: Path) -> int:
    """:func:`_check_identity` on a connection to ``uri``, closed before returning."""
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error as e:
        raise StoreError(f"cannot open the database {path}: {e}") from e
    return _identified(conn, path)


def _identified(conn: sqlite3.Connection, path: Path) -> int:
    """:func:`_check_identity` on ``conn``, which is closed before returning."""
    try:
        return _check_identity(conn, path)
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path} is not a usable recorder database: {e}{damage_hint(e)}") from e
    finally:
        conn.close()


_STORE_TABLES = frozenset({"experiments", "sessions", "runs", "results", "psets"})


def _check_identity(conn: sqlite3.Connection, path: Path) -> int:
    """Return the schema version of the database, after checking (reading only) that it is a store.

    A store carries recorder's application id, or (written before it had
    one) id 0 with recorder's tables. An empty database is version 0.

    :raises ForeignStoreError: when it is another application's database.
    :raises StoreVersionError: when it is a store newer than this library.
    """
    application = conn.execute(_GET_APPLICATION_ID).fetchone()[0]
    version = conn.execute(_GET_VERSION).fetchone()[0]
    tables = {name for (name,) in conn.execute(_TABLE_NAMES)}
    if version == 0:  # a new (empty) database, else tables that recorder did not make
        ours = application in (0, APPLICATION_ID) and not tables
    else:
        ours = application == APPLICATION_ID or (application == 0 and tables >= _STORE_TABLES)
    if not ours:
        raise ForeignStoreError(
            f"{path} is an SQLite database but not a recorder store (application id {application}, "
            f"user_version {version}, tables {', '.join(sorted(tables)[:5]) or 'none'}); it was left "
            "untouched: name another folder with --store / store="
        )
    if version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"the store {path.parent} has schema version {version}, newer than this "
            f"recorder's {SCHEMA_VERSION}; upgrade recorder (pip install -U recorder) to open it"
        )
    return int(version)


def _enable_wal(conn: sqlite3.Connection, path: Path) -> None:
    """Switch to WAL mode, retrying while other processes hold the database (new stores only)."""
    if conn.execute(_GET_JOURNAL_MODE).fetchone()[0] == "wal":
        return
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            mode = conn.execute(_SET_WAL).fetchone()[0]
        except sqlite3.OperationalError as e:
            if sqlite_code(e) not in (SQLITE_BUSY, SQLITE_LOCKED) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        if mode != "wal":
            raise StoreError(
                f"{path} cannot use SQLite's WAL mode (journal mode stays {mode!r}); "
                "put the store on a local file system"
            )
        return


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    if conn.execute(_GET_VERSION).fetchone()[0] == SCHEMA_VERSION:
        return
    with transaction(conn):
        version = _check_identity(conn, path)  # another process may have won
        if version == SCHEMA_VERSION:
            return
        if version == 0:
            _create_tables(conn)
        else:
            _migrate(conn, version)
        _create_views(conn)
        refresh_all_views(conn)  # the wide view of each experiment
        # Pragma values cannot be bound; both are our own int constants.
        conn.execute(f"PRAGMA application_id = {int(APPLICATION_ID)}")
        conn.execute(f"PRAGMA user_version = {int(SCHEMA_VERSION)}")


def _create_tables(conn: sqlite3.Connection) -> None:
    """Create the tables and indexes of the current schema, from ``schema/tables.sql``.

    That file is generated from :mod:`recorder.store.models` (the one source of the
    tables) so that creating a store does not import SQLAlchemy and SQLModel,
    about 0.2 s; a test checks that it is what the models produce.
    """
    for statement in _statements(schema_path("tables.sql").read_text()):
        conn.execute(statement)


_NEW_TABLE = re.compile(r"(?:--[^\n]*\n\s*)*CREATE TABLE\s+\"?([A-Za-z_][A-Za-z0-9_]*)\"?", re.IGNORECASE)
_VIEW_CALLED = "SELECT name FROM sqlite_schema WHERE type = 'view' AND lower(name) = lower(?)"


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    """Apply ``schema/migrations/NNN.sql`` for every version after ``version``.

    A table a migration adds may have the name of an experiment, whose wide
    view then goes (the table takes the name; :func:`refresh_all_views` warns).
    """
    for step in range(version + 1, SCHEMA_VERSION + 1):
        for statement in _statements(schema_path(f"migrations/{step:03d}.sql").read_text()):
            table = _NEW_TABLE.match(statement)
            if table is not None:
                for (view,) in conn.execute(_VIEW_CALLED, (table.group(1),)).fetchall():
                    conn.execute(f"DROP VIEW {quote_ident(view)}")
            conn.execute(statement)


def _create_views(conn: sqlite3.Connection) -> None:
    """(Re)create recorder's views; views a user added to the database are left alone."""
    statements = list(_statements(schema_path("views.sql").read_text()))
    for statement in statements:
        match = _VIEW_NAME.match(statement)
        if match is None:
            raise StoreError(f"recorder's views.sql holds a statement that is not CREATE VIEW: {statement[:60]!r}")
        conn.execute(f"DROP VIEW IF EXISTS {quote_ident(match.group(1))}")
        conn.execute(statement)


# Connections (by id) between a BEGIN and the block it opens: where an interrupt may strand one.
_OPENING: set[int] = set()


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run a block in one write transaction (``BEGIN IMMEDIATE``): committed or rolled back whole.

    :raises StoreError: wrapping any SQLite error, after rolling back.
    """
    key = id(conn)
    try:
        if conn.in_transaction:
            if key not in _OPENING:
                raise StoreError("a transaction is already open on this connection (transactions do not nest)")
            # Stranded by Ctrl-C or SIGTERM landing between its BEGIN and its block: it wrote nothing.
            conn.execute(_ROLLBACK)
        _OPENING.add(key)
        conn.execute(_BEGIN)
    except sqlite3.Error as e:
        raise StoreError(f"cannot start writing to the store: {e}") from e
    try:
        _OPENING.discard(key)
        yield conn
        conn.execute(_COMMIT)
    except BaseException as e:
        if conn.in_transaction:
            conn.execute(_ROLLBACK)
        if isinstance(e, sqlite3.Error):
            raise StoreError(f"writing to the store failed, nothing was written: {e}") from e
        raise
