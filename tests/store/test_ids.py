"""Ids: unique, time-ordered, and distinct across forked processes."""

from __future__ import annotations

import os
import time

import pytest

import recorder.store.ids
from recorder.store.ids import iso_utc, new_id


def test_ids_increase_strictly_within_a_process() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_id_starts_with_the_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    stamp = int(new_id()[:12], 16)
    assert before <= stamp <= time.time_ns() // 1_000_000


# The children only make ids: safe even when the test process runs threads (jax, imported by its tests).
@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_children_do_not_repeat_ids() -> None:
    new_id()
    read, write = os.pipe()
    children = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:  # child: report an id made in the same millisecond as its siblings
            os.write(write, (new_id() + "\n").encode())
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    os.close(write)
    ids = os.read(read, 10_000).decode().split()
    os.close(read)
    assert len(ids) == 4 and len(set(ids)) == 4


def test_iso_utc() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00.000000Z"
    assert iso_utc(1.9999999) == "1970-01-01T00:00:02.000000Z"
    assert iso_utc(1_700_000_000.25) == "2023-11-14T22:13:20.250000Z"


@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_repeat_the_parents_next_id() -> None:
    for _ in range(20):  # fork within the millisecond of the parent's last id, many times
        read, write = os.pipe()
        new_id()
        pid = os.fork()
        if pid == 0:
            os.write(write, new_id().encode())
            os._exit(0)
        mine = new_id()
        os.waitpid(pid, 0)
        os.close(write)
        theirs = os.read(read, 100).decode()
        os.close(read)
        assert theirs != mine


def test_ids_of_one_millisecond_count_up_and_carry_into_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    import recorder.store.ids as ids

    later = (time.time_ns() // 1_000_000 + 60_000) << 48  # a minute ahead: the clock cannot catch up
    monkeypatch.setattr(ids, "_last", later | ((1 << 48) - 2))
    assert int(new_id(), 16) == later | ((1 << 48) - 1)
    assert int(new_id(), 16) == later + (1 << 48)  # the next millisecond, the counter at 0


# -- short ids: a unique suffix, looked up through an index ---------------------------------------

import sqlite3  # noqa: E402
from pathlib import Path  # noqa: E402

from conftest import undo_schema_5  # noqa: E402

import recorder as rec  # noqa: E402
from recorder.store.ids import SHORT_LENGTH  # noqa: E402


def _sweep(store: Path, n: int) -> list[str]:
    with rec.Recorder("exp", store=store, git=False) as r:
        df = r.sweep(lambda x: {"y": x}, rec.grid(x=list(range(n))), progress=False)
    return list(df["_run_id"])


def _add_runs(store: Path, ids: list[str]) -> None:
    """Copy the first run of the store under each of ``ids`` (crafted ids, for collisions)."""
    conn = sqlite3.connect(store / "recorder.sqlite")
    columns = "experiment, session, pset, status, time_start_ms, duration_us, seed, scalars"
    with conn:
        conn.executemany(
            f"INSERT INTO runs (id, {columns}) SELECT ?, {columns} FROM runs ORDER BY pk LIMIT 1",
            [(bytes.fromhex(run_id),) for run_id in ids],
        )
    conn.close()


def test_runs_of_one_sweep_share_prefixes_but_not_short_ids(store: Path) -> None:
    ids = _sweep(store, 200)
    assert len({i[:16] for i in ids}) < len(ids)  # why prefixes are not typeable
    with rec.open(store) as db:
        shorts = [db.short_id(i) for i in ids]
        assert len(set(shorts)) == len(ids)
        for full, short in zip(ids, shorts):
            assert full.endswith(short) and SHORT_LENGTH <= len(short) <= 12
            assert db.resolve(short) == full and db.resolve(short.upper()) == full
            assert db.result(short, "y") == db.result(full, "y")
            if sum(i.endswith(full[-SHORT_LENGTH:]) for i in ids) == 1:
                assert len(short) == SHORT_LENGTH
        assert db.resolve(ids[0]) == ids[0]


def test_a_shared_tail_makes_the_short_id_longer(store: Path) -> None:
    (first,) = _sweep(store, 1)
    twin = f"{int(first[:12], 16) + 1:012x}" + "0" + first[-11:]  # the same last 11 digits
    if twin[12] == first[12]:
        twin = twin[:12] + "1" + twin[13:]
    _add_runs(store, [twin])
    with rec.open(store) as db:
        assert db.short_id(first) == first[-12:] and db.short_id(twin) == twin[-12:]
        assert recorder.store.ids.short_ids(db.conn, [first, twin]) == {first: first[-12:], twin: twin[-12:]}
        assert db.resolve(first[-12:]) == first and db.resolve(twin[-12:]) == twin
        with pytest.raises(rec.RecorderError, match="ambiguous") as info:
            db.resolve(first[-8:])
        assert first in str(info.value) and twin in str(info.value)


def test_a_suffix_that_is_another_runs_prefix_is_not_short(store: Path) -> None:
    (first,) = _sweep(store, 1)
    other = first[-SHORT_LENGTH:] + "0" * (24 - SHORT_LENGTH)  # starts with first's 8-digit tail
    _add_runs(store, [other])
    with rec.open(store) as db:
        short = db.short_id(first)
        assert len(short) > SHORT_LENGTH and db.resolve(short) == first
        assert recorder.store.ids.short_ids(db.conn, [first, other]) == {first: short, other: db.short_id(other)}
        with pytest.raises(rec.RecorderError, match="ambiguous"):
            db.resolve(first[-SHORT_LENGTH:])


def test_a_short_id_is_an_indexed_lookup(store: Path) -> None:
    from recorder.store import ids as ids_module

    _sweep(store, 3)
    conn = sqlite3.connect(store / "recorder.sqlite")
    plan = " ".join(str(row) for row in conn.execute("EXPLAIN QUERY PLAN " + ids_module.BY_TAIL, (b"\0" * 4, "%0")))
    conn.close()
    assert "runs_tail" in plan, plan


def test_an_older_store_gets_the_index(store: Path) -> None:
    ids = _sweep(store, 3)
    conn = sqlite3.connect(store / "recorder.sqlite")
    conn.execute("DROP INDEX runs_tail")
    undo_schema_5(conn)  # a store of schema 2 has none of it
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    with rec.open(store) as db:
        assert db.resolve(ids[1][-SHORT_LENGTH:]) == ids[1]
    conn = sqlite3.connect(store / "recorder.sqlite")
    assert conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'runs_tail'").fetchone()[0] == 1
    conn.close()


def test_short_ids_of_a_store_of_10_5_runs_have_at_most_12_digits(store: Path) -> None:
    """10^5 ids made as a fast sweep makes them (many in one millisecond): every short id fits 12 digits."""
    _sweep(store, 1)
    ids = [new_id() for _ in range(100_000)]
    _add_runs(store, ids)
    from collections import Counter

    from recorder.store.ids import short_id, short_ids

    every = _all_ids(store)
    # What the short ids must be, by brute force in memory: the shortest suffix no other id ends or starts with.
    ends = {k: Counter(i[-k:] for i in every) for k in range(SHORT_LENGTH, 13)}
    starts = {k: Counter(i[:k] for i in every) for k in range(SHORT_LENGTH, 13)}
    expected = {
        i: next(
            (
                i[-k:]
                for k in range(SHORT_LENGTH, 13)
                if ends[k][i[-k:]] == 1 and starts[k][i[-k:]] == (i[:k] == i[-k:])
            ),
            i,
        )
        for i in ids
    }
    assert max(len(v) for v in expected.values()) <= 12
    assert sum(len(v) == SHORT_LENGTH for v in expected.values()) > 0.99 * len(ids)
    # The store finds the same (through its index), for a sample and for every id that needed more digits.
    conn = sqlite3.connect(f"file:{store / 'recorder.sqlite'}?mode=ro", uri=True)
    checked = ids[::50] + [i for i, v in expected.items() if len(v) > SHORT_LENGTH]
    assert {i: short_id(conn, i) for i in checked} == {i: expected[i] for i in checked}
    # In bulk, as `recorder log` asks (a few queries per batch): the same answers.
    assert short_ids(conn, checked) == {i: expected[i] for i in checked}
    assert short_ids(conn, ids[:256]) == {i: expected[i] for i in ids[:256]}
    conn.close()


def _all_ids(store: Path) -> list[str]:
    conn = sqlite3.connect(store / "recorder.sqlite")
    found = [row[0] for row in conn.execute("SELECT lower(hex(id)) FROM runs")]
    conn.close()
    return found
