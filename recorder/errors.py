"""Exceptions and warnings raised by recorder.

Every error the library raises on purpose is a :class:`RecorderError`, so a
caller (and the CLI) can catch one class and show a one-line message.

Each class has a stable ``exit_code``: the ``recorder`` command exits with
it when the error stops a command (subclasses inherit their parent's code
unless they name their own). The codes are part of the CLI's promise:

- 0: success
- 1: a :class:`RecorderError` not listed below (a damaged store, say)
- 2: a usage error: an unknown option or a missing argument (click's code)
- 3: :class:`NoStoreError`: no store where one was named or looked for
- 4: :class:`RunNotFound`, :class:`ExperimentNotFound`: no such run or experiment
- 5: :class:`AmbiguousRunId`: the run id matches more than one run
- 6: :class:`NameRefused`, :class:`ValueRefused`: a name or value recorder cannot store
- 7: :class:`StoreBusy`: another process holds the store's objects lock; retry
- 8: :class:`SessionRecording`: a session is still recording; retry when it has ended
- 9: :class:`DirtyWorkTree`: ``git="require-clean"`` and tracked files are modified
- 10: :class:`MergeRefused`: the stores disagree (config, code, a column's role)
- 11: :class:`ObjectError`: an array is missing or corrupt (``recorder verify`` found problems)
- 12: :class:`ExtraNotInstalled`: the command needs an optional extra (``pip install 'recorder[report]'``)
- 13: :class:`RerunRefused`: a run cannot be rerun; ``recorder rerun`` exits 13 for every error
  (its 1 means "the rerun differs")
- 14: :class:`CurationRefused`: ``rm`` of a running run, or a ``--where`` that selects every run without ``--all``
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
    "RepositoryMissing",
    "GitRecordRefused",
    "CommitMissing",
    "DiffDoesNotApply",
    "NoStoreError",
    "ForeignStoreError",
    "RecoveryError",
    "JournalError",
    "ObjectOutsideStore",
    "StoreBusy",
    "DuplicateSource",
    "UnreadableValue",
    "FunctionUnavailable",
    "ResultsNotNamed",
    "PoolBroken",
    "LinkInStore",
    "RunFailed",
    "RunNotFound",
    "AmbiguousRunId",
    "ExperimentNotFound",
    "MergeRefused",
    "SessionRecording",
    "ExtraNotInstalled",
    "RerunRefused",
    "FunctionMissing",
    "SessionNotFound",
    "AmbiguousSessionId",
    "CurationRefused",
    "ImportSourceError",
    "ImportSourceTooNew",
    "NotInRun",
    "SeriesRefused",
    "FileRefused",
    "NoRunInVsweep",
    "BatchSizeRefused",
]


class RecorderError(Exception):
    """Base class of every error recorder raises on purpose."""

    #: The ``recorder`` command's exit status for this error (see the table in :mod:`recorder.errors`).
    exit_code: int = 1


class StoreError(RecorderError):
    """The store cannot be found, created, opened or written."""


class StoreVersionError(StoreError):
    """The store was written by a newer recorder than this one."""


class ValueRefused(RecorderError, TypeError):
    """A parameter, config value or result has a type recorder cannot store."""

    exit_code = 6


class NameRefused(RecorderError, ValueError):
    """A parameter, config or result name is reserved, invalid or already used."""

    exit_code = 6


class GitError(RecorderError):
    """Git could not record the code state the way the chosen mode asks."""


class DirtyWorkTree(GitError):
    """``git="require-clean"`` was asked for and tracked files are modified."""

    exit_code = 9


class ObjectError(RecorderError):
    """An object (a stored array) is missing, corrupt or its digest is invalid."""

    exit_code = 11


class RecorderWarning(UserWarning):
    """Something the user should know that does not stop the recording."""


class RepositoryMissing(GitError):
    """The git repository a store names is not there (moved, deleted, or not a repository's top folder)."""


class GitRecordRefused(GitError, ValueError):
    """What a store says about git (repository path, commit, snapshot ref) is not a value recorder writes."""


class CommitMissing(GitError):
    """The repository a store names does not have the recorded commit or snapshot ref (any more)."""


class DiffDoesNotApply(GitError):
    """The uncommitted changes a ``git="record"`` run recorded do not apply to its commit."""


class NoStoreError(StoreError):
    """There is no store where one was named or looked for (reading never creates one)."""

    exit_code = 3


class ForeignStoreError(StoreError):
    """The store's ``recorder.sqlite`` is an SQLite database of another application; it is left untouched."""


class RecoveryError(StoreError):
    """The sessions of a store that crashed could not be recovered now (e.g. the disk is full)."""


class JournalError(StoreError, OSError):
    """A finished run cannot be kept in its session's journal (the disk is full, say).

    The run still goes to the database; only its protection against a crash
    is lost. The writer reports it as a :class:`RecorderWarning` and goes on
    without the journal.
    """


class ObjectOutsideStore(ObjectError):
    """A path in a store's ``objects/`` is a symbolic link: recorder never follows it out of the store."""


class StoreBusy(StoreError):
    """Another process holds the store's objects lock (gc, or a session starting or a merge while gc runs)."""

    exit_code = 7


class DuplicateSource(RecorderError, ValueError):
    """The same store was given twice as a source of a merge."""


class UnreadableValue(StoreError):
    """A value stored in a run (a result, parameter or config cell) cannot be read back: the store is damaged or crafted."""


class FunctionUnavailable(RecorderError):
    """The experiment function cannot reach worker processes: it cannot be pickled, imported or unpickled there."""


class ResultsNotNamed(RecorderError, TypeError):
    """An experiment function returned a dict whose keys are not all result names (str)."""


class PoolBroken(RecorderError):
    """The worker processes of a sweep's pool die before running any run (they cannot start)."""


class LinkInStore(StoreError):
    """A folder recorder keeps in a store (``locks/``) is a symbolic link or not a folder: it is never followed."""


class RunFailed(RecorderError):
    """A run of a sweep failed and ``on_error="raise"`` stopped the sweep (the run is recorded)."""


class RunNotFound(RecorderError, LookupError):
    """No run in the store has the id, prefix or short id given.

    A :class:`LookupError` (not a ``ValueError``): the id is well formed, the
    store just holds no such run, as ``dict[key]`` has no such key. Not a
    ``KeyError``, whose ``str()`` quotes the message.
    """

    exit_code = 4


class AmbiguousRunId(RecorderError, LookupError):
    """The run id given is a prefix or short id of more than one run: give more digits."""

    exit_code = 5


class ExperimentNotFound(RecorderError, LookupError):
    """The store has no experiment of the name given."""

    exit_code = 4


class MergeRefused(RecorderError):
    """A merge would put runs together that disagree: different config or code, or a name that is a parameter in one and a result in the other."""

    exit_code = 10


class SessionRecording(RecorderError):
    """A session is still recording in the store, so gc or merge would race with it; run it when the session has ended."""

    exit_code = 8


class ExtraNotInstalled(RecorderError, ImportError):
    """A feature needs an optional extra that is not installed (``pip install 'recorder[report]'``)."""

    exit_code = 12


class RerunRefused(RecorderError):
    """A run cannot be rerun (still running, no recorded function, a lambda, code the store does not keep).

    ``recorder rerun`` exits with this code for any error, since its exit status 1 means "the rerun differs".
    """

    exit_code = 13


class FunctionMissing(RerunRefused, LookupError):
    """The experiment function is not where the run recorded it (renamed or removed at that code)."""


class SessionNotFound(RecorderError, LookupError):
    """No session in the store has the id, prefix or short id given (``recorder rerun SESSION``)."""

    exit_code = 4


class AmbiguousSessionId(RecorderError, LookupError):
    """The id given names more than one session, or both a run and a session: give more digits (or ``--session``)."""

    exit_code = 5


class CurationRefused(RecorderError):
    """A curation (tag, note, rm, restore, purge) was refused: it names a running run, or its ``where``
    selects every run of the experiment without ``all_runs=True`` (``--all``). Nothing was written."""

    exit_code = 14


class NotInRun(RecorderError):
    """``recorder.current_run()`` (or ``current_seed()``) was called outside a recorded run."""


class SeriesRefused(RecorderError, ValueError):
    """A series value cannot be recorded: not a number, of another type than the series' earlier values."""


class FileRefused(RecorderError, ValueError):
    """A run's file cannot be stored (not a regular file, over ``max_file_bytes``) or copied out (its
    stored path would leave the folder, or the place is taken)."""


class ImportSourceError(RecorderError, ValueError):
    """``recorder import`` cannot read the source: not a store of that tool, a psweep file that is not a
    pickled DataFrame, a pypet file without runs. Nothing was written to the destination."""

    exit_code = 15


class ImportSourceTooNew(ImportSourceError):
    """The source was written by a newer version of its tool (an MLflow database of a newer schema) than
    the importer knows; the message names both versions. Nothing was written."""


class NoRunInVsweep(NotInRun):
    """``recorder.current_run()`` (or ``current_seed()``) was called in a function run by ``vsweep``,
    which traces it once for a whole chunk of psets: there is no run of one pset to give. Use
    ``rec.jax.key()`` for per-pset randomness and return results, or run the function with ``sweep``."""


class BatchSizeRefused(RecorderError, ValueError):
    """A sweep's ``batch_size`` is neither ``"auto"`` nor a number of runs per batch (an int ≥ 1)."""
