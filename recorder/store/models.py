"""The tables of a store, as SQLModel classes (definitions only, no behaviour).

Conventions: ``pk`` is the integer key that rows of this store refer to
(compact, fast joins); ``id`` is the globally unique, time-ordered id that
users see and that survives a merge of stores. Timestamps are UTC ISO-8601
text (``2026-11-23T08:13:43.123456Z``).

A store may hold 10^6 runs, so the per-run tables are compact: a run's id
is 12 bytes (``runs.id``, shown as 24 hex digits by the views and the
Python API), its start time an integer of microseconds since the Unix
epoch (``runs.time_start_ms``, shown as ISO-8601 by the views), its
duration integer microseconds (``runs.duration_us``, shown in seconds),
and a pset's hash 10 bytes (``psets.hash``, shown as 20 hex digits). Value cells (results and
config) are declared without a type so that SQLite keeps each value as it
is; :mod:`recorder.values` documents the ``kind`` column that goes with them.

These classes are the one source of every table's DDL. Importing this
module imports SQLModel (and SQLAlchemy and pydantic), which takes about
0.2 s: so the DDL is generated from them once, by :func:`tables_sql`, into
``schema/tables.sql``, which creating a store runs; a test checks that the
file is what the models produce, and that migrating a store of every older
schema gives the tables of a fresh one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.types import UserDefinedType
from sqlmodel import Field, SQLModel

__all__ = [
    "Experiment",
    "Session",
    "Text",
    "Config",
    "Pset",
    "Run",
    "Comment",
    "Result",
    "Object",
    "ExperimentField",
    "Function",
    "Tag",
    "Note",
    "CurationEvent",
    "TABLES",
    "create_statements",
    "tables_sql",
]


class _Untyped(UserDefinedType[Any]):
    """A column declared without a type: SQLite's "BLOB" (none) affinity, so values are kept as given."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return ""


def _value_column() -> Any:
    return Field(default=None, sa_column=Column("value", _Untyped(), nullable=True))


class Experiment(SQLModel, table=True):
    """A named study inside a store."""

    __tablename__ = "experiments"

    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True)
    name: str = Field(unique=True)
    time_created: str


class Text(SQLModel, table=True):
    """A text stored once by content: scripts, package lists, diffs, captured output."""

    __tablename__ = "texts"
    __table_args__ = {"sqlite_with_rowid": False}

    digest: str = Field(primary_key=True)
    text: str


class Session(SQLModel, table=True):
    """One entry into a Recorder: one code state and one environment record."""

    __tablename__ = "sessions"
    __table_args__ = (
        Index("sessions_experiment", "experiment"),
        # Every opening of a store looks for open sessions: only those are in it.
        Index("sessions_running", "pk", sqlite_where=text("status = 'running'")),
    )

    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True)
    experiment: int = Field(foreign_key="experiments.pk")
    status: str  # running, done, failed, interrupted
    time_start: str
    time_end: str | None = None
    message: str | None = None
    comment: str | None = None
    seed: int | None = None
    env_sha: str
    git_mode: str | None = None
    git_repo: str | None = None
    git_commit: str | None = None
    git_branch: str | None = None
    git_dirty: bool | None = None
    git_auto_committed: bool | None = None
    git_snapshot_ref: str | None = None
    git_diff: str | None = Field(default=None, foreign_key="texts.digest")
    untracked_modules: str | None = None  # JSON list of paths
    host: str
    user: str | None = None
    pid: int
    platform: str
    python: str
    recorder_version: str
    packages: str | None = Field(default=None, foreign_key="texts.digest")  # JSON {name: version}
    fingerprint: str
    argv: str  # JSON list
    cwd: str
    script_path: str | None = None
    script: str | None = Field(default=None, foreign_key="texts.digest")
    jax: str | None = None  # JSON, only when jax was imported


class Config(SQLModel, table=True):
    """A constant setting of a session (not explored)."""

    __tablename__ = "config"
    __table_args__ = {"sqlite_with_rowid": False}

    session: int = Field(foreign_key="sessions.pk", primary_key=True)
    name: str = Field(primary_key=True)
    kind: str | None = None
    value: Any = _value_column()


class Pset(SQLModel, table=True):
    """A parameter set: canonical JSON and its hash."""

    __tablename__ = "psets"

    pk: int | None = Field(default=None, primary_key=True)
    hash: bytes = Field(unique=True)  # first 10 bytes of the SHA-256 of params
    params: str  # canonical JSON


class Comment(SQLModel, table=True):
    """A comment text; stored once per distinct text unless duplicates are kept."""

    __tablename__ = "comments"
    __table_args__ = (Index("comments_text", "text"),)

    pk: int | None = Field(default=None, primary_key=True)
    text: str


class Run(SQLModel, table=True):
    """One call of the experiment on one pset."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("runs_pset", "pset"),
        # Tiny: only runs in flight are in it, and fast runs never are (see Recorder.run).
        Index("runs_running", "session", sqlite_where=text("status = 'running'")),
        # Short ids (the last digits of an id, see recorder.ids) are looked up by the last 4 bytes.
        Index("runs_tail", text("substr(id, 9, 4)")),
    )

    pk: int | None = Field(default=None, primary_key=True)
    id: bytes = Field(unique=True)  # 12 bytes: milliseconds since the epoch, then random
    experiment: int = Field(foreign_key="experiments.pk")
    session: int = Field(foreign_key="sessions.pk")
    pset: int = Field(foreign_key="psets.pk")
    status: str  # running, done, failed, interrupted
    time_start_ms: int  # milliseconds since the Unix epoch, UTC
    duration_us: int | None = None  # microseconds
    seed: int
    comment: int | None = Field(default=None, foreign_key="comments.pk")
    error: str | None = None  # traceback of a failed run
    output: str | None = Field(default=None, foreign_key="texts.digest")  # captured stdout/stderr
    # The plain numeric results (int, float, bool, None) logged without a comment, as one JSON
    # object with sorted keys; every other result is a row of ``results``. One text per run instead
    # of a row per result keeps 10^6 runs small and fast to read.
    scalars: str | None = None
    # The experiment function the run called (functions.pk), when a sweep or the decorator ran it. No
    # foreign key: a column added by ALTER TABLE would carry it as a column constraint, a fresh table as
    # a table constraint, and a migrated store must equal a fresh one.
    function: int | None = None
    rerun_of: bytes | None = None  # the 12-byte id of the run this one repeats (recorder rerun)
    # NULL while the run is live; once deleted (recorder rm), the curation event (curation.pk) that
    # deleted it. Every view and reader of runs for users shows only runs where it is NULL; recording
    # never writes it, so the INSERT of a run is unchanged. No foreign key, as for ``function``.
    deleted: int | None = None
    # Schema 7. Where a run ran: its host when it differs from its session's (a worker on another
    # machine; NULL: the session's host), the process id that ran it, and its pset's position in
    # the sweep (NULL for runs not in a sweep).
    host: str | None = None
    pid: int | None = None
    pset_seq: int | None = None
    # Schema 7. An imported run's origin, "<tool>:<the source's own run id>" (recorder import);
    # NULL for runs recorded by recorder.
    origin: str | None = None


class Tag(SQLModel, table=True):
    """A short name given to a run after the fact (``recorder tag``): one row per run and tag."""

    __tablename__ = "run_tags"
    __table_args__ = (Index("run_tags_tag", "tag"), {"sqlite_with_rowid": False})

    run: int = Field(primary_key=True, sa_column_args=[ForeignKey("runs.pk")])
    tag: str = Field(primary_key=True)


class Note(SQLModel, table=True):
    """A note on a run (``recorder note``); never edited: a later note of a run supersedes for display."""

    __tablename__ = "run_notes"
    __table_args__ = (Index("run_notes_run", "run"),)

    pk: int | None = Field(default=None, primary_key=True)
    run: int = Field(foreign_key="runs.pk")
    text: str
    time: str
    user: str | None = None
    host: str


class CurationEvent(SQLModel, table=True):
    """One curation (tag, untag, note, rm, restore, purge): who, when, where, what; append-only."""

    __tablename__ = "curation_events"

    pk: int | None = Field(default=None, primary_key=True)
    time: str
    user: str | None = None
    host: str
    action: str  # tag, untag, note, rm, restore, purge
    detail: str  # JSON: the runs (ids), tags, text, counts


class Function(SQLModel, table=True):
    """An experiment function, as a rerun finds it again: import ``module`` and take ``qualname``, or
    load the main script ``path`` (``how`` is ``import`` or ``script``)."""

    __tablename__ = "functions"
    __table_args__ = (UniqueConstraint("module", "qualname", "path", "how"),)

    pk: int | None = Field(default=None, primary_key=True)
    module: str
    qualname: str
    path: str | None = None  # relative to the repository root; absolute without git; None in a notebook
    how: str


class Result(SQLModel, table=True):
    """A named value a run produced."""

    __tablename__ = "results"
    __table_args__ = {"sqlite_with_rowid": False}

    run: int = Field(primary_key=True, sa_column_args=[ForeignKey("runs.pk")])
    name: str = Field(primary_key=True)
    kind: str | None = None
    value: Any = _value_column()
    comment: int | None = Field(default=None, foreign_key="comments.pk")


class Object(SQLModel, table=True):
    """An array in the object store, named by the SHA-256 of its ``.npy`` bytes."""

    __tablename__ = "objects"
    __table_args__ = {"sqlite_with_rowid": False}

    digest: str = Field(primary_key=True)
    size: int
    dtype: str
    shape: str  # JSON list
    time_created: str


class ExperimentField(SQLModel, table=True):
    """A parameter or result name of an experiment, with a kind its values had: the wide view's columns.

    One row per (experiment, role, name, kind); ``pk`` orders names by their
    first appearance, ``first_run`` is the first run that had the name.
    """

    __tablename__ = "fields"
    __table_args__ = (Index("fields_name", "experiment", "role", "name", "kind", unique=True),)

    pk: int | None = Field(default=None, primary_key=True)
    experiment: int = Field(foreign_key="experiments.pk")
    role: str  # "param" or "result"
    name: str
    kind: str  # the result's kind; "" for other plain values, "text" for str ones (parameters: "" or "text")
    first_run: int | None = Field(default=None, foreign_key="runs.pk")


#: The tables of a store, in the order they are created (a table after those its foreign keys name).
TABLES = (
    Experiment,
    Text,
    Session,
    Config,
    Pset,
    Comment,
    Run,
    Result,
    Object,
    ExperimentField,
    Function,
    Tag,
    Note,
    CurationEvent,
)

_TABLES_SQL_HEADER = """\
-- The tables and indexes of a store of the current schema: what creating a store runs.
-- GENERATED from recorder/store/models.py, the one source of the tables; do not edit. After a change
-- to the models (and a migration in schema/migrations/ for existing stores), regenerate it with
--   python -c "from recorder.store.models import tables_sql; print(tables_sql(), end='')" > schema/tables.sql
-- tests/store/test_schema.py checks that it is what the models produce.

"""


def create_statements() -> list[str]:
    """Return the ``CREATE TABLE`` and ``CREATE INDEX`` statements of the tables, as SQLAlchemy writes them for SQLite."""
    from sqlalchemy.dialects import sqlite as sqlite_dialect
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialect = sqlite_dialect.dialect()
    ours = {model.__tablename__ for model in TABLES}
    # SQLModel.metadata is shared with any table a user defines: take only ours, in dependency order.
    tables = [table for table in SQLModel.metadata.sorted_tables if table.name in ours]
    statements = []
    for table in tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            statements.append(str(CreateIndex(index).compile(dialect=dialect)).strip())
    return statements


def tables_sql() -> str:
    """Return the text of ``schema/tables.sql``: a header, then :func:`create_statements`, each ended by ``;``."""
    return _TABLES_SQL_HEADER + "".join(f"{statement};\n\n" for statement in create_statements())
