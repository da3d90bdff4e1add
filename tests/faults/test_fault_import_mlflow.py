"""Hostile MLflow stores: links, FIFOs and artifact locations that lead out of the store, YAML that builds objects.

An MLflow store is untrusted input: the importer reads only regular files inside the source's
folder (or artifact roots given explicitly), never through a link that leaves the artifact
folder, never blocking on a FIFO, never building Python objects from YAML. Each case starts from
a store the real mlflow made (``tests/mlflow_study.py``), copied and then tampered with.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow_study as study_def
import pytest
from conftest import ROOT

import recorder as rec
from recorder.importing.mlflow import read_mlflow

SECRET = b"the secret outside the store\n"

#: Each test starts from stores the real mlflow makes (seconds, once per module).
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Made:
    backend: str
    folder: Path


@pytest.fixture(scope="module")
def made(mlflow_made: tuple[Path, str]) -> dict[str, Made]:
    """Both backends' stores, made once per test session by the real mlflow (copied before any tampering)."""
    root, _ = mlflow_made
    return {backend: Made(backend, root / backend) for backend in ("sqlite", "file")}


def _copy(made: Made, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the store to tamper with: (what to import, its folder)."""
    folder = tmp_path / "source"
    shutil.copytree(made.folder, folder, symlinks=True)
    return (folder / "mlflow.db" if made.backend == "sqlite" else folder / "mlruns"), folder


def _artifact_folders(folder: Path) -> list[Path]:
    """The runs' artifact folders in the copy, in a fixed order (both backends keep them under mlruns/)."""
    return sorted(p for p in (folder / "mlruns").glob("*/*/artifacts") if (p / "arr.npy").exists())


def _secret(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    return outside


def _stored_secret(store: Path) -> bool:
    """Whether any object file of the store holds the secret's bytes."""
    digest = hashlib.sha256(SECRET).hexdigest()
    return any(digest in p.name or p.read_bytes() == SECRET for p in (store / "objects").rglob("*") if p.is_file())


def _import(source: Path, store: Path, cwd: Path, *more: str) -> subprocess.CompletedProcess[str]:
    """``recorder import mlflow`` in its own process, bounded in time (a FIFO read would block for ever)."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from recorder.cli import main; main()",
            "import",
            "mlflow",
            str(source),
            "--into",
            str(store),
            *more,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _files(store: Path) -> set[str]:
    db = rec.open(store)
    try:
        return {name for (name,) in db.conn.execute("SELECT DISTINCT name FROM results WHERE kind = 'file'")}
    finally:
        db.close()


@pytest.mark.parametrize("backend", ["sqlite", "file"])
def test_links_leaving_the_artifact_folder_fifos_and_linked_folders_are_not_followed(
    backend: str, made: dict[str, Made], tmp_path: Path, store: Path
) -> None:
    source, folder = _copy(made[backend], tmp_path)
    outside = _secret(tmp_path)
    artifacts = _artifact_folders(folder)[0]
    (artifacts / "leak.txt").symlink_to(outside / "secret.txt")
    (artifacts / "leakdir").symlink_to(outside, target_is_directory=True)
    (artifacts / "up.txt").symlink_to(Path("..") / ".." / ".." / ".." / ".." / "outside" / "secret.txt")
    (artifacts / "same.npy").symlink_to("arr.npy")  # a link inside the folder is read: it leaves nothing
    os.mkfifo(artifacts / "pipe")

    result = _import(source, store, tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "'leak.txt': a link leaving the artifact folder" in out
    assert "'up.txt': a link leaving the artifact folder" in out
    assert "'leakdir': a link to a folder, not followed" in out
    assert "'pipe': not a regular file" in out
    names = _files(store)
    assert {"arr.npy", "logs/out.txt", "same.npy"} <= names
    assert not names & {"leak.txt", "up.txt", "pipe", "leakdir/secret.txt"}
    assert not _stored_secret(store)


def test_artifact_locations_outside_the_source_are_not_followed_unless_allowed(
    made: dict[str, Made], tmp_path: Path, store: Path
) -> None:
    source, _ = _copy(made["sqlite"], tmp_path)
    outside = _secret(tmp_path)
    conn = sqlite3.connect(source)
    runs = [r for (r,) in conn.execute("SELECT run_uuid FROM runs WHERE lifecycle_stage = 'active' ORDER BY run_uuid")]
    uris = {runs[0]: str(outside), runs[1]: "../outside", runs[2]: "s3://bucket/artifacts", runs[3]: outside.as_uri()}
    conn.executemany("UPDATE runs SET artifact_uri = ? WHERE run_uuid = ?", [(u, r) for r, u in uris.items()])
    conn.commit()
    conn.close()
    digest = hashlib.sha256(source.read_bytes()).hexdigest()

    study = read_mlflow(source)
    by_id = {r.source_id: r for r in study.runs}
    for run_id in uris:
        assert by_id[run_id].files == {}
    lines = [line for line in study.unmapped if "lie outside the source's folder; not followed" in line]
    assert len(lines) == 1 and lines[0].startswith("artifacts of 3 runs")
    assert all(run_id in lines[0] for run_id in (runs[0], runs[1], runs[3]))
    assert any(line.startswith("artifacts of 1 runs are not local") and runs[2] in line for line in study.unmapped)

    result = _import(source, store, tmp_path)
    assert result.returncode == 0, result.stderr
    assert not _stored_secret(store)
    assert hashlib.sha256(source.read_bytes()).hexdigest() == digest  # read-only: the source is unchanged

    # The user may allow a folder explicitly.
    allowed = read_mlflow(source, artifact_roots=[outside])
    assert {k: v.read_bytes() for k, v in {r.source_id: r for r in allowed.runs}[runs[0]].files.items()} == {
        "secret.txt": SECRET
    }
    allowing = tmp_path / "allowing"
    result = _import(source, allowing, tmp_path, "--artifact-root", str(outside))  # and so may the command
    assert result.returncode == 0, result.stderr
    assert _stored_secret(allowing)


def test_file_store_metadata_is_read_only_from_regular_files_and_yaml_builds_no_objects(
    made: dict[str, Made], tmp_path: Path
) -> None:
    source, folder = _copy(made["file"], tmp_path)
    outside = _secret(tmp_path)
    run_a, run_b = (p.parent for p in _artifact_folders(folder)[:2])
    (run_a / "params" / "stolen").symlink_to(outside / "secret.txt")
    os.mkfifo(run_a / "tags" / "blocking")
    with open(run_a / "metrics" / "loss", "a") as f:
        f.write("not a metric line\n")
    pwned = tmp_path / "PWNED"
    (run_b / "meta.yaml").write_text(f"!!python/object/apply:os.system ['touch {pwned}']\n")

    study = read_mlflow(source)
    assert not pwned.exists()
    ids = {r.source_id for r in study.runs}
    assert run_b.name not in ids and run_a.name in ids
    (a,) = [r for r in study.runs if r.source_id == run_a.name]
    assert "stolen" not in a.params and not any("blocking" in n for n in a.notes)
    assert a.series["loss"] == [study_def.loss(a.params["n"], a.params["lr"], s) for s in range(study_def.LOSS_STEPS)]
    text = "\n".join(study.unmapped)
    assert "param 'stolen': not a regular file" in text
    assert "tag 'blocking': not a regular file" in text
    assert "metric 'loss' line 6: 'not a metric line'" in text
    assert f"{run_b.name}/meta.yaml: not YAML" in text


def test_rows_of_the_wrong_type_are_reported_not_guessed_and_the_rest_imports(
    made: dict[str, Made], tmp_path: Path, store: Path
) -> None:
    source, _ = _copy(made["sqlite"], tmp_path)
    conn = sqlite3.connect(source)
    (run_id,) = conn.execute("SELECT run_uuid FROM runs WHERE name = 'n3-lr0.1'").fetchone()
    conn.execute("UPDATE metrics SET value = 'lots' WHERE run_uuid = ? AND \"key\" = 'loss' AND step = 4", (run_id,))
    conn.execute("UPDATE runs SET start_time = 'yesterday' WHERE run_uuid = ?", (run_id,))
    conn.commit()
    conn.close()

    study = read_mlflow(source)
    (run,) = [r for r in study.runs if r.source_id == run_id]
    assert run.start is None and run.duration is None
    assert run.series["loss"] == [study_def.loss(3, 0.1, s) for s in range(4)]  # the tampered step is left out
    assert any(line.startswith("1 metric rows whose step, time or value is not a number") for line in study.unmapped)
    report = rec.import_mlflow(source, into=store)
    assert report.imported == len(study.runs)


def test_a_file_store_file_over_the_limit_is_listed_not_read(
    made: dict[str, Made], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A param, metric or meta.yaml over MAX_FILE_BYTES is not read into memory; the rest imports."""
    import recorder.importing.mlflow as reader

    source, folder = _copy(made["file"], tmp_path)
    run_a, run_b = (p.parent for p in _artifact_folders(folder)[:2])
    monkeypatch.setattr(reader, "MAX_FILE_BYTES", 4096)  # made small, so that the test writes kilobytes, not 256 MiB
    (run_a / "params" / "huge").write_bytes(b"x" * 5000)
    (run_b / "meta.yaml").write_bytes((run_b / "meta.yaml").read_bytes() + b"#" * 5000 + b"\n")
    study = read_mlflow(source)
    ids = {r.source_id for r in study.runs}
    assert run_a.name in ids and run_b.name not in ids
    (a,) = [r for r in study.runs if r.source_id == run_a.name]
    assert "huge" not in a.params and a.params["n"] in study_def.N_VALUES
    text = "\n".join(study.unmapped)
    assert "param 'huge': 5,000 bytes, over the 4,096 read, not read" in text
    assert f"{run_b.name}/meta.yaml: " in text and "over the 4,096 read; skipped" in text
