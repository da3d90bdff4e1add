"""A vectorised chunk written column-wise (``Rows.write_chunk``) gives exactly the rows the per-run rule gives."""

from __future__ import annotations

import json
import os
import sqlite3
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import recorder as rec  # noqa: E402
from recorder.errors import RecorderWarning  # noqa: E402
from recorder.store.ids import new_ids  # noqa: E402
from recorder.store.pending import PendingRun  # noqa: E402
from recorder.store.rows import DoneChunk, Rows  # noqa: E402

# Columns of runs that are the same in two recordings of the same runs (not ids and clocks; pid and pset_seq
# are compared apart, see below).
_RUN_COLUMNS = "pk, experiment, session, pset, status, seed, comment, error, output, scalars, function, rerun_of, host"


def model(r: float, n: int, method: str) -> dict[str, Any]:
    """Numbers per pset under awkward names; NaN and inf now and then (those runs go the general way)."""
    odd = jnp.where(r > 3.8, jnp.nan, jnp.where(r < 2.6, jnp.inf, r))
    scale = 2.0 if method == "fast" else 3.0
    return {
        "y": r * scale + n,
        'q"': jnp.int32(n) * 2,
        "p%r": r > 3.0,
        "λ": -0.0 * r,
        "odd": odd,
    }


def psets(values: list[float], method: str) -> rec.ParamSequence:
    return rec.pgrid(rec.plist("r", values), rec.plist("n", [1, -5]), rec.plist("method", [method]))


def record(store: Path) -> None:
    """Three vsweeps: new psets; in another session, some psets the store has and some new; a str static value."""
    first = [float(v) for v in np.linspace(2.5, 4.0, 30)]
    with rec.Recorder("chunks", store=store, git=False, seed=7) as r:
        r.vsweep(model, psets(first, "fast"), static="method", chunk_size=16, progress=False)
    with rec.Recorder("chunks", store=store, git=False, seed=7) as r:  # a session that knows no pset keys
        again = first[::3] + [float(v) for v in np.linspace(4.1, 4.5, 7)]
        r.vsweep(model, psets(again, "fast"), static="method", chunk_size=8, skip=None, progress=False)
        r.vsweep(model, psets(first[:9], "slow"), static="method", chunk_size=5, progress=False)


def table(store: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def per_run(self: Rows, conn: sqlite3.Connection, chunk: DoneChunk, assigned: list[PendingRun]) -> None:
    """The per-run rule for a chunk's runs: what the writer did before chunks were written column-wise."""
    self.write(conn, chunk.expand(), [], assigned)


def test_a_chunk_written_column_wise_gives_the_rows_of_the_per_run_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunked: list[int] = []
    original = Rows.write_chunk

    def counted(self: Rows, conn: sqlite3.Connection, chunk: DoneChunk, assigned: list[PendingRun]) -> None:
        chunked.append(len(chunk))
        original(self, conn, chunk, assigned)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecorderWarning)
        monkeypatch.setattr(Rows, "write_chunk", counted)
        record(tmp_path / "columns")
        monkeypatch.setattr(Rows, "write_chunk", per_run)
        record(tmp_path / "runs")
    assert sum(chunked) > 50  # most runs went column-wise; the NaN and inf ones the general way
    columns, runs = tmp_path / "columns", tmp_path / "runs"
    for sql in (
        f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY pk",
        "SELECT * FROM psets ORDER BY pk",
        "SELECT * FROM results ORDER BY run, name",
        "SELECT * FROM fields ORDER BY pk",
        "SELECT pk, experiment, status FROM sessions ORDER BY pk",
    ):
        assert table(columns, sql) == table(runs, sql), sql
    assert len(table(columns, "SELECT * FROM results")) > 0  # the general way was taken too
    assert {text for (text,) in table(columns, "SELECT params FROM psets")} >= {'{"method":"slow","n":1,"r":2.5}'}
    # pid and pset_seq: every run has this process and the pset's place in its sweep, both ways.
    seq = "SELECT r.pid, r.pset_seq, p.params, r.session FROM runs AS r JOIN psets AS p ON p.pk = r.pset ORDER BY r.pk"
    both = list(zip(table(columns, seq), table(runs, seq)))
    assert len(both) == len(table(columns, "SELECT 1 FROM runs")) > sum(chunked)
    for (pid, pset_seq, _, _), (other_pid, other_seq, _, _) in both:
        assert (pid, pset_seq) == (other_pid, other_seq)
        assert pid == os.getpid() and isinstance(pset_seq, int)
    # pset_seq is the pset's position in its sweep: in the first sweep, r's index times 2 plus n's.
    first = [float(v) for v in np.linspace(2.5, 4.0, 30)]
    for pid, pset_seq, params, session in table(columns, seq):
        if pid is not None and session == 1:
            values = json.loads(params)
            assert pset_seq == first.index(values["r"]) * 2 + [1, -5].index(values["n"])


def make_runs(count: int, start: float, function: int | None) -> list[PendingRun]:
    texts = [f'{{"a":{start + i!r}}}' for i in range(count)]
    from recorder.codec.hashing import pset_identities

    hashes, seeds = pset_identities(None)(texts)
    return [
        PendingRun(run_id, h, text, seed, time.time(), ("a",), function)
        for run_id, h, text, seed in zip(new_ids(count), hashes, texts, seeds)
    ]


def test_a_chunk_is_committed_whole_and_a_refused_row_sends_it_run_by_run(store: Path) -> None:
    """One transaction per batch: a run SQLite refuses (a repeated id) costs only that run, as in any batch."""
    with rec.Recorder("w", store=store, git=False) as r:
        _, writer, _ = r.writing()
        with writer.inline():
            good = make_runs(5, 0.5, None)
            for run in good:
                run.rerun_of = "ab" * 12
            writer.finished_many(DoneChunk(good, list(range(5)), time.time(), 0.25, ['{"y":1.5}'] * 5, ("y",)))
            writer.flush()
            assert table(store, "SELECT count(*), count(rerun_of), sum(duration_us) FROM runs") == [(5, 5, 1_250_000)]
            bad = make_runs(4, 10.5, None)
            bad[2].id = good[0].id  # refused by runs.id UNIQUE
            with pytest.warns(RecorderWarning, match="could not be recorded at all"):
                writer.finished_many(DoneChunk(bad, [7, 8, 9, 10], time.time(), 0.5, ['{"y":2}'] * 4, ("y",)))
                writer.flush()
    rows = table(store, "SELECT pset_seq, status, scalars FROM runs ORDER BY pk")
    # The first chunk whole; of the second every run but the refused one, each with its results (per-run rule:
    # pset_seq is the per-run path's, None until it fills it).
    assert rows[:5] == [(i, "done", '{"y":1.5}') for i in range(5)]
    assert [(status, scalars) for _, status, scalars in rows[5:]] == [("done", '{"y":2}')] * 3


def test_ints_of_a_chunk_keep_their_value_to_the_ends_of_int64(store: Path) -> None:
    """Ints go to SQL as fixed-width digits: the extremes come back exact; one too wide sends the chunk per run."""
    extremes = [-(2**63), 2**63 - 1, 0, -1, 12]
    with rec.Recorder("w", store=store, git=False) as r:
        _, writer, _ = r.writing()
        with writer.inline():
            writer.finished_many(
                DoneChunk(make_runs(5, 0.5, None), extremes, time.time(), 0.1, ['{"y":1}'] * 5, ("y",))
            )
            writer.flush()
            wide = make_runs(2, 20.5, None)
            writer.finished_many(DoneChunk(wide, [2**70, 3], time.time(), 0.1, ['{"y":2}'] * 2, ("y",)))
            writer.flush()
    rows = table(store, "SELECT pset_seq, scalars FROM runs ORDER BY pk")
    assert [seq for seq, _ in rows[:5]] == extremes
    assert [scalars for _, scalars in rows[5:]] == ['{"y":2}'] * 2  # the per-run rule wrote them
    assert all(seq is None or seq == 3 for seq, _ in rows[5:])
