"""The files a run left in its work folder, copied out of the store (``recorder files RUN --into DIR``).

A file's relative path is read from the store, so it is untrusted: it is
checked to name a place inside the destination folder (no absolute path, no
``..``, no empty or ``.`` part, no backslash or NUL) before anything is
written, and nothing is written through a symbolic link or over a file
that is there already.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import FileRefused, ObjectError

if TYPE_CHECKING:
    from .database import Database

__all__ = ["safe_parts", "copy_out"]


def safe_parts(name: object) -> list[str]:
    """The parts of a stored relative path, checked to stay inside the folder it is copied into.

    :raises FileRefused: for an absolute path, ``..``, an empty or ``.`` part, a backslash or a NUL.
    """
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name or name.startswith("/"):
        raise FileRefused(f"the store names a run's file {name!r}, which is not a relative path; not copied")
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise FileRefused(f"the store names a run's file {name!r}, which would leave the folder; not copied")
    return parts


def _regular(db: Database, digest: str) -> Path:
    """The object's path, checked to be a regular file (a FIFO there would block, a folder would fail late).

    :raises ObjectError: when the object is missing or not a regular file.
    """
    source = db.objects.file(digest)
    try:
        mode = os.lstat(source).st_mode
    except OSError as e:
        raise ObjectError(f"object {digest} of a run's file is missing ({e.strerror}); run recorder verify") from e
    if not stat.S_ISREG(mode):
        raise ObjectError(f"object {digest} at {source} is not a regular file; run recorder verify")
    return source


def copy_out(db: Database, run_id: str, into: str | os.PathLike[str]) -> list[Path]:
    """Copy every file a run left in its folder into ``into`` (made if missing), at its relative path.

    Every path is checked before the first copy, so a hostile name writes nothing.

    :raises FileRefused: for a stored path that leaves ``into``, or a place that is taken (a file or a link).
    """
    files = db.files(run_id)
    planned = [(safe_parts(name), digest) for name, digest in files]
    # A name twice, or a name that another name needs as a folder, would stop the copy half-way.
    names = [tuple(parts) for parts, _ in planned]
    folders = {parts[:i] for parts in names for i in range(1, len(parts))}
    clash = next((n for n in names if n in folders or names.count(n) > 1), None)
    if clash is not None:
        raise FileRefused(f"the store names a run's file {'/'.join(clash)!r} twice, or as a file and a folder")
    sources = [_regular(db, digest) for _, digest in planned]  # every object there and a plain file, first
    root = Path(into)
    root.mkdir(parents=True, exist_ok=True)
    if root.is_symlink():
        raise FileRefused(f"{root} is a symbolic link; give a real folder to copy into")
    written = []
    for (parts, _), source in zip(planned, sources):
        folder = root
        for part in parts[:-1]:
            folder = folder / part
            try:
                mode = os.lstat(folder).st_mode
            except FileNotFoundError:
                folder.mkdir()
                continue
            if not stat.S_ISDIR(mode) or stat.S_ISLNK(mode):
                raise FileRefused(f"{folder} is there already and is not a folder; copy into an empty folder")
        target = folder / parts[-1]
        if os.path.lexists(target):
            raise FileRefused(f"{target} is there already; copy into an empty folder (nothing is overwritten)")
        with open(source, "rb") as src, open(target, "xb") as dst:  # "x": never through a link put there meanwhile
            shutil.copyfileobj(src, dst)
        written.append(target)
    return written
