"""What a sweep finds in the store: psets already done (to skip) and the rows of the psets it skips.

A sweep reads through a connection of its own (:class:`Reader`), a chunk
of psets at a time; the keys of the psets it finds go to the writer, so
that their runs need no second lookup.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..codec.values import Encoded, decode, is_scalar_kind
from ..errors import StoreError
from ..store.db import connect
from ..store.ids import iso_utc
from ..store.objects import ObjectStore
from ..store.rows import hex_blob

if TYPE_CHECKING:
    from .tasks import Table

_CHUNK = 500  # runs read at a time

# Psets found by hash, with whether the experiment has a live run of each in the statuses (through
# runs_pset; a deleted run's pset runs again). Their keys go to the writer, which then need not look them up again.
_LOOK_UP_PSETS = """
SELECT p.hash, p.pk, p.params, EXISTS (
    SELECT 1 FROM runs AS r WHERE r.pset = p.pk AND r.experiment = ? AND r.status IN ({statuses}) AND r.deleted IS NULL
)
FROM psets AS p WHERE p.hash IN ({marks})
"""
_OTHER_SESSION = "SELECT 1 FROM sessions WHERE experiment = ? AND pk <> ? LIMIT 1"
_LATEST_RUNS = """
SELECT p.hash, r.pk, r.id, r.status, r.time_start_ms, r.duration_us, s.id, s.env_sha, r.scalars,
       coalesce(r.host, s.host), r.pid, r.pset_seq
FROM psets AS p CROSS JOIN runs AS r ON r.pset = p.pk JOIN sessions AS s ON s.pk = r.session
WHERE p.hash IN ({marks}) AND r.experiment = ? AND r.status IN ({statuses}) AND r.deleted IS NULL
ORDER BY r.pk
"""
_RESULTS_OF = "SELECT run, name, kind, value FROM results WHERE run IN ({marks})"


def scalars_of(results: Mapping[str, Encoded], objects: ObjectStore) -> dict[str, Any]:
    return {n: decode(e.kind, e.value, objects) for n, e in results.items() if is_scalar_kind(e.kind)}


def done_hashes(conn: Any, experiment_pk: int | None, statuses: tuple[str, ...], hashes: list[str]) -> set[str]:
    if experiment_pk is None or not statuses or not hashes:
        return set()
    return {hash_ for hash_, (_, _, done) in look_up(conn, experiment_pk, statuses, hashes).items() if done}


def look_up(
    conn: Any, experiment_pk: int, statuses: tuple[str, ...], hashes: list[str]
) -> dict[str, tuple[int, str, bool]]:
    """Return the psets of ``hashes`` the store has: hash → (key, canonical JSON, has a run in ``statuses``)."""
    sql = _LOOK_UP_PSETS.format(statuses=", ".join("?" * len(statuses)), marks=", ".join("?" * len(hashes)))
    rows = conn.execute(sql, (experiment_pk, *statuses, *map(hex_blob, hashes)))
    return {digest.hex(): (pk, params, bool(done)) for digest, pk, params, done in rows}


class Reader:
    """A read-only connection of the sweep's own, so skip checks never wait for the writer's commits.

    :param session_pk: the sweep's session, and ``alone``: whether it has recorded no run before
        the sweep. Then, while the experiment has no other session, every run of the experiment
        is one of this sweep's, and a skip check has nothing to find (see :meth:`alone`).
    """

    def __init__(self, path: Path, experiment_pk: int, session_pk: int | None = None, alone: bool = False) -> None:
        self.conn = connect(path, readonly=True)
        self.experiment_pk = experiment_pk
        self._session_pk = session_pk
        self._alone = alone and session_pk is not None

    def alone(self) -> bool:
        """Return whether every run of the experiment is still one of this sweep's (one indexed query).

        Asked before each skip check: a session that another process opens
        (or a merge that brings one) meanwhile ends it, as a run it
        commits would be seen by the skip check of the next chunk.
        """
        if self._alone:
            other = self.read(
                lambda conn: conn.execute(_OTHER_SESSION, (self.experiment_pk, self._session_pk)).fetchone()
            )
            self._alone = other is None
        return self._alone

    def read(self, action: Callable[[sqlite3.Connection], Any]) -> Any:
        try:
            return action(self.conn)
        except sqlite3.Error as e:
            raise StoreError(f"reading the store failed: {e}") from e

    def close(self) -> None:
        self.conn.close()


class Fills:
    """Rows of the sweep's table that no run of this sweep fills: skipped and repeated psets."""

    def __init__(self) -> None:
        self.first: dict[str, int] = {}  # pset hash → index of its first row in this sweep
        self.skipped: dict[str, list[int]] = {}  # filled from the store
        self.repeated: list[tuple[int, int]] = []  # (row, row it repeats)

    def apply(self, reader: Reader, statuses: tuple[str, ...], table: Table, objects: ObjectStore) -> None:
        if self.skipped:
            _fill_skipped(reader, statuses, self.skipped, table, objects)
        for index, first in self.repeated:
            table.copy(first, index)


def _fill_skipped(
    reader: Reader, statuses: tuple[str, ...], skipped: dict[str, list[int]], table: Table, objects: ObjectStore
) -> None:
    """Fill the rows of skipped psets from their latest matching run in the store."""
    hashes = list(skipped)

    def load(conn: Any) -> None:
        for start in range(0, len(hashes), _CHUNK):
            chunk = hashes[start : start + _CHUNK]
            sql = _LATEST_RUNS.format(statuses=", ".join("?" * len(statuses)), marks=", ".join("?" * len(chunk)))
            latest = {}
            scalars: dict[int, str | None] = {}
            for digest, pk, run_id, status, start_ms, duration_us, session, env_sha, compact, *where in conn.execute(
                sql, (*(bytes.fromhex(h) for h in chunk), reader.experiment_pk, *statuses)
            ):
                scalars[pk] = compact
                latest[digest.hex()] = (
                    pk,
                    {
                        "_run_id": run_id.hex(),
                        "_status": status,
                        "_time_start": iso_utc(start_ms / 1e3),
                        "_duration_s": None if duration_us is None else duration_us / 1e6,
                        "_session": session,
                        "_env_sha": env_sha,
                        **dict(zip(("_exec_host", "_exec_pid", "_pset_seq"), where)),
                    },
                )
            pks = [pk for pk, _ in latest.values()]
            # Plain scalars are kept in runs.scalars, the others in results (see recorder.writer).
            values: dict[int, dict[str, Any]] = {pk: json.loads(scalars[pk] or "{}") for pk in pks}
            if pks:
                for run, name, kind, value in conn.execute(_RESULTS_OF.format(marks=", ".join("?" * len(pks))), pks):
                    if is_scalar_kind(kind):
                        values[run][name] = decode(kind, value, objects)
            for hash_, (pk, meta) in latest.items():
                for index in skipped[hash_]:
                    table.set(index, {**values[pk], **meta})

    reader.read(load)
