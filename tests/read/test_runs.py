"""``recorder.read.runs``: an experiment's runs as a table (what ``recorder runs`` shows)."""

from __future__ import annotations

from pathlib import Path

import pytest

import recorder as rec
import recorder.read.show
from recorder.read.runs import RunsTable, number_text, runs


def make(store: Path) -> list[str]:
    """lorenz: six done runs on a grid of a and b, then a failed one; the ids in the order recorded."""
    ids = []
    with rec.Recorder("lorenz", store=store, git=False) as r:
        for a in (1, 2, 3):
            for b in (8, 9):
                with r.run(a=a, b=b, label=f"a{a}") as run:
                    run.log(energy=a * b / 3, steps=a * 10)
                ids.append(run.id)
        failing = r.run(a=4, b=9, label="bad")
        with pytest.raises(ValueError), failing:
            raise ValueError("diverged\nat step 3")
        ids.append(failing.id)
    return ids


def table(store: Path, **options: object) -> RunsTable:
    with rec.open(store) as db:
        return runs(db, "lorenz", **options)  # type: ignore[arg-type]


def test_newest_first_with_every_param_and_result(store: Path) -> None:
    ids = make(store)
    t = table(store)
    assert t.params == ["a", "b", "label"] and t.results == ["energy", "steps"]
    assert [e["run_id"] for e in t.runs] == ids[::-1] and t.total == 7
    newest = t.runs[0]
    assert newest["status"] == "failed" and newest["error"] == "ValueError: diverged at step 3"
    assert newest["params"] == {"a": 4, "b": 9, "label": "bad"} and newest["results"] == {}
    assert t.runs[1]["results"] == {"energy": 9.0, "steps": 30}
    assert t.runs[1]["short_id"] == ids[-2][-8:]


def test_limit_keeps_the_newest_and_counts_all(store: Path) -> None:
    ids = make(store)
    t = table(store, limit=2)
    assert [e["run_id"] for e in t.runs] == ids[:-3:-1] and t.total == 7
    assert len(table(store, limit=None).runs) == 7
    with pytest.raises(rec.RecorderError, match="limit=0"):
        table(store, limit=0)


def test_where_and_status_narrow(store: Path) -> None:
    ids = make(store)
    t = table(store, where="b = 9 AND energy > 4")
    assert [e["run_id"] for e in t.runs] == [ids[5], ids[3]] and t.total == 2
    assert [e["run_id"] for e in table(store, status="failed").runs] == [ids[6]]
    assert len(table(store, status=["done", "failed"]).runs) == 7
    with pytest.raises(rec.RecorderError, match="cannot select runs where"):
        table(store, where="nope = 1")
    with pytest.raises(rec.RecorderError, match="'finished' is not one of"):
        table(store, status="finished")


def test_where_cannot_write(store: Path) -> None:
    """``where`` runs on the read-only connection, in a query of its own: it only narrows."""
    make(store)
    with pytest.raises(rec.RecorderError):
        table(store, where="1); DELETE FROM runs; --")
    assert table(store).total == 7


def test_sort_by_result_ascending_and_descending_missing_last(store: Path) -> None:
    ids = make(store)
    up = [e["run_id"] for e in table(store, sort="energy").runs]
    # energy a*b/3: (1,8) 2.67, (1,9) 3, (2,8) 5.33, (2,9) 6, (3,8) 8, (3,9) 9; the failed run has none.
    assert up == ids
    down = [e["run_id"] for e in table(store, sort="energy", descending=True).runs]
    assert down == [*ids[5::-1], ids[6]]
    assert [e["run_id"] for e in table(store, sort="energy", descending=True, limit=2).runs] == [ids[5], ids[4]]
    by_param = [e["params"]["b"] for e in table(store, sort="b", where="a < 3").runs]
    assert by_param == [8, 8, 9, 9]
    assert table(store, sort="duration_s").total == 7


def test_sort_by_unknown_name_says_which_exist(store: Path) -> None:
    make(store)
    with pytest.raises(rec.RecorderError, match=r"cannot sort by 'nope'.*'energy'"):
        table(store, sort="nope")


def test_unknown_experiment(store: Path) -> None:
    make(store)
    with rec.open(store) as db, pytest.raises(rec.ExperimentNotFound):
        runs(db, "nope")


def test_number_text_precision() -> None:
    assert number_text(2 / 3, 3) == "0.667"
    assert number_text(2 / 3, None) == repr(2 / 3)
    assert number_text(12345678901234567, 3) == "12345678901234567"  # ints always exact
    assert number_text(True, 3) == "True"
    assert number_text(float("nan"), 3) == "nan"


def test_text_results_are_shown(store: Path) -> None:
    """An experiment whose only results are text: they are rows of ``results``, read too (log as well)."""
    with rec.Recorder("notes", store=store, git=False) as r, r.run(p="x") as run:
        run.log(note="hello")
    with rec.open(store) as db:
        (entry,) = runs(db, "notes").runs
        (logged,) = rec.read.show.log(db, "notes")
    assert entry["results"] == {"note": "hello"} and logged["results"] == {"note": "hello"}
