"""Read an MLflow tracking store into a :class:`~recorder.importing.source.SourceStudy`, without mlflow.

Both of MLflow's local tracking backends are read with the standard library
and PyYAML alone:

- the SQLite backend (``sqlite:///mlflow.db``), opened read-only (``mode=ro``)
  in one read transaction; its ``alembic_version`` must be a schema revision
  listed in :data:`KNOWN_REVISIONS`, else :class:`~recorder.errors.ImportSourceTooNew`;
- the ``mlruns/`` file store: ``<experiment id>/meta.yaml``, ``<experiment
  id>/<run id>/meta.yaml`` and the run's ``params/``, ``metrics/`` (lines
  ``timestamp value step``), ``tags/`` and ``artifacts/`` folders.

Everything read is untrusted: YAML is parsed with ``safe_load``, metadata files
are read only when they are regular files (never through a link, never a FIFO),
and an artifact location is used only when it is a local folder inside the
source's folder (or one of the ``artifact_roots`` given); a link that leaves
the artifact folder is refused, and reported.
"""

from __future__ import annotations

import math
import os
import sqlite3
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..codec.hashing import check_experiment, not_text
from ..errors import ImportSourceError, ImportSourceTooNew, NameRefused
from ..shards.curate import check_tag
from .source import SourceRun, SourceStudy

__all__ = ["KNOWN_REVISIONS", "NEWEST_KNOWN_MLFLOW", "read_mlflow"]

#: The alembic revisions of MLflow's tracking database schema, oldest first, as listed in
#: ``mlflow/store/db_migrations/versions`` of mlflow-skinny 3.17.2 (one linear chain). A
#: database stamped with another revision was made by a newer MLflow: refused, since its
#: tables may mean something else.
KNOWN_REVISIONS: tuple[str, ...] = (
    "451aebb31d03",  # add_metric_step
    "90e64c465722",  # migrate_user_column_to_tags
    "181f10493468",  # allow_nulls_for_metric_values
    "df50e92ffc5e",  # add_experiment_tags_table
    "7ac759974ad8",  # update_run_tags_with_larger_limit
    "89d4b8295536",  # create_latest_metrics_table
    "2b4d017a5e9b",  # add_model_registry_tables_to_db
    "cfd24bdc0731",  # update_run_status_constraint_with_killed
    "0a8213491aaa",  # drop_duplicate_killed_constraint
    "728d730b5ebd",  # add_registered_model_tags_table
    "27a6a02d2cf1",  # add_model_version_tags_table
    "84291f40a231",  # add_run_link_to_model_version
    "a8c4a736bde6",  # allow_nulls_for_run_id
    "39d1c3be5f05",  # add_is_nan_constraint_for_metrics_tables_if_necessary
    "c48cb773bb87",  # reset_default_value_for_is_nan_in_metrics_table_for_mysql
    "bd07f7e963c5",  # create_index_on_run_uuid
    "0c779009ac13",  # add_deleted_time_field_to_runs_table
    "cc1f77228345",  # change_param_value_length_to_500
    "97727af70f4d",  # creation_time_last_update_time_experiments
    "3500859a5d39",  # add_model_aliases_table
    "7f2a7d5fae7d",  # add_datasets_inputs_input_tags_tables
    "2d6e25af4d3e",  # increase_max_param_val_length
    "acf3f17fdcc7",  # add_storage_location_field_to_model_
    "867495a8f9d4",  # add_trace_tables
    "5b0e9adcef9c",  # add_cascade_deletion_to_trace_tables_fk
    "4465047574b1",  # increase_max_dataset_schema_size
    "f5a4f2784254",  # increase_run_tag_value_limit
    "0584bdc529eb",  # add_cascading_deletion_to_datasets_from_experiments
    "400f98739977",  # add_logged_model_tables
    "6953534de441",  # add_step_to_inputs_table
    "bda7b8c39065",  # increase_model_version_tag_value_limit
    "cbc13b556ace",  # add_v3_trace_schema_columns
    "770bee3ae1dd",  # add_assessments_table
    "a1b2c3d4e5f6",  # add_spans_table
    "de4033877273",  # create_entity_associations
    "1a0cddfcaa16",  # add_webhooks_and_webhook_events_tables
    "534353b11cbc",  # add_scorer_table
    "71994744cf8e",  # add_evaluation_datasets
    "3da73c924c2f",  # add_outputs_to_dataset_record
    "bf29a5ff90ea",  # add_jobs_table
    "1bd49d398cd23",  # add_secrets_tables
    "b7c8d9e0f1a2",  # add_trace_metrics_table
    "5d2d30f0abce",  # update_job_table
    "c9d4e5f6a7b8",  # add_routing_strategy_to_endpoints
    "2c33131f4dae",  # add_online_scoring_configs_table
    "d3e4f5a6b7c8",  # add_display_name_to_endpoint_bindings
    "d0e1f2a3b4c5",  # add_experiment_id_to_endpoints
    "c8d9e0f1a2b3",  # add_span_metrics_and_dimension_attributes
    "1b5f0d9ad7c1",  # add_workspace_columns_and_catalog
    "e1f2a3b4c5d6",  # add_budget_policies_table
    "76601a5f987d",  # add_issues_table
    "c3d6457b6d8a",  # add_status_details_column_to_jobs_table
    "a5b4c3d2e1f0",  # add_metrics_run_key_step_index
    "ae8bbe7743c9",  # add_guardrails_tables
    "7d34483879f0",  # add_model_version_tags_workspace_index
    "da6fb0208061",  # add_workspaces_trace_archival_location
    "89d3d66ed43f",  # add_label_schemas_table
    "b7e4c1a90f23",  # add_review_queue_tables
    "a8b9c0d1e2f3",  # add_mcp_server_registry_tables
    "c1d2e3f4a5b6",  # add_span_experiment_start_time_index
    "c3d9e7f1a2b4",  # add_target_value_to_budget_policies
    "6f8d9c3b2a1e",  # add_experiment_fk_cascades
    "1971f2d9a75b",  # add_trace_archival_candidate_index
    "17e22815139b",  # increase_experiment_tag_value_limit
    "b7e2c1a4d9f3",  # add_jobs_creator
    "75868b020152",  # add_sql_trace_analytics_schema
    "dc11669786a5",  # add_job_executor_persistence_model
)

#: The MLflow release whose newest schema revision is the last of :data:`KNOWN_REVISIONS`.
NEWEST_KNOWN_MLFLOW = "3.17.2"

_SQLITE_HEADER = b"SQLite format 3\x00"
#: The largest file of an ``mlruns/`` folder read (a meta.yaml, a param, a metric's history): a larger one is
#: listed as not read, so that a crafted folder cannot make the import hold gigabytes.
MAX_FILE_BYTES = 256 * 1024 * 1024

#: MLflow's run status names; the file store writes them as the protobuf enum's numbers.
_STATUS_BY_NUMBER = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
_SOURCE_TYPE_BY_NUMBER = {1: "NOTEBOOK", 2: "JOB", 3: "PROJECT", 4: "LOCAL", 1000: "UNKNOWN"}
#: MLflow status → recorder status; RUNNING and SCHEDULED runs never ended (or crashed): interrupted.
_STATUS = {"FINISHED": "done", "FAILED": "failed", "KILLED": "interrupted", "RUNNING": "interrupted"}

#: The tags MLflow sets itself that become fields of the run rather than notes.
_GIT_COMMIT_TAG = "mlflow.source.git.commit"
_RUN_NAME_TAG = "mlflow.runName"
_NOTE_TAG = "mlflow.note.content"

#: MLflow's tables of things recorder has no place for; rows in them are reported, not imported.
_OTHER_TABLES = {
    "inputs": "dataset inputs of runs",
    "logged_models": "logged models",
    "trace_info": "traces",
    "registered_models": "registered models",
    "model_versions": "model versions",
    "assessments": "assessments",
}

SQL_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"
SQL_REVISION = "SELECT version_num FROM alembic_version"
SQL_COLUMNS = "SELECT name FROM pragma_table_info(?)"
SQL_EXPERIMENTS = "SELECT experiment_id, name, lifecycle_stage, artifact_location FROM experiments"
SQL_EXPERIMENTS_WORKSPACE = "SELECT experiment_id, name, lifecycle_stage, artifact_location, workspace FROM experiments"
SQL_EXPERIMENT_TAGS = 'SELECT experiment_id, "key", value FROM experiment_tags ORDER BY experiment_id, "key"'
SQL_RUNS = (
    "SELECT run_uuid, experiment_id, name, status, start_time, end_time, lifecycle_stage, artifact_uri, "
    "user_id, source_type, source_name, entry_point_name, source_version FROM runs "
    "ORDER BY start_time, run_uuid"
)
SQL_PARAMS = 'SELECT run_uuid, "key", value FROM params'
SQL_TAGS = 'SELECT run_uuid, "key", value FROM tags'
# MLflow's own order for a metric's history and for its latest value: step, then timestamp, then value.
SQL_METRICS = 'SELECT run_uuid, "key", step, timestamp, value, is_nan FROM metrics'
SQL_METRICS_NO_NAN = 'SELECT run_uuid, "key", step, timestamp, value, 0 FROM metrics'
#: Counts rows of a table named in :data:`_OTHER_TABLES` (a fixed name, never one read from the file).
SQL_COUNT = "SELECT count(*) FROM {table}"


@dataclass
class _Experiment:
    """An MLflow experiment as read: id, name, where its artifacts go, its tags."""

    id: str
    name: str
    artifact_location: str | None
    tags: dict[str, str] = field(default_factory=dict)
    deleted: bool = False


@dataclass
class _Run:
    """An MLflow run as read from either backend, before mapping."""

    id: str
    experiment_id: str
    name: str | None
    status: str
    start_ms: int | None
    end_ms: int | None
    deleted: bool
    artifact_uri: str | None
    user: str | None
    fields: dict[str, str]
    #: The file store's own ``<run>/artifacts`` folder (None for the SQLite backend).
    own_artifacts: Path | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    #: key → [(step, timestamp, value)], in any order (sorted when mapped).
    metrics: dict[str, list[tuple[int, int, float]]] = field(default_factory=dict)


@dataclass
class _Read:
    """What a backend read: experiments, runs, and the lines to report."""

    location: Path
    #: The folder an artifact location must lie in (the source's folder).
    base: Path
    experiments: dict[str, _Experiment]
    runs: list[_Run]
    mapped: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        """The source's resolved path, worked out once (it keys the sessions of its experiments)."""
        if self._where is None:
            self._where = str(self.location.resolve())
        return self._where

    _where: str | None = None


def read_mlflow(
    source: Path | str, *, experiment: str | None = None, artifact_roots: Sequence[Path | str] = ()
) -> SourceStudy:
    """Read an MLflow tracking store (SQLite database or ``mlruns/`` folder) as a study to import.

    :param source: ``mlflow.db`` (or ``sqlite:///mlflow.db``), an ``mlruns`` folder (or its
        ``file://`` URI), or a folder holding either.
    :param experiment: read only the MLflow experiment of this name (or id); default: every
        experiment that has runs, one session each (``SourceRun.session_key``).
    :param artifact_roots: folders besides the source's own folder in which a run's artifact
        location may lie; artifacts anywhere else are reported, not read.
    :raises ImportSourceError: when ``source`` is not an MLflow tracking store, or has no
        experiment named ``experiment``.
    :raises ImportSourceTooNew: for a database of a schema revision newer than :data:`KNOWN_REVISIONS`.
    """
    path = _source_path(source)
    if path.is_file():
        read = _read_sqlite(path)
    elif path.is_dir():
        if _is_file_store(path):
            read = _read_file_store(path)
        elif (path / "mlflow.db").is_file():
            read = _read_sqlite(path / "mlflow.db")
        elif (path / "mlruns").is_dir() and _is_file_store(path / "mlruns"):
            read = _read_file_store(path / "mlruns")
        else:
            raise ImportSourceError(
                f"{str(path)!r} is not an MLflow tracking store: it is a folder without experiment folders "
                "(<id>/meta.yaml), mlflow.db or mlruns/; give the mlflow.db file or the mlruns folder"
            )
    else:
        raise ImportSourceError(f"{str(path)!r} does not exist; give an MLflow mlflow.db file or mlruns folder")
    roots = [read.base.resolve(), *(Path(r).resolve() for r in artifact_roots)]
    return _study(read, experiment, roots)


def _source_path(source: Path | str) -> Path:
    """The path a source names: a path, or an MLflow tracking URI (``sqlite:///…``, ``file://…``)."""
    if isinstance(source, str) and "://" in source:
        parts = urlsplit(source)
        if parts.scheme == "sqlite":
            # sqlite:///relative.db and sqlite:////absolute.db, as SQLAlchemy spells them
            return Path(unquote(parts.path[1:] if parts.path.startswith("/") else parts.path))
        if parts.scheme == "file" and parts.netloc in ("", "localhost"):
            return Path(unquote(parts.path))
        raise ImportSourceError(
            f"tracking URI {source!r} is not local (scheme {parts.scheme!r}); only sqlite:/// and file:// "
            "stores can be read: copy the store here, or give its path"
        )
    return Path(source)


# ---------------------------------------------------------------- the SQLite backend


def _read_sqlite(path: Path) -> _Read:
    """Read an MLflow SQLite tracking database, read-only, in one read transaction."""
    try:
        with open(path, "rb") as f:
            header = f.read(len(_SQLITE_HEADER))
    except OSError as e:
        raise ImportSourceError(f"cannot read {str(path)!r}: {e.strerror}") from None
    if header != _SQLITE_HEADER:
        raise ImportSourceError(
            f"{str(path)!r} is not an MLflow tracking store: not an SQLite database (and not a folder); "
            "give the mlflow.db file or the mlruns folder"
        )
    try:
        # timeout: an MLflow server writing meanwhile holds its lock for moments, not seconds
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None, timeout=10)
    except sqlite3.Error as e:
        raise ImportSourceError(f"cannot open {str(path)!r} read-only: {e}") from None
    try:
        conn.execute("BEGIN")  # one snapshot, even if an MLflow server writes meanwhile
        return _read_sqlite_tables(conn, path)
    except sqlite3.DatabaseError as e:
        raise ImportSourceError(f"cannot read {str(path)!r} as an MLflow database: {e}") from None
    finally:
        conn.close()


def _read_sqlite_tables(conn: sqlite3.Connection, path: Path) -> _Read:
    tables = {name for (name,) in conn.execute(SQL_TABLES)}
    missing = [t for t in ("alembic_version", "experiments", "runs", "params", "metrics", "tags") if t not in tables]
    if missing:
        raise ImportSourceError(
            f"{str(path)!r} is an SQLite database but not an MLflow tracking store (no table {missing[0]}); "
            "give the database of an MLflow tracking server (sqlite:///mlflow.db)"
        )
    revisions = [r for (r,) in conn.execute(SQL_REVISION)]
    if len(revisions) != 1:
        raise ImportSourceError(
            f"{str(path)!r}: alembic_version holds {len(revisions)} revisions, not one; the database was "
            "never fully created or migrated by MLflow (run `mlflow db upgrade` on a copy)"
        )
    revision = str(revisions[0])
    if revision not in KNOWN_REVISIONS:
        raise ImportSourceTooNew(
            f"{str(path)!r} has MLflow schema revision {revision!r}, which this recorder does not know: the "
            f"newest it reads is {KNOWN_REVISIONS[-1]!r} (MLflow {NEWEST_KNOWN_MLFLOW}); upgrade recorder, or "
            "export the runs with an MLflow that reads both"
        )
    read = _Read(location=path, base=path.resolve().parent, experiments={}, runs=[])
    read.mapped.append(f"MLflow SQLite database, schema revision {revision}")
    experiment_columns = {c for (c,) in conn.execute(SQL_COLUMNS, ("experiments",))}
    sql = SQL_EXPERIMENTS_WORKSPACE if "workspace" in experiment_columns else SQL_EXPERIMENTS
    for row in conn.execute(sql):
        exp_id, name, stage, location = str(row[0]), str(row[1]), row[2], row[3]
        workspace = row[4] if len(row) > 4 else None
        if workspace not in (None, "default"):
            name = f"{workspace}-{name}"
        read.experiments[exp_id] = _Experiment(exp_id, name, _text(location), deleted=stage == "deleted")
    if "experiment_tags" in tables:
        for exp_id, key, value in conn.execute(SQL_EXPERIMENT_TAGS):
            if str(exp_id) in read.experiments:
                read.experiments[str(exp_id)].tags[str(key)] = "" if value is None else str(value)
    runs: dict[str, _Run] = {}
    for row in conn.execute(SQL_RUNS):
        run_id = str(row[0])
        runs[run_id] = _Run(
            id=run_id,
            experiment_id=str(row[1]),
            name=_text(row[2]),
            status=str(row[3]),
            start_ms=_int(row[4]),
            end_ms=_int(row[5]),
            deleted=row[6] == "deleted",
            artifact_uri=_text(row[7]),
            user=_text(row[8]),
            fields={
                k: str(v)
                for k, v in zip(("source_type", "source_name", "entry_point_name", "source_version"), row[9:])
                if v not in (None, "")
            },
        )
    for run_id, key, value in conn.execute(SQL_PARAMS):
        if run_id in runs:
            runs[run_id].params[str(key)] = str(value)
    for run_id, key, value in conn.execute(SQL_TAGS):
        if run_id in runs:
            runs[run_id].tags[str(key)] = "" if value is None else str(value)
    metric_columns = {c for (c,) in conn.execute(SQL_COLUMNS, ("metrics",))}
    sql = SQL_METRICS if "is_nan" in metric_columns else SQL_METRICS_NO_NAN
    bad: list[str] = []
    for run_id, key, step, timestamp, value, is_nan in conn.execute(sql):
        run = runs.get(run_id)
        if run is None:
            continue
        try:
            # MLflow stores NaN as 0 with is_nan set (and ±inf clamped to ±max float, as MLflow reads it back)
            entry = (int(step or 0), int(timestamp or 0), math.nan if is_nan else float(value))
        except (TypeError, ValueError, OverflowError):
            bad.append(f"{run_id} {key!r}")  # a tampered row (text in a number column): reported, not guessed
            continue
        run.metrics.setdefault(str(key), []).append(entry)
    if bad:
        read.unmapped.append(f"{len(bad)} metric rows whose step, time or value is not a number skipped: {_some(bad)}")
    for table, what in _OTHER_TABLES.items():
        if table in tables:
            (count,) = conn.execute(SQL_COUNT.format(table=table)).fetchone()
            if count:
                read.unmapped.append(
                    f"MLflow table {table}: {count} {what} not imported (recorder has no place for them)"
                )
    read.runs = list(runs.values())
    return read


# ---------------------------------------------------------------- the file store


def _is_file_store(folder: Path) -> bool:
    """Whether ``folder`` looks like an ``mlruns`` folder: an experiment folder ``<id>/meta.yaml``."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    return any(
        e.is_dir(follow_symlinks=False) and e.name != ".trash" and (Path(e.path) / "meta.yaml").is_file()
        for e in entries
    )


def _read_file_store(root: Path) -> _Read:
    """Read an ``mlruns/`` folder: experiments, their runs, params, metrics, tags; artifacts found later."""
    read = _Read(location=root, base=root.resolve().parent, experiments={}, runs=[])
    read.mapped.append("MLflow file store (mlruns/)")
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name == ".trash":
            count = sum(1 for _ in os.scandir(entry.path)) if entry.is_dir(follow_symlinks=False) else 0
            if count:
                read.unmapped.append(f"mlruns/.trash: {count} deleted experiments not imported")
            continue
        if entry.is_symlink():
            read.unmapped.append(f"mlruns/{entry.name}: a link, not followed")
            continue
        if not entry.is_dir():
            continue
        if entry.name == "models":  # the file store's model registry
            if any(os.scandir(entry.path)):
                read.unmapped.append("mlruns/models: MLflow registered models, not imported")
            continue
        meta = _yaml(Path(entry.path) / "meta.yaml", read)
        if meta is None:
            read.unmapped.append(f"mlruns/{entry.name}: no readable meta.yaml, not an experiment; skipped")
            continue
        exp_id = entry.name  # MLflow names the folder by the id; two meta.yaml claiming one id stay apart
        experiment = _Experiment(
            exp_id,
            str(meta.get("name", exp_id)),
            _text(meta.get("artifact_location")),
            deleted=meta.get("lifecycle_stage") == "deleted",
        )
        read.experiments[exp_id] = experiment
        exp_dir = Path(entry.path)
        experiment.tags = _key_files(exp_dir / "tags", read, f"experiment {experiment.name!r} tag")
        for sub in sorted(os.scandir(exp_dir), key=lambda e: e.name):
            if sub.name in ("tags", "meta.yaml"):
                continue
            if sub.is_symlink() or not sub.is_dir():
                read.unmapped.append(f"mlruns/{entry.name}/{sub.name}: not a run folder, skipped")
                continue
            run_meta = _yaml(Path(sub.path) / "meta.yaml", read)
            if run_meta is None or not (run_meta.get("run_id") or run_meta.get("run_uuid")):
                if any(os.scandir(sub.path)):
                    what = f"MLflow {sub.name}" if sub.name in ("models", "traces", "datasets") else "not a run"
                    read.unmapped.append(f"mlruns/{entry.name}/{sub.name}: {what}, not imported")
                continue
            read.runs.append(_file_run(Path(sub.path), run_meta, exp_id, read))
    read.runs.sort(key=lambda r: (r.start_ms if r.start_ms is not None else -1, r.id))
    return read


def _file_run(run_dir: Path, meta: dict[str, Any], exp_id: str, read: _Read) -> _Run:
    """One run folder of the file store."""
    status = meta.get("status")
    status_name = _STATUS_BY_NUMBER.get(status, str(status)) if isinstance(status, int) else str(status)
    source_type = meta.get("source_type")
    fields = {
        "source_type": _SOURCE_TYPE_BY_NUMBER.get(source_type, str(source_type))
        if isinstance(source_type, int)
        else str(source_type),
        "source_name": str(meta.get("source_name") or ""),
        "entry_point_name": str(meta.get("entry_point_name") or ""),
        "source_version": str(meta.get("source_version") or ""),
    }
    run = _Run(
        id=str(meta.get("run_id") or meta.get("run_uuid")),
        experiment_id=exp_id,  # the folder it lies in, whatever its meta.yaml claims
        name=_text(meta.get("run_name")),
        status=status_name,
        start_ms=_int(meta.get("start_time")),
        end_ms=_int(meta.get("end_time")),
        deleted=meta.get("lifecycle_stage") == "deleted",
        artifact_uri=_text(meta.get("artifact_uri")),
        user=_text(meta.get("user_id")),
        fields={k: v for k, v in fields.items() if v not in ("", "None")},
        own_artifacts=run_dir / "artifacts",
    )
    label = f"run {run.id}"
    run.params = _key_files(run_dir / "params", read, f"{label} param")
    run.tags = _key_files(run_dir / "tags", read, f"{label} tag")
    for key, text in _key_files(run_dir / "metrics", read, f"{label} metric").items():
        history = run.metrics.setdefault(key, [])
        for n, line in enumerate(text.splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            try:
                # "timestamp value [step [dataset name, digest]]", as MLflow's FileStore writes it
                if len(parts) not in (2, 3, 5):
                    raise ValueError(line)
                step = int(parts[2]) if len(parts) >= 3 else 0
                history.append((step, int(parts[0]), float(parts[1])))
            except ValueError:
                read.unmapped.append(
                    f"{label} metric {key!r} line {n}: {line[:80]!r} is not 'timestamp value step'; skipped"
                )
        if not history:
            del run.metrics[key]
    for folder in ("inputs", "outputs"):
        path = run_dir / folder
        if path.is_dir() and not path.is_symlink() and any(path.iterdir()):
            read.unmapped.append(f"{label}: MLflow {folder}/ (datasets, models) not imported")
    return run


def _key_files(folder: Path, read: _Read, what: str) -> dict[str, str]:
    """The files under ``folder`` (params/, metrics/, tags/) by key (their path; MLflow keys may hold ``/``)."""
    out: dict[str, str] = {}
    if not folder.is_dir() or folder.is_symlink():
        return out
    for dirpath, dirnames, filenames in os.walk(folder):
        for d in list(dirnames):
            if os.path.islink(os.path.join(dirpath, d)):
                dirnames.remove(d)
                read.unmapped.append(f"{what} folder {d!r}: a link, not followed")
        for name in sorted(filenames):
            path = Path(dirpath, name)
            key = path.relative_to(folder).as_posix()
            try:
                data = _regular_file(path)
            except _TooBig as e:
                read.unmapped.append(f"{what} {key!r}: {e}, not read")
                continue
            if data is None:
                read.unmapped.append(f"{what} {key!r}: not a regular file (a link, FIFO or device), not read")
                continue
            try:
                out[key] = data.decode("utf-8")
            except UnicodeDecodeError:
                read.unmapped.append(f"{what} {key!r}: not UTF-8 text, not read")
    return out


class _TooBig(Exception):
    """A file of the source over :data:`MAX_FILE_BYTES`; its message says how big."""


def _regular_file(path: Path) -> bytes | None:
    """The bytes of ``path`` if it is a regular file, never through a link, never blocking on a FIFO.

    :raises _TooBig: when it holds more than :data:`MAX_FILE_BYTES` (nothing is read).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        if info.st_size > MAX_FILE_BYTES:
            raise _TooBig(f"{info.st_size:,} bytes, over the {MAX_FILE_BYTES:,} read")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_FILE_BYTES + 1)  # the file may have grown since fstat
        if len(data) > MAX_FILE_BYTES:
            raise _TooBig(f"over the {MAX_FILE_BYTES:,} bytes read")
        return data
    finally:
        os.close(fd)


def _yaml(path: Path, read: _Read) -> dict[str, Any] | None:
    """A ``meta.yaml`` as a dict (``yaml.safe_load``: no object is built from the file), or None."""
    try:
        data = _regular_file(path)
    except _TooBig as e:
        read.unmapped.append(f"{path.parent.name}/meta.yaml: {e}; skipped")
        return None
    if data is None:
        return None
    try:
        import yaml  # type: ignore[import-untyped]  # no stubs installed (types-PyYAML is not a dependency)
    except ImportError:  # pragma: no cover - PyYAML is a dependency of the import extra
        from ..errors import ExtraNotInstalled

        raise ExtraNotInstalled(
            "reading an MLflow mlruns/ folder needs PyYAML: pip install 'recorder[import]' (or pyyaml)"
        ) from None
    try:
        meta = yaml.safe_load(data)
    except yaml.YAMLError as e:
        read.unmapped.append(f"{path.parent.name}/meta.yaml: not YAML ({str(e).splitlines()[0]}); skipped")
        return None
    return meta if isinstance(meta, dict) else None


# ---------------------------------------------------------------- mapping


def _study(read: _Read, experiment: str | None, roots: list[Path]) -> SourceStudy:
    """Map what a backend read to neutral records, saying what went where."""
    mapped, unmapped = read.mapped, read.unmapped
    experiments = read.experiments
    if experiment is not None:
        chosen = [e for e in experiments.values() if experiment in (e.name, e.id)]
        if not chosen:
            names = ", ".join(repr(e.name) for e in experiments.values()) or "none"
            raise ImportSourceError(
                f"{str(read.location)!r} has no MLflow experiment named {experiment!r} (it has {names}); "
                "give one of those names or ids"
            )
        keep = {e.id for e in chosen}
        others = [r for r in read.runs if r.experiment_id not in keep]
        if others:
            mapped.append(f"{len(others)} runs of other MLflow experiments left out (experiment={experiment!r})")
        runs = [r for r in read.runs if r.experiment_id in keep]
    else:
        runs = read.runs
    deleted = [r for r in runs if r.deleted or (experiments.get(r.experiment_id) or _NO_EXP).deleted]
    if deleted:
        unmapped.append(
            f"{len(deleted)} deleted MLflow runs (lifecycle_stage 'deleted') skipped: {_some([r.id for r in deleted])}"
        )
    runs = [r for r in runs if not (r.deleted or (experiments.get(r.experiment_id) or _NO_EXP).deleted)]
    used = [experiments[i] for i in dict.fromkeys(r.experiment_id for r in runs) if i in experiments]
    if experiment is not None:
        used = used or chosen[:1]
    if len(used) == 1:
        name = used[0].name
        mapped.append(f"MLflow experiment {name!r} (id {used[0].id}) -> experiment {name!r}")
    elif not used:
        name = read.location.stem if read.location.is_file() else read.location.name
        mapped.append(f"no MLflow runs to import (experiments: {len(experiments)})")
    else:
        name = read.location.stem if read.location.is_file() else read.location.name
        mapped.append(
            f"{len(used)} MLflow experiments ({', '.join(repr(e.name) for e in used)}) -> one session each "
            f"in experiment {name!r} (select one MLflow experiment to import it under its own name)"
        )
    usable = _experiment_name(name)
    if usable != name:
        mapped.append(f"MLflow experiment name {name!r} is not a recorder experiment name -> {usable!r}")
        name = usable
    config: dict[str, Any] = {}
    for e in used:
        for key, value in e.tags.items():
            config[key if len(used) == 1 else f"{e.name}:{key}"] = value
    if config:
        mapped.append(f"MLflow experiment tags ({len(config)}) -> the session's config")

    stats = _Stats()
    source_runs = [_source_run(r, read, roots, stats, experiments, len(used) > 1) for r in runs]
    if source_runs:
        mapped.extend(stats.lines())
    unmapped.extend(stats.unmapped_lines())
    return SourceStudy(
        tool="mlflow",
        location=read.location,
        experiment=name,
        runs=source_runs,
        config=config,
        mapped=mapped,
        unmapped=unmapped,
    )


_NO_EXP = _Experiment("", "", None)


def _some(items: list[str], shown: int = 5) -> str:
    """The first few items, comma-joined, with "…" when there are more."""
    return ", ".join(items[:shown]) + (f", … ({len(items) - shown} more)" if len(items) > shown else "")


@dataclass
class _Stats:
    """Counts behind the ``mapped`` lines (one line per kind of mapping, not per run)."""

    converted: dict[str, int] = field(default_factory=dict)
    series: int = 0
    history_steps: int = 0
    git: int = 0
    files: int = 0
    running: int = 0
    #: Runs whose artifact location is not here but found under the source's folder (a moved store).
    moved: int = 0
    #: Runs whose artifacts lie outside the allowed folders, or at a remote URI: "<run id> (<where>)".
    outside: list[str] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)
    tags: int = 0
    notes: int = 0
    unmapped: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = ["MLflow params (text) -> parameters"]
        if self.converted:
            kinds = ", ".join(f"{n} to {t}" for t, n in sorted(self.converted.items()))
            out.append(
                "MLflow params whose text is exactly a number or True/False -> parameters of that type "
                f"({kinds}); any other text stays a string"
            )
        out.append("MLflow metrics -> results (the latest value: highest step, then timestamp)")
        if self.series:
            out.append(
                f"MLflow metric histories ({self.series}, of more than one step) -> series (values in step "
                "order; the timestamps of steps are not kept)"
            )
        out.append("MLflow start_time, end_time, status -> run start, duration, status")
        if self.running:
            out.append(f"MLflow runs still RUNNING or SCHEDULED ({self.running}) -> interrupted, with a note")
        if self.git:
            out.append(f"MLflow tag {_GIT_COMMIT_TAG} -> the run's git commit ({self.git} runs)")
        if self.tags:
            out.append(f"MLflow tags without a value and short run names ({self.tags}) -> tags")
        if self.notes:
            out.append(f"other MLflow tags and run fields ({self.notes}) -> notes 'key=value'")
        if self.files:
            out.append(f"MLflow artifacts ({self.files} files) -> files of the runs")
        if self.moved:
            out.append(
                f"MLflow artifact locations of {self.moved} runs are not where the store was made: their "
                "mlruns/… folders under the source's folder were read instead (the store was moved)"
            )
        return out

    def unmapped_lines(self) -> list[str]:
        """One line per kind of artifact location not read (with a few of the runs), then per-file lines."""
        out = []
        if self.outside:
            out.append(
                f"artifacts of {len(self.outside)} runs lie outside the source's folder; not followed (pass "
                f"artifact_roots= to read_mlflow to allow a folder): {_some(self.outside)}"
            )
        if self.remote:
            out.append(f"artifacts of {len(self.remote)} runs are not local; not imported: {_some(self.remote)}")
        return out + self.unmapped


def _source_run(
    run: _Run, read: _Read, roots: list[Path], stats: _Stats, experiments: dict[str, _Experiment], several: bool
) -> SourceRun:
    """One MLflow run as a :class:`SourceRun`."""
    params: dict[str, Any] = {}
    for key, text in sorted(run.params.items()):
        value = _param_value(text)
        if type(value) is not str:
            t = type(value).__name__
            stats.converted[t] = stats.converted.get(t, 0) + 1
        params[key] = value
    results: dict[str, Any] = {}
    series: dict[str, list[float] | list[int]] = {}
    for key, history in sorted(run.metrics.items()):
        history.sort()
        results[key] = history[-1][2]
        if len({step for step, _, _ in history}) > 1:
            series[key] = [value for _, _, value in history]
            stats.series += 1
    mlflow_status = run.status.upper()
    status = _STATUS.get(mlflow_status, "interrupted")
    notes: list[str] = []
    tags: list[str] = []
    error = None
    if mlflow_status in ("RUNNING", "SCHEDULED") or mlflow_status not in _STATUS:
        notes.append(f"MLflow status {mlflow_status} when imported: the run never ended (or its process died)")
        stats.running += 1
    elif mlflow_status == "FAILED":
        error = "MLflow run ended with status FAILED (MLflow keeps no traceback)"
    start = run.start_ms / 1000 if run.start_ms is not None else None
    duration = (run.end_ms - run.start_ms) / 1000 if run.end_ms is not None and run.start_ms is not None else None
    if duration is not None and duration < 0:
        notes.append(f"MLflow end_time {run.end_ms} is before start_time {run.start_ms}")
        duration = None
    git_commit = None
    run_tags = dict(run.tags)
    commit = run_tags.pop(_GIT_COMMIT_TAG, None)
    if commit:
        git_commit = commit.strip()
        stats.git += 1
    run_name = run_tags.pop(_RUN_NAME_TAG, None) or run.name
    if run_name:
        notes.append(f"{_RUN_NAME_TAG}={run_name}")
        if _is_tag(run_name):
            tags.append(run_name)
    content = run_tags.pop(_NOTE_TAG, None)
    if content:
        notes.append(content)
    if several:
        exp = experiments.get(run.experiment_id)
        notes.append(f"mlflow.experiment={exp.name if exp else run.experiment_id}")
    if run.user and "mlflow.user" not in run_tags:
        run_tags["mlflow.user"] = run.user
    for key, value in run.fields.items():
        tag_key = f"mlflow.{_FIELD_TAG.get(key, key)}"
        if tag_key not in run_tags:
            run_tags[tag_key] = value
    for key, value in sorted(run_tags.items()):
        if value == "" and _is_tag(key):
            tags.append(key)
        else:
            notes.append(f"{key}={value}")
    stats.tags += len(tags)
    stats.notes += len(notes)
    files = _artifacts(run, read, roots, stats)
    stats.files += len(files)
    return SourceRun(
        source_id=run.id,
        params=params,
        results=results,
        series=series,
        files=files,
        status=status,
        start=start,
        duration=duration,
        git_commit=git_commit,
        error=error,
        tags=tags,
        notes=notes,
        # MLflow's experiment ids (0, 1, …) repeat across stores: the store's path tells them apart
        session_key=f"{read.where}#experiment={run.experiment_id}",
    )


#: Run fields (SQL columns, meta.yaml keys) → the ``mlflow.*`` tag name MLflow gives the same fact.
_FIELD_TAG = {"source_name": "source.name", "source_type": "source.type", "entry_point_name": "project.entryPoint"}


def _experiment_name(name: str) -> str:
    """``name`` if recorder takes it as an experiment name, else a form of it that it takes.

    MLflow names such as ``/Users/me/exp`` look like paths, which recorder refuses (experiment names
    end up in commands and file names): ``/`` and ``\\`` become ``-``, leading ``.``, ``_``, ``-``
    and spaces go, characters that are not visible text become ``-``.
    """
    try:
        return check_experiment(name)
    except NameRefused:
        pass
    cleaned = "".join("-" if c in "/\\:" or not_text(c) is not None else c for c in name)
    cleaned = cleaned.lstrip("._- ")
    if cleaned.lower().startswith("sqlite_"):
        cleaned = "mlflow-" + cleaned
    try:
        return check_experiment(cleaned)
    except NameRefused:
        return "mlflow"


def _is_tag(name: str) -> bool:
    try:
        check_tag(name)
    except NameRefused:
        return False
    return True


def _param_value(text: str) -> Any:
    """An MLflow param's text as int, float or bool when it is exactly how Python writes one, else the text.

    ``"3"`` → 3, ``"0.5"`` → 0.5, ``"1e-05"`` → 1e-05, ``"True"`` → True; ``"03"``, ``"1.50"``,
    ``"nan"``, ``"inf"`` and ``"None"`` stay text (converting them would change what was logged).
    """
    if text in ("True", "False"):
        return text == "True"
    try:
        number = int(text)
    except ValueError:
        pass
    else:
        return number if str(number) == text else text
    try:
        real = float(text)
    except ValueError:
        return text
    return real if math.isfinite(real) and repr(real) == text else text


def _artifacts(run: _Run, read: _Read, roots: list[Path], stats: _Stats) -> dict[str, Path]:
    """The run's artifact files by relative path, each a regular file inside the artifact folder."""
    folder = None
    own = run.own_artifacts
    if own is not None and _is_real_dir(own):
        folder = own.resolve()
    elif run.artifact_uri:
        folder = _artifact_folder(run, read, roots, stats)
    if folder is None:
        return {}
    files: dict[str, Path] = {}
    label = f"run {run.id} artifact"
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        for d in list(dirnames):
            if (here / d).is_symlink():
                dirnames.remove(d)  # never walk through a link: it may loop, or leave the folder
                rel = (here / d).relative_to(folder).as_posix()
                stats.unmapped.append(f"{label} {rel!r}: a link to a folder, not followed")
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(folder).as_posix()
            if not_text(rel) is not None:
                stats.unmapped.append(f"{label} {rel!a}: its name holds a control or invisible character; not read")
                continue
            try:
                mode = os.lstat(path).st_mode
                if stat.S_ISLNK(mode):
                    target = path.resolve()
                    if not target.is_relative_to(folder):
                        stats.unmapped.append(
                            f"{label} {rel!r}: a link leaving the artifact folder (to {str(target)!r}); refused"
                        )
                        continue
                    path, mode = target, os.stat(target).st_mode
            except OSError:
                stats.unmapped.append(f"{label} {rel!r}: a broken link or a file that went away; not read")
                continue
            if not stat.S_ISREG(mode):
                stats.unmapped.append(f"{label} {rel!r}: not a regular file (a FIFO, socket or device); not read")
                continue
            files[rel] = path
    return files


def _is_real_dir(path: Path) -> bool:
    """Whether ``path`` is a folder and not a link to one (one ``lstat``)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _artifact_folder(run: _Run, read: _Read, roots: list[Path], stats: _Stats) -> Path | None:
    """The local folder a run's ``artifact_uri`` names, if it lies inside an allowed root; else None (reported)."""
    uri = run.artifact_uri or ""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file") and parts.netloc in ("", "localhost"):
        path = Path(unquote(parts.path) if parts.scheme else uri)
    elif parts.scheme == "mlflow-artifacts":
        # a tracking server's proxied artifacts: under its --artifacts-destination, ./mlartifacts by default
        path = Path("mlartifacts", unquote(parts.path).lstrip("/"))
    else:
        stats.remote.append(f"{run.id} ({uri})")
        return None
    if not path.is_absolute():
        path = read.base / path
    # Most runs log no artifact and have no folder: one stat, before resolving anything.
    found = path.resolve() if os.path.isdir(path) else None
    if found is not None and any(found.is_relative_to(root) for root in roots):
        return found
    # A store copied from elsewhere keeps its old absolute paths: look for the same mlruns/… tail here.
    names = path.parts
    for marker in ("mlruns", "mlartifacts"):
        if marker in names:
            moved = read.base / Path(*names[names.index(marker) :])
            if os.path.isdir(moved):
                moved = moved.resolve()
                if any(moved.is_relative_to(root) for root in roots):
                    stats.moved += 1
                    return moved
    if found is not None:
        stats.outside.append(f"{run.id} ({str(found)!r})")
    return None


def _text(value: object) -> str | None:
    """A text field as read, or None when missing or empty."""
    return None if value is None or value == "" else str(value)


def _int(value: object) -> int | None:
    """An integer field (a time in ms) as read, or None when missing or not a whole number."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, (str, float)):
        try:
            return int(value)
        except (ValueError, OverflowError):
            return None
    return None
