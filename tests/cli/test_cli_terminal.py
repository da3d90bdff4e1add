"""The command line on a real terminal: the installed ``recorder`` script under a pseudo-terminal.

CliRunner's output is never a terminal, so the paths that only run on one
(rich tables, the pager) are tested here as a user meets them: the console
script started by ``pty.fork()``, its stdin, stdout and stderr a terminal
(and its controlling terminal, which ``less`` reads keys from), with this
checkout first on ``PYTHONPATH``.
"""

from __future__ import annotations

import errno
import os
import re
import select
import shutil
import signal
import sqlite3
import sys
import time
import warnings
from pathlib import Path

import pytest

import recorder as rec

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="needs a pty")

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "\x1b]0;pwned\x07[bold]x[/bold]\u202e"


def _script() -> str:
    here = os.path.dirname(sys.executable)
    exe = shutil.which("recorder", path=here + os.pathsep + os.environ.get("PATH", ""))
    if exe is None:
        pytest.skip("no installed `recorder` executable")
    return exe


def on_terminal(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60.0, rows: int = 60, columns: int = 200
) -> tuple[int, str]:
    """Run the ``recorder`` script on a new pseudo-terminal; return its exit status and everything it showed.

    Fails the test (after killing the process) when it has not ended within ``timeout`` seconds,
    which is what a pager waiting for a key looks like.
    """
    import fcntl
    import struct
    import termios

    exe = _script()
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color", **(env or {})}
    environment = {k: v for k, v in environment.items() if v is not None}
    for name in ("PAGER", "LESS", "COLUMNS", "LINES"):
        if env is None or name not in env:
            environment.pop(name, None)
    with warnings.catch_warnings():  # JAX (imported by other tests) warns at any fork; this child only execs
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        pid, master = pty.fork()
    if pid == 0:  # the child: a terminal of a known size, then the script (nothing else runs here)
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
            os.execve(exe, [exe, *args], environment)
        finally:
            os._exit(127)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail(
                    f"`recorder {' '.join(args)}` did not end within {timeout} s on a terminal; "
                    f"it showed: {b''.join(chunks).decode(errors='replace')[-2000:]!r}"
                )
            ready, _, _ = select.select([master], [], [], min(left, 1.0))
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError as e:  # EIO: the terminal's other end closed, the process ended
                if e.errno != errno.EIO:
                    raise
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode("utf-8", errors="replace")


import pty  # noqa: E402  (after the skip mark: not on Windows)


@pytest.fixture
def recorded(store: Path) -> dict[str, str]:
    with rec.Recorder("lorenz", store=store, git=False) as r:
        with r.run(a=0.1, b=8) as run:
            run.log(energy=0.8, note=HOSTILE)
        done = run.id
        failing = r.run(a=0.2, b=8)
        with pytest.raises(ValueError), failing:
            raise ValueError("diverged")
    conn = sqlite3.connect(store / "recorder.sqlite")
    with conn:  # what only a crafted store holds: a lone surrogate in a parameter
        conn.execute("UPDATE psets SET params = ? WHERE params LIKE '%0.1%'", ('{"a":0.1,"b":8,"s":"\\udc80"}',))
    conn.close()
    with rec.open(store) as db:
        return {"done": done, "failed": failing.id, "short": db.short_id(done)}


def _clean_run(status: int, text: str) -> None:
    assert status == 0, text
    assert "Traceback" not in text and "ModuleNotFoundError" not in text and "recorder: error" not in text, text


def test_the_script_runs_this_checkout(tmp_path: Path) -> None:
    status, text = on_terminal("--help")
    _clean_run(status, text)
    assert "short id" in text  # this checkout's help text, not an installed copy's


def test_status_draws_its_table(store: Path, recorded: dict[str, str]) -> None:
    status, text = on_terminal("--store", str(store), "status")
    _clean_run(status, text)
    assert "experiment" in text and "interrupted" in text
    row = next(line for line in text.splitlines() if line.strip().startswith("lorenz"))
    assert row.split() == ["lorenz", "2", "1", "1", "0", "0"]


def test_sql_draws_its_table(store: Path, recorded: dict[str, str]) -> None:
    status, text = on_terminal("sql", "SELECT 1 AS one, 0.1 + 0.2 AS f, NULL AS n", "--store", str(store))
    _clean_run(status, text)
    assert "one" in text and "0.30000000000000004" in text and "NULL" in text


def test_compare_draws_its_table(store: Path, recorded: dict[str, str]) -> None:
    status, text = on_terminal("--store", str(store), "compare", recorded["done"], recorded["failed"])
    _clean_run(status, text)
    assert "constant: experiment=lorenz" in text
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)  # rich's bold header
    header = next(line for line in plain.splitlines() if line.strip().startswith("run "))
    assert header.split()[:3] == ["run", "status", "error"]
    row = next(line for line in text.splitlines() if line.strip().startswith(recorded["short"]))
    assert "done" in row and "[bold]x[/bold]" in row  # the note: a result of the done run only, not markup
    assert "\x1b]0;pwned" not in text and "\u202e" not in text and "\\u202e" in text


def test_sql_shows_markup_and_escapes_as_text(store: Path, recorded: dict[str, str]) -> None:
    status, text = on_terminal("--store", str(store), "sql", "SELECT value FROM results WHERE name = 'note'")
    _clean_run(status, text)
    assert "[bold]x[/bold]" in text  # rich did not read it as markup
    assert "\x1b]0;pwned" not in text and "\u202e" not in text
    assert "\\x1b]0;pwned\\x07" in text and "\\u202e" in text


def test_log_pages_through_cat(store: Path, recorded: dict[str, str]) -> None:
    status, text = on_terminal("--store", str(store), "log", env={"PAGER": "cat"})
    _clean_run(status, text)
    assert f"run {recorded['short']}  done" in text
    assert "error    ValueError: diverged" in text
    assert "\\udc80" in text  # a lone surrogate, shown escaped instead of failing to encode
    assert "\x1b]0;pwned" not in text


@pytest.mark.skipif(shutil.which("less") is None, reason="needs less")
def test_log_through_less_does_not_wait_for_a_key(tmp_path: Path) -> None:
    """No $PAGER, no $LESS: less, told to quit when the log fits the screen (as git does)."""
    store = tmp_path / "plain"
    with rec.Recorder("lorenz", store=store, git=False) as r, r.run(a=1) as run:
        run.log(e=2.0)
    status, text = on_terminal("--store", str(store), "log", timeout=20)
    _clean_run(status, text)
    assert "a=1" in text and "e=2" in text and f"run {run.id[-8:]}  done" in text


def test_show_and_diff_on_a_terminal(store: Path, recorded: dict[str, str]) -> None:
    status, text = on_terminal("--store", str(store), "show", recorded["short"])
    _clean_run(status, text)
    assert f"run {recorded['short']}  done" in text and recorded["done"] in text
    assert "\x1b]0;pwned" not in text and "\\udc80" in text
    status, text = on_terminal("--store", str(store), "diff", recorded["short"], recorded["failed"][-10:])
    _clean_run(status, text)
    assert "status: done → failed" in text


@pytest.mark.skipif(shutil.which("less") is None, reason="needs less")
def test_runs_table_on_a_terminal_has_the_columns(store: Path, recorded: dict[str, str]) -> None:
    """``recorder runs`` on a terminal: rich's table through less (which quits, it fits), every column, the error."""
    status, text = on_terminal("--store", str(store), "runs", "lorenz", timeout=20)
    _clean_run(status, text)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)  # rich's colours
    header = next(line for line in plain.splitlines() if line.strip().startswith("run "))
    assert header.split() == ["run", "status", "start", "duration", "a", "b", "energy", "note", "error"]
    row = next(line for line in plain.splitlines() if line.strip().startswith(recorded["short"]))
    assert "done" in row and "0.8" in row and "[bold]x[/bold]" in row
    failed = next(line for line in plain.splitlines() if "failed" in line)
    assert "ValueError: diverged" in failed
    assert "\x1b[31m" in text or "\x1b[38;5;1m" in text or "\x1b[91m" in text  # the failed run in red
    assert "\x1b]0;pwned" not in text and "\u202e" not in text
