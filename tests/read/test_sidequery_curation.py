"""db.df's helper process and curation: its row is used when nothing changed, and left when a run was
deleted meanwhile (the same number of runs is then not the same runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import recorder as rec
import recorder.read.frame
import recorder.store.db
from recorder.read.frame import frame
from recorder.read.sidequery import SideQuery
from recorder.store.objects import ObjectStore

FIXED = "CAST(group_concat(id, '') AS BLOB)"  # in the helper's query only


def build(store: Path, n: int = 20) -> list[str]:
    with rec.Recorder("exp", store=store, git=False) as r:
        for i in range(n):
            with r.run(a=i) as run:
                run.log(y=i * 1.5)
    with rec.open(store) as db:
        return list(db.df("exp")._run_id)


def read(store: Path, statements: list[str] | None = None, **options: Any) -> pd.DataFrame:
    conn = recorder.store.db.connect(store / "recorder.sqlite", readonly=True)
    if statements is not None:
        conn.set_trace_callback(statements.append)
    try:
        experiment = conn.execute("SELECT pk FROM experiments WHERE name = 'exp'").fetchone()[0]
        return frame(conn, experiment, ObjectStore(store / "objects"), **options)
    finally:
        conn.close()


def test_the_helpers_row_is_used_when_nothing_changed(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ids = build(store)
    rec.tag(ids[0], tags="t", store=store)  # a store with curation events
    alone = read(store, helper_min_runs=10**9)
    statements: list[str] = []
    helped = read(store, statements, helper_min_runs=0)
    pd.testing.assert_frame_equal(helped, alone)
    assert not any(FIXED in s for s in statements)  # this process did not read the fixed columns itself


def test_a_run_deleted_and_another_recorded_before_the_helper_reads_is_left_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    ids = build(store)
    before = read(store, helper_min_runs=10**9)
    rows: list[Any] = []

    class CurateFirst(SideQuery):
        """Just before the helper starts (after frame()'s transaction began): one run deleted, one recorded."""

        def __init__(self, database: Path, sql: str, values: list[Any]) -> None:
            rec.rm(ids[3], store=store)
            with rec.Recorder("exp", store=store, git=False) as r, r.run(a=999) as run:
                run.log(y=1.0)
            super().__init__(database, sql, values)

        def result(self) -> tuple[bytes | None, ...] | None:
            rows.append(super().result())
            return rows[-1]

    monkeypatch.setattr(recorder.read.frame, "SideQuery", CurateFirst)
    statements: list[str] = []
    got = read(store, statements, helper_min_runs=0)
    assert int(rows[0][0]) == len(before)  # the helper saw as many runs, but not the same ones ...
    assert any(FIXED in s for s in statements)  # ... so this process read them itself
    pd.testing.assert_frame_equal(
        got.assign(_session=got["_session"].astype(str)), before.assign(_session=before["_session"].astype(str))
    )
