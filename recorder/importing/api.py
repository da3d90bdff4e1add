"""The importers' entry points: ``rec.import_psweep``, ``rec.import_mlflow``, ``rec.import_pypet``.

Each reads its source with its reader (imported only when called, so that
``import recorder`` stays fast and a reader's libraries are needed only by
its own import) and hands the study to the one writer,
:func:`recorder.importing.write.import_study`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import RecorderError
from .source import SourceStudy
from .write import ImportReport, import_study

__all__ = ["READERS", "TOOLS", "read_source", "import_source", "import_psweep", "import_mlflow", "import_pypet"]

#: Each tool's reader: its module and function, ``function(source, **options) -> SourceStudy``.
READERS = {
    "psweep": ("recorder.importing.psweep", "read_psweep"),
    "mlflow": ("recorder.importing.mlflow", "read_mlflow"),
    "pypet": ("recorder.importing.pypet", "read_pypet"),
}
#: The tools ``recorder import`` reads.
TOOLS = tuple(READERS)
#: The options each tool's reader takes, beside the source (what picks part of a source, or says where
#: its files are).
OPTIONS = {
    "psweep": frozenset(),
    "mlflow": frozenset({"experiment", "artifact_roots"}),
    "pypet": frozenset({"trajectory"}),
}


def read_source(tool: str, source: str | os.PathLike[str], options: dict[str, Any] | None = None) -> SourceStudy:
    """Read a source with its tool's reader, passing it ``options`` (see :data:`OPTIONS`; None ones are left out).

    :raises RecorderError: for an unknown tool, or one whose reader this recorder lacks.
    :raises TypeError: for an option the tool's reader does not take.
    :raises ImportSourceError: when the source is not a store of that tool.
    """
    if tool not in READERS:
        raise RecorderError(f"recorder cannot import from {tool!r}; it imports from {', '.join(TOOLS)}")
    given = {name: value for name, value in (options or {}).items() if value is not None and value != ()}
    unknown = sorted(set(given) - OPTIONS[tool])
    if unknown:
        raise TypeError(
            f"importing from {tool} takes no option {', '.join(unknown)}"
            + (f"; it takes {', '.join(sorted(OPTIONS[tool]))}" if OPTIONS[tool] else "")
        )
    module_name, function = READERS[tool]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        raise RecorderError(
            f"this recorder has no {tool} importer yet ({module_name} is missing); upgrade recorder"
        ) from None
    study: SourceStudy = getattr(module, function)(source, **given)
    return study


def import_source(
    tool: str,
    source: str | os.PathLike[str],
    into: str | os.PathLike[str] | None = None,
    experiment: str | None = None,
    dry_run: bool = False,
    options: dict[str, Any] | None = None,
) -> ImportReport:
    """Import a ``tool`` study from ``source`` into the store ``into`` (see :func:`import_psweep`).

    ``options`` go to the tool's reader (see :data:`OPTIONS`).
    """
    study = read_source(tool, source, options)
    return import_study(study, into=Path(into) if into is not None else None, experiment=experiment, dry_run=dry_run)


def import_psweep(
    source: str | os.PathLike[str],
    into: str | os.PathLike[str] | None = None,
    experiment: str | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Import a psweep study (``calc/database.pk``, its calc dir, or the folder holding ``calc/``) into a store.

    Idempotent: runs already imported (matched by psweep's ``_pset_id``) are
    skipped, so importing again after psweep ran more psets adds only those.
    Parameters become psets as recorder hashes them, so a sweep of the same
    parameters with ``skip="done"`` finds them done. See
    :mod:`recorder.importing.psweep` for how each column maps.

    Unpickling runs code from the file: import only your own databases.

    :param into: the store (default: ``$RECORDER_STORE``, else the nearest ``.recorder/``, else
        ``./.recorder/``, created).
    :param experiment: the experiment to import into (default: the calc dir's name).
    :param dry_run: write nothing; report what would be imported.
    :raises ImportSourceError: when the source is not a psweep database; nothing is written.
    """
    return import_source("psweep", source, into, experiment, dry_run)


def import_mlflow(
    source: str | os.PathLike[str],
    into: str | os.PathLike[str] | None = None,
    experiment: str | None = None,
    dry_run: bool = False,
    *,
    mlflow_experiment: str | None = None,
    artifact_roots: Sequence[str | os.PathLike[str]] = (),
) -> ImportReport:
    """Import an MLflow tracking store (an ``mlflow.db`` SQLite file or an ``mlruns/`` folder) into a store.

    Idempotent (runs matched by MLflow's run id); see :mod:`recorder.importing.mlflow`.

    :param mlflow_experiment: import only this MLflow experiment (by name); default: all of them.
    :param artifact_roots: folders outside the source where its runs' artifacts may be read
        (an artifact location elsewhere is listed, not read).

    :raises ImportSourceError: when the source is not an MLflow store; nothing is written.
    :raises ImportSourceTooNew: when its schema is newer than the importer knows.
    """
    return import_source(
        "mlflow",
        source,
        into,
        experiment,
        dry_run,
        {"experiment": mlflow_experiment, "artifact_roots": tuple(artifact_roots)},
    )


def import_pypet(
    source: str | os.PathLike[str],
    into: str | os.PathLike[str] | None = None,
    experiment: str | None = None,
    dry_run: bool = False,
    *,
    trajectory: str | None = None,
) -> ImportReport:
    """Import a pypet HDF5 file (its trajectories' runs) into a store; needs ``recorder[import]``.

    Idempotent (runs matched by trajectory and run name); see :mod:`recorder.importing.pypet`.

    :param trajectory: import only this trajectory of the file; default: every one pypet stored.

    :raises ImportSourceError: when the source is not a pypet file with runs; nothing is written.
    """
    return import_source("pypet", source, into, experiment, dry_run, {"trajectory": trajectory})
