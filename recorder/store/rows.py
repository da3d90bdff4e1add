"""How a batch of finished runs becomes rows: keys, psets, comments, results, names.

:class:`Rows` keeps, for one session's writer, the keys it has found or made
(psets by hash, comments by text) and the names it has written, so that a
batch costs a few ``executemany`` calls. Keys found or made in a
transaction are *staged* and only remembered once it commits.
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any

from ..codec.canonical import scalars_json
from ..codec.hashing import PSET_HASH_LENGTH
from ..errors import StoreError
from .catalog import IN_SCALARS, STRUCTURE, TEXT, Fields
from .ids import now_utc
from .objects import make_durable
from .pending import PendingRun

__all__ = [
    "DoneChunk",
    "Rows",
    "check_pset",
    "hex_blob",
    "insert_objects",
    "insert_texts",
    "millis",
    "micros",
]

_MAX_RUN_PK = "SELECT coalesce(max(pk), 0) FROM runs"
_MAX_PSET_PK = "SELECT coalesce(max(pk), 0) FROM psets"
_MAX_COMMENT_PK = "SELECT coalesce(max(pk), 0) FROM comments"
_FIND_PSETS = "SELECT hash, pk, params FROM psets WHERE hash IN ({marks})"
# A pset another process added meanwhile is not an error: it is looked up instead.
_INSERT_PSET = "INSERT INTO psets (pk, hash, params) VALUES (?, ?, ?) ON CONFLICT (hash) DO NOTHING"
_INSERT_RUN = """
INSERT INTO runs (
    pk, id, experiment, session, pset, status, time_start_ms, duration_us, seed, comment, error, output, scalars,
    function, host, pid, pset_seq
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
# Most runs have no comment, error or output, and ran on the session's host: four values fewer to bind
# per row (binding is most of the cost of an insert). A run of a sweep has its position in it; other
# runs (with r.run, decorator calls) have none, and leave it out rather than bind a NULL (sqlite3 looks
# for an adapter of None first, which costs as much as several values).
_INSERT_PLAIN_RUN = """
INSERT INTO runs (pk, id, experiment, session, pset, status, time_start_ms, duration_us, seed, scalars, function, pid)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_INSERT_PLAIN_SWEPT_RUN = """
INSERT INTO runs (pk, id, experiment, session, pset, status, time_start_ms, duration_us, seed, scalars, function, pid,
    pset_seq)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
# Only the few runs that repeat another (recorder rerun) have rerun_of: set apart, so other rows bind nothing more.
_SET_RERUN_OF = "UPDATE runs SET rerun_of = ? WHERE pk = ?"
# A worker's pid and host come with the run's end (its row may have been written while it ran).
_FINISH_RUN = """
UPDATE runs SET status = ?, duration_us = ?, comment = ?, error = ?, output = ?, scalars = ?, host = ?, pid = ? WHERE pk = ?
"""
_INSERT_TEXT = "INSERT OR IGNORE INTO texts (digest, text) VALUES (?, ?)"
_INSERT_RESULT = "INSERT INTO results (run, name, kind, value, comment) VALUES (?, ?, ?, ?, ?)"
_INSERT_OBJECT = """
INSERT OR IGNORE INTO objects (digest, size, dtype, shape, time_created) VALUES (?, ?, ?, ?, ?)
"""
_FIND_COMMENT = "SELECT pk FROM comments WHERE text = ? LIMIT 1"
_INSERT_COMMENT = "INSERT INTO comments (pk, text) VALUES (?, ?)"
# A chunk's psets and runs, each in one statement: the values that differ from row to row come as one JSON
# array (texts) and blobs cut by substr() (ids, hashes; ints as fixed-width decimal digits), so nothing is
# bound per row (binding is most of the cost of an insert). substr() of a blob counts bytes: O(1) per row.
# (The WHERE is SQLite's rule for an upsert whose SELECT could be read as a join.)
_INSERT_CHUNK_PSETS = """
INSERT INTO psets (pk, hash, params)
SELECT ?1 + key, substr(?2, key * ?3 + 1, ?3), value FROM json_each(?4) WHERE true
ON CONFLICT (hash) DO NOTHING
"""
_INSERT_CHUNK_RUNS = """
INSERT INTO runs (
    pk, id, experiment, session, pset, status, time_start_ms, duration_us, seed, scalars, function, rerun_of, pid,
    pset_seq
)
SELECT ?1 + key, substr(?2, key * 12 + 1, 12), ?3, ?4, CAST(substr(?5, key * 20 + 1, 20) AS INTEGER), ?6, ?7, ?8,
    CAST(substr(?9, key * 20 + 1, 20) AS INTEGER), value, ?10, ?11, ?12, CAST(substr(?13, key * 20 + 1, 20) AS INTEGER)
FROM json_each(?14)
"""
# The widths below are those written in _INSERT_CHUNK_RUNS.
_INT_WIDTH = 20  # characters of an int in a chunk's blob of ints: every int64, its sign included
_INT_FORMAT = f"%0{_INT_WIDTH}d"
_ID_BYTES = 12  # a run id: 24 hex digits
_HASH_BYTES = PSET_HASH_LENGTH // 2
_PSET_CACHE = 100_000  # pset keys remembered (reruns of the same psets find them here)
_IN_CHUNK = 500  # hashes per IN (...) lookup


#: A blob to bind from hex digits. A bytearray, not bytes: sqlite3 binds bytearrays as they are but
#: first looks for an adapter for bytes (and None), which costs as much as the rest of the row.
hex_blob = bytearray.fromhex


def check_pset(hash_: str, stored: str, canonical: str) -> None:
    """Refuse a pset whose hash the store knows for other parameters (a hash collision).

    :raises StoreError: when ``stored`` (the store's canonical JSON) differs from ``canonical``.
    """
    if stored != canonical:
        raise StoreError(f"pset hash collision: {hash_} names both {stored} and {canonical}; please report this")


def _int_blob(values: list[int]) -> bytes:
    """Ints as one blob of fixed-width decimal digits, which SQL reads back by ``CAST(substr(...) AS INTEGER)``."""
    return ((_INT_FORMAT * len(values)) % tuple(values)).encode("ascii")


class DoneChunk:
    """Done runs of a vectorised chunk whose results are plain numbers, on their way to the database together.

    What the writer commits column-wise (:meth:`Rows.write_chunk`): the
    rows are those that :meth:`Rows.write` gives the same runs one by one
    (:meth:`expand` makes them such runs, for the per-run rule). Every run
    of a chunk has the chunk's start and duration; all share their result
    names, function and ``rerun_of``.

    :param runs: the runs, in the order they are recorded.
    :param seqs: each run's pset's position in the sweep (``runs.pset_seq``).
    :param t0: the chunk's start (Unix time).
    :param duration: each run's duration: its share of the chunk's time.
    :param scalars: each run's ``runs.scalars`` JSON.
    :param scalar_names: the result names in it.
    """

    __slots__ = ("duration", "runs", "scalar_names", "scalars", "seqs", "t0")

    def __init__(
        self,
        runs: list[PendingRun],
        seqs: list[int],
        t0: float,
        duration: float,
        scalars: list[str],
        scalar_names: tuple[str, ...],
    ) -> None:
        self.runs, self.seqs, self.t0, self.duration = runs, seqs, t0, duration
        self.scalars, self.scalar_names = scalars, scalar_names

    def __len__(self) -> int:
        return len(self.runs)

    def expand(self) -> list[PendingRun]:
        """Return the runs, each given its start, duration, status and results as the per-run rule reads them."""
        t0, duration, names = self.t0, self.duration, self.scalar_names
        for run, text in zip(self.runs, self.scalars):
            run.t0, run.scalars, run.scalar_names = t0, text, names
            run.status, run.duration, run.error = "done", duration, None
        return self.runs


def _found_psets(conn: sqlite3.Connection, missing: dict[str, str], found: dict[str, int]) -> None:
    """After an insert of the ``missing`` psets (hash → canonical JSON) skipped some: their keys into ``found``.

    :raises StoreError: when the store has another pset under one of the hashes.
    """
    hashes = list(missing)
    for start in range(0, len(hashes), _IN_CHUNK):
        chunk = hashes[start : start + _IN_CHUNK]
        sql = _FIND_PSETS.format(marks=", ".join("?" * len(chunk)))
        for digest, pk, params in conn.execute(sql, [hex_blob(h) for h in chunk]):
            hash_ = digest.hex()
            check_pset(hash_, params, missing[hash_])
            found[hash_] = pk  # the store's key where the insert was skipped, else ours


def insert_objects(conn: sqlite3.Connection, objects: list[tuple[str, int, str, str]]) -> None:
    """Add rows for objects (``(digest, size, dtype, shape)``) already written to the object store.

    Waits until the objects this process wrote are on disk (see
    :func:`recorder.store.objects.make_durable`): a row never names an
    object a power cut could lose.
    """
    if objects:
        make_durable()
        now = now_utc()
        conn.executemany(_INSERT_OBJECT, [(*o, now) for o in objects])


def insert_texts(conn: sqlite3.Connection, texts: list[tuple[str, str]]) -> None:
    """Store texts once by content (``(digest, text)``)."""
    if texts:
        conn.executemany(_INSERT_TEXT, texts)


def millis(seconds: float) -> int:
    """A Unix time as integer milliseconds (how runs store their start)."""
    return round(seconds * 1000)


def micros(seconds: float | None) -> int | None:
    """A duration as integer microseconds (how runs store it)."""
    return None if seconds is None else round(seconds * 1_000_000)


class Rows:
    """Write batches of runs of one session: rows of runs, psets, results, comments, texts, objects, names.

    :param conn: the session's connection (used for lookups inside the writer's transactions).
    :param experiment_pk: key of the experiment.
    :param session_pk: key of the session.
    :param purge_duplicate_comments: store each distinct comment text once.
    """

    def __init__(
        self, conn: sqlite3.Connection, experiment_pk: int, session_pk: int, *, purge_duplicate_comments: bool = True
    ) -> None:
        self.experiment_pk = experiment_pk
        self._session_pk = session_pk
        self._purge = purge_duplicate_comments
        self._psets: dict[str, int] = {}
        self._comments: dict[str, int] = {}
        #: The experiment's parameter and result names (see :mod:`recorder.catalog`).
        self.fields = Fields(conn, experiment_pk)
        # Parameter layouts and (result, kind) pairs whose names are in the database.
        self._layouts: set[tuple[Any, ...]] = set()  # names, or (names, names of str values)
        self._result_kinds: set[tuple[str, str | None]] = set()  # kind "scalars" for runs.scalars
        self._scalar_layouts: set[tuple[str, ...]] = set()  # names of PendingRun.scalars known to fields
        self.begin()

    def begin(self) -> None:
        """Start a transaction's staging: what it finds or makes is remembered only if it commits."""
        self._staged_psets: dict[str, int] = {}
        self._staged_comments: dict[str, int] = {}
        self._staged_layouts: set[tuple[Any, ...]] = set()
        self._staged_result_kinds: set[tuple[str, str | None]] = set()
        self._staged_scalar_layouts: set[tuple[str, ...]] = set()

    def committed(self) -> None:
        """Remember what the committed transaction found or made."""
        if len(self._psets) > _PSET_CACHE:
            self._psets.clear()  # bounded memory in huge sweeps; a miss costs one indexed lookup
        self._psets.update(self._staged_psets)
        self._comments.update(self._staged_comments)
        self._layouts |= self._staged_layouts
        self._result_kinds |= self._staged_result_kinds
        self._scalar_layouts |= self._staged_scalar_layouts

    def write(
        self,
        conn: sqlite3.Connection,
        finished: list[PendingRun],
        in_flight: list[PendingRun],
        assigned: list[PendingRun],
    ) -> None:
        new_psets, known_psets = self._pset_pks(conn, finished + in_flight), self._psets
        next_pk = conn.execute(_MAX_RUN_PK).fetchone()[0] + 1
        new_rows, plain_rows, swept_rows, updates, texts, reruns = [], [], [], [], [], []
        results: list[tuple[Any, ...]] = []
        objects: list[tuple[Any, ...]] = []
        fields: list[tuple[str, str, str, int]] = []
        experiment, session = self.experiment_pk, self._session_pk
        layouts, staged_layouts = self._layouts, self._staged_layouts
        scalar_layouts, staged_scalar_layouts = self._scalar_layouts, self._staged_scalar_layouts
        for run in finished:
            new = run.pk is None
            if new:
                run.pk, next_pk = next_pk, next_pk + 1
                assigned.append(run)
            names = run.names
            # '":"' is in canonical JSON only where some value is a str (then its kind may be new).
            if names is None or (names not in layouts and names not in staged_layouts) or '":"' in run.canonical:
                self._param_fields(run, fields)
            if run.scalars is not None:  # plain numbers, made into JSON by the sweep already
                scalars: str | None = run.scalars
                names = run.scalar_names
                if names not in scalar_layouts and names not in staged_scalar_layouts:
                    self._scalar_fields(run, fields)
            elif run.results:
                scalars = self._results(conn, run, results, objects, fields)
            else:
                scalars = None
            if run.rerun_of is not None:
                reruns.append((hex_blob(run.rerun_of), run.pk))
            if new and run.comment is None and run.output is None and run.error is None and run.host is None:
                # The common row, built inline (a few calls fewer per run).
                pset = new_psets.get(run.pset_hash)
                duration = run.duration
                seq = run.pset_seq
                if seq is not None:  # a run of a sweep (one tuple built either way: this is per run)
                    swept_rows.append(
                        (
                            run.pk,
                            hex_blob(run.id),
                            experiment,
                            session,
                            known_psets[run.pset_hash] if pset is None else pset,
                            run.status,
                            round(run.t0 * 1000),
                            None if duration is None else round(duration * 1_000_000),
                            run.seed,
                            scalars,
                            run.function,
                            run.pid,
                            seq,
                        )
                    )
                else:
                    plain_rows.append(
                        (
                            run.pk,
                            hex_blob(run.id),
                            experiment,
                            session,
                            known_psets[run.pset_hash] if pset is None else pset,
                            run.status,
                            round(run.t0 * 1000),
                            None if duration is None else round(duration * 1_000_000),
                            run.seed,
                            scalars,
                            run.function,
                            run.pid,
                        )
                    )
                continue
            comment = self._comment_pk(conn, run.comment) if run.comment is not None else None
            output = None
            if run.output is not None:
                texts.append(run.output)
                output = run.output[0]
            if new:
                new_rows.append(
                    (
                        run.pk,
                        hex_blob(run.id),
                        experiment,
                        session,
                        self._pset_pk(run.pset_hash, new_psets),
                        run.status,
                        millis(run.t0),
                        micros(run.duration),
                        run.seed,
                        comment,
                        run.error,
                        output,
                        scalars,
                        run.function,
                        run.host,
                        run.pid,
                        run.pset_seq,
                    )
                )
            else:
                updates.append(
                    (run.status, micros(run.duration), comment, run.error, output, scalars, run.host, run.pid, run.pk)
                )
        for run in in_flight:  # after the finished ones: they started earlier
            run.pk, next_pk = next_pk, next_pk + 1
            assigned.append(run)
            new_rows.append(
                (
                    run.pk,
                    hex_blob(run.id),
                    experiment,
                    session,
                    self._pset_pk(run.pset_hash, new_psets),
                    "running",
                    millis(run.t0),
                    None,
                    run.seed,
                    None,
                    None,
                    None,
                    None,
                    run.function,
                    run.host,
                    run.pid,
                    run.pset_seq,
                )
            )
            if run.rerun_of is not None:
                reruns.append((hex_blob(run.rerun_of), run.pk))
            self._param_fields(run, fields)
        insert_objects(conn, objects)
        insert_texts(conn, texts)
        if plain_rows:
            conn.executemany(_INSERT_PLAIN_RUN, plain_rows)
        if swept_rows:
            conn.executemany(_INSERT_PLAIN_SWEPT_RUN, swept_rows)
        conn.executemany(_INSERT_RUN, new_rows)
        conn.executemany(_FINISH_RUN, updates)
        conn.executemany(_INSERT_RESULT, results)
        if reruns:
            conn.executemany(_SET_RERUN_OF, reruns)
        if fields:
            self.fields.write(conn, fields)

    def write_items(
        self,
        conn: sqlite3.Connection,
        finished: list[PendingRun | DoneChunk],
        in_flight: list[PendingRun],
        assigned: list[PendingRun],
    ) -> None:
        """Do what :meth:`write` does, for a batch that holds chunks: each chunk column-wise, in the batch's order.

        The runs between chunks go by :meth:`write`, so every run gets the
        key it would get there (keys follow the batch's order).
        """
        runs: list[PendingRun] = []
        for item in finished:
            if type(item) is DoneChunk:
                if runs:
                    self.write(conn, runs, [], assigned)
                    runs = []
                self.write_chunk(conn, item, assigned)
            else:
                assert isinstance(item, PendingRun)
                runs.append(item)
        if runs or in_flight:
            self.write(conn, runs, in_flight, assigned)

    def write_chunk(self, conn: sqlite3.Connection, chunk: DoneChunk, assigned: list[PendingRun]) -> None:
        """Write a chunk's runs and their new psets with one statement each: the rows :meth:`write` gives them.

        Nothing is done per run in Python but for the runs whose parameter
        names must be looked at (a new layout, or a str value), as
        :meth:`write` does; a chunk whose runs differ in function or
        ``rerun_of``, or one of whose runs has a row already, goes by
        :meth:`write` itself. The runs get no key (``run.pk``): a chunk has
        no run in flight, and only the writer reads keys.
        """
        runs = chunk.runs
        count = len(runs)
        if not count:
            return
        # A comprehension per column: zip(*) of a tuple per run costs four times as much (a tuple each to make).
        ids = [run.id for run in runs]
        hashes = [run.pset_hash for run in runs]
        canonicals = [run.canonical for run in runs]
        names = [run.names for run in runs]
        function, rerun_of = runs[0].function, runs[0].rerun_of
        functions = [run.function for run in runs]
        reruns = [run.rerun_of for run in runs]
        pks = [run.pk for run in runs]
        seeds = [run.seed for run in runs]
        id_blob = bytes.fromhex("".join(ids))
        seed_blob, seq_blob = _int_blob(seeds), _int_blob(chunk.seqs)
        if (
            pks.count(None) != count
            or functions.count(function) != count
            or reruns.count(rerun_of) != count
            or len(id_blob) != _ID_BYTES * count
            or len("".join(hashes)) != 2 * _HASH_BYTES * count  # each as long (write() takes any)
            or len(seed_blob) != _INT_WIDTH * count
            or len(seq_blob) != _INT_WIDTH * count
        ):
            self.write(conn, chunk.expand(), [], assigned)
            return
        pset_blob = _int_blob(self._chunk_pset_pks(conn, hashes, canonicals))
        next_pk = conn.execute(_MAX_RUN_PK).fetchone()[0] + 1
        fields: list[tuple[str, str, str, int]] = []
        layouts, staged_layouts = self._layouts, self._staged_layouts
        first = names[0]
        if (
            first is None
            or names.count(first) != count
            or (first not in layouts and first not in staged_layouts)
            or '":"' in "\n".join(canonicals)  # some value is a str (its kind may be new); never across two texts
        ):
            # The runs write() would look at, in its order (their keys set for fields.first_run).
            for i, run in enumerate(runs):
                if (
                    run.names is None
                    or (run.names not in layouts and run.names not in staged_layouts)
                    or ('":"' in run.canonical)
                ):
                    run.pk = next_pk + i
                    assigned.append(run)
                    self._param_fields(run, fields)
                if i == 0:
                    self._scalar_fields_of(chunk.scalar_names, next_pk, fields)
        else:
            self._scalar_fields_of(chunk.scalar_names, next_pk, fields)
        conn.execute(
            _INSERT_CHUNK_RUNS,
            (
                next_pk,
                id_blob,
                self.experiment_pk,
                self._session_pk,
                pset_blob,
                "done",
                millis(chunk.t0),
                micros(chunk.duration),
                seed_blob,
                function,
                None if rerun_of is None else hex_blob(rerun_of),
                os.getpid(),
                seq_blob,
                json.dumps(chunk.scalars, ensure_ascii=False),
            ),
        )
        if fields:
            self.fields.write(conn, fields)

    def _chunk_pset_pks(self, conn: sqlite3.Connection, hashes: list[str], canonicals: list[str]) -> list[int]:
        """Insert a chunk's psets this writer knows no key of, in one statement; return each run's pset key.

        The keys it makes are those :meth:`_pset_pks` makes: the next free
        ones, in the order the psets first come.
        """
        known, staged = self._psets, self._staged_psets
        if known.keys().isdisjoint(hashes) and staged.keys().isdisjoint(hashes):  # all new (a sweep's usual chunk)
            missing = dict(zip(hashes, canonicals))
        else:
            missing = {h: c for h, c in zip(hashes, canonicals) if h not in known and h not in staged}
        if missing:
            next_pk = conn.execute(_MAX_PSET_PK).fetchone()[0] + 1
            found = dict(zip(missing, range(next_pk, next_pk + len(missing))))
            hash_blob = bytes.fromhex("".join(missing))
            texts = json.dumps(list(missing.values()), ensure_ascii=False)
            if conn.execute(_INSERT_CHUNK_PSETS, (next_pk, hash_blob, _HASH_BYTES, texts)).rowcount != len(missing):
                _found_psets(conn, missing, found)
            staged.update(found)
        pks = list(map(staged.get, hashes))
        if None in pks:  # known before this transaction
            pks = [known[h] if pk is None else pk for h, pk in zip(hashes, pks)]
        return pks  # type: ignore[return-value]

    def _results(
        self,
        conn: sqlite3.Connection,
        run: PendingRun,
        rows: list[tuple[Any, ...]],
        objects: list[tuple[str, int, str, str]],
        fields: list[tuple[str, str, str, int]],
    ) -> str | None:
        """Add the run's result rows to ``rows``; return its plain scalars as one JSON text (runs.scalars).

        Plain numbers, bools and None without a comment go in the JSON,
        sorted by name and written like canonical pset JSON; everything else
        (text included, which SQLite's JSON functions would cut at a NUL) is
        a row of ``results``.
        """
        comments = run.result_comments
        known, staged = self._result_kinds, self._staged_result_kinds
        compact: list[str] = []
        for name, encoded in run.results.items():
            kind = encoded.kind
            if (kind == "bool" or (kind is None and type(encoded.value) is not str)) and not (
                comments and name in comments
            ):
                compact.append(name)
                kind = IN_SCALARS
            else:
                rows.append(
                    (
                        run.pk,
                        name,
                        kind,
                        encoded.value,
                        self._comment_pk(conn, comments.get(name)) if comments else None,
                    )
                )
                if encoded.object is not None:
                    objects.append(encoded.object)
                if kind is None and isinstance(encoded.value, str):
                    kind = TEXT  # in fields only: the view casts a column of texts to TEXT
            key = (name, kind)
            if key not in known and key not in staged:
                staged.add(key)
                assert run.pk is not None
                fields.append(("result", name, kind or "", run.pk))
        if not compact:
            return None
        return scalars_json(run.results, compact)

    def _scalar_fields(self, run: PendingRun, fields: list[tuple[str, str, str, int]]) -> None:
        """Add the names of the run's results kept in ``runs.scalars`` to ``fields`` unless they are known."""
        assert run.scalar_names is not None and run.pk is not None
        self._staged_scalar_layouts.add(run.scalar_names)
        self._new_scalar_names(run.scalar_names, run.pk, fields)

    def _scalar_fields_of(self, names: tuple[str, ...], pk: int, fields: list[tuple[str, str, str, int]]) -> None:
        """What :meth:`_scalar_fields` does for the first run of a chunk (key ``pk``), whose names all its runs share."""
        if names not in self._scalar_layouts and names not in self._staged_scalar_layouts:
            self._staged_scalar_layouts.add(names)
            self._new_scalar_names(names, pk, fields)

    def _new_scalar_names(self, names: tuple[str, ...], pk: int, fields: list[tuple[str, str, str, int]]) -> None:
        known, staged = self._result_kinds, self._staged_result_kinds
        for name in names:
            key = (name, IN_SCALARS)
            if key not in known and key not in staged:
                staged.add(key)
                fields.append(("result", name, IN_SCALARS, pk))

    def _param_fields(self, run: PendingRun, fields: list[tuple[str, str, str, int]]) -> None:
        """Add the run's parameter names and kinds to ``fields`` unless they are known (one set lookup per run).

        A known layout is its names when no value is a str, else the names
        and those of the str values.
        """
        names = run.names if run.names is not None else tuple(json.loads(run.canonical))
        canonical = run.canonical
        texts = self.fields.texts(names, canonical)
        structures = (
            self.fields.structures(names, canonical) if '":[' in canonical or '":{' in canonical else ()
        )  # lists and dicts: a rare pset, found by two searches
        layout: Any = (names, texts, structures) if structures else (names, texts) if texts else names
        if layout not in self._layouts and layout not in self._staged_layouts:
            self._staged_layouts.add(layout)
            assert run.pk is not None
            fields.extend(
                ("param", name, STRUCTURE if name in structures else TEXT if name in texts else "", run.pk)
                for name in names
            )

    def note_psets(self, pks: dict[str, int]) -> None:
        """Remember keys of psets found in the store (hash → key): psets are never deleted."""
        if len(self._psets) > _PSET_CACHE:
            self._psets.clear()
        self._psets.update(pks)

    def _pset_pk(self, hash_: str, new: dict[str, int]) -> int:
        """The key of a pset: one of ``new`` (from :meth:`_pset_pks`) or known before."""
        pk = new.get(hash_)
        return self._psets[hash_] if pk is None else pk

    def _pset_pks(self, conn: sqlite3.Connection, runs: list[PendingRun]) -> dict[str, int]:
        """Insert the psets of ``runs`` this writer knows no key of; return their keys (hash → key).

        The others are in ``self._psets``. The psets are inserted first, and
        looked up only if some of them were there already: a new pset costs
        one probe of the hash index instead of two.
        """
        known = self._psets
        missing = {r.pset_hash: r.canonical for r in runs if r.pset_hash not in known}
        if not missing:
            return {}
        next_pk = conn.execute(_MAX_PSET_PK).fetchone()[0] + 1
        found = dict(zip(missing, range(next_pk, next_pk + len(missing))))
        rows = list(zip(found.values(), map(hex_blob, missing), missing.values()))
        if conn.executemany(_INSERT_PSET, rows).rowcount != len(rows):
            _found_psets(conn, missing, found)
        self._staged_psets.update(found)
        return found

    def _comment_pk(self, conn: sqlite3.Connection, text: str | None) -> int | None:
        if text is None:
            return None
        if self._purge:
            pk = self._comments.get(text) or self._staged_comments.get(text)
            if pk is not None:
                return pk
            row = conn.execute(_FIND_COMMENT, (text,)).fetchone()
            if row is not None:
                found: int = row[0]
                self._staged_comments[text] = found
                return found
        new_pk: int = conn.execute(_MAX_COMMENT_PK).fetchone()[0] + 1
        conn.execute(_INSERT_COMMENT, (new_pk, text))
        if self._purge:
            self._staged_comments[text] = new_pk
        return new_pk
