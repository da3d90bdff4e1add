"""Hostile spill files read by recovery and by a sweep salvaging a dead worker's run: links and memory.

The files are made as recorder makes them (:class:`recorder.store.spill.SpillFile`), in a real store,
then crafted; they are read by the functions recovery and the sweep call.
"""

from __future__ import annotations

import array
import os
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from recorder.codec.canonical import canonical_pset
from recorder.codec.hashing import pset_hash
from recorder.errors import RecorderWarning
from recorder.store.folder import Store
from recorder.store.layout import locks_folder
from recorder.store.objects import ObjectStore
from recorder.store.pending import PendingRun
from recorder.store.spill import SpillFile, read_spills, salvage, spill_folder

SESSION = "a" * 24


def _spill(folder: Path, run_id: str) -> SpillFile:
    clean, canonical = canonical_pset({"n": 1})
    run = PendingRun(run_id, pset_hash(canonical), canonical, 1, 1.7e9, tuple(clean), None)
    run.status = "interrupted"
    return SpillFile(folder, run)


def _locks(store: Path) -> Path:
    Store.open(store).close()
    return locks_folder(store, create=True)


def test_salvage_never_reads_nor_removes_a_spill_file_through_a_folder_that_is_a_link(
    tmp_path: Path, store: Path
) -> None:
    locks = _locks(store)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_id = "b" * 24
    spill = _spill(elsewhere, run_id)
    spill.write([("loss", array.array("d", [1.0, 2.0]))])
    spill.close()
    spill_folder(locks, SESSION).symlink_to(elsewhere)  # the session's spill folder, a link out of the store

    with pytest.warns(RecorderWarning, match="not a folder"):
        found = salvage(locks, SESSION, run_id, ObjectStore(store / "objects"))

    assert found is None  # nothing read through the link
    assert (elsewhere / f"{run_id}.spill").is_file()  # nothing removed outside the store


def _frame(body: bytes) -> bytes:
    return struct.pack("<2sII", b"SF", len(body), zlib.crc32(body)) + body


def test_a_spill_file_is_read_in_memory_in_proportion_to_its_size(store: Path) -> None:
    locks = _locks(store)
    folder = spill_folder(locks, SESSION)
    objects = ObjectStore(store / "objects")
    small = _spill(folder, "c" * 24)
    small.write([("loss", array.array("d", [1.0]))])
    small.close()
    read_spills(locks, SESSION, objects)  # what reading imports and caches once, not measured
    os.unlink(small.path)
    # A run with flush_interval=0: one flush per append, a frame of one value each (as recorder writes them).
    spill = _spill(folder, "d" * 24)
    for i in range(100_000):
        spill.write([("loss", array.array("q" if i % 2 else "d", [i]))])
    spill.close()
    size = os.path.getsize(spill.path)

    tracemalloc.start()
    try:
        (run,) = read_spills(locks, SESSION, objects)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert run.id == "d" * 24 and "loss: 100000 values" in (run.error or "")
    stored = objects.get(run.results["loss_series"].value)  # ints and floats flushed in turn: all floats
    assert stored.dtype == np.float64 and np.array_equal(stored, np.arange(100_000, dtype=np.float64))
    assert peak < size, f"reading a spill file of {size} bytes took {peak} bytes"  # was ten times its size


def test_a_frame_of_series_without_values_is_refused(store: Path) -> None:
    locks = _locks(store)
    spill = _spill(spill_folder(locks, SESSION), "e" * 24)
    entry = struct.pack("<BHI", 1, 1, 0) + b"x"  # a series with no values: recorder never writes one
    spill._write(_frame(entry * 100_000))  # crafted: each such entry took an array's worth of memory
    spill.close()

    with pytest.warns(RecorderWarning, match="holds no values"):
        assert read_spills(locks, SESSION, ObjectStore(store / "objects")) == []
