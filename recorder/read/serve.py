"""``recorder serve``: Datasette over a store, read-only, with titles, facets and queries made from the store.

::

    recorder serve runs --port 8001     # http://127.0.0.1:8001/recorder/lorenz?b=9

:func:`metadata` describes the store to Datasette: a title and a
description for each of recorder's overview views and each experiment's
wide view, facets on the experiment's explored parameters (and its
runs' status), and canned queries: the failed runs with their errors, the
latest session of each experiment, the runs of each experiment's last
sweep, and the arrays of a run with their digests and files (the first
two queries link each run to it). :func:`serve` runs Datasette on it in
this process until SIGINT or SIGTERM.

Reading only, and seeing new runs as a sweep commits them: Datasette opens
a database it does not call immutable with ``?mode=ro`` (each query sees
the latest commit, the ``-wal`` included); here its connections are also
``query_only`` and carry :class:`~recorder.read.database.Database`'s
authorizer, and the database refuses the writing connection Datasette
would open for a plugin's write. Nothing from the store is marked as safe
HTML: Datasette's templates escape every title, description and cell.
The metadata is made once, when the server starts: an experiment or an
explored parameter that appears later has its view (Datasette reads the
schema again when it changes) but no facets or queries of its own until
the next start.

A page's SQL can build values as well as read them (``randomblob(1e9)``,
``printf('%.*c', 1e9, 'x')``), and Datasette holds a page's rows in memory:
so the store's connections cap any one string or blob at
:data:`VALUE_LIMIT` bytes (SQLite's ``SQLITE_LIMIT_LENGTH``), which together
with Datasette's row limit and time limit bounds what one request can take.
A stored value over the cap (a very long captured output) shows as an
error on that page; ``recorder show`` and ``db.sql`` read it whole. (Python
3.11 and later: 3.10's sqlite3 cannot set the limit.)
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import NoStoreError, RecorderError
from ..store import catalog
from ..store.folder import locate
from ..store.layout import DB_NAME
from ..store.quoting import quote_ident
from ..store.viewsql import RUN_ID, VIEWS, iso_time
from .database import Database, _ReadOnly

__all__ = ["DATABASE", "INSTALL", "metadata", "serve"]

#: The name Datasette gives the store's database (its file's stem): the first part of every URL.
DATABASE = Path(DB_NAME).stem
#: What to run when Datasette is not installed.
INSTALL = "pip install 'recorder[ui]'"
_PLUGIN = "recorder_serve_read_only"
#: The largest string or blob a page's query may make or read, in bytes.
VALUE_LIMIT = 16 * 1024 * 1024
#: Names listed in a description at most (the columns are all in the view, described one by one).
NAMES_SHOWN = 12

_EXPERIMENTS = "SELECT pk, name FROM experiments ORDER BY pk"
_SCHEMA_NAMES = "SELECT type, name FROM sqlite_schema"
_EXPLORED = "SELECT experiment, name, distinct_values, min, max FROM overview_explored_parameters"

# A link to a page of this server, from the Host header of the request that runs the canned query
# (a magic parameter of Datasette): Datasette makes a cell a link only when it is a whole http(s) URL.
_HERE = f"'http://' || :_header_host || '/{DATABASE}'"
# The last line of a traceback (the exception, as a rule): what follows its last newline, trailing ones cut.
_LAST_LINE = (
    "substr(rtrim(r.error, char(10, 13, 32)), "
    "length(rtrim(rtrim(r.error, char(10, 13, 32)), replace(rtrim(r.error, char(10, 13, 32)), char(10), ''))) + 1)"
)
# A link to the arrays of run r. FAILED_RUNS and LAST_SWEEP are templates: {arrays} is the arrays query's name.
_ARRAYS_OF = f"{_HERE} || '/{{arrays}}?run=' || {RUN_ID}"

FAILED_RUNS = f"""\
SELECT
    {RUN_ID} AS run_id,
    e.name AS experiment,
    {iso_time("r.time_start_ms")} AS time_start,
    p.params AS params,
    {_LAST_LINE} AS error,
    r.error AS traceback,
    {_ARRAYS_OF} AS arrays
FROM runs AS r
JOIN experiments AS e ON e.pk = r.experiment
JOIN psets AS p ON p.pk = r.pset
WHERE r.status = 'failed' AND r.deleted IS NULL
ORDER BY r.pk DESC"""

LATEST_SESSIONS = """\
SELECT
    e.name AS experiment,
    s.id AS session_id,
    s.status AS status,
    s.time_start AS time_start,
    s.time_end AS time_end,
    s.message AS message,
    (SELECT count(*) FROM runs AS r WHERE r.session = s.pk AND r.deleted IS NULL) AS runs,
    (SELECT count(*) FROM runs AS r WHERE r.session = s.pk AND r.status = 'failed' AND r.deleted IS NULL) AS failed,
    s.git_commit AS git_commit,
    s.git_branch AS git_branch,
    s.git_dirty AS git_dirty,
    s.host AS host,
    s.env_sha AS env_sha
FROM sessions AS s
JOIN experiments AS e ON e.pk = s.experiment
WHERE s.pk = (SELECT max(t.pk) FROM sessions AS t WHERE t.experiment = s.experiment)
ORDER BY e.pk"""

ARRAYS = f"""\
SELECT
    {RUN_ID} AS run_id,
    e.name AS experiment,
    x.name AS name,
    CASE x.kind WHEN 'object' THEN o.dtype END AS dtype,
    CASE x.kind WHEN 'object' THEN o.shape END AS shape,
    CASE x.kind WHEN 'object' THEN o.size ELSE length(x.value) END AS bytes,
    CASE x.kind WHEN 'object' THEN x.value END AS digest,
    CASE WHEN x.kind = 'npy' THEN 'inline (in the database)'
        WHEN x.value NOT GLOB '*[^0-9a-f]*' AND length(x.value) = 64
        THEN 'objects/' || substr(x.value, 1, 2) || '/' || substr(x.value, 3) || '.npy' END AS file,
    CASE WHEN x.kind = 'object' AND x.value NOT GLOB '*[^0-9a-f]*' AND length(x.value) = 64
        THEN {_HERE} || '/objects/' || x.value END AS object
FROM results AS x
JOIN runs AS r ON r.pk = x.run
JOIN experiments AS e ON e.pk = r.experiment
LEFT JOIN objects AS o ON x.kind = 'object' AND o.digest = x.value
WHERE x.kind IN ('object', 'npy') AND r.deleted IS NULL
  AND (:run = '' OR {RUN_ID} LIKE lower(trim(:run)) || '%' OR {RUN_ID} LIKE '%' || lower(trim(:run)))
ORDER BY r.pk DESC, x.name"""

# The runs of an experiment's last sweep: those of the session that recorded its latest run.
LAST_SWEEP = f"""\
SELECT {_HERE} || '/{{arrays}}?run=' || v.run_id AS arrays, v.*
FROM {{view}} AS v
WHERE v.run_id IN (
    SELECT {RUN_ID} FROM runs AS r
    WHERE r.session = (SELECT q.session FROM runs AS q WHERE q.experiment = {{pk}} ORDER BY q.pk DESC LIMIT 1)
)"""


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown + (f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "") if names else "none"


def metadata(db: Database) -> dict[str, Any]:
    """Return Datasette's metadata for a store: titles, descriptions, facets and canned queries.

    Every text made from the store (experiment and parameter names,
    values) is plain text, which Datasette escapes; nothing is HTML.
    """
    schema = db.rows(_SCHEMA_NAMES)[1]
    views = {name for kind, name in schema if kind == "view"}
    # A query of a name Datasette already gives a table or view would hide it: such a query takes another.
    taken = {name.lower() for _, name in schema}

    def free(name: str) -> str:
        while name.lower() in taken:
            name += "_"
        taken.add(name.lower())
        return name

    failed_runs, latest_sessions, arrays_query = free("failed_runs"), free("latest_sessions"), free("arrays")
    explored: dict[str, list[tuple[str, int, Any, Any]]] = {}
    for experiment, name, distinct, low, high in db.rows(_EXPLORED)[1]:
        explored.setdefault(experiment, []).append((name, distinct, low, high))
    tables: dict[str, Any] = {
        view.name: {"title": view.name.replace("_", " "), "description": " ".join(view.comment.split())}
        for view in VIEWS
    }
    queries: dict[str, Any] = {
        failed_runs: {
            "title": "Failed runs, with their errors",
            "description": "Every failed run, newest first: its experiment, start, parameters, the last line of "
            "its traceback (error) and the whole traceback; arrays links to the run's arrays.",
            "sql": FAILED_RUNS.format(arrays=arrays_query),
        },
        latest_sessions: {
            "title": "The latest session of each experiment",
            "description": "One row per experiment: its latest session, with its runs, failed runs, code and host.",
            "sql": LATEST_SESSIONS,
        },
        arrays_query: {
            "title": "Arrays of a run, with their digests",
            "description": "The array results of the runs whose id starts or ends with run (a short id, a prefix "
            "or the full id; empty: every run): dtype, shape, bytes, digest, the file in the store's objects/ "
            "folder, and a link to the object's row.",
            "sql": ARRAYS,
        },
    }
    experiments = db.rows(_EXPERIMENTS)[1]
    for pk, name in experiments:
        if name not in views:  # a table of the user's took the name: no view to describe
            continue
        fields = catalog.fields_of(db.conn, pk)
        params, results = catalog.columns(fields)
        arrays = list(dict.fromkeys(f.name for f in fields if f.role == "result" and f.kind in ("object", "npy")))
        varied = explored.get(name, [])
        columns = {
            "run_id": "The run's id (24 hex digits; its last 8 are its short id). "
            f"Its arrays: the query {arrays_query}.",
            "status": "done, failed, interrupted or running.",
            "time_start": "When the run started (UTC).",
            "duration_s": "How long it ran, in seconds.",
            "env_sha": "The code and environment it ran with (a hash).",
        }
        ranges = {p: (distinct, low, high) for p, distinct, low, high in varied}
        for param in params:
            if param in ranges:
                distinct, low, high = ranges[param]
                span = "" if low is None or high is None else f" from {low} to {high}"
                columns[param] = f"Parameter, explored: {distinct} values{span}."
            else:
                columns[param] = "Parameter (one value in every run)."
        for result in results:
            columns[result] = "Scalar result."
        tables[name] = {
            "title": f"Experiment {name}",
            "description": (
                f"One row per run of {name}: its id, status, start, duration and environment, its parameters "
                f"({_names(list(params))}) and its scalar results ({_names(list(results))}). "
                f"Explored parameters: {_names([p for p, *_ in varied])}. "
                + (
                    f"Array results ({_names(arrays)}) are not columns: the query {arrays_query} lists a run's arrays "
                    "with their digests and files. "
                    if arrays
                    else ""
                )
                + "Runs recorded while this page is open show when it is reloaded."
            ),
            "facets": ["status", *[p for p, *_ in varied if p in params]],
            "columns": columns,
        }
        queries[free(f"{name}_last_sweep")] = {
            "title": f"{name}: the last sweep",
            "description": f"The runs of {name} recorded by the session that recorded its latest run; "
            "arrays links to a run's arrays.",
            "sql": LAST_SWEEP.format(view=quote_ident(name), pk=int(pk), arrays=arrays_query),
        }
    description = (
        f"The recorder store {db.root}, read-only: {len(experiments)} experiment"
        f"{'' if len(experiments) == 1 else 's'}. Each experiment has a view of its name (one row per run, "
        "a column per parameter and scalar result); the overview views sum up the store; the queries show "
        "failed runs, the latest sessions, each experiment's last sweep and the arrays of a run."
    )
    return {
        "title": "recorder",
        "description": description,
        "databases": {
            DATABASE: {
                "title": f"recorder store {db.root}",
                "description": description,
                "tables": tables,
                "queries": queries,
            }
        },
    }


def _limit_values(conn: sqlite3.Connection) -> None:
    """Cap the strings and blobs a query of ``conn`` can make or read at :data:`VALUE_LIMIT` bytes."""
    limit = getattr(sqlite3, "SQLITE_LIMIT_LENGTH", 0)  # Python 3.11+; on 3.10 SQLite's own 10^9 stays
    setlimit = getattr(conn, "setlimit", None)
    if setlimit is not None:
        setlimit(limit, VALUE_LIMIT)


def serve(
    store: str | os.PathLike[str] | None,
    *,
    host: str = "127.0.0.1",
    port: int = 8001,
    open_browser: bool = False,
    announce: Callable[[Path, str], None] = lambda root, url: print(url),
) -> None:
    """Serve a store with Datasette, read-only, until SIGINT or SIGTERM (then return).

    The store is not recovered or upgraded first (nothing is written): what
    its database holds is shown, and new runs as they are committed.

    :param port: the port to listen on (0: a free one, named by ``announce``).
    :param announce: called once with the store's folder and the URL, when the server listens.
    :raises RecorderError: when Datasette is not installed, or the address cannot be listened on.
    :raises NoStoreError: when there is no store there.
    """
    try:
        import uvicorn
        from datasette import hookimpl
        from datasette.app import Datasette
        from datasette.plugins import pm
    except ImportError as e:
        raise RecorderError(f"recorder serve needs Datasette, which is not installed: {INSTALL}") from e
    root = locate(store, create=False)
    path = root / DB_NAME
    if not path.is_file():
        raise NoStoreError(f"no store at {root} (no {DB_NAME} there)")
    with Database(root) as db:  # checks that it is a store, of this schema, and reads it only
        described = metadata(db)

    class ReadOnly:
        """Datasette plugin: the store's connections only read, and call only the functions ``db.sql`` allows."""

        __name__ = _PLUGIN  # Datasette lists its plugins by name

        @hookimpl  # type: ignore[untyped-decorator]
        def prepare_connection(self, conn: sqlite3.Connection, database: str) -> None:
            if database == DATABASE:
                conn.execute("PRAGMA query_only = ON")
                conn.set_authorizer(_ReadOnly())
                _limit_values(conn)

    if pm.get_plugin(_PLUGIN) is None:
        pm.register(ReadOnly(), name=_PLUGIN)
    ds = Datasette([str(path)], metadata=described)
    database = ds.databases[DATABASE]
    reading = database.connect

    def connect(write: bool = False) -> sqlite3.Connection:
        if write:
            raise RecorderError(f"recorder serve only reads the store {root}: a write was refused")
        return reading(write=False)  # type: ignore[no-any-return]

    database.connect = connect
    try:
        listener = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as e:
        raise RecorderError(
            f"cannot listen on {host}:{port}: {e.strerror or e}; choose another --port (or --host)"
        ) from e
    config = uvicorn.Config(ds.app(), log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)

    def stop(signum: int, frame: object) -> None:
        server.should_exit = True

    # Ours before and after uvicorn's own (which it restores, then raises again once it has shut
    # down): a signal before it listens stops it too, and after it the command ends normally.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        shown = listener.getsockname()
        url = f"http://{f'[{shown[0]}]' if ':' in shown[0] else shown[0]}:{shown[1]}/"
        announce(root, url)
        if open_browser:
            import webbrowser

            webbrowser.open(url + DATABASE)
        with listener:
            server.run(sockets=[listener])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        database.close()
