"""Make an MLflow tracking store with the real mlflow (mlflow-skinny), for the importer's tests.

Run as a script in a fresh interpreter (mlflow keeps global state: the tracking URI, the active
run), from inside a git repository holding it, so that mlflow tags the runs with the commit
itself: ``python mlflow_study.py {sqlite,file} FOLDER``. The study:

- experiment ``study``: 20 runs over ``n`` in 1..10 and ``lr`` in 0.1, 0.01 (params also
  ``flag`` (a bool), ``name`` (text), ``width`` ``"03"`` (text that looks like a number)); each logs
  a ``loss`` history of 5 steps, an ``acc`` metric of one value, the artifact ``arr.npy`` (a
  numpy array) and ``logs/out.txt``, a tag ``kind=sweep`` and a tag ``good`` without value;
  the run of ``n=7, lr=0.01`` raises (status FAILED); a 21st run is deleted;
- experiment ``other``, with an experiment tag: a run (param ``n=1``, metric ``acc``), a run
  still RUNNING (``n=2``, as if its process was killed) and a KILLED one (``n=3``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

#: What the study holds, for the tests to compare with.
N_VALUES = range(1, 11)
LR_VALUES = (0.1, 0.01)
FAILING = (7, 0.01)
LOSS_STEPS = 5


def loss(n: int, lr: float, step: int) -> float:
    """The value of the ``loss`` metric a run logs at a step."""
    return n / (1 + step) + lr


def acc(n: int, lr: float) -> float:
    """The ``acc`` metric a run logs once."""
    return n * lr


def array(n: int, lr: float) -> list[float]:
    """The array a run saves as ``arr.npy``."""
    return [n, lr, n * lr]


def make(backend: str, folder: Path) -> None:
    """Record the study with mlflow into ``folder`` (``mlflow.db`` or ``mlruns/``); cwd is ``folder``."""
    import mlflow
    import numpy as np

    os.chdir(folder)
    if backend == "sqlite":
        mlflow.set_tracking_uri("sqlite:///mlflow.db")
    else:
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # mlflow 3 keeps the file store in maintenance mode
        mlflow.set_tracking_uri((folder / "mlruns").as_uri())
    mlflow.set_experiment("study")
    work = folder / "work"
    work.mkdir()
    for n in N_VALUES:
        for lr in LR_VALUES:
            try:
                with mlflow.start_run(run_name=f"n{n}-lr{lr}"):
                    mlflow.log_params({"n": n, "lr": lr, "flag": n % 2 == 0, "name": f"run {n}", "width": "03"})
                    mlflow.set_tags({"kind": "sweep", "good": ""})
                    for step in range(LOSS_STEPS):
                        mlflow.log_metric("loss", loss(n, lr, step), step=step)
                    np.save(work / "arr.npy", np.array(array(n, lr)))
                    mlflow.log_artifact(str(work / "arr.npy"))
                    (work / "out.txt").write_text(f"n={n}\n")
                    mlflow.log_artifact(str(work / "out.txt"), artifact_path="logs")
                    if (n, lr) == FAILING:
                        raise RuntimeError("diverged")
                    mlflow.log_metric("acc", acc(n, lr))
            except RuntimeError:
                pass
    with mlflow.start_run(run_name="removed") as run:
        mlflow.log_param("n", 99)
    mlflow.delete_run(run.info.run_id)
    mlflow.set_experiment("other")
    mlflow.set_experiment_tag("purpose", "second experiment")
    with mlflow.start_run(run_name="lone"):
        mlflow.log_param("n", 1)
        mlflow.log_metric("acc", 0.5)
    # Runs that never ended (a process killed while it ran) and that were stopped
    client = mlflow.MlflowClient()
    other = client.get_experiment_by_name("other").experiment_id
    hung = client.create_run(other, run_name="hung")
    client.log_param(hung.info.run_id, "n", 2)
    stopped = client.create_run(other, run_name="stopped")
    client.log_param(stopped.info.run_id, "n", 3)
    client.set_terminated(stopped.info.run_id, status="KILLED")
    shutil.rmtree(work)


def make_in_repo(
    backends: tuple[str, ...], root: Path, repo: Path, *, env: dict[str, str] | None = None, timeout: float = 300
) -> str:
    """Copy this script into the git repository ``repo``, commit it, and run it there once per backend, at once.

    Each backend's store goes to ``root / backend``; the backends' processes run side by side.

    :returns: the commit mlflow should have tagged the runs with.
    """
    script = repo / "mlflow_study.py"
    shutil.copy(__file__, script)
    subprocess.run(["git", "add", "mlflow_study.py"], cwd=repo, check=True, capture_output=True)
    if subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=repo).returncode:
        subprocess.run(["git", "commit", "-q", "-m", "study script"], cwd=repo, check=True, capture_output=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()
    running = []
    for backend in backends:
        folder = root / backend
        folder.mkdir(parents=True, exist_ok=True)
        running.append(
            subprocess.Popen(
                [sys.executable, str(script), backend, str(folder)],
                cwd=folder,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, **(env or {}), "MLFLOW_ENABLE_ASYNC_LOGGING": "false", "MLFLOW_TRACKING_URI": ""},
            )
        )
    failures = []
    for backend, process in zip(backends, running):
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        if process.returncode != 0:
            failures.append(f"{backend}: exit {process.returncode}\n{out}\n{err}")
    if failures:
        raise RuntimeError("making the MLflow study failed:\n" + "\n".join(failures))
    return commit


if __name__ == "__main__":
    make(sys.argv[1], Path(sys.argv[2]).resolve())
