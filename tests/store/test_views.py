"""The views of a store, checked against hand computations over small real stores.

Every view is read with plain ``sqlite3`` (as any SQLite client would), and
the wide view of an experiment also from a separate interpreter that never
imports recorder. Names that could break the SQL of a view (quotes,
semicolons, comment markers, dots, non-ASCII) must either round-trip or be
refused, and never touch the store.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import platform
import socket
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import git, run_python, scalar, undo_schema_5

import recorder as rec
from recorder.store.catalog import IN_SCALARS

RECORDER_TABLES = [
    "experiments",
    "texts",
    "sessions",
    "config",
    "psets",
    "comments",
    "runs",
    "results",
    "objects",
    "fields",
]
RECORDER_VIEWS = [
    "overview_runs",
    "overview_info",
    "overview_parameters",
    "overview_explored_parameters",
    "overview_config",
    "results_all",
    "overview_results",
    "overview_results_summary",
    "overview_sessions",
    "result_comments",
]
RUN_COLUMNS = [
    "run_id",
    "status",
    "time_start",
    "duration_s",
    "env_sha",
    "rerun_of",
    "tags",
    "exec_host",
    "exec_pid",
    "pset_seq",
]


# -- helpers ------------------------------------------------------------------------


def connect(store: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection to the store's database (no recorder involved)."""
    return sqlite3.connect(store / "recorder.sqlite")


def query(store: Path, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    conn = connect(store)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def view_columns(store: Path, view: str) -> list[str]:
    conn = connect(store)
    try:
        return [row[1] for row in conn.execute("SELECT * FROM pragma_table_info(?)", (view,))]
    finally:
        conn.close()


def iso_ms(ms: int) -> str:
    """Milliseconds since the epoch as the views show them: UTC ISO-8601 with milliseconds."""
    return datetime.fromtimestamp(ms // 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def store_is_intact(store: Path, runs: int) -> None:
    """The store still has every recorder table and view, ``runs`` runs, and passes integrity_check."""
    conn = connect(store)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_schema WHERE type IN ('table', 'view')")}
        assert set(RECORDER_TABLES) <= names
        assert set(RECORDER_VIEWS) <= names
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == runs
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


# -- a small store, built once for the overview views ---------------------------------

SMALL_CONFIG = {"dt": 0.1, "label": "x", "on": True, "sizes": [1, 2]}
RUN2_RESULTS = {
    "energy": float("nan"),
    "flag": True,
    "g": 2.0,
    "js": [1, 2],
    "big": np.arange(20_000.0),
    "f32": np.float32(1.5),
    "huge": 2**70,
    "s": "str",
}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Experiment "exp": two done runs, a failed one and an interrupted one; "empty": no runs.

    "other" has two sessions (of different config) so that sessions and env SHAs are counted.
    """
    store = tmp_path_factory.mktemp("small") / "store"
    info: dict[str, Any] = {"store": store, "runs": {}}
    with rec.Recorder("exp", store=store, git=False, config=SMALL_CONFIG, message="first") as r:
        with r.run(a=1, b=2.5, c="k") as run:
            run.log(energy=1.0, traj=np.arange(10.0), comment="text")
        info["runs"][1] = run
        with r.run(a=2, b=2.5, c="k") as run:
            run.log(**RUN2_RESULTS)
        info["runs"][2] = run
        with pytest.raises(ValueError), r.run(a=3, b=None, c="k") as run:
            raise ValueError("boom")
        info["runs"][3] = run
        with pytest.raises(KeyboardInterrupt), r.run(a=4, b=1.0, c="k") as run:
            raise KeyboardInterrupt
        info["runs"][4] = run
    info["exp"] = r
    with rec.Recorder("empty", store=store, git=False) as r:
        pass
    info["empty"] = r
    others = []
    for dt in (0.1, 0.2):
        with rec.Recorder("other", store=store, git=False, config={"dt": dt}) as r:
            with r.run(a=dt) as run:
                run.log(y=dt)
        others.append(r)
    info["other"] = others
    return info


def run_times(store: Path, experiment: str) -> list[tuple[int, int | None]]:
    return [
        tuple(row)
        for row in connect(store).execute(
            "SELECT time_start_ms, duration_us FROM runs WHERE experiment = "
            "(SELECT pk FROM experiments WHERE name = ?) ORDER BY pk",
            (experiment,),
        )
    ]


def test_overview_info_counts_runs_by_status(small: dict[str, Any]) -> None:
    store = small["store"]
    rows = {row["experiment"]: row for row in query(store, "SELECT * FROM overview_info")}
    assert sorted(rows) == ["empty", "exp", "other"]
    times = run_times(store, "exp")
    first = min(t for t, _ in times)
    last = max(t + (d or 0) // 1000 for t, d in times)
    assert rows["exp"] == {
        "experiment": "exp",
        "runs": 4,
        "done": 2,
        "failed": 1,
        "interrupted": 1,
        "running": 0,
        "first_start": iso_ms(first),
        "last_end": iso_ms(last),
        "sessions": 1,
        "env_shas": 1,
        "latest_env_sha": small["exp"].env_sha,
    }
    assert rows["empty"] == {
        "experiment": "empty",
        "runs": 0,
        "done": 0,
        "failed": 0,
        "interrupted": 0,
        "running": 0,
        "first_start": None,
        "last_end": None,
        "sessions": 1,
        "env_shas": 1,
        "latest_env_sha": small["empty"].env_sha,
    }
    other = rows["other"]
    assert (other["runs"], other["done"], other["sessions"]) == (2, 2, 2)
    # without git, each session has its own fallback env SHA; the latest is the second session's
    assert other["env_shas"] == len({r.env_sha for r in small["other"]}) == 2
    assert other["latest_env_sha"] == small["other"][1].env_sha


def test_overview_info_counts_a_run_in_flight(store: Path) -> None:
    # flush_interval=0 writes a 'running' row as the run starts
    with rec.Recorder("live", store=store, git=False, flush_interval=0) as r:
        with r.run(a=1) as run:
            (row,) = query(store, "SELECT runs, done, running FROM overview_info")
            assert row == {"runs": 1, "done": 0, "running": 1}
            assert query(store, "SELECT run_id, status FROM overview_runs") == [{"run_id": run.id, "status": "running"}]
    (row,) = query(store, "SELECT runs, done, running FROM overview_info")
    assert row == {"runs": 1, "done": 1, "running": 0}


def test_overview_runs_one_row_per_run(small: dict[str, Any]) -> None:
    store = small["store"]
    rows = query(store, "SELECT * FROM overview_runs WHERE experiment = 'exp'")
    raw = (
        connect(store)
        .execute("SELECT time_start_ms, duration_us FROM runs WHERE lower(hex(id)) = ?", (small["runs"][1].id,))
        .fetchone()
    )
    session = small["exp"]
    expected = []
    for i, (status, params) in enumerate(
        [
            ("done", '{"a":1,"b":2.5,"c":"k"}'),
            ("done", '{"a":2,"b":2.5,"c":"k"}'),
            ("failed", '{"a":3,"b":null,"c":"k"}'),
            ("interrupted", '{"a":4,"b":1.0,"c":"k"}'),
        ],
        start=1,
    ):
        run = small["runs"][i]
        expected.append(
            {
                "run_id": run.id,
                "experiment": "exp",
                "status": status,
                "session_id": session.id,
                "env_sha": session.env_sha,
                "pset_hash": run.pset_hash,
                "params": params,
                "seed": run.seed,
            }
        )
    by_id = {row["run_id"]: row for row in rows}
    assert [{k: by_id[e["run_id"]][k] for k in e} for e in expected] == expected
    assert len(rows) == 4
    first = by_id[small["runs"][1].id]
    assert first["time_start"] == iso_ms(raw[0])
    assert first["duration_s"] == raw[1] / 1e6 and first["duration_s"] >= 0
    # the pset hash is the first 20 hex digits of the SHA-256 of the canonical JSON
    assert first["pset_hash"] == hashlib.sha256(b'{"a":1,"b":2.5,"c":"k"}').hexdigest()[:20]


# -- overview_parameters ---------------------------------------------------------------

PARAM_PSETS = [
    {"i": 1, "f": 0.5, "s": "k", "n": None, "t": True, "m": 1},
    {"i": 2, "f": -1.5, "s": "k", "n": None, "t": False, "m": 2.5},
    {"i": 3, "f": 0.5, "s": "k", "n": None, "t": True, "m": "z"},
    {"i": 1, "f": 0.5, "s": "k", "n": None, "t": True, "m": 1},  # the first pset again
]
# name → (JSON types, distinct values, min, max, explored)
PARAM_CASES = {
    "i": ({"integer"}, 3, 1, 3, 1),
    "f": ({"real"}, 2, -1.5, 0.5, 1),
    "s": ({"text"}, 1, "k", "k", 0),
    "n": ({"null"}, 1, None, None, 0),  # null counts as one value
    "t": ({"true", "false"}, 2, 0, 1, 1),
    "m": ({"integer", "real", "text"}, 3, 1, "z", 1),  # SQL orders numbers before text
}


@pytest.fixture(scope="module")
def param_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("params") / "store"
    with rec.Recorder("p", store=store, git=False) as r:
        for pset in PARAM_PSETS:
            with r.run(pset):
                pass
    with rec.Recorder("q", store=store, git=False) as r:  # same names in another experiment: kept apart
        with r.run(i=100, f=100.0):
            pass
    return store


@pytest.mark.parametrize("name", list(PARAM_CASES))
def test_overview_parameters(param_store: Path, name: str) -> None:
    types, distinct, low, high, explored = PARAM_CASES[name]
    (row,) = query(param_store, "SELECT * FROM overview_parameters WHERE experiment = 'p' AND name = ?", (name,))
    assert set(row.pop("type").split(",")) == types
    assert row == {
        "experiment": "p",
        "name": name,
        "distinct_values": distinct,
        "min": low,
        "max": high,
        "explored": explored,
    }
    assert type(row["min"]) is type(low)


def test_overview_explored_parameters(param_store: Path) -> None:
    rows = query(param_store, "SELECT * FROM overview_explored_parameters WHERE experiment = 'p'")
    assert {row["name"] for row in rows} == {n for n, case in PARAM_CASES.items() if case[4]}
    assert all(set(row) == {"experiment", "name", "type", "distinct_values", "min", "max"} for row in rows)
    rows_q = query(
        param_store, "SELECT name, distinct_values, min, max FROM overview_parameters WHERE experiment = 'q'"
    )
    assert sorted(rows_q, key=lambda r: r["name"]) == [
        {"name": "f", "distinct_values": 1, "min": 100.0, "max": 100.0},
        {"name": "i", "distinct_values": 1, "min": 100, "max": 100},
    ]
    assert query(param_store, "SELECT * FROM overview_explored_parameters WHERE experiment = 'q'") == []


def test_overview_config(small: dict[str, Any]) -> None:
    store = small["store"]
    rows = query(store, "SELECT * FROM overview_config")
    exp_id = small["exp"].id
    expected = [
        ("exp", exp_id, "dt", None, 0.1),
        ("exp", exp_id, "label", None, "x"),
        ("exp", exp_id, "on", "bool", 1),
        ("exp", exp_id, "sizes", "json", "[1, 2]"),
        ("other", small["other"][0].id, "dt", None, 0.1),
        ("other", small["other"][1].id, "dt", None, 0.2),
    ]
    got = sorted((r["experiment"], r["session_id"], r["name"], r["kind"], r["value"]) for r in rows)
    assert got == sorted(expected)
    assert json.loads(next(r["value"] for r in rows if r["name"] == "sizes")) == SMALL_CONFIG["sizes"]


# -- overview_results and overview_results_summary -------------------------------------

BIG = np.arange(20_000, dtype=np.float32).reshape(100, 200)  # 80 000 bytes: in objects/
# name → (value, kind as overview_results shows it, summary)
KIND_CASES: dict[str, tuple[Any, str, Any]] = {
    "f": (2.5, "real", 2.5),
    "i": (7, "integer", 7),
    "neg_inf": (float("-inf"), "real", float("-inf")),
    "yes": (True, "bool", "true"),
    "no": (False, "bool", "false"),
    "nan": (float("nan"), "nan", "nan"),
    "none": (None, "null", None),
    "huge": (2**70, "int", str(2**70)),
    "f32": (np.float32(1.5), "np:<f4", 1.5),
    "f32_nan": (np.float32("nan"), "np:<f4", "nan"),
    "i16": (np.int16(-3), "np:<i2", -3),
    "text": ("hello", "text", "hello"),
    "long_text": ("x" * 100, "text", "x" * 57 + "..."),
    "js": ({"a": [1, 2]}, "json", '{"a": [1, 2]}'),
    "long_js": (list(range(40)), "json", json.dumps(list(range(40)))[:57] + "..."),
    "inline": (np.arange(10.0), "npy", f"array ({len(npy(np.arange(10.0)))} bytes, inline)"),
    "array": (BIG, "object", "array <f4 shape [100, 200]"),
    "blob": (b"abc", "bytes", "3 bytes"),
    "cplx": (np.complex128(1 + 2j), "npyscalar", "numpy scalar"),
}


@pytest.fixture(scope="module")
def kinds_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    store = tmp_path_factory.mktemp("kinds") / "store"
    with rec.Recorder("kinds", store=store, git=False) as r:
        with r.run(a=1) as first:
            first.log(**{name: case[0] for name, case in KIND_CASES.items()})
        with r.run(a=2) as second:
            # f and text again (other values, a comment on f), and a name first seen here
            second.log(f=float("nan"), text="again", late=5.0)
            second.log(i=8, comment="second")
    return {"store": store, "first": first.id, "second": second.id}


@pytest.mark.parametrize("name", list(KIND_CASES))
def test_overview_results_summarises_each_kind(kinds_store: dict[str, Any], name: str) -> None:
    _, kind, summary = KIND_CASES[name]
    rows = query(
        kinds_store["store"],
        "SELECT * FROM overview_results WHERE run_id = ? AND name = ?",
        (kinds_store["first"], name),
    )
    assert rows == [
        {
            "run_id": kinds_store["first"],
            "experiment": "kinds",
            "name": name,
            "kind": kind,
            "summary": summary,
            "comment": None,
        }
    ]


def test_overview_results_rows_of_the_second_run(kinds_store: dict[str, Any]) -> None:
    rows = query(
        kinds_store["store"],
        "SELECT name, kind, summary, comment FROM overview_results WHERE run_id = ?",
        (kinds_store["second"],),
    )
    assert sorted(rows, key=lambda r: r["name"]) == [
        {"name": "f", "kind": "nan", "summary": "nan", "comment": None},
        {"name": "i", "kind": "integer", "summary": 8, "comment": "second"},
        {"name": "late", "kind": "real", "summary": 5.0, "comment": None},
        {"name": "text", "kind": "text", "summary": "again", "comment": None},
    ]
    total = scalar(kinds_store["store"], "SELECT count(*) FROM overview_results")
    assert total == len(KIND_CASES) + 4


# name → (kind, value, dtype, shape, size) of the first run's row
SUMMARY_CASES: dict[str, tuple[Any, ...]] = {
    "f": (None, 2.5, None, None, None),
    "yes": ("bool", 1, None, None, None),
    "no": ("bool", 0, None, None, None),
    "nan": ("nan", None, None, None, None),
    "none": (None, None, None, None, None),
    "huge": ("int", str(2**70), None, None, None),
    "f32": ("np:<f4", 1.5, None, None, None),
    "text": (None, "hello", None, None, None),
    "js": ("json", '{"a": [1, 2]}', None, None, None),
    "inline": ("npy", npy(np.arange(10.0)), None, None, None),
    "array": ("object", hashlib.sha256(npy(BIG)).hexdigest(), "<f4", "[100, 200]", len(npy(BIG))),
    "blob": ("bytes", b"abc", None, None, None),
}


@pytest.mark.parametrize("name", list(SUMMARY_CASES))
def test_overview_results_summary_shows_the_first_run(kinds_store: dict[str, Any], name: str) -> None:
    kind, value, dtype, shape, size = SUMMARY_CASES[name]
    rows = query(kinds_store["store"], "SELECT * FROM overview_results_summary WHERE name = ?", (name,))
    assert rows == [
        {
            "experiment": "kinds",
            "name": name,
            "first_run_id": kinds_store["first"],
            "kind": kind,
            "value": value,
            "dtype": dtype,
            "shape": shape,
            "size": size,
            "comment": None,
        }
    ]


def test_overview_results_summary_one_row_per_name(kinds_store: dict[str, Any]) -> None:
    rows = query(kinds_store["store"], "SELECT name, first_run_id, value FROM overview_results_summary")
    names = [row["name"] for row in rows]
    assert sorted(names) == sorted([*KIND_CASES, "late"])  # f and text are logged twice, shown once
    by_name = {row["name"]: row for row in rows}
    assert by_name["late"] == {"name": "late", "first_run_id": kinds_store["second"], "value": 5.0}
    assert by_name["f"]["value"] == 2.5  # the first run's, not the NaN of the second


def test_overview_results_summary_keeps_the_comment(small: dict[str, Any]) -> None:
    rows = query(
        small["store"],
        "SELECT name, first_run_id, kind, value, comment FROM overview_results_summary "
        "WHERE experiment = 'exp' AND name IN ('energy', 'traj', 'flag')",
    )
    first, second = small["runs"][1].id, small["runs"][2].id
    assert sorted(rows, key=lambda r: r["name"]) == [
        {"name": "energy", "first_run_id": first, "kind": None, "value": 1.0, "comment": "text"},
        {"name": "flag", "first_run_id": second, "kind": "bool", "value": 1, "comment": None},
        {"name": "traj", "first_run_id": first, "kind": "npy", "value": npy(np.arange(10.0)), "comment": "text"},
    ]


# -- overview_sessions ---------------------------------------------------------------

SESSION_COLUMNS = [
    "session_id",
    "experiment",
    "status",
    "time_start",
    "time_end",
    "message",
    "env_sha",
    "git_mode",
    "git_commit",
    "git_branch",
    "git_dirty",
    "git_auto_committed",
    "git_snapshot_ref",
    "host",
    "user",
    "platform",
    "python",
    "recorder_version",
    "fingerprint",
]


def test_overview_sessions(store: Path, repo: Path) -> None:
    with rec.Recorder("s", store=store, git=False, message="no git") as plain:
        pass
    with rec.Recorder("s", store=store, git="record", repo=repo, message="with git") as recorded:
        pass
    with pytest.raises(RuntimeError):
        with rec.Recorder("s", store=store, git=False) as failing:
            raise RuntimeError("session fails")
    assert view_columns(store, "overview_sessions") == SESSION_COLUMNS
    rows = {row["session_id"]: row for row in query(store, "SELECT * FROM overview_sessions")}
    assert list(rows) == [plain.id, recorded.id, failing.id]
    python = f"{platform.python_implementation()} {platform.python_version()}"
    for session, status, message in [
        (plain, "done", "no git"),
        (recorded, "done", "with git"),
        (failing, "failed", None),
    ]:
        row = rows[session.id]
        assert (row["experiment"], row["status"], row["message"], row["env_sha"]) == (
            "s",
            status,
            message,
            session.env_sha,
        )
        assert (row["host"], row["python"], row["recorder_version"]) == (socket.gethostname(), python, rec.__version__)
        assert row["platform"] == platform.platform() and len(row["fingerprint"]) == 16
        assert row["time_start"] <= row["time_end"]
    head = git(repo, "rev-parse", "HEAD")
    git_row = rows[recorded.id]
    assert (git_row["git_mode"], git_row["git_commit"], git_row["git_branch"], git_row["git_dirty"]) == (
        "record",
        head,
        "main",
        0,
    )
    assert git_row["env_sha"] == head  # with git, the env SHA is the commit
    assert rows[plain.id]["git_commit"] is None and rows[plain.id]["git_branch"] is None


# -- result_comments -------------------------------------------------------------------


@pytest.mark.parametrize("purge", [True, False])
def test_result_comments_collapses_a_repeated_comment(store: Path, purge: bool) -> None:
    with rec.Recorder("c", store=store, git=False, purge_duplicate_comments=purge) as r:
        ids = []
        for i in range(1000):
            with r.run(i=i) as run:
                run.log(y=float(i), comment="the same comment")
                run.log(z=i, comment=f"comment {i % 2}")
            ids.append(run.id)
        with r.run(i=1000) as run:
            run.log(y=0.5)  # no comment: not in the view
    rows = query(store, "SELECT * FROM result_comments ORDER BY name, comment")
    assert rows == [
        {"experiment": "c", "name": "y", "comment": "the same comment", "first_run_id": ids[0], "runs": 1000},
        {"experiment": "c", "name": "z", "comment": "comment 0", "first_run_id": ids[0], "runs": 500},
        {"experiment": "c", "name": "z", "comment": "comment 1", "first_run_id": ids[1], "runs": 500},
    ]
    stored = scalar(store, "SELECT count(*) FROM comments")
    assert stored == (3 if purge else 2000)


# -- the wide view of an experiment ---------------------------------------------------

LORENZ = [(0.1, 8, 0.5), (0.1, 28, 1.5), (0.2, 8, 2.5), (0.2, 28, 0.25), (0.3, 8, 3.0)]

SQLITE_ONLY = r"""
import json, sqlite3, sys
conn = sqlite3.connect(sys.argv[1] if len(sys.argv) > 1 else {db!r})
rows = conn.execute('SELECT a, b, energy FROM "lorenz" WHERE b = 8 AND energy > 1 ORDER BY a').fetchall()
columns = [d[0] for d in conn.execute('SELECT * FROM "lorenz"').description]
print(json.dumps({{"rows": rows, "columns": columns, "recorder": any(m.startswith("recorder") for m in sys.modules)}}))
"""


def record_lorenz(store: Path) -> list[str]:
    ids = []
    with rec.Recorder("lorenz", store=store, git=False) as r:
        for a, b, energy in LORENZ:
            with r.run(a=a, b=b) as run:
                run.log(energy=energy, traj=np.full(5, a))
            ids.append(run.id)
    return ids


def test_wide_view_from_a_process_without_recorder(store: Path, tmp_path: Path) -> None:
    record_lorenz(store)
    done = run_python(SQLITE_ONLY.format(db=str(store / "recorder.sqlite")), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["recorder"] is False
    expected = sorted([a, b, e] for a, b, e in LORENZ if b == 8 and e > 1)
    assert out["rows"] == expected == [[0.2, 8, 2.5], [0.3, 8, 3.0]]
    assert out["columns"] == [*RUN_COLUMNS, "a", "b", "energy"]  # the array traj is not a column


def test_wide_view_columns_grow_with_a_new_result(store: Path, tmp_path: Path) -> None:
    ids = record_lorenz(store)
    assert view_columns(store, "lorenz") == [*RUN_COLUMNS, "a", "b", "energy"]
    with rec.Recorder("lorenz", store=store, git=False) as r:
        with r.run(a=0.5, b=8) as run:
            run.log(energy=4.0, power=7.5, label="new")
        with r.run(a=0.6, b=8, sigma=10.0) as run2:  # a new parameter too
            run2.log(energy=5.0)
    assert view_columns(store, "lorenz") == [*RUN_COLUMNS, "a", "b", "sigma", "energy", "power", "label"]
    rows = query(store, 'SELECT run_id, a, sigma, energy, power, label FROM "lorenz"')
    by_id = {row.pop("run_id"): row for row in rows}
    assert by_id[run.id] == {"a": 0.5, "sigma": None, "energy": 4.0, "power": 7.5, "label": "new"}
    assert by_id[run2.id] == {"a": 0.6, "sigma": 10.0, "energy": 5.0, "power": None, "label": None}
    assert by_id[ids[0]] == {"a": 0.1, "sigma": None, "energy": 0.5, "power": None, "label": None}
    # a process without recorder sees the new columns too
    done = run_python(SQLITE_ONLY.format(db=str(store / "recorder.sqlite")), cwd=tmp_path)
    assert json.loads(done.stdout)["columns"] == view_columns(store, "lorenz")
    with rec.open(store) as db:
        df = db.df("lorenz")
        assert list(df.columns[:6]) == ["a", "b", "sigma", "energy", "power", "label"]
        assert df.loc[df["_run_id"] == run.id, "power"].tolist() == [7.5]


def test_wide_view_shows_run_columns(small: dict[str, Any]) -> None:
    store = small["store"]
    rows = {row["run_id"]: row for row in query(store, 'SELECT * FROM "exp"')}
    runs = query(
        store, "SELECT run_id, status, time_start, duration_s, env_sha FROM overview_runs WHERE experiment = 'exp'"
    )
    assert len(rows) == 4
    for run in runs:
        assert {k: rows[run["run_id"]][k] for k in run} == run
    second = rows[small["runs"][2].id]
    # scalars as SQL values: NaN is NULL, True is 1, numpy float32 its value, big ints their text
    assert {k: second[k] for k in ["a", "b", "c", "energy", "flag", "g", "f32", "huge", "s"]} == {
        "a": 2,
        "b": 2.5,
        "c": "k",
        "energy": None,
        "flag": 1,
        "g": 2.0,
        "f32": 1.5,
        "huge": str(2**70),
        "s": "str",
    }
    assert set(second) == {*RUN_COLUMNS, "a", "b", "c", "energy", "flag", "g", "f32", "huge", "s"}
    assert rows[small["runs"][3].id]["b"] is None  # the parameter b=None


def test_views_of_an_experiment_with_no_runs(small: dict[str, Any]) -> None:
    store = small["store"]
    assert view_columns(store, "empty") == RUN_COLUMNS
    assert query(store, 'SELECT * FROM "empty"') == []
    for view in [
        "overview_runs",
        "overview_parameters",
        "overview_results",
        "overview_results_summary",
        "result_comments",
    ]:
        assert query(store, f"SELECT * FROM {view} WHERE experiment = 'empty'") == [], view
    (session,) = query(store, "SELECT session_id, status FROM overview_sessions WHERE experiment = 'empty'")
    assert session == {"session_id": small["empty"].id, "status": "done"}


# -- names that could break SQL --------------------------------------------------------

ROUND_TRIP = [
    'a"; DROP TABLE runs; --',
    "x'); DELETE FROM runs; --",
    'say "hi"',
    'q""',
    "it's",
    "two words",
    "dot.ted",
    "größe",
    "日本語",
    "$.x",
    "a[0]",
    "semi;colon",
    "/* c */",
    "-- x",
]
# JSON escapes these in the stored key (a JSON path must not be used to find it), and
# control characters cannot name a column: each must round-trip or be refused.
ESCAPED_IN_JSON = ["back\\slash", "tab\tx", "line\nx", "uni\u001ex", "del\x7fx"]
ROLES = ["experiment", "parameter", "result"]


def name_cases() -> list[Any]:
    return [
        pytest.param(role, name, id=f"{role}-{name!a}") for name in [*ROUND_TRIP, *ESCAPED_IN_JSON] for role in ROLES
    ]


def base_store(store: Path) -> None:
    with rec.Recorder("base", store=store, git=False) as r:
        r.sweep(lambda a: {"y": a * 2.0, "z": a}, rec.plist("a", [1.0, 2.0, 3.0]), progress=False)


def ident(name: str) -> str:
    """An SQL identifier, quoted the standard way (written here, not taken from recorder)."""
    return '"' + name.replace('"', '""') + '"'


def check_round_trip(store: Path, experiment: str, column: str, value: float) -> None:
    conn = connect(store)
    try:
        names = [d[0] for d in conn.execute(f"SELECT * FROM {ident(experiment)}").description]
        assert column in names
        assert conn.execute(f"SELECT {ident(column)} FROM {ident(experiment)}").fetchall() == [(value,)]
    finally:
        conn.close()
    with rec.open(store) as db:
        assert db.df(experiment)[column].tolist() == [value]
        assert len(db.df(experiment, where=f"{ident(column)} = {value}")) == 1


def record_named(store: Path, role: str, name: str) -> tuple[tuple[str, str, float] | None, int]:
    """Record one run with ``name`` as the experiment, a parameter or a result.

    Returns ``(experiment, column, value)`` to look for, or None when the name was
    refused; and how many runs the attempt added (a refused result leaves its run
    done without it, a refused experiment or parameter leaves no run).
    """
    experiment, params, results = "inj", {"a": 1.0, "b": 2}, {"y": 3.0, "z": 4.0}
    if role == "experiment":
        experiment = name
        column, value = "y", 3.0
    elif role == "parameter":
        params[name] = 1.5
        column, value = name, 1.5
    else:
        column, value = name, 2.5
    refused = False
    try:
        with rec.Recorder(experiment, store=store, git=False) as r:
            with r.run(params) as run:
                run.log(**results)
                if role == "result":
                    try:
                        run.log(**{name: value})
                    except rec.RecorderError:
                        refused = True
    except rec.RecorderError:
        return None, scalar(store, "SELECT count(*) FROM runs") - 3
    return (None if refused else (experiment, column, value)), 1


@pytest.mark.parametrize(("role", "name"), name_cases())
def test_names_that_look_like_sql_round_trip_or_are_refused(store: Path, role: str, name: str) -> None:
    base_store(store)
    before = query(store, 'SELECT * FROM "base"')
    recorded, added = record_named(store, role, name)
    if recorded is not None:
        check_round_trip(store, *recorded)
    else:  # refused: before anything was written, or only the name was left out of its run
        assert added == (1 if role == "result" else 0)
    store_is_intact(store, 3 + added)
    assert query(store, 'SELECT * FROM "base"') == before
    with rec.open(store) as db:
        assert db.df("base")["y"].tolist() == [2.0, 4.0, 6.0]
        if role == "experiment":
            assert db.experiments() == (["base", name] if recorded else ["base"])
        else:  # the session opened before the name was refused
            assert db.experiments() == ["base", "inj"]


def test_injection_through_every_role_at_once(store: Path) -> None:
    base_store(store)
    evil = ['a"; DROP TABLE runs; --', "x'); DELETE FROM runs; --", 'p"q', "o'k"]
    with rec.Recorder(evil[0], store=store, git=False) as r:
        with r.run({evil[1]: 1.0, evil[2]: "v'\"; DROP TABLE psets; --"}) as run:
            run.log(**{evil[3]: 2.0, "note": "'); DELETE FROM results; --"})
    store_is_intact(store, 4)
    (row,) = query(store, 'SELECT * FROM "a""; DROP TABLE runs; --"')
    assert {k: row[k] for k in [evil[1], evil[2], evil[3], "note"]} == {
        evil[1]: 1.0,
        evil[2]: "v'\"; DROP TABLE psets; --",
        evil[3]: 2.0,
        "note": "'); DELETE FROM results; --",
    }
    assert scalar(store, "SELECT count(*) FROM psets") == 4 and scalar(store, "SELECT count(*) FROM results") == 1


def test_a_nul_in_an_experiment_name_is_refused(store: Path) -> None:
    base_store(store)
    assert record_named(store, "experiment", "nul\x00x") == (None, 0)
    store_is_intact(store, 3)
    with rec.open(store) as db:
        assert db.experiments() == ["base"]


@pytest.mark.parametrize("role", ["parameter", "result"])
def test_a_nul_in_a_parameter_or_result_name_is_refused(store: Path, role: str) -> None:
    base_store(store)
    assert record_named(store, role, "nul\x00x") == (None, 1 if role == "result" else 0)
    store_is_intact(store, 3 + (role == "result"))
    with rec.open(store) as db:  # the store is still usable
        assert db.df("base")["y"].tolist() == [2.0, 4.0, 6.0]


# -- names a parameter and a result cannot share ----------------------------------------


def names_store(store: Path) -> None:
    with rec.Recorder("n", store=store, git=False) as r:
        with r.run(a=1, b=2) as run:
            run.log(y=1.0)
        with r.run(a=2, c=3) as run:
            run.log(y=2.0, w=0.5)


LOG_CONFLICTS = {
    "result named as this run's parameter": ({"a": 5}, {"a": 1.0}),
    "result named as this run's parameter, other case": ({"a": 5}, {"A": 1.0}),
    "result named as another run's parameter": ({"a": 5}, {"b": 1.0}),
    "result named as another run's parameter, other case": ({"a": 5}, {"C": 1.0}),
    "result named as a result in another case": ({"a": 5}, {"Y": 1.0}),
}
RUN_CONFLICTS = {
    "parameter named as a result": {"a": 5, "y": 1},
    "parameter named as a result, other case": {"a": 5, "W": 1},
    "parameter named as a parameter in another case": {"A": 5},
    "two parameters differing in case": {"a": 5, "B": 1, "b": 2},
}


@pytest.mark.parametrize("session", ["same", "later"])
@pytest.mark.parametrize("case", list(LOG_CONFLICTS))
def test_log_refuses_a_conflicting_result_name(store: Path, case: str, session: str) -> None:
    params, results = LOG_CONFLICTS[case]
    with rec.Recorder("n", store=store, git=False) as r:
        with r.run(a=1, b=2) as run:
            run.log(y=1.0)
        with r.run(a=2, c=3) as run:
            run.log(y=2.0, w=0.5)
        if session == "later":
            r.close()
            r = rec.Recorder("n", store=store, git=False).open()
        with r.run(params) as run:
            with pytest.raises(rec.NameRefused):
                run.log(**results)
            run.log(ok=1.0)  # the run goes on; the refused result is not recorded
        r.close()
    columns = view_columns(store, "n")
    assert len({c.lower() for c in columns}) == len(columns)
    assert columns == [*RUN_COLUMNS, "a", "b", "c", "y", "w", "ok"]
    with rec.open(store) as db:
        assert db.result(run.id, "ok") == 1.0
        with pytest.raises(rec.RecorderError, match="has no result"):
            db.result(run.id, next(iter(results)))


@pytest.mark.parametrize("session", ["same", "later"])
@pytest.mark.parametrize("case", list(RUN_CONFLICTS))
def test_run_refuses_a_conflicting_parameter_name(store: Path, case: str, session: str) -> None:
    names_store(store)
    with rec.Recorder("n", store=store, git=False) as r:
        if session == "same":
            with r.run(a=9, b=9) as run:
                run.log(y=9.0)
        with pytest.raises(rec.NameRefused), r.run(RUN_CONFLICTS[case]):
            pytest.fail("the run must not start")
    expected_runs = 3 if session == "same" else 2
    assert scalar(store, "SELECT count(*) FROM runs") == expected_runs
    assert view_columns(store, "n") == [*RUN_COLUMNS, "a", "b", "c", "y", "w"]


def test_sweep_records_a_run_with_a_conflicting_name_as_failed(store: Path) -> None:
    names_store(store)

    def model(a: int) -> dict:
        return {"b": 1.0} if a == 7 else {"y": float(a)}  # b is a parameter of the experiment

    with rec.Recorder("n", store=store, git=False) as r:
        df = r.sweep(model, rec.plist("a", [6, 7, 8]), progress=False)
    assert df["_status"].tolist() == ["done", "failed", "done"]
    rows = query(store, "SELECT status, error FROM runs WHERE session = (SELECT max(pk) FROM sessions) ORDER BY pk")
    assert [row["status"] for row in rows] == ["done", "failed", "done"]
    assert "NameRefused" in rows[1]["error"] or "already a param" in rows[1]["error"]
    assert view_columns(store, "n") == [*RUN_COLUMNS, "a", "b", "c", "y", "w"]
    assert query(store, 'SELECT a, y FROM "n" WHERE a >= 6 ORDER BY a') == [
        {"a": 6, "y": 6.0},
        {"a": 7, "y": None},
        {"a": 8, "y": 8.0},
    ]


# -- experiment names that clash with what the store holds ----------------------------------

CLASHES = [
    "runs",
    "RUNS",
    "Results",
    "fields",
    "overview_info",
    "OVERVIEW_INFO",
    "results_all",
    "fields_name",
    "EXP",
    "Exp",
    "my_table",
    "MY_VIEW",
]


@pytest.mark.parametrize("name", CLASHES)
def test_experiment_name_clashing_with_the_store_is_refused(store: Path, name: str) -> None:
    with rec.Recorder("exp", store=store, git=False) as r, r.run(a=1) as run:
        run.log(y=1.0)
    conn = connect(store)
    conn.execute("CREATE TABLE my_table (x)")
    conn.execute("CREATE VIEW my_view AS SELECT 1 AS one")
    conn.commit()
    conn.close()
    schema = query(store, "SELECT type, name, sql FROM sqlite_schema ORDER BY name")
    sessions = scalar(store, "SELECT count(*) FROM sessions")
    with pytest.raises(rec.NameRefused, match="taken"):
        with rec.Recorder(name, store=store, git=False) as r:
            pytest.fail("the session must not open")
    assert query(store, "SELECT type, name, sql FROM sqlite_schema ORDER BY name") == schema
    assert scalar(store, "SELECT count(*) FROM sessions") == sessions
    assert [row["name"] for row in query(store, "SELECT name FROM experiments")] == ["exp"]
    store_is_intact(store, 1)
    assert query(store, 'SELECT a, y FROM "exp"') == [{"a": 1, "y": 1.0}]


@pytest.mark.parametrize("name", ["sqlite_master", "sqlite_x", "_private", "", "   "])
def test_reserved_experiment_names_are_refused(store: Path, name: str) -> None:
    with pytest.raises(rec.NameRefused):
        rec.Recorder(name, store=store, git=False)
    assert not (store / "recorder.sqlite").exists()


def test_same_experiment_reopens_its_view(store: Path) -> None:
    for value in (1.0, 2.0):
        with rec.Recorder("exp", store=store, git=False) as r:
            with r.run(a=value) as run:
                run.log(y=value)
    assert query(store, 'SELECT a, y FROM "exp" ORDER BY a') == [{"a": 1.0, "y": 1.0}, {"a": 2.0, "y": 2.0}]
    assert not math.isnan(scalar(store, 'SELECT sum(y) FROM "exp"'))


# -- the wide view follows a result kept in a new place ------------------------------------

NEW_PLACE_CASES = {
    # name → (first run's results and comment, second run's, what the view shows for y)
    "nan, then a number": (({"y": float("nan")}, None), ({"y": 2.0}, None), [None, 2.0]),
    "commented, then plain": (({"y": 1.0}, "c"), ({"y": 2.0}, None), [1.0, 2.0]),
    "text, then a number": (({"y": "one"}, None), ({"y": 2.0}, None), ["one", 2.0]),
    "plain, then commented": (({"y": 1.0}, None), ({"y": 2.0}, "c"), [1.0, 2.0]),
    "plain, then text": (({"y": 1.0}, None), ({"y": "two"}, None), [1.0, "two"]),
    "plain, then float32": (({"y": 1.0}, None), ({"y": np.float32(2.5)}, None), [1.0, 2.5]),
}


@pytest.mark.parametrize("commits", ["one commit", "two commits", "two sessions"])
@pytest.mark.parametrize("case", list(NEW_PLACE_CASES))
def test_wide_view_follows_a_result_kept_in_a_new_place(store: Path, case: str, commits: str) -> None:
    (first, first_comment), (second, second_comment), expected = NEW_PLACE_CASES[case]
    with rec.Recorder("exp", store=store, git=False) as r:
        with r.run(a=1) as run:
            run.log(w=1.0, **first, comment=first_comment)
        if commits == "two commits":
            r.flush()
        elif commits == "two sessions":
            r.close()
            r = rec.Recorder("exp", store=store, git=False).open()
        with r.run(a=2) as run:
            run.log(w=2.0, **second, comment=second_comment)
        r.close()
    with rec.open(store) as db:
        df = db.df("exp")
    got = [None if isinstance(v, float) and math.isnan(v) else v for v in df["y"]]
    assert got == expected  # db.df reads both places
    assert [row["y"] for row in query(store, 'SELECT a, y FROM "exp" ORDER BY a')] == expected
    assert query(store, 'SELECT count(*) AS n FROM "exp" WHERE y IS NOT NULL') == [
        {"n": sum(v is not None for v in expected)}
    ]


# -- the wide view's columns have the affinity of their kind ------------------------------------
# Datasette's column filters (?b=9, ?energy__gt=3000.5) and facets bind the values as text; so do
# these tests, with a plain sqlite3 connection.


def typed_model(a: int, b: float, c: str, flag: bool, big: int) -> dict:
    return {
        "energy": b * 2,
        "k": a * 3,
        "huge_k": big,
        "label": f"run {a}",
        "yes": flag,
        "f32": np.float32(a) / 2,
        "i16": np.int16(a),
    }


TYPED_PSETS = [
    {"a": 9, "b": 3000.75, "c": "k", "flag": True, "big": 2**63 - 1},
    {"a": 10, "b": 0.1 + 0.2, "c": "9", "flag": False, "big": 2**53 + 1},
    {"a": -1, "b": float("inf"), "c": "x y", "flag": True, "big": -(2**63)},
]


@pytest.fixture(scope="module")
def typed_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("typed") / "store"
    with rec.Recorder("typed", store=store, git=False) as r:
        r.sweep(typed_model, TYPED_PSETS, progress=False)
        with r.run(a=11, b=float("-inf"), c="z", flag=False, big=0) as run:  # the general path
            run.log(energy=float("nan"), k=33, label="commented", comment="a comment")
            run.log(kept=1.5, comment="c")
    return store


TYPED_COLUMNS = {  # name → what typeof() gives for each of the four runs
    "a": ["integer"] * 4,
    "b": ["real"] * 4,
    "c": ["text"] * 4,
    "flag": ["integer"] * 4,
    "big": ["integer"] * 4,
    "energy": ["real", "real", "real", "null"],
    "k": ["integer"] * 4,
    "huge_k": ["integer"] * 3 + ["null"],
    "label": ["text"] * 4,
    "yes": ["integer"] * 3 + ["null"],
    "f32": ["real"] * 3 + ["null"],
    "i16": ["integer"] * 3 + ["null"],
    "kept": ["null"] * 3 + ["real"],
}


@pytest.mark.parametrize("name", list(TYPED_COLUMNS))
def test_wide_view_column_types_follow_their_kind(typed_store: Path, name: str) -> None:
    rows = query(typed_store, f'SELECT typeof("{name}") AS t FROM "typed" ORDER BY run_id')
    assert [row["t"] for row in rows] == TYPED_COLUMNS[name]


TEXT_FILTERS = [  # (SQL condition with one text parameter, the value bound, the values of a it selects)
    ("a = ?", "9", [9]),
    ("a > ?", "9", [10, 11]),
    ("b = ?", "3000.75", [9]),
    ("b > ?", "3000.5", [9, -1]),
    ("energy > ?", "3000.5", [9, -1]),
    ("energy = ?", "6001.5", [9]),
    ("k = ?", "30", [10]),
    ("big = ?", str(2**63 - 1), [9]),
    ("big = ?", str(2**53 + 1), [10]),
    ("huge_k = ?", str(2**53 + 1), [10]),
    ("flag = ?", "1", [9, -1]),
    ("yes = ?", "0", [10]),
    ("c = ?", "9", [10]),
    ("c = ?", "k", [9]),
    ("label = ?", "run 9", [9]),
    ("f32 = ?", "4.5", [9]),
    ("i16 = ?", "-1", [-1]),
    ("kept = ?", "1.5", [11]),
]


@pytest.mark.parametrize(("condition", "value", "selected"), TEXT_FILTERS)
def test_wide_view_matches_values_bound_as_text(
    typed_store: Path, condition: str, value: str, selected: list[int]
) -> None:
    rows = query(typed_store, f'SELECT a FROM "typed" WHERE {condition} ORDER BY a', (value,))
    assert [row["a"] for row in rows] == sorted(selected)


def test_typed_columns_keep_exact_values(typed_store: Path) -> None:
    rows = query(typed_store, 'SELECT a, b, c, flag, big, energy, k, huge_k, f32 FROM "typed" ORDER BY run_id')
    assert [row["b"] for row in rows] == [3000.75, 0.1 + 0.2, float("inf"), float("-inf")]
    assert [row["big"] for row in rows] == [2**63 - 1, 2**53 + 1, -(2**63), 0]
    assert [row["huge_k"] for row in rows] == [2**63 - 1, 2**53 + 1, -(2**63), None]
    assert [row["energy"] for row in rows] == [6001.5, (0.1 + 0.2) * 2, float("inf"), None]  # NaN is NULL
    assert [row["c"] for row in rows] == ["k", "9", "x y", "z"]
    assert [row["f32"] for row in rows] == [4.5, 5.0, -0.5, None]
    with rec.open(typed_store) as db:
        df = db.df("typed")
        assert db.df("typed", where="a = '9' OR c = '9'")["a"].tolist() == [9, 10]
    assert df["big"].tolist() == [2**63 - 1, 2**53 + 1, -(2**63), 0]
    assert np.isnan(df["energy"][3]) and df["b"][1] == 0.1 + 0.2


def test_typed_view_from_a_process_without_recorder(typed_store: Path, tmp_path: Path) -> None:
    code = (
        "import sqlite3, sys\n"
        f"conn = sqlite3.connect({str(typed_store / 'recorder.sqlite')!r})\n"
        "print(conn.execute('SELECT count(*) FROM typed WHERE a = ? AND energy > ?', ('9', '3000.5')).fetchone()[0])\n"
        "print('recorder' in sys.modules)\n"
    )
    result = run_python(code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "False"]


MIXED_CASES = {
    # name → (values of the runs, one per run, as parameters or results)
    "number, then text": [1, "two"],
    "text, then number": ["one", 2],
    "int, then float": [1, 2.5],  # numbers alike: still typed
}


def untyped(store: Path, name: str) -> bool:
    """Whether a column of the view "m" matches the text '1' where it holds the number 1."""
    return scalar(store, f'SELECT count(*) FROM "m" WHERE "{name}" = ?', ("1",)) == 0


@pytest.mark.parametrize("commits", ["one commit", "two commits", "two sessions"])
@pytest.mark.parametrize("case", list(MIXED_CASES))
def test_a_field_with_a_second_kind_becomes_untyped(store: Path, case: str, commits: str) -> None:
    values = MIXED_CASES[case]
    with rec.Recorder("m", store=store, git=False) as r:
        for i, value in enumerate(values):
            if i == 1:
                if commits == "two commits":
                    r.flush()
                elif commits == "two sessions":
                    r.close()
                    r = rec.Recorder("m", store=store, git=False).open()
                if commits != "one commit":  # the first kind only: typed
                    first = "text" if isinstance(values[0], str) else "integer"
                    assert query(store, 'SELECT typeof(p) AS p, typeof(y) AS y FROM "m"') == [{"p": first, "y": first}]
            with r.run(p=value, i=i) as run:
                run.log(y=value, z=float(i))
        r.close()
    rows = query(store, 'SELECT p, y, typeof(p) AS tp, typeof(y) AS ty FROM "m" ORDER BY i')
    kinds = ["text" if isinstance(v, str) else "integer" if isinstance(v, int) else "real" for v in values]
    assert [(row["p"], row["y"], row["tp"], row["ty"]) for row in rows] == [
        (v, v, k, k) for v, k in zip(values, kinds)
    ]  # each value as it is, whatever the other runs hold
    if case == "int, then float":
        assert not untyped(store, "p") and not untyped(store, "y")
        assert query(store, 'SELECT i FROM "m" WHERE p = ? AND y = ?', ("2.5", "2.5")) == [{"i": 1}]
    else:
        assert untyped(store, "p") and untyped(store, "y")
    assert query(store, 'SELECT i FROM "m" WHERE z = ?', ("1.0",)) == [{"i": 1}]  # z keeps its type


def test_kinds_of_a_migrated_store(store: Path) -> None:
    """A store of schema version 2 (no 'text' kinds in fields) gets them, and typed views, when opened."""
    with rec.Recorder("old", store=store, git=False) as r:
        for i, (s, m) in enumerate([("a", 1), ("b", "two"), ("c", 3)]):
            with r.run(s=s, m=m, n=i) as run:
                run.log(label=f"l{i}", mixed=m, y=float(i))
    conn = connect(store)
    # fields as version 2 wrote them: '' for every parameter and for plain values kept as rows
    conn.execute(
        "DELETE FROM fields WHERE kind = 'text' AND name IN "
        "(SELECT name FROM fields AS g WHERE g.kind = '' AND g.experiment = fields.experiment)"
    )
    conn.execute("UPDATE fields SET kind = '' WHERE kind = 'text'")
    conn.execute('DROP VIEW "old"')
    conn.execute('CREATE VIEW "old" AS SELECT 1 AS one')
    undo_schema_5(conn)
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    with rec.open(store) as db:
        assert db.df("old")["s"].tolist() == ["a", "b", "c"]
    assert scalar(store, "PRAGMA user_version") >= 3
    kinds = query(store, "SELECT role, name, kind FROM fields ORDER BY pk")
    assert {(k["role"], k["name"], k["kind"]) for k in kinds} == {
        ("param", "s", "text"),
        ("param", "m", ""),
        ("param", "m", "text"),
        ("param", "n", ""),
        ("result", "label", "text"),
        ("result", "mixed", "text"),
        ("result", "mixed", IN_SCALARS),
        ("result", "y", IN_SCALARS),
    }
    assert [k["name"] for k in kinds if k["role"] == "param"][:3] == ["s", "m", "n"]  # the order kept
    assert query(store, 'SELECT n FROM "old" WHERE n = ? AND s = ?', ("2", "c")) == [{"n": 2}]
    assert scalar(store, 'SELECT count(*) FROM "old" WHERE m = ?', ("1",)) == 0  # mixed: untyped


def echo(p: Any, i: int) -> dict:
    return {"y": p, "z": float(i)}


@pytest.mark.parametrize("values", [[1, 2, "x", 3], ["x", "y", 1], [1.5, 2, 3], ["x", "y"]])
def test_a_sweep_records_each_kind_of_a_parameter(store: Path, values: list[Any]) -> None:
    with rec.Recorder("m", store=store, git=False) as r:
        r.sweep(echo, [{"p": v, "i": i} for i, v in enumerate(values)], progress=False)
    kinds = {row["kind"] for row in query(store, "SELECT kind FROM fields WHERE role = 'param' AND name = 'p'")}
    assert kinds == {"text" if isinstance(v, str) else "" for v in values}
    rows = query(store, 'SELECT p, y, typeof(p) AS t FROM "m" ORDER BY i')
    assert [(row["p"], row["y"]) for row in rows] == [(v, v) for v in values]
    typed = all(isinstance(v, str) for v in values) or not any(isinstance(v, str) for v in values)
    numbers = [v for v in values if not isinstance(v, str)]
    if numbers:  # a number bound as text matches only in a typed column
        assert scalar(store, 'SELECT count(*) FROM "m" WHERE p = ?', (str(numbers[0]),)) == (1 if typed else 0)
    else:
        assert query(store, 'SELECT typeof(p) AS t FROM "m" WHERE p = ?', ("x",)) == [{"t": "text"}]


def test_str_parameters_found_whichever_change_between_runs(store: Path) -> None:
    psets = [
        {"a": "x", "b": 1, "c": "k"},
        {"a": "y", "b": 2, "c": "k"},
        {"a": "x", "b": "two", "c": "k"},
        {"a": 3, "b": 4, "c": "k"},
        {"a": "z", "b": 5, "c": "k"},
    ]
    with rec.Recorder("m", store=store, git=False) as r:
        r.sweep(lambda a, b, c: {"y": 1.0}, psets, progress=False)
    rows = query(store, "SELECT name, kind FROM fields WHERE role = 'param'")
    assert sorted((row["name"], row["kind"]) for row in rows) == [
        ("a", ""),
        ("a", "text"),
        ("b", ""),
        ("b", "text"),
        ("c", "text"),
    ]
    assert query(store, 'SELECT typeof(c) AS t, count(*) AS n FROM "m" WHERE c = ? GROUP BY 1', ("k",)) == [
        {"t": "text", "n": 5}
    ]


DATASETTE_FILTERS = {  # query string → the values of a of the rows it selects
    "a=9": [9],
    "a__gt=9": [10, 11],
    "b=3000.75": [9],
    "b__gt=3000.5": [-1, 9],
    "energy__gt=3000.5": [-1, 9],
    "k=30": [10],
    "c=9": [10],
    "label=run+9": [9],
}


def test_datasette_filters_and_facets_match(typed_store: Path) -> None:
    """Datasette itself: its column filters and facet links bind values as text."""
    import asyncio

    app = pytest.importorskip("datasette.app")
    datasette = app.Datasette([str(typed_store / "recorder.sqlite")])

    async def rows(query_string: str) -> list[int]:
        response = await datasette.client.get(f"/recorder/typed.json?{query_string}&_shape=objects")
        assert response.status_code == 200, response.text
        return sorted(row["a"] for row in response.json()["rows"])

    async def check() -> None:
        for query_string, selected in DATASETTE_FILTERS.items():
            assert await rows(query_string) == selected, query_string
        response = await datasette.client.get("/recorder/typed.json?_facet=a&_facet=c&_shape=objects")
        facets = response.json()["facet_results"]
        facets = facets.get("results", facets)  # Datasette 1.0 nests them
        for name in ("a", "c"):
            for facet in facets[name]["results"]:  # each facet link selects the runs it counts
                query_string = facet["toggle_url"].split("?", 1)[1]
                assert len(await rows(query_string)) == facet["count"] == 1, (name, facet)

    asyncio.run(check())
