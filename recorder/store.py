"""Find, create and open a store: a folder with ``recorder.sqlite`` and ``objects/``."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from .db import connect
from .errors import StoreError
from .liveness import recover_stale
from .objects import ObjectStore

__all__ = ["STORE_ENV", "DEFAULT_STORE", "DB_NAME", "Store", "locate"]

#: Environment variable naming the store when ``store=`` is not given.
STORE_ENV = "RECORDER_STORE"
#: Name of the store folder looked for in the current folder and its parents.
DEFAULT_STORE = ".recorder"
DB_NAME = "recorder.sqlite"
OBJECTS = "objects"


def locate(store: str | os.PathLike[str] | None = None, *, create: bool = True) -> Path:
    """Return the folder of the store to use.

    In order: ``store``, else ``$RECORDER_STORE``, else the nearest
    ``.recorder/`` in the current folder or a parent, else ``./.recorder/``
    (only when ``create``).

    :raises StoreError: when no store is found and ``create`` is false, or the
        path names a file that is not a store database.
    """
    if store is None:
        store = os.environ.get(STORE_ENV) or None
    if store is not None:
        path = Path(store).expanduser()
        if path.is_file():
            if path.name != DB_NAME:
                raise StoreError(
                    f"the store {str(path)!r} is a file; a store is a folder holding {DB_NAME}"
                )
            path = path.parent
        return path.absolute()
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / DEFAULT_STORE).is_dir():
            return folder / DEFAULT_STORE
    if not create:
        raise StoreError(
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
    ) -> Store:
        """Open the store (creating it unless ``readonly``) and recover dead sessions.

        :raises StoreError: when it cannot be found, created or opened.
        """
        root = locate(store, create=not readonly)
        if readonly:
            if not (root / DB_NAME).is_file():
                raise StoreError(f"no store at {root} (no {DB_NAME} there)")
        else:
            try:
                (root / OBJECTS).mkdir(parents=True, exist_ok=True)
                _write_gitignore(root)
            except OSError as e:
                raise StoreError(f"cannot create the store {root}: {e}") from e
        conn = connect(root / DB_NAME, readonly=readonly)
        store_ = cls(root, conn, readonly)
        if not readonly:
            try:
                recover_stale(conn, root)
            except OSError as e:
                conn.close()
                raise StoreError(f"cannot check the sessions of {root} for crashed ones: {e}") from e
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
