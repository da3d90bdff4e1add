"""Quoting of names in SQL text: the one place identifiers and DDL literals are quoted.

Values are always bound (``?``). Only where SQL cannot bind, in the
definition of a view, is a name written into the text, and then only
through these helpers.
"""

from __future__ import annotations

from ..errors import StoreError

__all__ = ["quote_ident", "quote_literal"]


def _check(name: str) -> None:
    if "\x00" in name:
        raise StoreError(f"the name {name!r} contains a NUL character and cannot be used in SQL")


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (table, view or column name)."""
    _check(name)
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """Quote a string literal, for view definitions only (everywhere else values are bound)."""
    _check(text)
    return "'" + text.replace("'", "''") + "'"
