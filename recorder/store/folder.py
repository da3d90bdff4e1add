"""Find, create and open a store: a folder with ``recorder.sqlite`` and ``objects/``."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ..errors import LinkInStore, NoStoreError, ObjectError, RecoveryError, StoreError
from .db import connect
from .layout import DB_NAME, DEFAULT_STORE, OBJECTS, RERUN_STORE_ENV, STORE_ENV
from .liveness import recover_stale
from .objects import ObjectStore

__all__ = ["Store", "locate"]


def locate(store: str | os.PathLike[str] | None = None, *, create: bool = True) -> Path:
    """Return the folder of the store to use.

    In order: ``store``, else ``$RECORDER_STORE``, else the nearest
    ``.recorder/`` in the current folder or a parent, else ``./.recorder/``
    (only when ``create``). In the process of a script that ``recorder
    rerun SESSION`` runs, ``$RECORDER_RERUN_STORE`` (its scratch store)
    comes before all of them.

    :raises StoreError: when no store is found and ``create`` is false, or the
        path names a file that is not a store database.
    """
    rerun_store = os.environ.get(RERUN_STORE_ENV)
    if rerun_store:  # a session's rerun: its script must not touch the stores it names
        store = rerun_store
    if store is None:
        store = os.environ.get(STORE_ENV) or None
    if store is not None:
        path = Path(store).expanduser()
        if path.is_file():
            if path.name != DB_NAME:
                raise StoreError(f"the store {str(path)!r} is a file; a store is a folder holding {DB_NAME}")
            path = path.parent
        return path.absolute()
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / DEFAULT_STORE).is_dir():
            return folder / DEFAULT_STORE
    if not create:
        raise NoStoreError(
            f"no store found: no {DEFAULT_STORE}/ in {here} or its parents; pass store=PATH "
            f"(--store PATH) or set {STORE_ENV}"
        )
    return here / DEFAULT_STORE


def _write_gitignore(root: Path) -> None:
    """Keep the store out of git, whoever commits (written atomically, once)."""
    path = root / ".gitignore"
    if path.exists():
        return
    tmp = root / f".gitignore.{os.getpid()}.tmp"
    tmp.write_text("# recorder store: never commit it\n*\n")
    os.replace(tmp, path)


def _damaged(error: BaseException) -> bool:
    """Whether an error (or its cause) is SQLite finding the database corrupt, rather than a passing
    condition such as a full disk, a lock or a read-only file (``OperationalError``)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, sqlite3.DatabaseError) and not isinstance(seen, sqlite3.OperationalError):
            return True
        seen = seen.__cause__
    return False


class Store:
    """An open store: its folder, database connection and object store.

    Use :meth:`open`; close with :meth:`close` or a ``with`` block.
    """

    def __init__(self, root: Path, conn: sqlite3.Connection, readonly: bool) -> None:
        self.root = root
        self.conn = conn
        self.readonly = readonly
        self.objects = ObjectStore(root / OBJECTS)

    @property
    def db_path(self) -> Path:
        """Path of the database file."""
        return self.root / DB_NAME

    @classmethod
    def open(
        cls,
        store: str | os.PathLike[str] | None = None,
        *,
        readonly: bool = False,
        create: bool = True,
    ) -> Store:
        """Open the store and recover dead sessions (unless ``readonly``); create it if ``create``.

        Before anything is written, the database's identity is checked by
        reading it: an SQLite file of another application is refused and left
        untouched (no WAL switch, no ``objects/``, no ``.gitignore``).

        :param readonly: open a read-only connection; never write, recover or create.
        :param create: whether a missing store may be created (only writing
            does that; reading and maintenance pass False).
        :raises NoStoreError: when there is no store and ``create`` is false (or ``readonly``).
        :raises ForeignStoreError: when ``recorder.sqlite`` belongs to another application.
        :raises LinkInStore: when the store's ``locks/`` is a symbolic link or not a folder (never followed).
        :raises RecoveryError: when crashed sessions could not be recovered (the store stays as it was).
        :raises StoreError: when it cannot be found, created or opened.
        """
        create = create and not readonly
        root = locate(store, create=create)
        db = root / DB_NAME
        if not db.is_file():
            if not create:
                raise NoStoreError(f"no store at {root} (no {DB_NAME} there)")
            try:
                root.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create the store {root}: {e}") from e
        conn = connect(db, readonly=readonly, create=create)
        store_ = cls(root, conn, readonly)
        if readonly:
            return store_
        try:
            if create:  # the database is recorder's (connect checked it): now its folder may be completed
                (root / OBJECTS).mkdir(exist_ok=True)
                _write_gitignore(root)
        except OSError as e:
            conn.close()
            raise StoreError(f"cannot create the store {root}: {e}") from e
        try:
            recover_stale(conn, root)
        except LinkInStore:
            conn.close()
            raise  # as it is: no later session can recover through it either
        except (OSError, StoreError, ObjectError) as e:  # ObjectError: a dead run's series not stored (a full disk)
            conn.close()
            if _damaged(e):
                raise StoreError(f"{e}; the file is damaged: restore it from a copy") from e
            raise RecoveryError(
                f"cannot recover the crashed sessions of {root} now ({e}); the next session that "
                "writes to the store recovers them"
            ) from e
        except BaseException:
            conn.close()
            raise
        return store_

    def close(self) -> None:
        """Close the database connection."""
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r}{', readonly' if self.readonly else ''})"
