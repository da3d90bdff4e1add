"""Ids: unique, time-ordered, and distinct across forked processes."""

from __future__ import annotations

import os
import time

import pytest

from recorder.ids import iso_utc, new_id


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
    import recorder.ids as ids

    later = (time.time_ns() // 1_000_000 + 60_000) << 48  # a minute ahead: the clock cannot catch up
    monkeypatch.setattr(ids, "_last", later | ((1 << 48) - 2))
    assert int(new_id(), 16) == later | ((1 << 48) - 1)
    assert int(new_id(), 16) == later + (1 << 48)  # the next millisecond, the counter at 0
