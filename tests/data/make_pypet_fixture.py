"""Make ``tests/data/pypet_study.hdf5``, the pypet study the pypet importer's tests read.

pypet cannot be installed beside numpy 2, so this script is run once, by hand, in a separate
environment with real pypet, and its output is committed. The tests do not run it.

How the committed file was made (2026-11-29, from the repository root)::

    PYENV_VERSION=3.10.13 python3.10 -m venv /tmp/pypetenv
    /tmp/pypetenv/bin/pip install "numpy<2" "pandas<2" tables pypet gitpython
    # resolved to: Python 3.10.13, pypet 0.6.1, numpy 1.26.4, pandas 1.5.3, tables 3.10.1
    # (HDF5 1.14), GitPython 3.2.1; git 2.39 on the PATH
    /tmp/pypetenv/bin/python tests/data/make_pypet_fixture.py tests/data/pypet_study.hdf5

pypet writes the file (``complevel=9``); PyTables' ``ptrepack``, from the same environment,
then copies it to the output to drop the space pypet's rewrites of its overview tables left
free (1026 kB → 818 kB; the layout and every value are unchanged, and pypet loads the copy).

What the file holds (the tests assert these values):

- trajectory ``study``, comment ``"x times y, interrupted at x=3, y=0.5"``, run by an Environment with
  ``git_repository`` set to a throw-away repository in a temporary folder (pypet records its
  commit under ``config/git/commit_<sha7>_<time>/hexsha``) and ``graceful_exit=True``:

  - explored parameters ``x`` in 1, 2, 3 × ``y`` in 0.5, 1.0 (``cartesian_product``: six runs,
    ``run_00000000`` … ``run_00000005``, x slowest); ``x`` has the comment
    ``"the first factor"``;
  - constant parameters ``n = 10`` (int) and ``model.name = "linear"`` (in a group ``model``),
    with the comment ``"which model"`` on ``model.name``;
  - a derived parameter ``total = 6`` (comment ``"how many runs"``) added before the runs;
  - per run, the results ``z = x * y`` (float; comment ``"the product"``, which pypet keeps on
    the first run's ``z`` only), ``arr = np.arange(x) * y`` (a float array of length x),
    ``info``, a ``PickleResult`` of the dict ``{"x": x}`` (pickled data the importer must not
    unpickle), ``stats`` with the two items ``mean = z / 2`` and ``n = x``, ``q = x + y`` stored
    in pypet's run set group (``results/runs/run_set_00000/run_XXXXXXXX/q``), ``d``, the dict
    ``{"a": 1}`` (which pypet stores as a table), and the derived parameter ``w = x + 1``;
  - the run x=3, y=0.5 sends the process SIGINT, as a user's Ctrl+C would: pypet finishes that
    run, starts no more and stores the trajectory, so ``run_00000005`` (x=3, y=1.0) stays
    ``completed = 0`` with placeholder timing and no results.

- trajectory ``second`` (no git): ``x`` in 4, 5 explored, ``y = 2.0`` constant; each run stores
  ``z`` (8.0, 10.0). Two trajectories in one file must import without their runs' ids
  colliding.

- trajectory ``crashed``: ``x`` in 1, 2, 3, and the run x=2 raises ``ValueError``. pypet cannot
  record a failed run: the exception ends ``env.run`` before pypet stores the trajectory, which
  leaves only the overview tables (every run ``completed = 0``, placeholder timing) and the
  results of the runs before the failure (``run_00000000``: ``z = 10``), no parameters and no
  config. This is what a failure looks like in a pypet file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from pypet import Environment, PickleResult, cartesian_product


def multiply(traj: Any) -> None:
    """The experiment: store x*y, an array and a pickled dict; press Ctrl+C during x=3, y=0.5."""
    z = traj.x * traj.y
    traj.f_add_result("z", z, comment="the product")
    traj.f_add_result("arr", np.arange(traj.x) * traj.y)
    traj.f_add_result(PickleResult, "info", {"x": int(traj.x)})
    traj.f_add_result("stats", mean=z / 2, n=int(traj.x))  # one result, two items
    traj.f_add_result("runs.$set.$.q", traj.x + traj.y)  # in pypet's run set group, run_set_00000
    traj.f_add_result("d", {"a": 1})  # a dict: pypet stores it as a table
    traj.f_add_derived_parameter("w", traj.x + 1)
    if traj.x == 3 and traj.y == 0.5:
        # What a user's Ctrl+C does: with graceful_exit=True pypet finishes this run, starts no
        # further run and stores the trajectory with the runs not run marked not completed.
        os.kill(os.getpid(), signal.SIGINT)


def crash(traj: Any) -> None:
    """The third trajectory's experiment: its second run raises."""
    if traj.x == 2:
        raise ValueError("x=2 fails")
    traj.f_add_result("z", traj.x * 10)


def single(traj: Any) -> None:
    """The second trajectory's experiment: only z."""
    traj.f_add_result("z", traj.x * traj.y)


def main(out: Path) -> None:
    """Write the three trajectories into ``out`` (replaced if present)."""
    if out.exists():
        out.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        made = Path(tmp) / "pypet.hdf5"
        repo = Path(tmp) / "repo"
        repo.mkdir()
        git = ["git", "-C", str(repo), "-c", "user.name=fixture", "-c", "user.email=fixture@example.org"]
        subprocess.run([*git, "init", "-q"], check=True)
        (repo / "model.py").write_text("def f(x, y):\n    return x * y\n")
        subprocess.run([*git, "add", "model.py"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "model"], check=True)

        env = Environment(
            trajectory="study",
            filename=str(made),
            file_title="recorder pypet fixture",
            comment="x times y, interrupted at x=3, y=0.5",
            complevel=9,
            log_config=None,
            multiproc=False,
            git_repository=str(repo),
            git_message="pypet fixture",
            graceful_exit=True,
        )
        traj = env.trajectory
        traj.f_add_parameter("x", 1, comment="the first factor")
        traj.f_add_parameter("y", 0.5)
        traj.f_add_parameter("n", 10)
        traj.f_add_parameter("model.name", "linear", comment="which model")
        traj.f_explore(cartesian_product({"x": [1, 2, 3], "y": [0.5, 1.0]}))
        traj.f_add_derived_parameter("total", 6, comment="how many runs")
        env.run(multiply)
        env.disable_logging()

        env2 = Environment(
            trajectory="second",
            filename=str(made),
            comment="a second trajectory in the same file",
            complevel=9,
            log_config=None,
            multiproc=False,
        )
        traj2 = env2.trajectory
        traj2.f_add_parameter("x", 4)
        traj2.f_add_parameter("y", 2.0)
        traj2.f_explore({"x": [4, 5]})
        env2.run(single)
        env2.disable_logging()

        env3 = Environment(trajectory="crashed", filename=str(made), complevel=9, log_config=None, multiproc=False)
        traj3 = env3.trajectory
        traj3.f_add_parameter("x", 1)
        traj3.f_explore({"x": [1, 2, 3]})
        try:
            env3.run(crash)
        except ValueError as exc:
            print(f"the crashed trajectory raised, as planned: {exc}")
        env3.disable_logging()
        ptrepack = Path(sys.executable).with_name("ptrepack")
        subprocess.run([str(ptrepack), "--complevel=9", "--complib=zlib", str(made), str(out)], check=True)
        print(f"{out}: {made.stat().st_size} bytes written by pypet, {out.stat().st_size} after ptrepack")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("pypet_study.hdf5")))
