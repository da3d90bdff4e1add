"""Shared fixtures: temp stores and real git repositories made in ``tmp_path``."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run git in ``repo`` and return its stripped output (raises on failure)."""
    result = subprocess.run(
        ["git", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    return result.stdout.strip()


def make_repo(path: Path, *, identity: bool = True) -> Path:
    """Create a git repository with one committed file ``model.py``."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    if identity:
        git(path, "config", "user.name", "Test User")
        git(path, "config", "user.email", "test@example.com")
    (path / "model.py").write_text("A = 1\n")
    git(path, "add", "model.py")
    env = (
        None
        if identity
        else {
            "GIT_AUTHOR_NAME": "Setup",
            "GIT_AUTHOR_EMAIL": "setup@example.com",
            "GIT_COMMITTER_NAME": "Setup",
            "GIT_COMMITTER_EMAIL": "setup@example.com",
        }
    )
    git(path, "commit", "-q", "-m", "initial", env=env)
    return path


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Path of a store folder (not yet created)."""
    return tmp_path / "store"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with a local identity and one commit."""
    return make_repo(tmp_path / "repo")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep tests away from the user's store and git configuration."""
    monkeypatch.delenv("RECORDER_STORE", raising=False)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(name, raising=False)


def run_python(
    code: str, *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run Python code in a fresh interpreter; return the finished process."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def scalar(store: Path, sql: str, params: tuple = ()) -> Any:
    """The first value of the first row of a query on a store's database (read with plain sqlite3)."""
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()


@contextlib.contextmanager
def read_only_view(folder: Path, at: Path) -> Iterator[Path]:
    """``folder`` seen read-only at ``at``: a read-only bind mount as root (skips if mounting fails), else a copy
    with read-only modes (root ignores modes, so as root only a mount is read-only)."""
    if os.geteuid() != 0:
        shutil.copytree(folder, at)
        for path in [at, *at.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield at
        finally:
            for path in [at, *at.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)
        return
    at.mkdir()
    if subprocess.run(["mount", "--bind", str(folder), str(at)], capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount here")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(at)], capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield at
    finally:
        subprocess.run(["umount", "-l", str(at)], capture_output=True, check=False)


_FAULTS = ROOT / "tests" / "faults"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of ``tests/faults/`` as ``faults`` (fault injection; run alone with ``-m faults``).

    A hook here, not a ``conftest.py`` in that folder: the tests import
    helpers with ``from conftest import ...``, and a second module named
    ``conftest`` would shadow this one.
    """
    for item in items:
        if _FAULTS in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.faults)


# -- a headless browser (the browser-marked tests: the report, recorder serve's pages) --------------------

PAGE_TIMEOUT_S = 60  # a bound on a hang, not a timing assertion


def _chromium() -> tuple[str, str]:
    """The Chromium binary and its driver, or skip saying what is missing."""
    pytest.importorskip("selenium", reason="the browser tests need selenium: pip install selenium")
    binary = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip(
            "the browser tests need Chromium and chromedriver: apt-get install chromium chromium-driver "
            f"(found chromium: {binary}, chromedriver: {driver})"
        )
    return binary, driver


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium keeping the console's messages, with no network: a page must need none."""
    binary, driver_path = _chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",  # as root in a container
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
        "--enable-unsafe-swiftshader",  # software WebGL for the parallel coordinates, without a deprecation warning
        # Any fetch from the network fails, and says so in the console; this machine (recorder serve) is reached directly.
        "--proxy-server=http://127.0.0.1:9",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, script: str, what: str) -> Any:
    """Poll a JavaScript expression until it is truthy (bounded by PAGE_TIMEOUT_S)."""
    deadline = time.monotonic() + PAGE_TIMEOUT_S
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return {script};")
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"the page never showed {what}")


def console_errors(driver: Any) -> list[dict[str, Any]]:
    """The console's errors (SEVERE), and warnings that a resource failed to load."""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE" or "Failed to load" in e["message"]]


def undo_schema_7(conn: sqlite3.Connection) -> None:
    """Take out of a store what schema 7 added (where a run ran, origin), so that it looks like schema 6."""
    for (view,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'view'").fetchall():
        conn.execute(f'DROP VIEW "{view}"')  # they may read the new columns; a migration makes them again
    for column in ("origin", "pset_seq", "pid", "host"):
        conn.execute(f"ALTER TABLE runs DROP COLUMN {column}")


def undo_schema_6(conn: sqlite3.Connection) -> None:
    """Take out of a store what schemas 6 and 7 added (curation), so that a test can make it look like schema 5."""
    undo_schema_7(conn)
    for (view,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'view'").fetchall():
        conn.execute(f'DROP VIEW "{view}"')  # they read runs.deleted and tags; a migration makes them again
    for table in ("run_notes", "run_tags", "curation_events"):
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute("ALTER TABLE runs DROP COLUMN deleted")


def undo_schema_5(conn: sqlite3.Connection) -> None:
    """Take out of a store what schemas 5 and 6 added (so that a test can make it look like an older schema)."""
    undo_schema_6(conn)
    conn.execute("DROP TABLE IF EXISTS functions")
    conn.execute("ALTER TABLE runs DROP COLUMN rerun_of")
    conn.execute("ALTER TABLE runs DROP COLUMN function")


@pytest.fixture(scope="session")
def mlflow_made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The MLflow study of ``tests/mlflow_study.py`` made by the real mlflow, both backends, once per test session.

    mlflow takes many seconds to make them, so every xdist worker shares one copy (the first to take
    the lock makes it; the others wait and read it). Tests only read it: one that tampers copies it.

    :returns: the folder holding ``sqlite/mlflow.db`` and ``file/mlruns``, and the commit the runs ran at.
    """
    pytest.importorskip("mlflow", reason="mlflow-skinny (the test extra) makes the MLflow stores")
    import fcntl
    import json

    import mlflow_study

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, above each worker's own
    root = base / "mlflow-study"
    root.mkdir(exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = root / "made.json"
        if not done.exists():
            repo = make_repo(root / "repo")
            home = root / "home"
            home.mkdir(exist_ok=True)
            env = {"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"}
            commit = mlflow_study.make_in_repo(("sqlite", "file"), root, repo, env=env)
            done.write_text(json.dumps({"commit": commit}))
        commit = json.loads(done.read_text())["commit"]
    return root, commit
