"""The SQL of recorder's views: the column expressions they share, and ``schema/views.sql`` made from them.

A store has two kinds of view: the fixed ones (``overview_runs``,
``results_all``, …), which creating or migrating a store reads from
``schema/views.sql``, and the wide view of each experiment, which
:mod:`.catalog` builds from the experiment's names. Both show a run the
same way (its id as hex, its start as UTC ISO-8601, its duration in
seconds) and read a result kept in ``runs.scalars`` the same way, so each
of those expressions is written here once: :mod:`.catalog` composes the
wide views from them, and ``schema/views.sql`` is generated from
:data:`VIEWS` by :func:`views_sql`. A test checks that the file is what
this module produces and that no other module spells these expressions
out again. After a change here, regenerate the file with::

    python -c "from recorder.store.viewsql import views_sql; print(views_sql(), end='')" > schema/views.sql

Existing stores get a changed fixed view only when they are migrated
(a new schema version), and a changed wide view when the experiment's
names next change: a change of what a view shows needs a migration.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from .quoting import quote_literal

__all__ = [
    "IN_SCALARS",
    "LIVE",
    "RUN_COLUMNS",
    "RUN_TAGS",
    "RUN_ID",
    "RUN_JOINS",
    "SCALARS_KIND",
    "VIEWS",
    "View",
    "hex_text",
    "iso_time",
    "json_member",
    "json_value",
    "result_in_rows",
    "scalar_kind",
    "select_list",
    "typed",
    "views_sql",
]

#: The kind ``fields`` records for results kept in ``runs.scalars`` (see :mod:`recorder.store.rows`).
IN_SCALARS = "scalars"


def hex_text(column: str) -> str:
    """SQL for the bytes in ``column`` as lower-case hex digits: how run ids and pset hashes are shown."""
    return f"lower(hex({column}))"


def iso_time(ms: str) -> str:
    """SQL for ``ms``, milliseconds since the Unix epoch, as UTC ISO-8601 text (``2026-11-23T08:13:43.123Z``)."""
    return f"strftime('%Y-%m-%dT%H:%M:%fZ', {ms} / 1000.0, 'unixepoch')"


def json_member(column: str, key: str, what: str = "j.value") -> str:
    """SQL for ``what`` (an expression of ``json_each``'s columns, as ``j``) of member ``key`` (SQL) of ``column``."""
    return f"(SELECT {what} FROM json_each({column}) AS j WHERE j.key = {key})"


def json_value(column: str, name: str) -> str:
    """SQL for the value of key ``name`` of the JSON object in ``column`` (a parameter, a result in ``r.scalars``)."""
    if '"' in name or "\\" in name:  # a JSON path cannot quote it: look the key up instead
        return json_member(column, quote_literal(name))
    return f"json_extract({column}, {quote_literal('$.' + chr(34) + name + chr(34))})"


def scalar_kind(kind: str) -> str:
    """SQL that is true when ``kind``, a ``results.kind``, is a scalar's (:func:`recorder.codec.values.is_scalar_kind`)."""
    return f"({kind} IS NULL OR {kind} IN ('nan', 'bool', 'int') OR {kind} LIKE 'np:%')"


def result_in_rows(name: str) -> str:
    """SQL for run ``r``'s scalar result ``name`` where it is a row of ``results`` (NULL if it is not a scalar)."""
    return f"(SELECT x.value FROM results AS x WHERE x.run = r.pk AND x.name = {quote_literal(name)} AND {scalar_kind('x.kind')})"


def typed(sql: str, type_: str | None) -> str:
    """``sql`` cast to ``type_`` (NUMERIC or TEXT: see :func:`recorder.store.catalog.affinity`), or as it is."""
    return sql if type_ is None else f"CAST({sql} AS {type_})"


def select_list(items: Iterable[tuple[str, str]]) -> str:
    """``SELECT`` and the ``(sql, alias)`` items, one a line (the aliases already quoted where needed)."""
    return "SELECT\n    " + ",\n    ".join(f"{sql} AS {alias}" for sql, alias in items)


#: The kind of member ``j`` of ``runs.scalars`` as a row of ``results`` would have it:
#: ``'bool'`` for JSON true and false, NULL (a plain value) for numbers.
SCALARS_KIND = "CASE WHEN j.type IN ('true', 'false') THEN 'bool' END"
#: The condition on a run ``r`` that it is live (not deleted by ``recorder rm``): what every view shows.
LIVE = "r.deleted IS NULL"
#: A run's tags, sorted and comma-joined (NULL without one): tags are the key order of ``tags``.
RUN_TAGS = "(SELECT group_concat(t.tag, ',') FROM run_tags AS t WHERE t.run = r.pk)"
#: A run's id as users see it (24 hex digits).
RUN_ID = hex_text("r.id")
#: The run columns of every wide view (and of ``overview_runs``), with the SQL that computes them
#: from ``r`` (the run), ``s`` (its session) and ``p`` (its pset), joined by :data:`RUN_JOINS`.
RUN_COLUMNS = {
    "run_id": RUN_ID,
    "status": "r.status",
    "time_start": iso_time("r.time_start_ms"),
    "duration_s": "r.duration_us / 1e6",
    "env_sha": "s.env_sha",
    # The run this one repeats (recorder rerun), as hex like run_id; NULL for other runs (hex(NULL) is '').
    "rerun_of": f"nullif({hex_text('r.rerun_of')}, '')",
    "tags": RUN_TAGS,
    # Where the run ran: its host (its own when a worker on another machine ran it, else its
    # session's), the id of the process that ran it, and its pset's position in its sweep (NULL for
    # runs not in a sweep). NULL pid and position for runs recorded before schema 7.
    "exec_host": "coalesce(r.host, s.host)",
    "exec_pid": "r.pid",
    "pset_seq": "r.pset_seq",
}
#: What joins a run ``r`` to its session ``s`` and its pset ``p``.
RUN_JOINS = "JOIN sessions AS s ON s.pk = r.session\nJOIN psets AS p ON p.pk = r.pset"


class View(NamedTuple):
    """One of recorder's fixed views: its name, the comment above it in ``schema/views.sql``, its SELECT."""

    name: str
    comment: str
    select: str


def _run(column: str) -> tuple[str, str]:
    return RUN_COLUMNS[column], column


# The SELECT of each fixed view (upper-case constants, so that tests/store/test_schema.py compiles each one).
_OVERVIEW_RUNS_COLUMNS = [
    _run("run_id"),
    ("e.name", "experiment"),
    _run("status"),
    _run("time_start"),
    _run("duration_s"),
    ("s.id", "session_id"),
    _run("env_sha"),
    _run("rerun_of"),
    _run("tags"),
    _run("exec_host"),
    _run("exec_pid"),
    _run("pset_seq"),
    (hex_text("p.hash"), "pset_hash"),
    ("p.params", "params"),
    ("r.seed", "seed"),
]
_OVERVIEW_RUNS = f"""\
{select_list(_OVERVIEW_RUNS_COLUMNS)}
FROM runs AS r
JOIN experiments AS e ON e.pk = r.experiment
{RUN_JOINS}
WHERE {LIVE}"""

_OVERVIEW_INFO = f"""\
SELECT
    e.name AS experiment,
    ifnull(c.runs, 0) AS runs,
    ifnull(c.done, 0) AS done,
    ifnull(c.failed, 0) AS failed,
    ifnull(c.interrupted, 0) AS interrupted,
    ifnull(c.running, 0) AS running,
    {iso_time("c.first_start_ms")} AS first_start,
    {iso_time("c.last_end_ms")} AS last_end,
    (SELECT count(*) FROM sessions AS s WHERE s.experiment = e.pk) AS sessions,
    (SELECT count(DISTINCT s.env_sha) FROM sessions AS s WHERE s.experiment = e.pk) AS env_shas,
    (SELECT s.env_sha FROM sessions AS s WHERE s.experiment = e.pk ORDER BY s.pk DESC LIMIT 1) AS latest_env_sha
FROM experiments AS e
LEFT JOIN (
    SELECT
        experiment,
        count(*) AS runs,
        sum(status = 'done') AS done,
        sum(status = 'failed') AS failed,
        sum(status = 'interrupted') AS interrupted,
        sum(status = 'running') AS running,
        min(time_start_ms) AS first_start_ms,
        max(time_start_ms + ifnull(duration_us, 0) / 1000) AS last_end_ms
    FROM runs
    WHERE deleted IS NULL
    GROUP BY experiment
) AS c ON c.experiment = e.pk"""

_OVERVIEW_PARAMETERS = """\
SELECT
    e.name AS experiment,
    v.name AS name,
    v.types AS type,
    v.distinct_values AS distinct_values,
    v.min AS min,
    v.max AS max,
    v.distinct_values > 1 AS explored
FROM (
    SELECT
        u.experiment AS experiment,
        j.key AS name,
        group_concat(DISTINCT j.type) AS types,
        count(DISTINCT j.atom) + max(j.atom IS NULL) AS distinct_values,
        min(j.atom) AS min,
        max(j.atom) AS max
    FROM (SELECT DISTINCT experiment, pset FROM runs WHERE deleted IS NULL) AS u
    JOIN psets AS p ON p.pk = u.pset, json_each(p.params) AS j
    GROUP BY u.experiment, j.key
) AS v
JOIN experiments AS e ON e.pk = v.experiment"""

_OVERVIEW_EXPLORED_PARAMETERS = """\
SELECT experiment, name, type, distinct_values, min, max
FROM overview_parameters
WHERE explored"""

_OVERVIEW_CONFIG = """\
SELECT
    e.name AS experiment,
    s.id AS session_id,
    c.name AS name,
    c.kind AS kind,
    c.value AS value
FROM config AS c
JOIN sessions AS s ON s.pk = c.session
JOIN experiments AS e ON e.pk = s.experiment"""

_RESULTS_ALL = f"""\
SELECT x.run AS run, x.name AS name, x.kind AS kind, x.value AS value, x.comment AS comment
FROM results AS x
UNION ALL
SELECT
    r.pk AS run,
    j.key AS name,
    {SCALARS_KIND} AS kind,
    j.value AS value,
    NULL AS comment
FROM runs AS r, json_each(r.scalars) AS j
WHERE r.scalars IS NOT NULL"""

_OVERVIEW_RESULTS = f"""\
SELECT
    {RUN_ID} AS run_id,
    e.name AS experiment,
    x.name AS name,
    ifnull(x.kind, typeof(x.value)) AS kind,
    CASE
        WHEN x.kind IS NULL AND typeof(x.value) = 'text' AND length(x.value) > 60
            THEN substr(x.value, 1, 57) || '...'
        WHEN x.kind IS NULL THEN x.value
        WHEN x.kind = 'nan' THEN 'nan'
        WHEN x.kind = 'bool' THEN CASE x.value WHEN 0 THEN 'false' ELSE 'true' END
        WHEN x.kind = 'int' THEN x.value
        WHEN x.kind LIKE 'np:%' THEN ifnull(x.value, 'nan')
        WHEN x.kind = 'json' AND length(x.value) > 60 THEN substr(x.value, 1, 57) || '...'
        WHEN x.kind = 'json' THEN x.value
        WHEN x.kind = 'object' THEN 'array ' || ifnull(o.dtype || ' shape ' || o.shape, x.value)
        WHEN x.kind = 'npy' THEN 'array (' || length(x.value) || ' bytes, inline)'
        WHEN x.kind = 'npyscalar' THEN 'numpy scalar'
        WHEN x.kind = 'bytes' THEN length(x.value) || ' bytes'
        ELSE x.kind
    END AS summary,
    cm.text AS comment
FROM results_all AS x
JOIN runs AS r ON r.pk = x.run
JOIN experiments AS e ON e.pk = r.experiment
LEFT JOIN objects AS o ON x.kind = 'object' AND o.digest = x.value
LEFT JOIN comments AS cm ON cm.pk = x.comment
WHERE {LIVE}"""

_OVERVIEW_RESULTS_SUMMARY = f"""\
SELECT
    e.name AS experiment,
    f.name AS name,
    {RUN_ID} AS first_run_id,
    CASE WHEN f.kind = {quote_literal(IN_SCALARS)}
        THEN {json_member("r.scalars", "f.name", SCALARS_KIND)}
        ELSE x.kind END AS kind,
    CASE WHEN f.kind = {quote_literal(IN_SCALARS)}
        THEN {json_member("r.scalars", "f.name")}
        ELSE x.value END AS value,
    o.dtype AS dtype,
    o.shape AS shape,
    o.size AS size,
    cm.text AS comment
FROM fields AS f
JOIN experiments AS e ON e.pk = f.experiment
JOIN runs AS r ON r.pk = f.first_run
LEFT JOIN results AS x ON f.kind != {quote_literal(IN_SCALARS)} AND x.run = f.first_run AND x.name = f.name
LEFT JOIN objects AS o ON x.kind = 'object' AND o.digest = x.value
LEFT JOIN comments AS cm ON cm.pk = x.comment
WHERE f.role = 'result'
  AND f.pk = (
      SELECT min(g.pk) FROM fields AS g
      WHERE g.experiment = f.experiment AND g.role = 'result' AND g.name = f.name
  )"""

_OVERVIEW_SESSIONS = """\
SELECT
    s.id AS session_id,
    e.name AS experiment,
    s.status AS status,
    s.time_start AS time_start,
    s.time_end AS time_end,
    s.message AS message,
    s.env_sha AS env_sha,
    s.git_mode AS git_mode,
    s.git_commit AS git_commit,
    s.git_branch AS git_branch,
    s.git_dirty AS git_dirty,
    s.git_auto_committed AS git_auto_committed,
    s.git_snapshot_ref AS git_snapshot_ref,
    s.host AS host,
    s.user AS user,
    s.platform AS platform,
    s.python AS python,
    s.recorder_version AS recorder_version,
    s.fingerprint AS fingerprint
FROM sessions AS s
JOIN experiments AS e ON e.pk = s.experiment"""

_RESULT_COMMENTS = f"""\
SELECT
    e.name AS experiment,
    c.name AS name,
    c.comment AS comment,
    {RUN_ID} AS first_run_id,
    c.runs AS runs
FROM (
    SELECT
        r.experiment AS experiment,
        x.name AS name,
        cm.text AS comment,
        min(x.run) AS first_run,
        count(*) AS runs
    FROM results AS x
    JOIN comments AS cm ON cm.pk = x.comment
    JOIN runs AS r ON r.pk = x.run
    WHERE {LIVE}
    GROUP BY r.experiment, x.name, cm.text
) AS c
JOIN experiments AS e ON e.pk = c.experiment
JOIN runs AS r ON r.pk = c.first_run"""

#: recorder's fixed views, in the order they are created (a view may read those before it).
VIEWS = (
    View(
        "overview_runs",
        "One row per run: experiment, status, times, session, env SHA, pset, the run it reruns,\n"
        "and where it ran (host, process id, the pset's position in its sweep).",
        _OVERVIEW_RUNS,
    ),
    View(
        "overview_info",
        "One row per experiment: its runs by status, first start and last end, sessions and env SHAs.",
        _OVERVIEW_INFO,
    ),
    View(
        "overview_parameters",
        "One row per experiment and parameter name: the JSON types of its values,\n"
        "how many distinct values (null counts as one), the smallest and largest,\n"
        "and whether it was explored (has more than one value).",
        _OVERVIEW_PARAMETERS,
    ),
    View(
        "overview_explored_parameters",
        "The parameters that were explored: more than one value in the experiment.",
        _OVERVIEW_EXPLORED_PARAMETERS,
    ),
    View("overview_config", "Config values, one row per session and name.", _OVERVIEW_CONFIG),
    View(
        "results_all",
        "Every result of every run, wherever it is kept: a row of results, or one\n"
        "of the plain numbers (int, float, bool, None) a run keeps in runs.scalars. "
        "Columns as in results: run (key), name, kind, value, comment.",
        _RESULTS_ALL,
    ),
    View(
        "overview_results",
        "Every result, with a short summary of its value (arrays as dtype and shape).",
        _OVERVIEW_RESULTS,
    ),
    View(
        "overview_results_summary",
        "The first result of each name in each experiment, in full: what the name holds.",
        _OVERVIEW_RESULTS_SUMMARY,
    ),
    View(
        "overview_sessions",
        "One row per session: code state (git), host and environment.",
        _OVERVIEW_SESSIONS,
    ),
    View(
        "result_comments",
        "Each distinct comment on a result name of an experiment once (pypet's\n"
        "purge-duplicate-comments), with the first run that carried it and how\n"
        "many runs share it.",
        _RESULT_COMMENTS,
    ),
)

_VIEWS_SQL_HEADER = """\
-- Views of a recorder store. They hold no data and cost nothing at write
-- time; db.py (re)creates them whenever it creates or migrates a store.
-- Run ids and pset hashes are stored as bytes and shown as hex here; run
-- start times are stored as milliseconds and shown as UTC ISO-8601,
-- durations as microseconds and shown in seconds.
-- GENERATED from recorder/store/viewsql.py, whose column expressions the wide view of each
-- experiment shares; do not edit. After a change there (and a migration in schema/migrations/
-- for existing stores), regenerate it with
--   python -c "from recorder.store.viewsql import views_sql; print(views_sql(), end='')" > schema/views.sql
-- tests/store/test_viewsql.py checks that it is what viewsql.py produces.
"""


def views_sql() -> str:
    """Return the text of ``schema/views.sql``: a header, then each of :data:`VIEWS` with its comment."""
    parts = [_VIEWS_SQL_HEADER]
    for view in VIEWS:
        comment = "".join(f"-- {line}\n" for line in view.comment.splitlines())
        parts.append(f"\n{comment}CREATE VIEW {view.name} AS\n{view.select};\n")
    return "".join(parts)
