"""Large arrays written at disk speed: hashed while written, synced in the background, once per batch.

A session's objects are made durable (their files and folders fsync'd)
before the rows naming them commit, not at each put; a process without a
session (a pool's worker) gets durable objects from each put.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import recorder as rec
from recorder.store import objects as objects_module
from recorder.store.objects import ObjectStore, deferring, make_durable, unsynced

BIG = 1 << 18  # float64 items: 2 MB, hashed in the helper thread


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob(".tmp-*"))


def test_a_large_put_stores_the_numpy_save_bytes_named_by_their_sha256(tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path / "objects")
    array = np.random.default_rng(1).random((512, 1024))  # 4 MB
    digest, size = objects.put(array)
    expected = npy(array)
    assert (digest, size) == (hashlib.sha256(expected).hexdigest(), len(expected))
    assert objects.path(digest).read_bytes() == expected
    assert temp_files(objects.root) == []
    assert unsynced() == 0  # no session here: the put returned a durable object


def test_a_large_put_found_stored_is_not_rewritten_and_its_temporary_file_goes(tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path / "objects")
    array = np.arange(BIG, dtype=np.float64)
    digest, size = objects.put(array)
    path = objects.path(digest)
    old = time.time_ns() - 3600 * 10**9
    os.utime(path, ns=(old, old))
    before = path.stat()
    assert objects.put(array.copy()) == (digest, size)
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, old, before.st_size)
    assert temp_files(objects.root) == []
    assert sorted(objects.root.glob("*/*")) == [path]


def test_a_truncated_stored_object_is_written_again(tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path / "objects")
    array = np.arange(BIG, dtype=np.float64)
    digest, size = objects.put(array)
    path = objects.path(digest)
    path.write_bytes(path.read_bytes()[: size // 2])
    assert objects.put(array) == (digest, size)
    assert objects.verify(digest)


def test_large_puts_from_several_threads_at_once_are_all_sound(tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path / "objects")
    arrays = [np.full(BIG, float(i)) for i in range(12)]
    digests: dict[int, str] = {}
    go = threading.Barrier(4)

    def put(first: int) -> None:
        go.wait(timeout=30)
        for i in range(first, 12, 4):
            digests[i] = objects.put(arrays[i])[0]

    threads = [threading.Thread(target=put, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(digests) == list(range(12))
    for i, digest in digests.items():
        assert digest == hashlib.sha256(npy(arrays[i])).hexdigest()
        assert objects.verify(digest)
    assert temp_files(objects.root) == []


def test_a_session_syncs_its_objects_at_the_commit_not_at_each_put(tmp_path: Path) -> None:
    with rec.Recorder("exp", store=tmp_path / "store", git=False, flush_interval=60) as r:
        assert deferring()
        with r.run(i=0) as run:
            run.log(a=np.full(BIG, 1.0), b=np.arange(20_000.0))  # one hashed in a thread, one not
        # Both files placed, neither yet waited for: the commit will.
        assert unsynced() >= 2
        r.flush()
        assert unsynced() == 0
        with rec.open(tmp_path / "store") as db:
            run_id = db.df("exp")["_run_id"][0]
            np.testing.assert_array_equal(db.array(run_id, "a", mmap=False), np.full(BIG, 1.0))
    assert not deferring()


def test_a_sweep_commits_its_objects_synced(tmp_path: Path) -> None:
    def model(i: int) -> dict:
        return {"a": np.full(BIG, float(i))}

    with rec.Recorder("exp", store=tmp_path / "store", git=False) as r:
        r.sweep(model, rec.plist("i", list(range(6))), progress=False, return_df=False)
        r.flush()
        assert unsynced() == 0
    with rec.open(tmp_path / "store") as db:
        df = db.df("exp")
        for i, run_id in zip(df["i"], df["_run_id"]):
            np.testing.assert_array_equal(db.array(run_id, "a", mmap=False), np.full(BIG, float(i)))
    assert temp_files(tmp_path / "store" / "objects") == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_defers_nothing_and_leaves_its_parents_objects_alone(tmp_path: Path) -> None:
    with rec.Recorder("exp", store=tmp_path / "store", git=False, flush_interval=60) as r:
        with r.run(i=0) as run:
            run.log(a=np.full(BIG, 1.0))
        pending = unsynced()
        assert pending >= 1
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child's verdict is its exit status
            try:
                ok = not deferring() and unsynced() == 0
                ObjectStore(tmp_path / "store" / "objects").put(np.full(BIG, 2.0))
                ok = ok and unsynced() == 0  # a worker's put returns a durable object
            finally:
                os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # The fork waited for the parent's objects (no thread of ours was copied into the child).
        assert unsynced() == 0
        make_durable()


def test_make_durable_reports_a_file_it_cannot_sync(tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path / "objects")
    digest, _ = objects.put(np.arange(20_000.0))
    make_durable()
    # An object gone before its sync could open it (as adopt() hands one over: by path): the commit must not
    # go ahead. Handed over already gone, so that the background sync cannot win a race with the unlink.
    gone = objects.path(digest).with_name("gone.npy")
    objects_module._DURABILITY.add(-1, str(gone), str(gone.parent), None)
    try:
        with pytest.raises(rec.ObjectError, match="cannot write 1 object file"):
            make_durable()
        # Never forgotten: a later commit must not go ahead either (a retried fsync may "succeed" without the data).
        with pytest.raises(rec.ObjectError, match="not committed"):
            make_durable()
    finally:
        objects_module._DURABILITY.forget()  # this test's process goes on with other tests
