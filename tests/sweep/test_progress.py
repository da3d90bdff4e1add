"""Sweep progress through tqdm.auto: a bar when asked or on a terminal, nothing otherwise; the counts right."""

from __future__ import annotations

import os
import select
import sys
import time
from pathlib import Path

import pytest

import recorder as rec
from recorder.sweep.progress import Progress, shown_by_default

ROOT = Path(__file__).resolve().parents[2]


def odd_fails(a: int) -> dict[str, int]:
    if a % 2:
        raise ValueError(f"odd {a}")
    return {"y": a}


def test_a_bar_when_forced_with_failed_and_skipped_counts(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with rec.Recorder("m", store=store, git=False) as r, pytest.warns(rec.RecorderWarning):
        r.sweep(odd_fails, rec.plist("a", [0, 2, 4, 1]), progress=True)
    first = capsys.readouterr().err
    last = first.rstrip("\n").split("\r")[-1]
    assert last.startswith("sweep m: 100%") and "4/4" in last and "runs/s" in last and "1 failed" in last, last
    assert first.count("\n") == 1  # the bar's end (the warning about the failed run is caught here)
    with rec.Recorder("m", store=store, git=False) as r, pytest.warns(rec.RecorderWarning):
        # 0, 2, 4 are done (skipped); 1 failed before and runs again with 6 and 3
        r.sweep(odd_fails, rec.plist("a", [0, 2, 4, 1, 6, 3]), progress=True)
    last = capsys.readouterr().err.rstrip("\n").split("\r")[-1]
    # skipped psets are taken off the total: the rate and the ETA are those of the runs that run
    assert "3/3" in last and "2 failed, 3 skipped" in last, last


def test_nothing_when_off_or_not_a_terminal(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with rec.Recorder("m", store=store, git=False) as r:
        r.sweep(odd_fails, rec.plist("a", [0, 2]), progress=False)
        r.sweep(odd_fails, rec.plist("a", [4, 6]))  # stderr is not a terminal here
    assert capsys.readouterr().err == ""
    assert not shown_by_default()


def test_redrawn_a_few_times_a_second_not_per_item(capsys: pytest.CaptureFixture[str]) -> None:
    n = 100_000
    bar = Progress(n, True, "work")
    for _ in range(n):
        bar.add("done")
    bar.close()
    err = capsys.readouterr().err
    assert "100000/100000" in err.split("\r")[-1]
    assert err.count("\r") < n / 100  # adding 10^5 items takes well under 20 s: at most ~5 redraws a second


def test_off_adds_only_counts(capsys: pytest.CaptureFixture[str]) -> None:
    bar = Progress(None, False, "work")
    for status in ("done", "failed", "skipped", "skipped"):
        bar.add(status)
    bar.close()
    assert bar.counts == {"done": 1, "failed": 1, "interrupted": 0, "skipped": 2}
    assert capsys.readouterr().err == ""


def test_no_tqdm_import_when_off() -> None:
    code = (
        "import sys, recorder as rec, tempfile\n"
        "with rec.Recorder('m', store=tempfile.mkdtemp(), git=False) as r:\n"
        "    r.sweep(lambda a: {'y': a}, rec.plist('a', [1, 2]), progress=False)\n"
        "print('tqdm' in sys.modules)\n"
    )
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False" and out.stderr == ""


SCRIPT = """
import sys, time, recorder as rec
def work(a):
    if a == 1:
        raise ValueError("one")
    return {"y": a}
with rec.Recorder("m", store=sys.argv[1], git=False) as r:
    r.sweep(work, rec.plist("a", [0, 1, 2]), progress={progress})
print("END")
"""


def _on_terminal(script: str, store: Path, timeout: float = 60.0) -> str:
    """Run ``python -c script store`` with a pseudo-terminal as stdin, stdout and stderr; what it showed."""
    import pty
    import warnings

    with warnings.catch_warnings():  # JAX (imported by other tests) warns at any fork; this child only execs
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        pid, master = pty.fork()
    if pid == 0:
        try:
            import fcntl
            import struct
            import termios

            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
            os.execve(
                sys.executable, [sys.executable, "-c", script, str(store)], {**os.environ, "PYTHONPATH": str(ROOT)}
            )
        finally:
            os._exit(127)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                if not data:
                    break
                chunks.append(data)
        else:
            os.kill(pid, 9)
    finally:
        os.waitpid(pid, 0)
        os.close(master)
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="needs a pty")
@pytest.mark.parametrize("progress", ["None", "False"])
def test_on_a_terminal_by_default_and_off_when_false(tmp_path: Path, progress: str) -> None:
    text = _on_terminal(SCRIPT.replace("{progress}", progress), tmp_path / "store")
    assert "END" in text, text
    if progress == "None":
        assert "sweep m: 100%" in text and "3/3" in text and "1 failed" in text, text
    else:
        assert "sweep m" not in text and "runs/s" not in text, text


def test_shown_by_default_in_a_jupyter_kernel() -> None:
    """In an IPython shell run by a kernel (its config has IPKernelApp, as in Jupyter), progress shows by default."""
    pytest.importorskip("IPython")
    code = (
        "from traitlets.config import Config\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "from recorder.sweep.progress import shown_by_default\n"
        "before = shown_by_default()\n"
        "InteractiveShell.instance(config=Config({'IPKernelApp': {'connection_file': 'kernel.json'}}))\n"
        "print(before, shown_by_default())\n"
    )
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]
