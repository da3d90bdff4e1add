"""Curation: tags, notes, soft delete and restore, purge, and the events that record each (issue 18)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from conftest import scalar

import recorder as rec
from recorder.read.show import log, show
from recorder.shards.curate import NOTE_MAX_BYTES, events
from recorder.shards.maintenance import verify
from recorder.store.db import SCHEMA_VERSION

EXP = "exp"


def record(store: Path, n: int = 5, *, exp: str = EXP, size: int = 20_000) -> list[str]:
    """Record ``n`` runs of ``exp``, each with a distinct array big enough to be an object file; return their ids."""
    with rec.Recorder(exp, store=store, git=False) as r:
        for i in range(n):
            with r.run(a=i) as run:
                run.log(y=float(i), arr=np.arange(size, dtype=np.float64) + i * size)
    with rec.open(store) as db:
        return list(db.df(exp, status=None)._run_id)


def object_files(store: Path) -> set[str]:
    return {p.parent.name + p.stem for p in (store / "objects").glob("*/*.npy")}


def digest_of(store: Path, run_id: str) -> str:
    return str(
        scalar(
            store,
            "SELECT x.value FROM results AS x JOIN runs AS r ON r.pk = x.run WHERE r.id = ? AND x.name = 'arr'",
            (bytes.fromhex(run_id),),
        )
    )


def counts(store: Path) -> tuple[int, int, int]:
    """Rows of the wide view, of df, and of overview_runs."""
    with rec.open(store) as db:
        return len(db.sql(f'SELECT * FROM "{EXP}"')), len(db.df(EXP)), len(db.sql("SELECT * FROM overview_runs"))


def test_the_bar_tag_log_rm_restore_purge_with_verify_after_each_step(store: Path) -> None:
    ids = record(store)
    assert verify(store) == []
    tagged = rec.tag(ids[:2], tags="good", store=store)
    assert tagged.changed == 2 and tagged.run_ids == ids[:2]
    with rec.open(store) as db:
        assert sorted(e["run_id"] for e in log(db, tag="good")) == sorted(ids[:2])
        assert list(db.df(EXP, tag="good")._run_id) == ids[:2]
    assert verify(store) == []
    rec.rm(ids[4], store=store)
    assert counts(store) == (4, 4, 4)
    assert verify(store) == []
    rec.restore(ids[4], store=store)
    assert counts(store) == (5, 5, 5)
    assert verify(store) == []
    gone = digest_of(store, ids[4])
    assert gone in object_files(store)
    rec.rm(ids[4], store=store)
    purged = rec.purge(store)
    assert purged.runs == 1 and purged.files == 1 and purged.bytes > 20_000 * 8
    assert scalar(store, "SELECT count(*) FROM runs") == 4
    assert gone not in object_files(store)
    assert {digest_of(store, i) for i in ids[:4]} <= object_files(store)  # the others' arrays stay
    assert verify(store) == []
    assert counts(store) == (4, 4, 4)


def test_tags_column_in_the_wide_view_and_overview_runs_sorted_and_comma_joined(store: Path) -> None:
    ids = record(store, 2)
    rec.tag(ids[0], tags=["zeta", "alpha"], store=store)
    with rec.open(store) as db:
        wide = db.sql(f'SELECT run_id, tags FROM "{EXP}" ORDER BY run_id')
        assert wide.tags.tolist()[ids.index(ids[0])] == "alpha,zeta" and wide.set_index("run_id").tags.isna()[ids[1]]
        over = db.sql("SELECT run_id, tags FROM overview_runs")
        assert dict(zip(over.run_id, over.tags))[ids[0]] == "alpha,zeta"
        # where= sees the tags column too
        assert list(db.df(EXP, where="tags LIKE '%alpha%'")._run_id) == [ids[0]]


def test_tagging_twice_changes_nothing_and_untag_removes(store: Path) -> None:
    ids = record(store, 2)
    assert rec.tag(ids, tags="good", store=store).changed == 2
    assert rec.tag(ids, tags="good", store=store).changed == 0
    assert scalar(store, "SELECT count(*) FROM run_tags") == 2
    assert rec.untag(ids[0], tags="good", store=store).changed == 1
    with rec.open(store) as db:
        assert list(db.df(EXP, tag="good")._run_id) == [ids[1]]


def test_tag_by_where_and_dry_run(store: Path) -> None:
    ids = record(store)
    dry = rec.tag(experiment=EXP, where="a >= 3", tags="late", store=store, dry_run=True)
    assert dry.run_ids == ids[3:] and dry.changed == 0 and dry.dry_run
    assert scalar(store, "SELECT count(*) FROM run_tags") == 0
    assert scalar(store, "SELECT count(*) FROM curation_events") == 0
    assert rec.tag(experiment=EXP, where="a >= 3", tags="late", store=store).changed == 2


@pytest.mark.parametrize("bad", ["a b", "a,b", "a\tb", "x\x00", "\u202egood", "", "-x", "t" * 65])
def test_bad_tag_names_are_refused_and_the_store_is_unchanged(store: Path, bad: str) -> None:
    ids = record(store, 1)
    with pytest.raises(rec.NameRefused):
        rec.tag(ids, tags=bad, store=store)
    assert scalar(store, "SELECT count(*) FROM run_tags") == 0
    assert scalar(store, "SELECT count(*) FROM curation_events") == 0


def test_unknown_and_ambiguous_run_ids_are_refused(store: Path) -> None:
    ids = record(store, 2)
    with pytest.raises(rec.RunNotFound):
        rec.tag("ffffffffffff", tags="good", store=store)
    with pytest.raises(rec.AmbiguousRunId):
        rec.rm(ids[0][:4], store=store)  # both runs start with the same milliseconds prefix
    assert scalar(store, "SELECT count(*) FROM curation_events") == 0


def test_a_where_matching_nothing_changes_nothing_and_one_matching_everything_needs_all(store: Path) -> None:
    record(store, 3)
    none = rec.rm(experiment=EXP, where="a > 100", store=store)
    assert none.run_ids == [] and none.changed == 0
    with pytest.raises(rec.CurationRefused, match="every one of the 3 runs"):
        rec.rm(experiment=EXP, where="a >= 0", store=store)
    with pytest.raises(rec.CurationRefused, match="all_runs"):
        rec.rm(experiment=EXP, store=store)
    assert scalar(store, "SELECT count(*) FROM runs WHERE deleted IS NOT NULL") == 0
    assert rec.rm(experiment=EXP, where="a >= 0", all_runs=True, store=store).changed == 3
    assert counts(store) == (0, 0, 0)


def inverse(a: int) -> dict[str, float]:
    return {"y": 1 / a}


def test_rm_by_status(store: Path) -> None:
    with rec.Recorder(EXP, store=store, git=False) as r:
        r.sweep(inverse, rec.plist("a", [0, 1, 2]), progress=False)
    assert rec.rm(experiment=EXP, status="failed", store=store).changed == 1
    with rec.open(store) as db:
        assert sorted(db.df(EXP, status=None)["a"]) == [1, 2]


def test_notes_several_per_run_latest_shown_all_listed_with_who(store: Path) -> None:
    ids = record(store, 1)
    rec.note(ids, text="first look", store=store)
    rec.note(ids, text="overfits", store=store)
    with rec.open(store) as db:
        (entry,) = list(log(db))
        assert entry["note"] == "overfits"
        shown = show(db, ids[0])
    assert [n["text"] for n in shown["notes"]] == ["first look", "overfits"]
    assert all(n["host"] and n["time"].endswith("Z") for n in shown["notes"])


def test_a_note_over_the_limit_is_refused(store: Path) -> None:
    ids = record(store, 1)
    with pytest.raises(rec.ValueRefused, match="64 KiB"):
        rec.note(ids, text="x" * (1 << 20), store=store)
    rec.note(ids, text="x" * NOTE_MAX_BYTES, store=store)  # the limit itself is allowed
    assert scalar(store, "SELECT count(*) FROM run_notes") == 1


def test_rm_of_a_running_run_is_refused(store: Path) -> None:
    ids = record(store, 2)
    with rec.Recorder(EXP, store=store, git=False) as r:
        with r.run(a=99) as run:
            run.log(y=1.0)
        r.flush()
        # A run in flight, as a long run's row is while it runs (its session is open, so no recovery touches it).
        conn = sqlite3.connect(store / "recorder.sqlite")
        conn.execute("UPDATE runs SET status = 'running' WHERE pset = (SELECT max(pk) FROM psets)")
        conn.commit()
        conn.close()
        running = scalar(store, "SELECT lower(hex(id)) FROM runs WHERE status = 'running'")
        with pytest.raises(rec.CurationRefused, match="running"):
            rec.rm([ids[0], running], store=store)
        with pytest.raises(rec.CurationRefused, match="running"):
            rec.rm(experiment=EXP, all_runs=True, store=store)
        assert scalar(store, "SELECT count(*) FROM runs WHERE deleted IS NOT NULL") == 0
        assert scalar(store, "SELECT count(*) FROM curation_events") == 0


def test_every_curation_is_an_event_with_who_when_where_what(store: Path) -> None:
    ids = record(store, 2)
    rec.tag(ids[0], tags="good", store=store)
    rec.note(ids[1], text="hm", store=store)
    rec.rm(ids[1], store=store)
    rec.restore(ids[1], store=store)
    rec.rm(ids[1], store=store)
    rec.purge(store)
    found = events(store)
    assert [e["action"] for e in found] == ["tag", "note", "rm", "restore", "rm", "purge"]
    assert found[0]["detail"] == {"runs": [ids[0]], "tags": ["good"]}
    assert found[-1]["detail"]["runs"] == 1
    assert all(e["time"].endswith("Z") and e["host"] for e in found)


def test_restore_by_where_picks_among_the_deleted_runs(store: Path) -> None:
    ids = record(store, 4)
    assert rec.rm(experiment=EXP, where="a < 2", store=store).changed == 2
    assert rec.restore(experiment=EXP, where="a = 1", store=store).run_ids == [ids[1]]
    with pytest.raises(rec.CurationRefused, match="every one of the 1 runs"):
        rec.restore(experiment=EXP, where="a = 0", store=store)
    assert rec.restore(experiment=EXP, all_runs=True, store=store).run_ids == [ids[0]]
    assert counts(store) == (4, 4, 4)


def test_log_deleted_lists_the_deleted_runs(store: Path) -> None:
    ids = record(store, 3)
    rec.rm(ids[1], store=store)
    with rec.open(store) as db:
        assert [e["run_id"] for e in log(db, deleted=True)] == [ids[1]]
        assert [e["run_id"] for e in log(db)] == [ids[2], ids[0]]
        assert show(db, ids[1])["deleted"]["host"]


def test_a_deleted_pset_runs_again_under_skip_done(store: Path) -> None:
    calls: list[int] = []

    def model(a: int) -> dict[str, float]:
        calls.append(a)
        return {"y": a * 2.0}

    with rec.Recorder(EXP, store=store, git=False) as r:
        r.sweep(model, rec.plist("a", [1, 2, 3]), progress=False)
    with rec.open(store) as db:
        df = db.df(EXP)
    rec.rm(df[df.a == 2]._run_id.tolist(), store=store)
    calls.clear()
    with rec.Recorder(EXP, store=store, git=False) as r:
        out = r.sweep(model, rec.plist("a", [1, 2, 3]), skip="done", progress=False)
    assert calls == [2]
    assert sorted(out["y"]) == [2.0, 4.0, 6.0]
    with rec.open(store) as db:
        assert sorted(db.df(EXP)["a"]) == [1, 2, 3]


def test_purge_older_than_keeps_recent_deletions(store: Path) -> None:
    ids = record(store, 2)
    rec.rm(ids[0], store=store)
    assert rec.purge(store, older_than_s=3600).runs == 0
    assert scalar(store, "SELECT count(*) FROM runs") == 2
    assert rec.purge(store).runs == 1


def test_purge_dry_run_changes_nothing(store: Path) -> None:
    ids = record(store, 2)
    rec.rm(ids[0], store=store)
    before = object_files(store)
    dry = rec.purge(store, dry_run=True)
    assert dry.runs == 1 and dry.files == 1 and dry.dry_run
    assert object_files(store) == before
    assert scalar(store, "SELECT count(*) FROM runs") == 2
    assert [e["action"] for e in events(store)] == ["rm"]


def test_purge_removes_tags_notes_and_unused_psets_keeps_shared_ones(store: Path) -> None:
    ids = record(store, 2)
    with rec.Recorder(EXP, store=store, git=False) as r, r.run(a=0) as run:  # a second run of pset a=0
        run.log(y=0.0)
    rec.tag(ids, tags="t", store=store)
    rec.note(ids, text="n", store=store)
    rec.rm(ids, store=store)
    assert rec.purge(store).runs == 2
    assert scalar(store, "SELECT count(*) FROM run_tags") == 0
    assert scalar(store, "SELECT count(*) FROM run_notes") == 0
    assert [
        json.loads(p) for (p,) in sqlite3.connect(store / "recorder.sqlite").execute("SELECT params FROM psets")
    ] == [{"a": 0}]
    with rec.open(store) as db:
        assert db.df(EXP)["a"].tolist() == [0]
    assert verify(store) == []


def test_purge_refuses_while_a_session_of_the_experiment_records(store: Path) -> None:
    ids = record(store, 2)
    rec.rm(ids[0], store=store)
    with rec.Recorder(EXP, store=store, git=False):
        with pytest.raises(rec.SessionRecording, match="recording"):
            rec.purge(store)
    assert scalar(store, "SELECT count(*) FROM runs") == 2
    assert rec.purge(store).runs == 1


def test_a_store_of_schema_5_migrates_with_every_run_live(store: Path) -> None:
    from conftest import undo_schema_6

    ids = record(store, 2)
    conn = sqlite3.connect(store / "recorder.sqlite")
    undo_schema_6(conn)
    conn.execute("PRAGMA user_version = 5")
    conn.commit()
    conn.close()
    assert rec.tag(ids[0], tags="good", store=store).changed == 1  # migrates, then tags
    assert scalar(store, "PRAGMA user_version") == SCHEMA_VERSION
    assert counts(store) == (2, 2, 2)


def test_a_schema_5_experiment_named_like_a_new_table_migrates(store: Path) -> None:
    """An experiment called run_tags (allowed before schema 6) gives its name up to the table."""
    from conftest import undo_schema_6

    record(store, 1, exp="rt")
    conn = sqlite3.connect(store / "recorder.sqlite")
    undo_schema_6(conn)
    conn.execute("UPDATE experiments SET name = 'run_tags'")
    conn.execute('CREATE VIEW "run_tags" AS SELECT 1 AS one')
    conn.execute("PRAGMA user_version = 5")
    conn.commit()
    conn.close()
    with pytest.warns(rec.RecorderWarning, match="run_tags"), rec.Recorder("other", store=store, git=False):
        pass  # opening migrates
    assert scalar(store, "PRAGMA user_version") == SCHEMA_VERSION
    with rec.open(store) as db:
        assert len(db.df("run_tags")) == 1


def speak(a: int) -> dict[str, float]:
    print(f"output of run {a}")
    return {"y": float(a)}


def test_purge_removes_comments_and_outputs_no_other_run_uses(store: Path) -> None:
    with rec.Recorder(EXP, store=store, git=False) as r:
        r.sweep(speak, rec.plist("a", [1, 2]), capture=True, progress=False)
        with r.run(a=3) as run:
            run.log(comment="only mine", z=1.0)
        with r.run(a=4) as run:
            run.log(comment="shared", z=2.0)
        with r.run(a=5) as run:
            run.log(comment="shared", z=3.0)
    with rec.open(store) as db:
        df = db.df(EXP)
    doomed = df[df.a.isin([1, 3, 4])]._run_id.tolist()
    assert scalar(store, "SELECT count(*) FROM texts WHERE text LIKE 'output of run%'") == 2
    rec.rm(doomed, store=store)
    assert rec.purge(store).runs == 3
    assert scalar(store, "SELECT count(*) FROM texts WHERE text LIKE 'output of run 1%'") == 0
    assert scalar(store, "SELECT count(*) FROM texts WHERE text LIKE 'output of run 2%'") == 1
    assert [t for (t,) in sqlite3.connect(store / "recorder.sqlite").execute("SELECT text FROM comments")] == ["shared"]
    assert verify(store) == []
