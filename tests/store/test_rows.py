"""How runs become rows: pset keys shared across sessions, hash collisions, the types of stored cells."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import recorder as rec
from recorder.codec.canonical import canonical_pset
from recorder.codec.hashing import pset_hash


def two(a: float, b: int) -> dict:
    return {"y": a * b, "z": a + b}


def db(store: Path) -> sqlite3.Connection:
    return sqlite3.connect(store / "recorder.sqlite")


def test_psets_already_in_the_store_are_shared_not_repeated(store: Path) -> None:
    first = list(rec.grid(a=[0.5, 1.5], b=[1, 2]))
    with rec.Recorder("e", store=store, git=False) as r:
        r.sweep(two, first, progress=False)
    # A new session knows none of the keys: with skip=None nothing is looked up before the
    # writer inserts, so the insert finds the existing psets (and adds the new one).
    with rec.Recorder("e", store=store, git=False) as r:
        r.sweep(two, [*first, {"a": 9.0, "b": 3}], skip=None, progress=False)
    conn = db(store)
    assert conn.execute("SELECT count(*) FROM psets").fetchone()[0] == 5
    per_pset = conn.execute("SELECT pset, count(*) FROM runs GROUP BY pset ORDER BY pset").fetchall()
    assert [n for _, n in per_pset] == [2, 2, 2, 2, 1]
    assert (
        conn.execute("SELECT count(*) FROM runs r LEFT JOIN psets p ON p.pk = r.pset WHERE p.pk IS NULL").fetchone()[0]
        == 0
    )


def test_psets_found_by_the_skip_check_are_reused(store: Path) -> None:
    psets = list(rec.grid(a=[0.5, 1.5], b=[1, 2, 3]))

    def fails(a: float, b: int) -> dict:
        raise ValueError("no")

    with rec.Recorder("e", store=store, git=False) as r:
        r.sweep(fails, psets, progress=False)
    with rec.Recorder("e", store=store, git=False) as r:  # failed runs do not count as done: all run again
        df = r.sweep(two, psets, progress=False)
    assert list(df["_status"]) == ["done"] * 6
    conn = db(store)
    assert conn.execute("SELECT count(*) FROM psets").fetchone()[0] == 6
    assert conn.execute("SELECT count(DISTINCT pset) FROM runs WHERE status = 'done'").fetchone()[0] == 6
    assert (
        conn.execute(
            "SELECT count(*) FROM runs AS f JOIN runs AS d ON d.pset = f.pset WHERE f.status = 'failed' AND d.status = 'done'"
        ).fetchone()[0]
        == 6
    )


@pytest.mark.parametrize("skip", ["done", None])
def test_a_pset_hash_collision_is_detected(store: Path, skip: str | None) -> None:
    with rec.Recorder("e", store=store, git=False) as r:
        r.sweep(two, [{"a": 0.5, "b": 1}], progress=False)
    _, canonical = canonical_pset({"a": 0.25, "b": 4})
    conn = db(store)
    with conn:  # forge a row that claims the hash of another pset
        conn.execute("INSERT INTO psets (hash, params) VALUES (?, ?)", (bytes.fromhex(pset_hash(canonical)), '{"x":1}'))
    conn.close()
    with pytest.raises(rec.StoreError, match="collision"), rec.Recorder("e", store=store, git=False) as r:
        r.sweep(two, [{"a": 0.25, "b": 4}], skip=skip, progress=False)


def test_ids_and_hashes_are_stored_as_blobs(store: Path) -> None:
    with rec.Recorder("e", store=store, git=False) as r:
        df = r.sweep(two, rec.grid(a=[0.5], b=[1, 2]), progress=False)
    conn = db(store)
    assert conn.execute("SELECT DISTINCT typeof(id), length(id) FROM runs").fetchall() == [("blob", 12)]
    assert conn.execute("SELECT DISTINCT typeof(hash), length(hash) FROM psets").fetchall() == [("blob", 10)]
    stored = conn.execute("SELECT lower(hex(id)) FROM runs ORDER BY pk").fetchall()
    assert [i for (i,) in stored] == list(df["_run_id"])
