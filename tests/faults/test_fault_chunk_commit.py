"""A vectorised chunk queued as one item is committed whole or not at all, and kept for the next try."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

import recorder as rec
from recorder.codec.hashing import pset_identities
from recorder.errors import StoreError
from recorder.store.ids import new_ids
from recorder.store.pending import PendingRun
from recorder.store.rows import DoneChunk


def chunk(count: int, start: float) -> DoneChunk:
    texts = [f'{{"a":{start + i!r}}}' for i in range(count)]
    hashes, seeds = pset_identities(None)(texts)
    runs = [
        PendingRun(run_id, h, text, seed, time.time(), ("a",))
        for run_id, h, text, seed in zip(new_ids(count), hashes, texts, seeds)
    ]
    return DoneChunk(runs, list(range(count)), time.time(), 0.001, [f'{{"y":{i}}}' for i in range(count)], ("y",))


def runs(store: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        return conn.execute(
            "SELECT p.params, r.scalars FROM runs AS r JOIN psets AS p ON p.pk = r.pset ORDER BY r.pk"
        ).fetchall()
    finally:
        conn.close()


def test_a_chunk_the_database_refuses_stays_queued_whole_and_commits_at_the_next_flush(store: Path) -> None:
    with rec.Recorder("c", store=store, git=False, flush_interval=60) as r:
        _, writer, _ = r.writing()
        with writer.inline():
            first, second = chunk(5, 0.5), chunk(3, 10.5)
            writer.finished_many(first)
            writer._conn.execute("PRAGMA query_only = ON")  # the database refuses every write, as a full disk would
            with pytest.raises(StoreError, match="readonly"):
                writer.flush()
            assert runs(store) == []  # nothing of the chunk: not a part of it
            assert writer._chunks == 1 and writer._chunk_runs == 5  # kept, counted as queued runs
            writer._conn.execute("PRAGMA query_only = OFF")
            writer.finished_many(second)
            writer.flush()
    stored = runs(store)
    assert [params for params, _ in stored] == [f'{{"a":{0.5 + i!r}}}' for i in range(5)] + [
        f'{{"a":{10.5 + i!r}}}' for i in range(3)
    ]
    assert [scalars for _, scalars in stored] == [f'{{"y":{i}}}' for i in range(5)] + [f'{{"y":{i}}}' for i in range(3)]
