"""The names of a store on disk: its database file, its folders, and the checked way into ``locks/``.

A store is a folder holding ``recorder.sqlite`` (with its ``-wal`` and
``-shm``), ``objects/`` (content-addressed arrays) and ``locks/`` (one
lock file per live session, the journals, the objects lock). Every module
names these through here, so a name is written once.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from ..errors import LinkInStore

__all__ = [
    "STORE_ENV",
    "RERUN_STORE_ENV",
    "DEFAULT_STORE",
    "DB_NAME",
    "OBJECTS",
    "RUNS",
    "LOCK_DIR",
    "OBJECTS_LOCK",
    "JAX_CACHE",
    "locks_folder",
    "folder_files",
    "work_folders",
]

#: Environment variable naming the store when ``store=`` is not given.
STORE_ENV = "RECORDER_STORE"
#: Set by ``recorder rerun SESSION`` in the process of the script it reruns: every store that process
#: opens is this one (its scratch store), whatever ``store=`` or ``$RECORDER_STORE`` says, so that a
#: rerun never writes to (nor reads from) the user's stores. Internal; not for users to set.
RERUN_STORE_ENV = "RECORDER_RERUN_STORE"
#: Name of the store folder looked for in the current folder and its parents.
DEFAULT_STORE = ".recorder"
#: The database file of a store.
DB_NAME = "recorder.sqlite"
#: The folder of content-addressed objects.
OBJECTS = "objects"
#: The folder of the runs' work folders (``runs/<run id>/``, see :func:`recorder.current_run`).
RUNS = "runs"
#: The folder of session locks, journals and the objects lock.
LOCK_DIR = "locks"
#: The objects lock, relative to the store (see :class:`recorder.store.objects.ObjectsLock`).
OBJECTS_LOCK = Path(LOCK_DIR) / "objects.lock"
#: The folder of JAX's compiled programs (``vsweep(compile_cache=True)``); ``recorder gc --jax-cache`` empties it.
JAX_CACHE = "jax-cache"


def folder_files(folder: Path) -> list[tuple[Path, int]]:
    """Return the files under a folder of the store with their sizes, without following any link.

    A folder that is a link, or missing, holds nothing; a link inside is
    listed as itself (its own size), never followed.
    """
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return []
    except FileNotFoundError:
        return []
    found = []
    for parent, _, names in os.walk(folder, followlinks=False):
        for name in names:
            path = Path(parent) / name
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile
                found.append((path, os.lstat(path).st_size))
    return found


def work_folders(root: str | os.PathLike[str], workdir: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder holding the runs' work folders: ``workdir`` when given, else the store's ``runs/``.

    :raises LinkInStore: when the store's ``runs`` is a symbolic link or not a folder (a store is
        untrusted: a link there would put the runs' files, and their removal, outside it).
    """
    if workdir is not None:
        return Path(workdir).absolute()
    folder = Path(root).absolute() / RUNS
    try:
        mode = os.lstat(folder).st_mode
    except FileNotFoundError:
        return folder
    if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
        raise LinkInStore(
            f"{folder} is a symbolic link or not a folder; recorder never puts a run's files through a link "
            "out of a store: remove it (recorder makes a new runs/ folder)"
        )
    return folder


def locks_folder(root: str | os.PathLike[str], *, create: bool = False) -> Path:
    """Return the store's ``locks/`` folder, checked to be a real folder inside the store.

    Every user of the folder (session locks, recovery, journals, the
    objects lock) goes through here.

    :param create: create the folder when it is missing (writers only; a
        missing folder is returned as it is otherwise, holding nothing).
    :raises LinkInStore: when ``locks`` is a symbolic link or not a folder.
    :raises OSError: when it cannot be created.
    """
    folder = Path(root) / LOCK_DIR
    try:
        mode = os.lstat(folder).st_mode
    except FileNotFoundError:
        if not create:
            return folder
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process: checked below like any
            folder.mkdir()
        mode = os.lstat(folder).st_mode
    if stat.S_ISLNK(mode):
        raise LinkInStore(
            f"{folder} is a symbolic link (to {os.readlink(folder)!r}); recorder never follows a link out of "
            "a store: remove it (recorder makes a new locks/ folder), or replace it with a folder"
        )
    if not stat.S_ISDIR(mode):
        raise LinkInStore(
            f"{folder} is not a folder; recorder keeps its lock and journal files there: move it away "
            "(recorder makes a new locks/ folder)"
        )
    return folder
