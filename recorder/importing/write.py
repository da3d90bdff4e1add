"""Put a :class:`~recorder.importing.source.SourceStudy` into a store: the one writer of every importer.

What it writes, and how it stays safe to run twice:

- **Run ids are deterministic**: 6 bytes of the run's source start time in
  milliseconds (0, the Unix epoch, when the source has none) and 6 bytes of
  the SHA-256 of its origin (``"<tool>:<source id>"``, kept in
  ``runs.origin``). The ids sort by time like recorder's own, and importing a
  source twice finds every run already there; a source that grew since adds
  only its new runs.
- **Sessions**: one per :attr:`SourceRun.session_key` (the study's one
  session when it is None), found again on the next import by the last 12
  hex digits of their id (the SHA-256 of ``"<tool>:session:<key>"``), among
  the sessions imports made (never a recorded one). A
  session row records the environment; an import fills it honestly: the
  source's host and git commit where it has them, ``"unknown (imported from
  <tool>)"`` for the platform, Python and environment fingerprint it does
  not know, pid 0 (unknown), ``argv`` the import command, ``cwd`` the folder
  it ran in, ``message`` what was imported from where.
- **Parameters** become psets hashed as recorder hashes them
  (:func:`recorder.codec.canonical.canonical_pset`), so a sweep of the same
  parameters with ``skip="done"`` finds imported runs done. A run's seed is
  the source's, else the one recorder derives from the pset hash.
- **Results** are typed (numbers stay numbers, arrays become objects);
  **series** are stored as ``run.append`` stores them (the last value, and
  ``<name>_series``); **files** as file results, as the files a run leaves
  in its folder; **tags** and **notes** as ``recorder tag`` and ``recorder
  note`` make them; captured output as the run's output.
- **Names** that recorder reserves (a leading ``_``, the wide view's run
  columns) are renamed with the tool's name as a prefix (``_x`` →
  ``psweep_x``, ``status`` → ``psweep_status``); a result named like a
  parameter gets ``_result`` appended; a name taken already (by a name of
  the source, or a series' ``<name>_series``) gets ``_`` appended until it
  is free, so no value replaces another. A name whose values have several
  types across runs (int and float, numbers and text) is imported as the
  widest (float, text). Every rename and widening is reported.

Everything is written in one transaction: a failure leaves the store as it
was (object files written before it are unreferenced, and ``gc`` removes
them). ``dry_run`` writes nothing, not even a new store, and reports what an
import would do.
"""

from __future__ import annotations

import contextlib
import gc
import getpass
import hashlib
import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..codec.canonical import canonical_pset
from ..codec.hashing import check_experiment, check_name, pset_identity, text_digest
from ..codec.values import Encoded, encode
from ..errors import ImportSourceError, NameRefused, RecorderError, StoreError, ValueRefused
from ..shards.curate import NOTE_MAX_BYTES, check_tag
from ..store import catalog
from ..store.db import transaction
from ..store.folder import Store, locate
from ..store.ids import iso_utc, now_utc
from ..store.layout import DB_NAME
from ..store.objects import FILE_DTYPE, ObjectStore
from ..store.pending import PendingRun
from ..store.rows import Rows, hex_blob
from ..store.spill import SERIES_SUFFIX
from ..sweep.execute import RunContext, store_file
from ..version import __version__
from .source import SourceRun, SourceStudy

__all__ = ["ImportReport", "import_study", "no_gc", "run_id_of", "UNKNOWN"]

#: What a session of imported runs records for what the source does not say (platform, Python, ...).
UNKNOWN = "unknown (imported from {tool})"

_IN_CHUNK = 500
#: The statuses an imported run may have (a source's running runs are imported as interrupted by its reader).
_STATUSES = ("done", "failed", "interrupted")
_FIND_RUNS = "SELECT lower(hex(id)), origin FROM runs WHERE id IN ({marks})"
# Imported sessions only (their platform says so): a recorded session's id could end as an import's does.
_FIND_SESSIONS = "SELECT pk, id, experiment, host FROM sessions WHERE platform = ? AND substr(id, 13) IN ({marks})"
_INSERT_SESSION = """
INSERT INTO sessions (
    id, experiment, status, time_start, time_end, message, comment, seed, env_sha, git_mode, git_repo, git_commit,
    host, user, pid, platform, python, recorder_version, fingerprint, argv, cwd
) VALUES (?, ?, 'done', ?, ?, ?, NULL, NULL, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)
"""
_SESSION_ID_TAKEN = "SELECT 1 FROM sessions WHERE id = ?"
_UPSERT_CONFIG = "INSERT OR IGNORE INTO config (session, name, kind, value) VALUES (?, ?, ?, ?)"
_SET_WHERE = "UPDATE runs SET host = ?, pid = ?, pset_seq = ?, origin = ? WHERE pk = ?"
_INSERT_TAG = "INSERT OR IGNORE INTO run_tags (run, tag) VALUES (?, ?)"
_INSERT_NOTE = "INSERT INTO run_notes (run, text, time, user, host) VALUES (?, ?, ?, ?, ?)"


@dataclass
class ImportReport:
    """What an import did (or, with ``dry_run``, would do)."""

    tool: str
    source: Path
    #: The destination store's folder.
    store: Path
    experiment: str
    dry_run: bool
    #: Runs the source holds.
    read: int = 0
    #: Runs written now (with ``dry_run``: that would be written).
    imported: int = 0
    #: Runs an earlier import of the source wrote already (matched by their origin).
    already: int = 0
    #: Imported runs that failed in the source (recorded with status ``failed`` and their error).
    failed: int = 0
    #: Sessions written now.
    sessions: int = 0
    #: What the reader mapped where ("psweep column _time_utc -> run start time").
    mapped: list[str] = field(default_factory=list)
    #: What could not be mapped, and where it went instead (notes, config) or why it was left out.
    unmapped: list[str] = field(default_factory=list)
    #: Names renamed because recorder reserves them or they collide ("status -> psweep_status").
    renames: list[str] = field(default_factory=list)
    #: Names imported as a wider type because their values' types differ across runs.
    widened: list[str] = field(default_factory=list)
    #: Ids of the runs written now (24 hex digits), in the source's order.
    run_ids: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report as lines for people: mappings, what was not mapped, renames, counts."""
        out = [f"{'would import' if self.dry_run else 'imported'} {self.tool} study {self.source} into {self.store}"]
        out.append(f"  experiment: {self.experiment}")
        out += [f"  mapped: {line}" for line in self.mapped]
        out += [f"  not mapped: {line}" for line in self.unmapped]
        out += [f"  renamed: {line}" for line in self.renames]
        out += [f"  widened: {line}" for line in self.widened]
        verb = "would import" if self.dry_run else "imported"
        out.append(
            f"runs: {self.read} read, {self.imported} {verb}, {self.already} already there, "
            f"{self.failed} failed in the source; sessions: {self.sessions} new"
        )
        return out

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON values."""
        return {
            "tool": self.tool,
            "source": str(self.source),
            "store": str(self.store),
            "experiment": self.experiment,
            "dry_run": self.dry_run,
            "read": self.read,
            "imported": self.imported,
            "already": self.already,
            "failed": self.failed,
            "sessions": self.sessions,
            "mapped": self.mapped,
            "unmapped": self.unmapped,
            "renames": self.renames,
            "widened": self.widened,
        }


def run_id_of(origin: str, start: float | None) -> str:
    """The id an imported run gets: 6 bytes of its start in ms (0 when unknown), 6 of the SHA-256 of its origin."""
    millis = 0 if start is None else max(0, round(start * 1000)) & 0xFFFFFFFFFFFF
    return f"{millis:012x}" + hashlib.sha256(origin.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _session_tail(tool: str, key: str) -> str:
    return hashlib.sha256(f"{tool}:session:{key}".encode("utf-8", "surrogatepass")).hexdigest()[:12]


# -- names and types -----------------------------------------------------------------------------------


def _kind(value: Any) -> str | None:
    """The type family of a value, for widening: bool, int, float, str, other; None for None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    dtype = getattr(value, "dtype", None)
    if dtype is not None and getattr(value, "shape", None) == ():  # a numpy scalar
        return {"b": "bool", "i": "int", "u": "int", "f": "float"}.get(dtype.kind, "other")
    return "other"


def _widest(kinds: set[str]) -> str | None:
    """The type a name whose values have ``kinds`` is imported as, or None when they are left as they are."""
    if len(kinds) < 2 or "other" in kinds:
        return None
    if "str" in kinds:
        return "str"
    return "float" if "float" in kinds else "int"


def _widen(value: Any, target: str) -> Any:
    if value is None:
        return None
    if target == "str":
        if isinstance(value, str):
            return value
        item = value.item() if hasattr(value, "item") else value
        return str(item)
    if target == "float":
        return float(value)
    return int(value)


def _free_name(tool: str, name: str) -> str | None:
    """``name``, or its prefixed form when recorder reserves it; None when no form of it may name a column."""
    try:
        return check_name("parameter", name)
    except NameRefused:
        pass
    stripped = name.lstrip("_")
    candidate = f"{tool}_{stripped}" if stripped else f"{tool}_"
    try:
        return check_name("parameter", candidate)
    except NameRefused:
        return None


class _Names:
    """The study's parameter and result names as imported: renames and widenings, decided once for all runs."""

    def __init__(self, study: SourceStudy, report: ImportReport) -> None:
        tool = study.tool
        params: dict[str, set[str]] = {}
        results: dict[str, set[str]] = {}
        for run in study.runs:
            for name, value in run.params.items():
                kind = _kind(value)
                found = params.setdefault(name, set())
                if kind is not None:
                    found.add(kind)
            for name, value in run.results.items():
                kind = _kind(value)
                found = results.setdefault(name, set())
                if kind is not None:
                    found.add(kind)
            for name in run.series:
                results.setdefault(name, set())
        self.params: dict[str, str | None] = {}
        self.results: dict[str, str | None] = {}
        series = {name for run in study.runs for name in run.series}
        taken: set[str] = set()
        for role, names, out in (("parameter", params, self.params), ("result", results, self.results)):
            param_keys = set(taken)
            # Names kept as they are claim theirs first (series first: a series takes its name and
            # '<name>_series'), so that a renamed one never takes another's ('_x' -> 'psweep_x' beside a
            # 'psweep_x' of the source would lose one of them; so would a result named like a series' array).
            is_series = series if role == "result" else set()
            for name in sorted(names, key=lambda n: (_free_name(tool, n) != n, n not in is_series)):
                new = _free_name(tool, name)
                if new is not None and role == "result" and new.lower() in param_keys:
                    new = f"{new}_result"  # a result may not share a parameter's name (one view column each)
                while new is not None and (
                    new.lower() in taken or (name in is_series and f"{new}{SERIES_SUFFIX}".lower() in taken)
                ):
                    new += "_"
                out[name] = new
                if new is None:
                    report.unmapped.append(
                        f"{role} {name!r}: no form of the name can name a column (it holds characters that are "
                        "not visible text); its values are kept as notes of the runs"
                    )
                    continue
                taken.add(new.lower())
                if name in is_series:
                    taken.add(f"{new}{SERIES_SUFFIX}".lower())
                if new != name:
                    if _free_name(tool, name) != name:
                        why = "a name recorder reserves"
                    elif new.startswith(f"{name}_result"):
                        why = "a parameter's name"
                    else:
                        why = "the name of another column (differing in case, or a series' array)"
                    report.renames.append(f"{role} {name!r} -> {new!r} ({name!r} is {why})")
        self.param_targets = {n: _widest(k) for n, k in params.items()}
        self.result_targets = {n: _widest(k) for n, k in results.items()}
        for role, targets, kinds in (
            ("parameter", self.param_targets, params),
            ("result", self.result_targets, results),
        ):
            for name, target in targets.items():
                if target is not None:
                    report.widened.append(
                        f"{role} {name!r} has {' and '.join(sorted(kinds[name]))} values across runs: "
                        f"imported as {target} (the widest)"
                    )


# -- planning ------------------------------------------------------------------------------------------


class _NoObjects:
    """An object store that stores nothing: what a dry run encodes arrays with."""

    def put(self, array: Any) -> tuple[str, int]:
        return "0" * 64, int(getattr(array, "nbytes", 0))

    def get(self, digest: str, *, mmap: bool = True) -> Any:
        raise RecorderError("a dry run stores no array")

    def file(self, digest: str) -> Path:
        raise RecorderError("a dry run stores no file")


class _Planned:
    """A source run made ready for the writer: its pending row and what goes beside it."""

    __slots__ = ("host", "notes", "origin", "pending", "pid", "pset_seq", "run", "session", "tags")

    def __init__(self, run: SourceRun, pending: PendingRun, origin: str, session: str) -> None:
        self.run = run
        self.pending = pending
        self.origin = origin
        self.session = session
        self.host = run.host
        self.pid = run.pid
        self.pset_seq = run.pset_seq
        self.tags: list[str] = []
        self.notes: list[str] = []


def _params(run: SourceRun, names: _Names) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in run.params.items():
        new = names.params[name]
        if new is None or value is None:
            continue
        target = names.param_targets.get(name)
        out[new] = _widen(value, target) if target is not None else value
    return out


def _series_results(run: SourceRun, names: _Names) -> dict[str, Any]:
    """The results ``run.append`` would make of the run's series (the same code makes them)."""
    if not run.series:
        return {}
    context = RunContext([0, None, None, None, None, None])
    for name, values in run.series.items():
        new = names.results[name]
        if new is None:
            continue
        for value in values:
            context.append(**{new: value})
    return context.results()


def _file_result(objects: ObjectStore | None, path: Path) -> Encoded:
    """A file of a run stored as the files a run leaves in its folder are (``RunContext.files``)."""
    if objects is None:  # a dry run: only checked to be readable
        size = path.stat().st_size
        return Encoded("file", "0" * 64, ("0" * 64, size, FILE_DTYPE, "[]"))
    return store_file(objects, path)


def _encode_results(
    run: SourceRun, names: _Names, objects: ObjectStore | None, planned: _Planned, report_unmapped: list[str]
) -> dict[str, Encoded]:
    store: Any = objects if objects is not None else _NoObjects()
    encoded: dict[str, Encoded] = {}
    values: dict[str, Any] = {}
    for name, value in run.results.items():
        new = names.results[name]
        if new is None:
            planned.notes.append(f"{name} = {value!r}"[:1000])
            continue
        if value is None:
            continue
        target = names.result_targets.get(name)
        values[new] = _widen(value, target) if target is not None else value
    values.update(_series_results(run, names))
    for name, value in values.items():
        try:
            encoded[name] = encode(name, value, store)
        except ValueRefused as e:
            # A value recorder cannot store (an arbitrary object): kept as a note, never dropped silently.
            planned.notes.append(f"{name} = {value!r}"[:1000])
            line = f"result {name!r} of type {type(value).__name__} cannot be stored as a value ({e}); kept as a note"
            if line not in report_unmapped:
                report_unmapped.append(line)
    for relative, path in run.files.items():
        if relative in encoded:
            raise ImportSourceError(
                f"run {run.source_id}: the file {relative!r} has the name of a result; rename one of them in the source"
            )
        try:
            encoded[relative] = _file_result(objects, Path(path))
        except OSError as e:
            raise ImportSourceError(f"cannot read the file {str(path)!r} of run {run.source_id}: {e}") from e
    return encoded


def _plan(
    study: SourceStudy,
    names: _Names,
    objects: ObjectStore | None,
    todo: list[tuple[SourceRun, str]],
    report: ImportReport,
) -> list[_Planned]:
    """Make each run of ``todo`` (with its id) ready for the writer; arrays and files go to ``objects``."""
    identity = pset_identity(None)
    tool = study.tool
    planned: list[_Planned] = []
    tails: dict[str, str] = {}
    for run, run_id in todo:
        origin = f"{tool}:{run.source_id}"
        try:
            clean, canonical = canonical_pset(_params(run, names))
        except (ValueRefused, NameRefused) as e:
            raise ImportSourceError(
                f"run {run.source_id} of {study.location}: its parameters cannot be stored: {e}"
            ) from e
        hash_, derived_seed = identity(canonical)
        seed = run.seed if run.seed is not None else derived_seed
        pending = PendingRun(run_id, hash_, canonical, seed, run.start or 0.0, tuple(clean))
        pending.status = run.status
        pending.duration = run.duration
        pending.error = run.error if run.status != "done" else None
        if run.output is not None:
            pending.output = (text_digest(run.output), run.output)
        key = run.session_key if run.session_key is not None else f"study:{study.location}"
        tail = tails.get(key)
        if tail is None:
            tail = tails[key] = _session_tail(tool, key)
        item = _Planned(run, pending, origin, tail)
        pending.results = _encode_results(run, names, objects, item, report.unmapped)
        for tag in run.tags:
            try:
                item.tags.append(check_tag(tag))
            except NameRefused:
                item.notes.append(f"tag {tag}")
        item.notes.extend(run.notes)
        for name, value in run.params.items():
            if names.params[name] is None and value is not None:
                item.notes.append(f"{name} = {value!r}"[:1000])
        planned.append(item)
    return planned


def _note_text(text: str) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) <= NOTE_MAX_BYTES:
        return text
    return data[: NOTE_MAX_BYTES - 40].decode("utf-8", "ignore") + " … (cut to the longest note)"


# -- writing -------------------------------------------------------------------------------------------


def _existing_runs(conn: sqlite3.Connection | None, ids: list[str]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    if conn is None:
        return found
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        sql = _FIND_RUNS.format(marks=", ".join("?" * len(chunk)))
        found.update(conn.execute(sql, [hex_blob(i) for i in chunk]).fetchall())
    return found


def _session_rows(
    conn: sqlite3.Connection, study: SourceStudy, experiment_pk: int, planned: list[_Planned], argv: str
) -> tuple[dict[str, int], int]:
    """Find or make the session of each planned run; return session tail → key, and how many were made."""
    tails = sorted({p.session for p in planned})
    known: dict[str, int] = {}
    hosts_by_tail: dict[str, str] = {}
    for start in range(0, len(tails), _IN_CHUNK):
        chunk = tails[start : start + _IN_CHUNK]
        sql = _FIND_SESSIONS.format(marks=", ".join("?" * len(chunk)))
        for pk, id_, experiment, host in conn.execute(sql, [UNKNOWN.format(tool=study.tool), *chunk]):
            if experiment == experiment_pk:
                known[id_[12:]] = pk
                hosts_by_tail[id_[12:]] = host
    runs_of: dict[str, list[_Planned]] = {}
    for item in planned:
        runs_of.setdefault(item.session, []).append(item)
    made = 0
    tool = study.tool
    unknown = UNKNOWN.format(tool=tool)
    for tail in tails:
        if tail in known:
            continue
        runs = runs_of[tail]
        starts = [p.run.start for p in runs if p.run.start is not None]
        ends = [p.run.start + (p.run.duration or 0.0) for p in runs if p.run.start is not None]
        first = min(starts) if starts else 0.0
        hosts = {p.run.host for p in runs if p.run.host}
        commits = {p.run.git_commit for p in runs if p.run.git_commit}
        commit = commits.pop() if len(commits) == 1 else None
        host = hosts.pop() if len(hosts) == 1 else unknown
        millis = max(0, round(first * 1000)) & 0xFFFFFFFFFFFF
        # The same source session imported into another experiment before has this id: the next free one.
        while conn.execute(_SESSION_ID_TAKEN, (f"{millis:012x}{tail}",)).fetchone() is not None:
            millis = (millis + 1) & 0xFFFFFFFFFFFF
        session_id = f"{millis:012x}{tail}"
        time_start = iso_utc(first)
        env_sha = commit or hashlib.sha1(f"{tool}:{tail}{time_start}{__version__}".encode()).hexdigest()
        pk = conn.execute(
            _INSERT_SESSION,
            (
                session_id,
                experiment_pk,
                time_start,
                iso_utc(max(ends)) if ends else None,
                f"imported from {tool}: {study.location}",
                env_sha,
                "imported" if commit else None,
                None,
                commit,
                host,
                _user(),
                unknown,
                unknown,
                __version__,
                unknown,
                argv,
                os.getcwd(),
            ),
        ).lastrowid
        if pk is None:
            raise StoreError("the store gave no key for an imported session")
        known[tail] = int(pk)
        hosts_by_tail[tail] = host
        made += 1
        if study.config:
            _write_config(conn, int(pk), study.config)
    for item in planned:  # a run on its session's host keeps NULL in runs.host, as recorded runs do
        if item.host is not None and item.host == hosts_by_tail.get(item.session):
            item.host = None
    return known, made


def _new_sessions(conn: sqlite3.Connection | None, planned: list[_Planned], tool: str) -> set[str]:
    """The session tails of ``planned`` that no session of the store has (what a dry run would make)."""
    tails = {p.session for p in planned}
    if conn is None or not tails:
        return tails
    ordered = sorted(tails)
    for start in range(0, len(ordered), _IN_CHUNK):
        chunk = ordered[start : start + _IN_CHUNK]
        sql = _FIND_SESSIONS.format(marks=", ".join("?" * len(chunk)))
        for _, id_, _, _ in conn.execute(sql, [UNKNOWN.format(tool=tool), *chunk]):
            tails.discard(id_[12:])
    return tails


def _write_config(conn: sqlite3.Connection, session_pk: int, config: dict[str, Any]) -> None:
    rows = []
    for name, value in config.items():
        try:
            encoded = encode(name, value, _NoObjects(), what="config value")
        except ValueRefused:
            encoded = Encoded(None, repr(value))
        if encoded.object is not None:  # a large array as config: kept as its description, not stored
            encoded = Encoded(None, repr(value)[:1000])
        rows.append((session_pk, name, encoded.kind, encoded.value))
    conn.executemany(_UPSERT_CONFIG, rows)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _write(
    store: Store, study: SourceStudy, experiment: str, planned: list[_Planned], argv: str, report: ImportReport
) -> None:
    now = now_utc()
    with transaction(store.conn) as conn:
        experiment_pk = catalog.experiment_pk(conn, experiment, now)
        sessions, made = _session_rows(conn, study, experiment_pk, planned, argv)
        report.sessions = made
        # One Rows per session: it writes runs, psets, results, objects, outputs and the experiment's names.
        by_session: dict[int, list[_Planned]] = {}
        for item in planned:
            by_session.setdefault(sessions[item.session], []).append(item)
        for session_pk, items in by_session.items():
            rows = Rows(conn, experiment_pk, session_pk)
            assigned: list[PendingRun] = []
            rows.write(conn, [p.pending for p in items], [], assigned)
        conn.executemany(_SET_WHERE, [(p.host, p.pid, p.pset_seq, p.origin, p.pending.pk) for p in planned])
        conn.executemany(_INSERT_TAG, [(p.pending.pk, t) for p in planned for t in p.tags])
        user, host = _user(), socket.gethostname()
        conn.executemany(
            _INSERT_NOTE,
            [(p.pending.pk, _note_text(n), now, user, host) for p in planned for n in p.notes if n.strip()],
        )


def _import_argv(study: SourceStudy, into: Path, experiment: str | None) -> str:
    argv = ["recorder", "import", study.tool, str(study.location), "--into", str(into)]
    if experiment is not None:
        argv += ["--experiment", experiment]
    return json.dumps(argv)


def import_study(
    study: SourceStudy,
    *,
    into: Path | str | None,
    experiment: str | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Put a study a reader made into the store ``into``: new runs only, in one transaction.

    :param into: the store folder (default as for :class:`~recorder.Recorder`: ``$RECORDER_STORE``,
        else the nearest ``.recorder/``, else ``./.recorder/``, created).
    :param experiment: the experiment to import into; default the name the source suggests.
    :param dry_run: write nothing (not even a new store); report what would be imported.
    :raises ImportSourceError: for a run whose parameters or files cannot be stored (nothing is written).
    :raises NameRefused: for an experiment name recorder refuses, or a name that is a parameter in
        the store's experiment and a result in the source (nothing is written).
    """
    with no_gc():
        return _import(study, into, experiment, dry_run)


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Hold Python's cyclic garbage collector: it would scan the study's millions of objects again and again.

    An import allocates a few objects per run and frees none of them in cycles; with the collector
    on, its passes over the whole (large, live) study cost more than the import itself.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _import(study: SourceStudy, into: Path | str | None, experiment: str | None, dry_run: bool) -> ImportReport:
    name = check_experiment(experiment if experiment is not None else study.experiment)
    root = locate(into)
    report = ImportReport(study.tool, study.location, root, name, dry_run, read=len(study.runs))
    report.mapped = list(study.mapped)
    report.unmapped = list(study.unmapped)
    names = _Names(study, report)
    for run in study.runs:  # checked before the store is opened (or made)
        if run.status not in _STATUSES:
            raise ImportSourceError(
                f"run {run.source_id} of {study.location} has status {run.status!r}; an imported run is one of "
                f"{', '.join(_STATUSES)} (the reader must map the source's statuses)"
            )
    origins = [f"{study.tool}:{r.source_id}" for r in study.runs]
    if len(set(origins)) != len(origins):
        seen: set[str] = set()
        twice = next(o for o in origins if o in seen or seen.add(o))  # type: ignore[func-returns-value]
        raise ImportSourceError(f"{study.location} holds two runs with the id {twice.split(':', 1)[1]!r}")
    ids = [run_id_of(o, r.start) for o, r in zip(origins, study.runs)]
    exists = (root / DB_NAME).is_file()
    # A dry run reads the store if there is one, and never makes one.
    store = (Store.open(root, readonly=True) if exists else None) if dry_run else Store.open(root)
    try:
        found = _existing_runs(store.conn if store is not None else None, ids)
        for id_, origin in zip(ids, origins):
            if id_ in found and found[id_] != origin:
                raise ImportSourceError(
                    f"run id {id_} of {origin} is taken in {root} by another run ({found[id_] or 'recorded there'}); "
                    "please report this"
                )
        todo = [(r, id_) for r, id_ in zip(study.runs, ids) if id_ not in found]
        report.already = len(study.runs) - len(todo)
        report.imported = len(todo)
        report.failed = sum(1 for r, _ in todo if r.status == "failed")
        if dry_run or store is None:
            planned = _plan(study, names, None, todo, report)  # checks every value, stores nothing
            report.sessions = len(_new_sessions(store.conn if store is not None else None, planned, study.tool))
            return report
        if not todo:
            return report
        guard = store.objects.lock()  # gc must not take the objects written before their rows commit
        guard.acquire()
        try:
            planned = _plan(study, names, store.objects, todo, report)
            _write(store, study, name, planned, _import_argv(study, root, experiment), report)
        finally:
            guard.release()
        report.run_ids = [p.pending.id for p in planned]
        return report
    finally:
        if store is not None:
            store.close()
