"""The ``functions`` table: the experiment functions runs called, as a rerun finds them again."""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

__all__ = ["FunctionRow", "function_key", "function_row"]

# path may be NULL (a notebook), which UNIQUE does not match: looked up with IS, then inserted.
_FIND_FUNCTION = "SELECT pk FROM functions WHERE module = ? AND qualname = ? AND path IS ? AND how = ?"
_INSERT_FUNCTION = "INSERT INTO functions (module, qualname, path, how) VALUES (?, ?, ?, ?)"
_GET_FUNCTION = "SELECT module, qualname, path, how FROM functions WHERE pk = ?"


class FunctionRow(NamedTuple):
    """A row of ``functions`` (see :class:`recorder.provenance.environment.FunctionIdentity`)."""

    module: str
    qualname: str
    path: str | None
    how: str


def function_key(conn: sqlite3.Connection, identity: tuple[str, str, str | None, str]) -> int:
    """Return the key of the function ``(module, qualname, path, how)``, adding its row when new (in a transaction)."""
    row = conn.execute(_FIND_FUNCTION, identity).fetchone()
    if row is not None:
        return int(row[0])
    pk = conn.execute(_INSERT_FUNCTION, identity).lastrowid
    assert pk is not None  # an INSERT always sets it
    return int(pk)


def function_row(conn: sqlite3.Connection, pk: int) -> FunctionRow | None:
    """Return the function of key ``pk``, or None when there is none (as stored: untrusted)."""
    row = conn.execute(_GET_FUNCTION, (pk,)).fetchone()
    return None if row is None else FunctionRow(*row)
