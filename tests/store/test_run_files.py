"""Files a run leaves in ``rec.current_run().dir``: stored as results, deduplicated, verified, gc'd, merged, copied out."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import recorder as rec
from recorder.errors import FileRefused
from recorder.read.files import copy_out
from recorder.shards.maintenance import gc, verify


def writes(a: int) -> dict:
    """Write out.txt (equal for equal a % 2) and a .npy; return a scalar."""
    folder = rec.current_run().dir
    (folder / "out.txt").write_text(f"parity {a % 2}\n")
    np.save(folder / "field.npy", np.arange(4) * (a % 2))
    (folder / "sub").mkdir()
    (folder / "sub" / "log.txt").write_text("same in every run\n")
    return {"y": a}


def links(a: int) -> None:
    folder = rec.current_run().dir
    (folder / "kept.txt").write_text("x")
    os.symlink("/etc/hostname", folder / "outside")


def fifo(a: int) -> None:
    folder = rec.current_run().dir
    (folder / "ok.txt").write_text("ok")
    os.mkfifo(folder / "pipe")


def big(a: int) -> None:
    (rec.current_run().dir / "big.bin").write_bytes(b"x" * a)


def fails(a: int) -> None:
    (rec.current_run().dir / "partial.txt").write_text("what went wrong")
    raise RuntimeError("diverged")


def _files(store: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        return conn.execute(
            "SELECT lower(hex(r.id)), x.name, x.value FROM results x JOIN runs r ON r.pk = x.run "
            "WHERE x.kind = 'file' ORDER BY r.pk, x.name"
        ).fetchall()
    finally:
        conn.close()


def _recorder(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from recorder.cli.commands import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_files_are_recorded_deduplicated_shown_restored_and_verified(store: Path, tmp_path: Path, workers: int) -> None:
    with rec.Recorder("f", store=store, git=False) as r:
        df = r.sweep(writes, rec.plist("a", [1, 2, 3]), workers=workers)
    assert set(df["_status"]) == {"done"}
    files = _files(store)
    assert {name for _, name, _ in files} == {"field.npy", "out.txt", "sub/log.txt"} and len(files) == 9
    digests = {d for _, _, d in files}
    assert len(digests) == 5  # parity 0/1 texts, two arrays, one shared log: equal content stored once
    with sqlite3.connect(store / "recorder.sqlite") as conn:
        rows = conn.execute("SELECT digest, dtype, size FROM objects WHERE dtype = 'file'").fetchall()
    assert {d for d, _, _ in rows} == digests
    assert not (store / "runs").exists() or not any((store / "runs").iterdir())  # keep_files="store": removed
    run_id = df["_run_id"][0]
    with rec.open(store) as db:
        path = db.file(run_id, "out.txt")
        assert path.read_text() == "parity 1\n"
        assert not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)  # read-only
        assert np.load(db.file(run_id, "field.npy")).tolist() == [0, 1, 2, 3]
        with pytest.raises(rec.RecorderError, match=r"no file 'nope\.txt'"):
            db.file(run_id, "nope.txt")
    shown = _recorder("--store", str(store), "show", run_id)
    assert shown.returncode == 0, shown.stderr
    assert "out.txt = file (9 bytes, object" in shown.stdout and "sub/log.txt = file" in shown.stdout
    out = tmp_path / "restored"
    copied = _recorder("--store", str(store), "files", run_id, "--into", str(out))
    assert copied.returncode == 0, copied.stderr
    assert (out / "out.txt").read_text() == "parity 1\n" and (out / "sub" / "log.txt").exists()
    assert np.load(out / "field.npy").tolist() == [0, 1, 2, 3]
    assert verify(store) == []
    victim = next(d for _, name, d in files if name == "out.txt")
    object_path = store / "objects" / victim[:2] / f"{victim[2:]}.npy"
    os.chmod(object_path, 0o644)
    object_path.write_text("tampered\n")
    problems = verify(store)
    assert {(p.what, p.digest) for p in problems} == {("corrupt", victim)}


def test_gc_keeps_referenced_files_and_removes_unreferenced(store: Path) -> None:
    with rec.Recorder("f", store=store, git=False) as r:
        r.sweep(writes, rec.plist("a", [1, 2]))
    files = _files(store)
    gone = next(d for _, name, d in files if name == "out.txt")  # parity 1: only run a=1 has it
    assert gc(store).files == 0
    with sqlite3.connect(store / "recorder.sqlite") as conn:
        conn.execute("DELETE FROM results WHERE kind = 'file' AND value = ?", (gone,))
    report = gc(store)
    assert report.files == 1
    assert not (store / "objects" / gone[:2] / f"{gone[2:]}.npy").exists()
    assert verify(store) == []


def test_merge_and_extract_copy_file_objects(tmp_path: Path) -> None:
    shard = tmp_path / "shard"
    with rec.Recorder("f", store=shard, git=False) as r:
        df = r.sweep(writes, rec.plist("a", [1]))
    rec.merge(shard, tmp_path / "all")
    with rec.open(tmp_path / "all") as db:
        assert db.file(df["_run_id"][0], "out.txt").read_text() == "parity 1\n"
    assert verify(tmp_path / "all") == []
    rec.extract(tmp_path / "all", tmp_path / "part", where="a = 1")
    with rec.open(tmp_path / "part") as db:
        assert db.file(df["_run_id"][0], "sub/log.txt").read_text() == "same in every run\n"
    assert verify(tmp_path / "part") == []


def test_links_are_recorded_not_followed(store: Path) -> None:
    with rec.Recorder("f", store=store, git=False) as r:
        df = r.sweep(links, rec.plist("a", [1]))
    assert df["_status"].tolist() == ["done"]
    with rec.open(store) as db:
        assert db.result(df["_run_id"][0], "outside") == "/etc/hostname"  # the target, as text
        kind = db.conn.execute("SELECT kind FROM results WHERE name = 'outside'").fetchone()[0]
    assert kind == "link" and [n for _, n, _ in _files(store)] == ["kept.txt"]
    shown = _recorder("--store", str(store), "show", df["_run_id"][0])
    assert "outside = link to '/etc/hostname' (not followed)" in shown.stdout


def test_a_file_that_cannot_be_stored_fails_its_run_not_the_sweep(store: Path) -> None:
    with pytest.warns(rec.RecorderWarning, match="1 of 1 runs failed"), rec.Recorder("f", store=store, git=False) as r:
        df = r.sweep(fifo, rec.plist("a", [1]))
        df2 = r.sweep(writes, rec.plist("a", [5]))
    assert df["_status"].tolist() == ["failed"] and df2["_status"].tolist() == ["done"]
    with rec.open(store) as db:
        error = db.conn.execute("SELECT error FROM runs WHERE status = 'failed'").fetchone()[0]
    assert "FileRefused" in error and "not a regular file" in error
    assert (store / "runs" / df["_run_id"][0] / "ok.txt").exists()  # the folder is kept


def test_max_file_bytes(store: Path) -> None:
    with pytest.warns(rec.RecorderWarning, match="1 of 2 runs failed"), rec.Recorder("f", store=store, git=False) as r:
        df = r.sweep(big, rec.plist("a", [10, 11]), max_file_bytes=10)
    assert df["_status"].tolist() == ["done", "failed"]
    with rec.open(store) as db:
        error = db.conn.execute("SELECT error FROM runs WHERE status = 'failed'").fetchone()[0]
    assert "max_file_bytes=10" in error


def test_a_failed_runs_files_are_stored_before_its_folder_goes(store: Path) -> None:
    with pytest.warns(rec.RecorderWarning), rec.Recorder("f", store=store, git=False) as r:
        df = r.sweep(fails, rec.plist("a", [1]))
    assert df["_status"].tolist() == ["failed"]
    with rec.open(store) as db:
        assert db.file(df["_run_id"][0], "partial.txt").read_text() == "what went wrong"
    assert not (store / "runs" / df["_run_id"][0]).exists()


def test_keep_files_both_and_folder(store: Path) -> None:
    with rec.Recorder("f", store=store, git=False, keep_files="both") as r:
        both = r.sweep(writes, rec.plist("a", [1]))
    assert (store / "runs" / both["_run_id"][0] / "out.txt").read_text() == "parity 1\n"
    assert len(_files(store)) == 3
    with rec.Recorder("f", store=store, git=False) as r:
        listed = r.sweep(writes, rec.plist("a", [2]), keep_files="folder")
    run_id = listed["_run_id"][0]
    assert (store / "runs" / run_id / "out.txt").read_text() == "parity 0\n"
    assert len(_files(store)) == 3  # none stored for the second run
    with rec.open(store) as db:
        entry = db.result(run_id, "out.txt")
    assert entry == {"bytes": 9, "sha256": hashlib.sha256(b"parity 0\n").hexdigest()}
    with pytest.raises(rec.RecorderError, match="keep_files='elsewhere'"):
        rec.Recorder("f", store=store, git=False, keep_files="elsewhere")


def test_with_run_blocks_store_their_files(store: Path) -> None:
    with rec.Recorder("f", store=store, git=False) as r, r.run(a=1) as run:
        (run.dir / "notes.md").write_text("# notes\n")
    with rec.open(store) as db:
        assert db.file(run.id, "notes.md").read_text() == "# notes\n"


def test_files_never_copied_outside_the_folder(store: Path, tmp_path: Path) -> None:
    with rec.Recorder("f", store=store, git=False) as r:
        df = r.sweep(writes, rec.plist("a", [1]))
    run_id = df["_run_id"][0]
    with sqlite3.connect(store / "recorder.sqlite") as conn:  # a hostile store: a name that climbs out
        conn.execute("UPDATE results SET name = '../escaped.txt' WHERE name = 'out.txt'")
    into = tmp_path / "into"
    with rec.open(store) as db, pytest.raises(FileRefused, match="would leave the folder"):
        copy_out(db, run_id, into)
    assert not (tmp_path / "escaped.txt").exists() and not into.exists()
    done = _recorder("--store", str(store), "files", run_id, "--into", str(into))
    assert done.returncode != 0 and "would leave the folder" in done.stderr and len(done.stderr.splitlines()) == 1


def _one_run_with_files(store: Path) -> str:
    with rec.Recorder("hostile-files", store=store, git=False) as r:
        r.sweep(writes, rec.plist("a", [1]), progress=False)
    return _files(store)[0][0]


def test_files_into_refuses_clashing_names_before_writing_anything(store: Path, tmp_path: Path) -> None:
    """A crafted store naming 'out.txt' also as a folder ('out.txt/x') writes nothing."""
    run = _one_run_with_files(store)
    conn = sqlite3.connect(store / "recorder.sqlite")
    conn.execute("UPDATE results SET name = 'out.txt/x' WHERE kind = 'file' AND name = 'sub/log.txt'")
    conn.commit()
    conn.close()
    into = tmp_path / "into"
    with rec.open(store) as db, pytest.raises(FileRefused, match="as a file and a folder"):
        copy_out(db, run, into)
    assert not into.exists() or list(into.iterdir()) == []


def test_files_into_a_missing_or_fifo_object_is_an_object_error(store: Path, tmp_path: Path) -> None:
    """A missing object is one line (ObjectError), and a FIFO planted as an object never blocks the copy."""
    run = _one_run_with_files(store)
    digest = next(d for r, name, d in _files(store) if name == "out.txt")
    with rec.open(store) as db:
        path = db.objects.file(digest)
    path.unlink()
    done = _recorder("--store", str(store), "files", run, "--into", str(tmp_path / "a"))
    assert done.returncode == rec.ObjectError.exit_code and "recorder: error:" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    os.mkfifo(path)
    done = _recorder("--store", str(store), "files", run, "--into", str(tmp_path / "b"))
    assert done.returncode == rec.ObjectError.exit_code and "not a regular file" in done.stderr, done.stderr


def test_a_runs_link_in_the_store_is_never_followed(store: Path, tmp_path: Path) -> None:
    """A store whose runs/ is a link out of it: the run that uses its folder fails; nothing is written there."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    store.mkdir(exist_ok=True)
    os.symlink(elsewhere, store / "runs")
    with rec.Recorder("linked-runs", store=store, git=False) as r, pytest.warns(rec.RecorderWarning):
        df = r.sweep(writes, rec.plist("a", [1]), progress=False)
    assert df["_status"].tolist() == ["failed"] and "LinkInStore" in df["_error"][0]
    assert list(elsewhere.iterdir()) == []


def test_gc_removes_a_file_copy_a_crash_left_long_ago(store: Path) -> None:
    """put_file copies into objects/.tmp-file-…; a copy a crash left behind is gc's, once it is old."""
    _one_run_with_files(store)
    objects = store / "objects"
    old, fresh = objects / ".tmp-file-1-deadbeef", objects / ".tmp-file-2-cafef00d"
    old.write_bytes(b"half a file")
    fresh.write_bytes(b"being copied now")
    os.utime(old, (1, 1))
    gc(store)
    assert not old.exists() and fresh.exists()


def test_db_file_of_a_missing_or_fifo_object_is_an_object_error(store: Path) -> None:
    run = _one_run_with_files(store)
    with rec.open(store) as db:
        path = db.file(run, "out.txt")
        path.chmod(0o644)
        path.unlink()
        with pytest.raises(rec.ObjectError, match="missing"):
            db.file(run, "out.txt")
        os.mkfifo(path)
        with pytest.raises(rec.ObjectError, match="not a regular file"):
            db.file(run, "out.txt")
