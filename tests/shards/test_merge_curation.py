"""Merge and extract carry curation: tags and notes as unions, deletions by event time (issue 18)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
from conftest import scalar

import recorder as rec
from recorder.read.show import show
from recorder.shards.curate import events

EXP = "exp"


def two_copies(tmp_path: Path, n: int = 3) -> tuple[Path, Path, list[str]]:
    """A store of ``n`` runs and a copy of it: the same runs in two shards."""
    a, b = tmp_path / "a", tmp_path / "b"
    with rec.Recorder(EXP, store=a, git=False) as r:
        for i in range(n):
            with r.run(x=i) as run:
                run.log(y=float(i), arr=np.arange(20_000, dtype=np.float64) + i)
    shutil.copytree(a, b)
    with rec.open(a) as db:
        return a, b, list(db.df(EXP)._run_id)


def tags_of(store: Path) -> dict[str, str | None]:
    with rec.open(store) as db:
        rows = db.sql(f'SELECT run_id, tags FROM "{EXP}"')
    return {i: (t if isinstance(t, str) else None) for i, t in zip(rows.run_id, rows.tags)}


def test_merging_shards_with_different_tags_on_one_run_gives_the_union_and_twice_changes_nothing(
    tmp_path: Path,
) -> None:
    a, b, ids = two_copies(tmp_path)
    rec.tag(ids[0], tags="good", store=a)
    rec.tag(ids[0], tags=["checked", "good"], store=b)
    rec.note(ids[0], text="from a", store=a)
    rec.note(ids[0], text="from b", store=b)
    into = tmp_path / "into"
    rec.merge([a, b], into)
    assert tags_of(into)[ids[0]] == "checked,good"
    with rec.open(into) as db:
        assert sorted(n["text"] for n in show(db, ids[0])["notes"]) == ["from a", "from b"]
    before = [
        scalar(into, f"SELECT count(*) FROM {table}") for table in ("run_tags", "run_notes", "curation_events", "runs")
    ]
    rec.merge([a, b], into)
    rec.merge(a, into)
    after = [
        scalar(into, f"SELECT count(*) FROM {table}") for table in ("run_tags", "run_notes", "curation_events", "runs")
    ]
    assert after == before == [2, 2, 4, 3]


def test_a_run_deleted_in_either_shard_stays_deleted_unless_restored_later(tmp_path: Path) -> None:
    a, b, ids = two_copies(tmp_path)
    rec.rm(ids[0], store=a)  # deleted in a only
    rec.rm(ids[1], store=a)
    time.sleep(0.01)  # event times are microseconds: the restore in b comes later
    rec.rm(ids[1], store=b)
    rec.restore(ids[1], store=b)  # restored later in b
    into = tmp_path / "into"
    rec.merge([a, b], into)
    with rec.open(into) as db:
        assert sorted(db.df(EXP)._run_id) == sorted([ids[1], ids[2]])
    rec.merge([b, a], into)  # order of sources and merging again change nothing
    with rec.open(into) as db:
        assert sorted(db.df(EXP)._run_id) == sorted([ids[1], ids[2]])
    assert [e["action"] for e in events(into)].count("rm") == 3


def test_a_later_rm_wins_over_an_earlier_restore(tmp_path: Path) -> None:
    a, b, ids = two_copies(tmp_path)
    rec.rm(ids[0], store=a)
    rec.restore(ids[0], store=a)
    time.sleep(0.01)
    rec.rm(ids[0], store=b)
    into = tmp_path / "into"
    rec.merge([a, b], into)
    with rec.open(into) as db:
        assert ids[0] not in set(db.df(EXP)._run_id)


def test_extract_copies_the_tags_and_notes_of_the_runs_it_copies(tmp_path: Path) -> None:
    a, _, ids = two_copies(tmp_path)
    rec.tag(ids, tags="all", store=a)
    rec.tag(ids[2], tags="best", store=a)
    rec.note(ids[2], text="keep", store=a)
    rec.note(ids[0], text="drop", store=a)
    into = tmp_path / "into"
    rec.extract(a, into, experiment=EXP, where="x = 2")
    assert tags_of(into) == {ids[2]: "all,best"}
    with rec.open(into) as db:
        assert [n["text"] for n in show(db, ids[2])["notes"]] == ["keep"]
    assert scalar(into, "SELECT count(*) FROM run_notes") == 1
