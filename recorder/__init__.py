"""recorder: a provenance database for numerical experiments and parameter studies."""

from .errors import (
    AmbiguousRunId,
    AmbiguousSessionId,
    BatchSizeRefused,
    CommitMissing,
    CurationRefused,
    DiffDoesNotApply,
    DirtyWorkTree,
    DuplicateSource,
    ExperimentNotFound,
    ExtraNotInstalled,
    FileRefused,
    ForeignStoreError,
    FunctionMissing,
    FunctionUnavailable,
    GitError,
    GitRecordRefused,
    ImportSourceError,
    ImportSourceTooNew,
    JournalError,
    LinkInStore,
    MergeRefused,
    NameRefused,
    NoRunInVsweep,
    NoStoreError,
    NotInRun,
    ObjectError,
    ObjectOutsideStore,
    PoolBroken,
    RecorderError,
    RecorderWarning,
    RecoveryError,
    RepositoryMissing,
    RerunRefused,
    ResultsNotNamed,
    RunFailed,
    RunNotFound,
    SeriesRefused,
    SessionNotFound,
    SessionRecording,
    StoreBusy,
    StoreError,
    StoreVersionError,
    UnreadableValue,
    ValueRefused,
)
from .importing.api import import_mlflow, import_psweep, import_pypet
from .importing.write import ImportReport
from .read.database import Database, load, open, sql
from .record.experiment import Experiment, experiment
from .record.recorder import Recorder
from .record.rerun import Comparison, rerun
from .record.rerun_session import SessionComparison, rerun_session
from .record.run import Run
from .shards.curate import Curated, Purged, note, purge, restore, rm, tag, untag
from .shards.merge import MergeReport, extract, merge
from .store.folder import Store
from .store.objects import ObjectStore
from .sweep.execute import RunContext, current_run, current_seed
from .sweep.params import ParamSequence, grid, pgrid, plist, pzip, stargrid, zip
from .version import __version__


def __getattr__(name: str) -> object:
    """Import :mod:`recorder.sweep.vectorised` (and so jax) only when ``rec.jax`` is used."""
    if name == "jax":
        import importlib

        return importlib.import_module(".sweep.vectorised", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "__version__",
    "Recorder",
    "Run",
    "experiment",
    "Experiment",
    "current_seed",
    "current_run",
    "RunContext",
    "plist",
    "pgrid",
    "stargrid",
    "pzip",
    "grid",
    "zip",
    "ParamSequence",
    "open",
    "load",
    "sql",
    "Database",
    "merge",
    "extract",
    "MergeReport",
    "tag",
    "untag",
    "note",
    "rm",
    "restore",
    "purge",
    "Curated",
    "Purged",
    "import_psweep",
    "import_mlflow",
    "import_pypet",
    "ImportReport",
    "rerun",
    "Comparison",
    "rerun_session",
    "SessionComparison",
    "Store",
    "ObjectStore",
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
    "NotInRun",
    "SeriesRefused",
    "FileRefused",
    "FunctionMissing",
    "SessionNotFound",
    "AmbiguousSessionId",
    "BatchSizeRefused",
    "CurationRefused",
    "ImportSourceError",
    "ImportSourceTooNew",
    "NoRunInVsweep",
]
