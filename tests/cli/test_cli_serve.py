"""`recorder serve`: Datasette over a store, as the real console script on a real port, read with urllib."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import recorder as rec
from recorder.cli.commands import main

pytest.importorskip("datasette")

ROOT = Path(__file__).resolve().parents[2]
#: How long the server may take to answer its first request (a busy machine imports Datasette slowly).
START_TIMEOUT_S = 90
#: How long it may take to stop after a signal.
STOP_TIMEOUT_S = 15


def console_script() -> str:
    here = os.path.dirname(sys.executable)
    exe = shutil.which("recorder", path=here + os.pathsep + os.environ.get("PATH", ""))
    if exe is None:
        pytest.skip("no installed `recorder` executable")
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def model(a: int, b: int) -> dict[str, Any]:
    if a == 3 and b == 9:
        raise ValueError("diverged at b = 9")
    return {"energy": a * 1000.5 + b, "traj": np.arange(10.0) * a}


def record_sweep(store: Path) -> None:
    """lorenz: a in 1..3, b in 8..10 (a=3, b=9 fails), arrays as object files; then a second, smaller sweep."""
    with rec.Recorder("lorenz", store=store, git=False, inline_limit=0) as r:
        r.sweep(model, rec.grid(a=[1, 2, 3], b=[8, 9, 10]), progress=False)
    with rec.Recorder("lorenz", store=store, git=False, inline_limit=0) as r:
        r.sweep(model, rec.grid(a=[4], b=[8, 9]), progress=False)
    with rec.Recorder("other", store=store, git=False) as r, r.run(x="p") as run:
        run.log(y=1.5)


def dump(store: Path) -> str:
    """Every row and the schema of the store, read through a read-only connection."""
    conn = sqlite3.connect(f"file:{store / 'recorder.sqlite'}?mode=ro", uri=True)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def sql(store: Path, query: str) -> list[tuple[Any, ...]]:
    with rec.open(store) as db:
        return db.rows(query)[1]


class Server:
    """A running `recorder serve` process and its base URL."""

    def __init__(self, process: subprocess.Popen[str], port: int, host: str = "127.0.0.1") -> None:
        self.process = process
        self.url = f"http://{host}:{port}"

    def get(self, path: str) -> Any:
        """GET a JSON page of the store's database (``path`` after ``/recorder``)."""
        with urllib.request.urlopen(f"{self.url}/recorder{path}", timeout=30) as response:
            return json.loads(response.read())

    def text(self, path: str) -> str:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as response:
            return str(response.read().decode("utf-8"))

    def rows(self, path: str) -> list[dict[str, Any]]:
        sep = "&" if "?" in path else "?"
        page = self.get(f"{path}{sep}_shape=objects&_size=max")
        return list(page["rows"])

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        self.process.send_signal(sig)
        out, err = self.process.communicate(timeout=STOP_TIMEOUT_S)
        return self.process.returncode, out, err


@contextlib.contextmanager
def serving(store: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Start `recorder serve STORE --port P` and wait (bounded) until it answers; stop it afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [console_script(), "serve", str(store), "--port", str(port), *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = Server(process, port)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                out, err = process.communicate()
                raise AssertionError(f"recorder serve exited with {process.returncode}: {out} {err}")
            try:
                server.get(".json")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("serve") / "store"
    with pytest.warns(rec.RecorderWarning):  # the failed run
        record_sweep(store)
    return store


@pytest.fixture(scope="module")
def server(swept: Path) -> Iterator[Server]:
    with serving(swept) as running:
        yield running


def ids(rows: list[dict[str, Any]]) -> set[str]:
    return {row["run_id"] for row in rows}


# -- the bar: filters, facets, queries ---------------------------------------------------------------


def test_filter_returns_exactly_the_runs_where_b_is_9(server: Server, swept: Path) -> None:
    rows = server.rows("/lorenz.json?b=9")
    expected = {run_id for (run_id,) in sql(swept, "SELECT run_id FROM lorenz WHERE b = 9")}
    assert len(expected) == 4  # a = 1, 2, 3 (failed) and 4
    assert ids(rows) == expected
    assert {row["b"] for row in rows} == {9}


def test_greater_than_filter_on_a_result(server: Server, swept: Path) -> None:
    rows = server.rows("/lorenz.json?energy__gt=3000.5")
    expected = {run_id for (run_id,) in sql(swept, "SELECT run_id FROM lorenz WHERE energy > 3000.5")}
    assert ids(rows) == expected
    assert sorted(row["energy"] for row in rows) == [3009.5, 3011.5, 4010.0, 4011.0]


def test_facets_on_the_explored_parameters_count_the_runs(server: Server, swept: Path) -> None:
    page = server.get("/lorenz.json?_shape=objects")  # the facets come from the metadata
    facets = page["facet_results"]
    facets = facets.get("results", facets)  # Datasette 1.0 nests them
    assert set(facets) == {"status", "a", "b"}
    everything = sql(swept, "SELECT a, b, status FROM lorenz")
    for index, name in enumerate(("a", "b", "status")):
        counted = {facet["value"]: facet["count"] for facet in facets[name]["results"]}
        assert counted == Counter(row[index] for row in everything), name
    for facet in facets["b"]["results"]:  # each facet's link selects the runs it counts
        query = facet["toggle_url"].split("?", 1)[1]
        assert len(server.rows(f"/lorenz.json?{query}")) == facet["count"]


def test_metadata_describes_the_views_and_facets_the_explored_parameters(server: Server) -> None:
    with urllib.request.urlopen(f"{server.url}/-/metadata.json", timeout=30) as response:
        metadata = json.loads(response.read())
    tables = metadata["databases"]["recorder"]["tables"]
    assert tables["lorenz"]["title"] == "Experiment lorenz"
    assert tables["lorenz"]["facets"] == ["status", "a", "b"]
    assert "traj" in tables["lorenz"]["description"] and "energy" in tables["lorenz"]["description"]
    assert tables["other"]["facets"] == ["status"]  # one run: nothing explored
    for view in ("overview_runs", "overview_info", "overview_parameters", "overview_sessions"):
        assert tables[view]["description"], view
    page = server.text("/recorder/lorenz")
    assert "Experiment lorenz" in page and "Explored parameters: a, b." in page


def test_failed_runs_query_shows_the_error(server: Server, swept: Path) -> None:
    rows = server.rows("/failed_runs.json")
    ((failed,),) = sql(swept, "SELECT run_id FROM lorenz WHERE status = 'failed'")
    assert [row["run_id"] for row in rows] == [failed]
    assert rows[0]["error"] == "ValueError: diverged at b = 9"
    assert json.loads(rows[0]["params"]) == {"a": 3, "b": 9}
    assert "Traceback" in rows[0]["traceback"]
    assert rows[0]["arrays"] == f"{server.url}/recorder/arrays?run={failed}"


def test_latest_sessions_query_has_each_experiment_s_latest(server: Server, swept: Path) -> None:
    rows = server.rows("/latest_sessions.json")
    latest = sql(
        swept,
        "SELECT experiment, session_id FROM overview_sessions AS s WHERE time_start = "
        "(SELECT max(t.time_start) FROM overview_sessions AS t WHERE t.experiment = s.experiment)",
    )
    assert {(row["experiment"], row["session_id"]) for row in rows} == set(latest)
    lorenz = next(row for row in rows if row["experiment"] == "lorenz")
    assert (lorenz["runs"], lorenz["failed"]) == (2, 0)


def test_last_sweep_query_has_the_runs_of_the_last_sweep(server: Server, swept: Path) -> None:
    rows = server.rows("/lorenz_last_sweep.json")
    assert sorted((row["a"], row["b"]) for row in rows) == [(4, 8), (4, 9)]
    assert {row["energy"] for row in rows} == {4010.0, 4011.0}


def test_a_run_links_to_its_arrays_and_their_digests(server: Server, swept: Path) -> None:
    (row,) = [r for r in server.rows("/lorenz_last_sweep.json") if r["b"] == 8]
    link = urllib.parse.urlsplit(row["arrays"])
    assert f"{link.scheme}://{link.netloc}" == server.url  # a whole URL: Datasette shows it as a link
    assert link.path == "/recorder/arrays" and link.query == f"run={row['run_id']}"
    with rec.open(swept) as db:
        short = db.short_id(row["run_id"])
        digest = db.rows(
            "SELECT value FROM results WHERE name = 'traj' AND run = (SELECT pk FROM runs WHERE lower(hex(id)) = ?)",
            [row["run_id"]],
        )[1][0][0]
    for run in (row["run_id"], short):  # the full id or the short id
        (array,) = server.rows(f"/arrays.json?run={run}")
        assert (array["run_id"], array["name"], array["digest"]) == (row["run_id"], "traj", digest)
        assert (array["dtype"], array["shape"]) == ("<f8", "[10]")
        assert (swept / array["file"]).is_file()
        assert array["file"] == f"objects/{digest[:2]}/{digest[2:]}.npy"
        assert array["object"] == f"{server.url}/recorder/objects/{digest}"
    with urllib.request.urlopen(array["object"] + ".json?_shape=objects", timeout=30) as response:
        (obj,) = json.loads(response.read())["rows"]
    assert obj["digest"] == digest
    assert "<a href=" in server.text(f"/recorder/arrays?run={short}")  # shown as a link
    assert len(server.rows("/arrays.json?run=")) == len(sql(swept, "SELECT 1 FROM results WHERE kind = 'object'"))


def test_sql_on_the_page_is_read_only(server: Server) -> None:
    assert server.get(".json?sql=select+count(*)+as+n+from+runs&_shape=objects")["rows"] == [{"n": 12}]
    for refused in ("select load_extension('x')", "select fts3_tokenizer('simple')"):
        query = urllib.parse.quote(refused)
        try:
            page = server.get(f".json?sql={query}")
        except urllib.error.HTTPError as e:  # Datasette answers 400 to a failed query
            assert e.code == 400
            page = json.loads(e.read())
        assert page["ok"] is False and "not authorized to use function" in page["error"], refused


def test_a_page_cannot_make_a_value_over_the_limit(server: Server) -> None:
    """randomblob(1e9) is refused as too big, a printf of 10^9 characters gives NULL; the server goes on answering."""
    try:
        page = server.get(f".json?sql={urllib.parse.quote('select length(randomblob(1000000000)) as n')}")
    except urllib.error.HTTPError as e:
        assert e.code == 400
        page = json.loads(e.read())
    assert page["ok"] is False and "too big" in page["error"]
    huge = "select length(printf('%.*c', 1000000000, 'x')) as n"
    assert server.get(f".json?sql={urllib.parse.quote(huge)}&_shape=objects")["rows"] == [{"n": None}]
    assert server.get(".json?sql=select+length(randomblob(1000))+as+n&_shape=objects")["rows"] == [{"n": 1000}]


# -- live, read-only, stopping ------------------------------------------------------------------------


def test_a_run_recorded_while_serving_shows_on_the_next_request(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with rec.Recorder("live", store=store, git=False) as r, r.run(a=1, b=9) as run:
        run.log(energy=1.0)
    with serving(store) as server:
        assert [row["a"] for row in server.rows("/live.json?b=9")] == [1]
        with rec.Recorder("live", store=store, git=False) as r, r.run(a=2, b=9) as run:
            run.log(energy=2.0)
        assert sorted(row["a"] for row in server.rows("/live.json?b=9")) == [1, 2]
        with rec.Recorder("newer", store=store, git=False) as r, r.run(c=3) as run:  # a new experiment: a new view
            run.log(energy=3.0)
        assert [row["c"] for row in server.rows("/newer.json")] == [3]
        with urllib.request.urlopen(f"{server.url}/-/metadata.json", timeout=30) as response:
            described = json.loads(response.read())["databases"]["recorder"]
        assert "live" in described["tables"] and "newer" not in described["tables"]  # until the next start
        assert "live_last_sweep" in described["queries"] and "newer_last_sweep" not in described["queries"]
        assert server.stop()[0] == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_it_and_the_store_is_unchanged(tmp_path: Path, sig: int) -> None:
    store = tmp_path / "store"
    with pytest.warns(rec.RecorderWarning):
        record_sweep(store)
    before = dump(store)
    with serving(store) as server:
        for path in ("/lorenz.json?b=9", "/lorenz.json?_facet=a", "/failed_runs.json", "/lorenz_last_sweep.json"):
            server.get(path)
        server.text("/recorder/arrays?run=")
        code, out, err = server.stop(sig)
    assert code == 0, err
    assert out.startswith(f"serving the store {store} read-only at http://127.0.0.1:")
    assert "Traceback" not in err
    assert dump(store) == before


# -- errors and options -------------------------------------------------------------------------------


def test_without_datasette_one_line_says_how_to_install_it(swept: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasette", None)  # how Python marks a module as not importable
    result = CliRunner().invoke(main, ["serve", str(swept)])
    assert result.exit_code == 1
    assert result.stderr == "recorder: error: recorder serve needs Datasette, which is not installed: " + (
        "pip install 'recorder[ui]'\n"
    )


def test_a_port_in_use_is_one_line(swept: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [console_script(), "serve", str(swept), "--port", str(port)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert done.stderr.startswith(f"recorder: error: cannot listen on 127.0.0.1:{port}: ")
    assert "--port" in done.stderr and len(done.stderr.splitlines()) == 1


def test_no_store_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", str(tmp_path / "nothing")])
    assert result.exit_code == 3
    assert result.stderr.startswith("recorder: error: no store at ")


def test_open_host_and_a_free_port(swept: Path, tmp_path: Path) -> None:
    """--open opens the store's page; --host is the address; --port 0 takes a free port, named in the URL."""
    opened = tmp_path / "opened"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}.tmp && mv {opened}.tmp {opened}\n')
    browser.chmod(0o755)
    process = subprocess.Popen(
        [console_script(), "serve", str(swept), "--host", "127.0.0.2", "--port", "0", "--open"],
        env={**os.environ, "PYTHONPATH": str(ROOT), "BROWSER": str(browser)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not opened.exists():
            assert process.poll() is None and time.monotonic() < deadline, process.communicate(timeout=10)
            time.sleep(0.1)
        url = opened.read_text().strip()
        base = urllib.parse.urlsplit(url)
        assert (base.hostname, base.path) == ("127.0.0.2", "/recorder") and base.port not in (None, 0)
        server = Server(process, int(base.port or 0), host="127.0.0.2")
        assert server.rows("/lorenz.json?b=9&a=1")[0]["energy"] == 1009.5
        code, out, _ = server.stop()
        assert code == 0
        assert out.strip().endswith(f"at {server.url}/ (Ctrl-C stops it)")
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_names_from_the_store_are_escaped_in_the_pages(tmp_path: Path) -> None:
    store = tmp_path / "store"
    name = "<img src=x onerror=alert(1)>"
    with rec.Recorder(name, store=store, git=False) as r:
        for x in (1, 2):
            with r.run(**{"<b>x": x}) as run:
                run.log(y=x)
    with rec.Recorder("arrays", store=store, git=False) as r, r.run(z=1) as run:  # the name of a query
        run.log(y=np.arange(3.0), w=2)
    with serving(store) as server:
        page = server.text("/recorder")
        table = server.text("/recorder/" + urllib.parse.quote(name))
        view = server.get("/arrays.json?_shape=objects")  # the experiment's view, not the query
        assert view["is_view"] and [row["w"] for row in view["rows"]] == [2]
        (array,) = server.rows("/arrays_.json?run=")  # the query took another name
        assert array["experiment"] == "arrays" and array["name"] == "y"
        assert server.stop()[0] == 0
    for html in (page, table):
        assert "<img" not in html and "<b>x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "Explored parameters: &lt;b&gt;x." in table


def test_datasette_is_imported_only_when_serving() -> None:
    code = (
        "import sys, recorder\n"
        "from recorder.cli.commands import main\n"
        "for args in (['--help'], ['serve', '--help']):\n"
        "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
        "print('LOADED', [m for m in ('datasette', 'uvicorn') if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout
    assert "pip install 'recorder[ui]'" in done.stdout  # serve --help says what it needs


# -- as a person sees it: the pages in headless Chromium ------------------------------------------------


@pytest.mark.browser
def test_the_pages_render_in_chromium_without_console_errors(server: Server, browser: Any) -> None:
    """The store's page, an experiment's view filtered and faceted, and a canned query, as a browser shows them."""
    from conftest import console_errors, wait_for

    browser.get(f"{server.url}/recorder")
    wait_for(browser, "document.body.innerText.includes('lorenz')", "the experiment's view listed")
    browser.get(f"{server.url}/recorder/lorenz?b=9")
    rows = wait_for(browser, "document.querySelectorAll('table.rows-and-columns tbody tr').length", "the runs")
    assert rows == 4  # a = 1, 2, 3 with b = 9 (the failed one included), and a = 4 with b = 9 in the second sweep
    facets = browser.execute_script("return document.querySelectorAll('.facet-info').length;")
    assert facets >= 2  # status and the explored parameters
    browser.get(f"{server.url}/recorder/failed_runs")
    wait_for(browser, "document.body.innerText.includes('diverged at b = 9')", "the failed run's error")
    assert console_errors(browser) == []
