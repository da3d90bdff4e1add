"""Exceptions and warnings raised by recorder.

Every error the library raises on purpose is a :class:`RecorderError`, so a
caller (and the CLI) can catch one class and show a one-line message.
"""

from __future__ import annotations

__all__ = [
    "RecorderError",
    "StoreError",
    "StoreVersionError",
    "ValueRefused",
    "NameRefused",
    "GitError",
    "DirtyWorkTree",
    "ObjectError",
    "RecorderWarning",
    "FunctionUnavailable",
    "ResultsNotNamed",
    "PoolBroken",
]


class RecorderError(Exception):
    """Base class of every error recorder raises on purpose."""


class StoreError(RecorderError):
    """The store cannot be found, created, opened or written."""


class StoreVersionError(StoreError):
    """The store was written by a newer recorder than this one."""


class ValueRefused(RecorderError, TypeError):
    """A parameter, config value or result has a type recorder cannot store."""


class NameRefused(RecorderError, ValueError):
    """A parameter, config or result name is reserved, invalid or already used."""


class GitError(RecorderError):
    """Git could not record the code state the way the chosen mode asks."""


class DirtyWorkTree(GitError):
    """``git="require-clean"`` was asked for and tracked files are modified."""


class ObjectError(RecorderError):
    """An object (a stored array) is missing, corrupt or its digest is invalid."""


class RecorderWarning(UserWarning):
    """Something the user should know that does not stop the recording."""


class FunctionUnavailable(RecorderError):
    """The experiment function cannot reach worker processes: it cannot be pickled, imported or unpickled there."""


class ResultsNotNamed(RecorderError, TypeError):
    """An experiment function returned a dict whose keys are not all result names (str)."""


class PoolBroken(RecorderError):
    """The worker processes of a sweep's pool die before running any run (they cannot start)."""
