"""Read a pypet HDF5 file into a :class:`~recorder.importing.source.SourceStudy`: ``recorder import pypet``.

pypet keeps each trajectory as a top-level group of the file, written by
PyTables. The reader opens it with h5py (the ``import`` extra:
``pip install 'recorder[import]'``), without pypet, and maps:

- the explored parameters (``parameters/…/explored_data``, one row per run)
  to each run's parameters, the other parameters (and the derived parameters
  outside the runs) to the study's config;
- each run's results (``results/runs/run_XXXXXXXX/…``) and derived
  parameters (``derived_parameters/runs/run_XXXXXXXX/…``) to its results:
  numbers as numbers, strings as strings, arrays as arrays;
- the run information table (``overview/runs``) to the runs' start time,
  duration and status: a run pypet left ``completed = 0`` (never run, as
  after Ctrl+C with ``graceful_exit``, or not finished) is imported
  ``interrupted`` with a note;
- the git commit pypet made (``config/git/commit_…/hexsha``) to the runs'
  git commit, matched to each run through its environment;
- the trajectory's comment, time, pypet and Python versions, the parameters'
  comments and the ``config`` tree (environment settings, HDF5 settings,
  package versions, git; not the source code of pypet's run naming
  functions, the same in every pypet) to the config value ``pypet``; the
  results' comments to notes of their run.

A file may hold several trajectories: all those pypet stored are read (each
a session, its runs named ``<trajectory>@<its time>/<run name>`` so that two
trajectories never collide), unless ``trajectory`` names one. With several,
a parameter constant in one but explored, different or absent in another is
a parameter of each run rather than config.

What is not mapped is listed in :attr:`SourceStudy.unmapped`, with why:
pickled data (a ``PickleResult``, a ``PickleParameter``, PyTables'
variable-length arrays), pandas frames, dicts, sparse matrices, results of
the trajectory outside its runs, and a trajectory pypet never stored (a run
raised, so ``env.run`` ended before pypet wrote its parameters). Nothing
read from the file is trusted: nothing is unpickled, only hard links inside
the file are followed (no external or soft link, external storage or
virtual dataset), every name must be text, and every read is bounded
(:data:`MAX_READ_BYTES`, :data:`MAX_TEXT`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..codec.hashing import not_text
from ..errors import ExtraNotInstalled, ImportSourceError
from .source import SourceRun, SourceStudy

__all__ = ["MAX_READ_BYTES", "MAX_TEXT", "read_pypet"]

#: The most bytes one dataset may hold to be read (a run's array, the runs table): a file
#: claiming more is hostile or not one recorder can hold in memory, and is reported instead.
MAX_READ_BYTES = 512 * 2**20
#: The longest name or string value read, in characters.
MAX_TEXT = 1 << 20
#: The longest name kept (a parameter's or result's dotted path).
MAX_NAME = 256

_RUN = re.compile(r"run_[0-9]{8,}\Z")
_RUN_SET = re.compile(r"run_set_[0-9]+\Z")
_HEXSHA = re.compile(r"[0-9a-f]{40}\Z")
_ENVIRONMENT = re.compile(r"environment_([0-9a-f]{7})_(.+)\Z")
_COMMIT = re.compile(r"commit_([0-9a-f]{7})_(.+)\Z")
#: The children of a trajectory group pypet writes; any other is reported.
_TRAJECTORY_CHILDREN = frozenset({"config", "parameters", "derived_parameters", "results", "overview"})
#: pypet's classes whose stored data is a pickle.
_PICKLED = frozenset({"PickleParameter", "PickleResult"})
#: The overview tables other than runs, info and explorations: summaries of what is read from the tree.
_OVERVIEW_SUMMARIES = "overview tables other than runs, info and explorations (summaries of the tree read itself)"
_MISSING_H5PY = "importing a pypet file needs h5py, which is not installed: pip install 'recorder[import]'"


class _Unmappable(Exception):
    """A node the reader cannot map; the message says why."""


class _BadTrajectory(ImportSourceError):
    """A trajectory that cannot be imported at all (no runs, never stored, inconsistent)."""


@dataclass
class _Trajectory:
    """One trajectory, read."""

    name: str
    time: str
    timestamp: float
    runs: list[SourceRun]
    explored: list[str]
    constants: dict[str, Any]
    meta: dict[str, Any]
    results: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        """The trajectory's name and time: what makes its runs' ids unique."""
        return f"{self.name}@{self.time}"


def _h5py() -> Any:
    """Import h5py, or say in one line how to install it."""
    try:
        import h5py
    except ImportError as e:
        raise ExtraNotInstalled(_MISSING_H5PY) from e
    return h5py


def read_pypet(source: Path | str, trajectory: str | None = None) -> SourceStudy:
    """Read the pypet HDF5 file ``source``: its trajectories' runs, parameters and results.

    :param source: the ``.hdf5`` file pypet wrote.
    :param trajectory: the name of the one trajectory to read; None reads every
        trajectory pypet stored in the file (those it never stored are listed as unmapped).
    :raises ExtraNotInstalled: when h5py is not installed (``pip install 'recorder[import]'``).
    :raises ImportSourceError: when ``source`` is not an HDF5 file, holds no pypet
        trajectory (or not the one named), or no trajectory with runs that can be imported.
    """
    h5py = _h5py()
    path = Path(source)
    if not path.is_file():
        raise ImportSourceError(
            f"pypet file {str(path)!r} does not exist or is not a file; give the path of the HDF5 file pypet wrote"
        )
    try:
        is_hdf5 = h5py.is_hdf5(str(path))
    except OSError as e:
        raise ImportSourceError(f"pypet file {str(path)!r} cannot be read ({e}); check its permissions") from e
    if not is_hdf5:
        raise ImportSourceError(
            f"{str(path)!r} is not an HDF5 file, so not a pypet trajectory file; give the .hdf5 file pypet wrote"
        )
    try:
        handle = h5py.File(str(path), "r")
    except OSError as e:
        raise ImportSourceError(f"HDF5 file {str(path)!r} cannot be opened ({e}); is it whole?") from e
    with handle:
        return _Reader(h5py, handle, path).study(trajectory)


class _Reader:
    """Reads one open file; collects what it mapped and what it could not."""

    def __init__(self, h5py: Any, handle: Any, path: Path) -> None:
        self.h5py = h5py
        self.file = handle
        self.path = path
        self.mapped: list[str] = []
        #: Reason → how many times (one line per reason, however many runs it concerns).
        self.unmapped: dict[str, int] = {}

    def skip(self, reason: str) -> None:
        """Report something not imported, and why (counted: one line per reason, not per run)."""
        self.unmapped[reason] = self.unmapped.get(reason, 0) + 1

    # -- the file -------------------------------------------------------------------------------

    def study(self, wanted: str | None) -> SourceStudy:
        """Read the trajectory named ``wanted``, or all of them."""
        names = [name for name, group in self.children(self.file, "the file") if self.is_trajectory(group)]
        where = str(self.path)
        if not names:
            raise ImportSourceError(
                f"HDF5 file {where!r} holds no pypet trajectory (no top-level group with the tables "
                "overview/runs and overview/info); give a file pypet wrote"
            )
        if wanted is not None:
            if wanted not in names:
                raise ImportSourceError(
                    f"pypet file {where!r} holds no trajectory {wanted!r}; it holds {', '.join(map(repr, names))}"
                )
            names = [wanted]
        read: list[_Trajectory] = []
        refused: list[str] = []
        for name in names:
            try:
                read.append(self.trajectory(name))
            except _BadTrajectory as e:
                if wanted is not None:
                    raise
                refused.append(str(e))
                self.skip(f"{e}; not imported")
        if not read:
            raise ImportSourceError(f"pypet file {where!r} has no runs that can be imported: {'; '.join(refused)}")
        read.sort(key=lambda t: (t.timestamp, t.name))
        config = self.split_constants(read)
        meta_name = "pypet" if "pypet" not in config else "pypet_trajectories"  # a parameter may be named pypet
        config[meta_name] = {t.key: t.meta for t in read}
        self.mapped.append(
            "pypet trajectory comment, time, versions, parameter comments and config tree (environment, "
            f"hdf5, git) -> config {meta_name!r}"
        )
        runs = [run for t in read for run in t.runs]
        experiment = read[0].name if len(read) == 1 else self.path.stem
        self.mapped.append(
            f"pypet trajectory {read[0].name!r} -> experiment {experiment!r}"
            if len(read) == 1
            else f"pypet trajectories {', '.join(repr(t.name) for t in read)} -> experiment {experiment!r} "
            "(the file's name), one session each"
        )
        unmapped = [f"{reason} (x{count})" if count > 1 else reason for reason, count in self.unmapped.items()]
        return SourceStudy("pypet", self.path, experiment, runs, config, self.mapped, unmapped)

    def split_constants(self, read: list[_Trajectory]) -> dict[str, Any]:
        """Return the study's config: the constants equal in every trajectory read.

        A constant of one trajectory that another explores, lacks or sets otherwise is a
        parameter of that trajectory's runs instead, so that no run claims a value it did not have.
        """
        names = {name for t in read for name in t.constants}
        config: dict[str, Any] = {}
        demoted: list[str] = []
        for name in sorted(names):
            values = [t.constants.get(name, _ABSENT) for t in read]
            first = values[0]
            if all(v is not _ABSENT and _same(v, first) for v in values):
                config[name] = first
                continue
            demoted.append(name)
            for t in read:
                if name in t.constants:
                    for run in t.runs:
                        run.params.setdefault(name, t.constants[name])
        if config:
            self.mapped.append(
                f"pypet parameters not explored and derived parameters outside the runs ({', '.join(config)}) -> config"
            )
        if demoted:
            self.mapped.append(
                f"pypet parameters constant in one trajectory but not in all ({', '.join(demoted)}) -> "
                "parameters of that trajectory's runs"
            )
        return config

    # -- one trajectory -------------------------------------------------------------------------

    def trajectory(self, name: str) -> _Trajectory:
        """Read one trajectory group."""
        group = self.file[name]
        what = f"pypet trajectory {name!r}"
        info = self.table_row(group["overview"]["info"], f"{what}: overview/info")
        time = self.text(info.get("time"), f"{what}: its time")
        if not time or len(time) > 64 or not_text(time) is not None:
            raise _BadTrajectory(
                f"{what} has no time in overview/info (pypet writes one, such as 2016_01_01_12h00m00s)"
            )
        timestamp = _number(info.get("timestamp"))
        key = f"{name}@{time}"
        for child, _ in self.children(group, what):
            if child not in _TRAJECTORY_CHILDREN:
                self.skip(f"{what}: group {child!r}, which pypet does not write")
        runs_table = self.table(group["overview"]["runs"], f"{what}: overview/runs")
        if runs_table is None or len(runs_table) == 0:
            raise _BadTrajectory(f"{what} has no runs (its overview/runs table is empty); run it with pypet first")
        explored_names = self.explorations(group, what)
        params_group = self.child(group, "parameters", what)
        if params_group is None and (explored_names or self.child(group, "config", what) is None):
            stored = self.run_groups(group, "results", what)
            raise _BadTrajectory(
                f"{what} was never stored by pypet (it has no parameters and no config: a run raised and ended "
                f"env.run before pypet wrote them); its {len(stored)} run(s) with results cannot be imported "
                "without their parameters"
            )
        explored: dict[str, list[Any]] = {}
        constants: dict[str, Any] = {}
        comments: dict[str, str] = {}
        if params_group is not None:
            for pname, leaf in self.leaves(params_group, what, "parameters"):
                try:
                    value, ranged = self.parameter(leaf)
                except _Unmappable as e:
                    self.skip(f"{what}: parameter {pname!r}: {e}; not imported")
                    if pname in explored_names:
                        raise _BadTrajectory(f"{what}: explored parameter {pname!r}: {e}") from None
                    continue
                comment = self.attr_text(leaf, "SRVC_INIT_COMMENT")
                if comment:
                    comments[pname] = comment
                if ranged is not None:
                    explored[pname] = ranged
                else:
                    constants[pname] = value
        missing = [p for p in explored_names if p not in explored]
        if missing:
            raise _BadTrajectory(
                f"{what}: overview/explorations lists {', '.join(map(repr, missing))}, which has no explored_data"
            )
        for pname, values in explored.items():
            if len(values) != len(runs_table):
                raise _BadTrajectory(
                    f"{what}: explored parameter {pname!r} has {len(values)} values for {len(runs_table)} runs"
                )
        if explored:
            self.mapped.append(f"{what}: explored parameters ({', '.join(explored)}) -> run parameters")
        derived = self.child(group, "derived_parameters", what)
        if derived is not None:
            for pname, leaf in self.leaves(derived, what, "derived_parameters", skip={"runs"}):
                if pname in constants or pname in explored:
                    self.skip(f"{what}: derived parameter {pname!r} is named like a parameter; not imported")
                    continue
                try:
                    constants[pname], _ = self.parameter(leaf)
                except _Unmappable as e:
                    self.skip(f"{what}: derived parameter {pname!r}: {e}; not imported")
                    continue
                comment = self.attr_text(leaf, "SRVC_INIT_COMMENT")
                if comment:
                    comments[pname] = comment

        config_tree: dict[str, Any] = {}
        config_group = self.child(group, "config", what)
        if config_group is not None:
            wildcards = 0
            for cname, leaf in self.leaves(config_group, what, "config"):
                if ".wildcards." in cname and cname.startswith("environment."):
                    wildcards += 1
                    continue
                try:
                    config_tree[cname], _ = self.parameter(leaf)
                except _Unmappable as e:
                    self.skip(f"{what}: config {cname!r}: {e}; not imported")
            if wildcards:
                self.skip(
                    f"{what}: config environment.*.wildcards ({wildcards} values: the source code of pypet's "
                    "run naming functions, the same in every pypet); not imported"
                )
        commits = self.git_commits(config_tree, what)
        meta: dict[str, Any] = {
            "trajectory": name,
            "time": time,
            "timestamp": timestamp,
            "comment": self.text(info.get("comment"), f"{what}: its comment")
            or self.attr_text(group, "SRVC_INIT_COMMENT"),
            "pypet_version": self.text(info.get("version"), f"{what}: pypet version"),
            "python": self.text(info.get("python"), f"{what}: Python version"),
            "parameter_comments": comments,
            "config": {cname: _json_safe(value) for cname, value in config_tree.items()},
        }
        runs = self.runs(group, what, key, runs_table, explored, commits)
        return _Trajectory(
            name, time, timestamp if timestamp is not None else math.inf, runs, list(explored), constants, meta
        )

    def explorations(self, group: Any, what: str) -> list[str]:
        """The explored parameters' names overview/explorations lists (without ``parameters.``)."""
        overview = group["overview"]
        if "explorations" not in overview:
            return []
        table = self.table(overview["explorations"], f"{what}: overview/explorations")
        if table is None or "explorations" not in (table.dtype.names or ()):
            return []
        names = []
        for cell in table["explorations"]:
            text = self.text(cell, f"{what}: overview/explorations")
            if text and text.startswith("parameters."):
                names.append(text[len("parameters.") :])
        return names

    def git_commits(self, config_tree: dict[str, Any], what: str) -> dict[str, str]:
        """The git commits pypet made, by the time in their name (the time of their environment)."""
        commits: dict[str, str] = {}
        for cname, value in config_tree.items():
            parts = cname.split(".")
            if len(parts) == 3 and parts[0] == "git" and parts[2] == "hexsha":
                match = _COMMIT.match(parts[1])
                if match and isinstance(value, str) and _HEXSHA.match(value):
                    commits[match.group(2)] = value
                else:
                    self.skip(f"{what}: config {cname!r} is not a git commit (40 hex digits); kept in config")
        if commits:
            self.mapped.append(f"{what}: git commit (config.git.commit_*.hexsha) -> the runs' git commit")
        return commits

    def runs(
        self,
        group: Any,
        what: str,
        key: str,
        table: Any,
        explored: dict[str, list[Any]],
        commits: dict[str, str],
    ) -> list[SourceRun]:
        """The trajectory's runs, from its run information table, explored ranges and run groups."""
        fields = set(table.dtype.names or ())
        needed = {"name", "completed"}
        if not needed <= fields:
            raise _BadTrajectory(f"{what}: overview/runs lacks the columns {', '.join(sorted(needed - fields))}")
        results = self.run_groups(group, "results", what)
        derived = self.run_groups(group, "derived_parameters", what)
        environments = self.environments(group, what)
        runs: list[SourceRun] = []
        seen: set[str] = set()
        for index, row in enumerate(table):
            run_name = self.text(row["name"], f"{what}: a run's name")
            if not run_name or not _RUN.match(run_name) or run_name in seen:
                raise _BadTrajectory(
                    f"{what}: overview/runs row {index} names the run {run_name!r}, not a new run_XXXXXXXX"
                )
            seen.add(run_name)
            params = {pname: values[index] for pname, values in explored.items()}
            run = SourceRun(source_id=f"{key}/{run_name}", params=params, session_key=key)
            completed = bool(_number(row["completed"]))
            if completed:
                run.status = "done"
                start = _number(row["timestamp"]) if "timestamp" in fields else None
                finish = _number(row["finish_timestamp"]) if "finish_timestamp" in fields else None
                if start is not None and start > 0:
                    run.start = start
                    if finish is not None and finish >= start:
                        run.duration = finish - start
            else:
                run.status = "interrupted"
                run.notes.append(
                    f"pypet: {run_name} is not completed (completed = 0 in overview/runs: it never ran, as after "
                    "Ctrl+C with graceful_exit, or it did not finish)"
                )
            short = self.text(row["short_environment_hexsha"], what) if "short_environment_hexsha" in fields else None
            run.git_commit = self.commit_of(short, environments, commits)
            for source in results.get(run_name, ()):
                self.run_results(source, run, what, "result")
            for source in derived.get(run_name, ()):
                self.run_results(source, run, what, "derived parameter")
            runs.append(run)
        for run_name in (set(results) | set(derived)) - seen:
            self.skip(f"{what}: results of {run_name}, which overview/runs does not list; not imported")
        self.mapped.append(
            f"{what}: {len(runs)} runs -> one session, each kept as '{key}/<run name>'; run information "
            "(timestamp, finish_timestamp, completed) -> start, duration and status (not completed -> "
            "interrupted, with a note)"
        )
        return runs

    def environments(self, group: Any, what: str) -> dict[str, str]:
        """pypet's environments of the trajectory: the short hexsha → the time in the group's name."""
        found: dict[str, str] = {}
        config = self.child(group, "config", what)
        envs = self.child(config, "environment", what) if config is not None else None
        if envs is not None:
            for name, _ in self.children(envs, what):
                match = _ENVIRONMENT.match(name)
                if match:
                    found[match.group(1)] = match.group(2)
        return found

    @staticmethod
    def commit_of(short: str | None, environments: dict[str, str], commits: dict[str, str]) -> str | None:
        """The git commit of the environment that ran a run (the only commit when there is one)."""
        if short and short in environments and environments[short] in commits:
            return commits[environments[short]]
        if len(commits) == 1:
            return next(iter(commits.values()))
        return None

    def run_groups(self, group: Any, top: str, what: str) -> dict[str, list[Any]]:
        """The per-run groups under ``<top>/runs``, by run name.

        A run may have several: its own group, and one inside each of pypet's run set groups
        (``runs/run_set_00000/run_00000000``, where ``$set`` in a name puts results).
        """
        parent = self.child(group, top, what)
        runs = self.child(parent, "runs", what) if parent is not None else None
        if parent is not None and top == "results":  # derived parameters outside runs are config
            for name, _ in self.children(parent, what):
                if name != "runs":
                    self.skip(f"{what}: results.{name}, a result of the trajectory, not of a run; not imported")
        found: dict[str, list[Any]] = {}
        if runs is None:
            return found
        for name, child in self.children(runs, what):
            if _RUN.match(name):
                found.setdefault(name, []).append(child)
            elif _RUN_SET.match(name) and isinstance(child, self.h5py.Group):
                for sub, grand in self.children(child, what):
                    if _RUN.match(sub):
                        found.setdefault(sub, []).append(grand)
                    else:
                        self.skip(f"{what}: {top}.runs.{name}.{sub}, not a run's group; not imported")
            else:
                self.skip(f"{what}: {top}.runs.{name}, not a run's group; not imported")
        return found

    def run_results(self, group: Any, run: SourceRun, what: str, kind: str) -> None:
        """Put the results (or derived parameters) stored in a run's group into ``run.results``."""
        for lname, leaf in self.leaves(group, what, kind + "s"):
            cls = self.attr_text(leaf, "SRVC_INIT_CLASS_NAME")
            comment = self.attr_text(leaf, "SRVC_INIT_COMMENT")
            try:
                if kind == "derived parameter":
                    values = {lname: self.parameter(leaf)[0]}
                else:
                    values = self.result(leaf, lname, cls)
            except _Unmappable as e:
                self.skip(f"{what}: {kind} {lname!r}: {e}; not imported")
                continue
            for rname, value in values.items():
                if rname in run.results or rname in run.params:
                    self.skip(f"{what}: {kind} {rname!r} repeats a name the run has; not imported")
                    continue
                run.results[rname] = value
            if comment:
                run.notes.append(f"pypet comment on {kind} {lname}: {comment}")
        if run.results:
            line = f"{what}: {kind}s of each run -> results (arrays as arrays)"
            if line not in self.mapped:
                self.mapped.append(line)

    # -- leaves ---------------------------------------------------------------------------------

    def leaves(
        self, group: Any, what: str, top: str, skip: frozenset[str] | set[str] = frozenset()
    ) -> list[tuple[str, Any]]:
        """Every pypet leaf (a group with ``SRVC_LEAF``) under ``group``, by its dotted path."""
        found: list[tuple[str, Any]] = []
        stack: list[tuple[str, Any]] = [("", group)]
        # A group may be hard-linked below itself: each group is entered once, so a cycle ends.
        seen = {group.id}
        while stack:
            prefix, node = stack.pop()
            for name, child in self.children(node, what):
                if not prefix and name in skip:
                    continue
                path = f"{prefix}{name}"
                if not isinstance(child, self.h5py.Group):
                    self.skip(f"{what}: {top}.{path}, a dataset outside a pypet leaf; not imported")
                elif len(path) > MAX_NAME:
                    self.skip(f"{what}: {top}.{path[:40]}…, a name over {MAX_NAME} characters; not imported")
                elif child.id in seen:
                    self.skip(f"{what}: {top}.{path} links to a group met before (a cycle); not followed")
                elif _number(self.attr(child, "SRVC_LEAF")):
                    found.append((path, child))
                else:
                    seen.add(child.id)
                    stack.append((path + ".", child))
        found.sort(key=lambda item: item[0])
        return found

    def parameter(self, leaf: Any) -> tuple[Any, list[Any] | None]:
        """A pypet Parameter's value and, when explored, its values by run."""
        cls = self.attr_text(leaf, "SRVC_INIT_CLASS_NAME") or "leaf"
        if cls in _PICKLED:
            raise _Unmappable(f"a pypet {cls}, stored pickled (unpickling could run code)")
        if cls != "Parameter":
            raise _Unmappable(f"a pypet {cls}, which the importer does not read")
        data = self.child(leaf, "data", "a parameter")
        if data is None or not isinstance(data, self.h5py.Dataset):
            raise _Unmappable("no data table")
        coll = self.attr_text(data, "SRVC_COLUMN_data_COLL_TYPE") or ""
        stype = self.attr_text(data, "SRVC_COLUMN_data_SCALAR_TYPE") or ""
        rows = self.column(data, "data")
        if len(rows) != 1:
            raise _Unmappable(f"{len(rows)} rows in its data table, not 1")
        value = _cell(rows[0], coll, stype)
        explored_data = self.child(leaf, "explored_data", "a parameter")
        if explored_data is None:
            return value, None
        coll = self.attr_text(explored_data, "SRVC_COLUMN_data_COLL_TYPE") or coll
        stype = self.attr_text(explored_data, "SRVC_COLUMN_data_SCALAR_TYPE") or stype
        return value, [_cell(cell, coll, stype) for cell in self.column(explored_data, "data")]

    def result(self, leaf: Any, lname: str, cls: str | None) -> dict[str, Any]:
        """A pypet Result's items by name: ``lname`` for its main item, ``lname.item`` for others."""
        if cls in _PICKLED:
            raise _Unmappable(f"a pypet {cls}, stored pickled (unpickling could run code)")
        if cls != "Result":
            raise _Unmappable(f"a pypet {cls or 'leaf without a class'}, which the importer does not read")
        values: dict[str, Any] = {}
        leaf_name = lname.rpartition(".")[2]
        for item, node in self.children(leaf, "a result"):
            store = self.attr_text(node, "SRVC_STORE") if isinstance(node, self.h5py.Dataset) else None
            name = lname if item == leaf_name else f"{lname}.{item}"
            if store not in ("ARRAY", "CARRAY", "EARRAY"):
                if store == "VLARRAY":
                    shown = "VLARRAY: variable-length data (PyTables pickles Python objects into these)"
                else:
                    shown = f"{store} (a dict, table or pandas object)" if store else "a group (a pandas object)"
                raise _Unmappable(f"item {item!r} is stored as {shown}")
            coll = self.attr_text(node, "SRVC_DATA_COLL_TYPE") or ""
            data = self.read(node)
            if coll == "COLL_SCALAR":
                values[name] = _scalar(data, self.attr_text(node, "SRVC_DATA_SCALAR_TYPE") or "")
            elif coll in ("COLL_NDARRAY", "COLL_MATRIX", "COLL_LIST", "COLL_TUPLE"):
                values[name] = _array(data, item)
            else:
                raise _Unmappable(f"item {item!r} has the collection type {coll or 'none'}")
        if not values:
            raise _Unmappable("no items")
        return values

    # -- HDF5, bounded and untrusted ------------------------------------------------------------

    def children(self, group: Any, what: str) -> list[tuple[str, Any]]:
        """The children of ``group`` reached by hard links, with text names; others are reported."""
        found: list[tuple[str, Any]] = []
        try:
            names = list(group.keys())
        except (OSError, RuntimeError, UnicodeDecodeError) as e:
            self.skip(f"{what}: a group whose members cannot be listed ({e}); not imported")
            return found
        for name in names:
            if not isinstance(name, str) or not name or len(name) > MAX_NAME or not_text(name) is not None:
                self.skip(f"{what}: a node named {name!a}, not a plain name; not imported")
                continue
            link = group.get(name, getlink=True)
            if not isinstance(link, self.h5py.HardLink):
                self.skip(f"{what}: {name!r} is {_link_kind(link)}, not followed; not imported")
                continue
            try:
                found.append((name, group[name]))
            except (OSError, KeyError, RuntimeError) as e:
                self.skip(f"{what}: {name!r} cannot be opened ({e}); not imported")
        return found

    def child(self, group: Any, name: str, what: str) -> Any:
        """``group[name]`` when it is there through a hard link, else None."""
        if name not in group:
            return None
        link = group.get(name, getlink=True)
        if not isinstance(link, self.h5py.HardLink):
            self.skip(f"{what}: {name!r} is {_link_kind(link)}, not followed; not imported")
            return None
        return group[name]

    def is_trajectory(self, group: Any) -> bool:
        """Whether a top-level node is a pypet trajectory (a group with overview/runs and overview/info)."""
        if not isinstance(group, self.h5py.Group) or "overview" not in group:
            return False
        overview = self.child(group, "overview", "a trajectory")
        return (
            isinstance(overview, self.h5py.Group)
            and isinstance(self.child(overview, "runs", "a trajectory"), self.h5py.Dataset)
            and isinstance(self.child(overview, "info", "a trajectory"), self.h5py.Dataset)
        )

    def read(self, dataset: Any) -> Any:
        """A dataset's whole content, after checking it is safe and small enough to read."""
        if dataset.is_virtual or dataset.external:
            raise _Unmappable("its data lives outside the file (virtual or external storage), which is not followed")
        dtype = dataset.dtype
        if dtype.hasobject or self.h5py.check_vlen_dtype(dtype) is not None:
            raise _Unmappable("it holds variable-length data (PyTables pickles Python objects into these)")
        size = int(dataset.size or 0) * dtype.itemsize
        if size > MAX_READ_BYTES:
            raise _Unmappable(f"it holds {size} bytes, more than the {MAX_READ_BYTES} read at most")
        try:
            return dataset[()]
        except (OSError, ValueError, TypeError) as e:
            raise _Unmappable(
                f"it cannot be read ({e}; compressed with a filter h5py lacks? pip install hdf5plugin)"
            ) from None

    def table(self, dataset: Any, what: str) -> Any:
        """A PyTables table (a compound dataset) as a structured array; None when it is not one."""
        try:
            data = self.read(dataset)
        except _Unmappable as e:
            raise _BadTrajectory(f"{what}: {e}") from None
        if getattr(data, "dtype", None) is None or data.dtype.names is None or data.ndim != 1:
            raise _BadTrajectory(f"{what} is not a table")
        return data

    def table_row(self, dataset: Any, what: str) -> dict[str, Any]:
        """The first row of a one-row table, by column."""
        data = self.table(dataset, what)
        if len(data) == 0:
            raise _BadTrajectory(f"{what} is empty")
        return {name: data[0][name] for name in data.dtype.names}

    def column(self, dataset: Any, name: str) -> Any:
        """One column of a pypet parameter's table."""
        data = self.read(dataset)
        if getattr(data, "dtype", None) is None or data.dtype.names is None or name not in data.dtype.names:
            raise _Unmappable(f"its {dataset.name.rpartition('/')[2]} is not a table with a column {name!r}")
        return data[name]

    @staticmethod
    def attr(node: Any, name: str) -> Any:
        """An attribute of a node (h5py never unpickles one); None when absent or unreadable."""
        try:
            return node.attrs.get(name)
        except (OSError, TypeError, ValueError, KeyError):
            return None

    def attr_text(self, node: Any, name: str) -> str | None:
        """An attribute pypet writes as a byte string, decoded; None when absent or not text."""
        value = self.attr(node, name)
        return self.text(value, name) if isinstance(value, (bytes, str)) else None

    def text(self, value: Any, what: str) -> str | None:
        """A byte string of the file as text (UTF-8, printable), or None when it is not."""
        if isinstance(value, bytes):
            if len(value) > MAX_TEXT:
                self.skip(f"{what}: text over {MAX_TEXT} bytes; not imported")
                return None
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                self.skip(f"{what}: text that is not UTF-8; not imported")
                return None
        if not isinstance(value, str):
            return None
        if len(value) > MAX_TEXT:
            return None
        return value


_ABSENT = object()


def _link_kind(link: Any) -> str:
    """What kind of link an h5py link object is, in words."""
    name = type(link).__name__
    return {"ExternalLink": "an external link", "SoftLink": "a soft link"}.get(name, f"a link ({name})")


def _same(a: Any, b: Any) -> bool:
    """Whether two values are equal and of one type (1, 1.0 and True differ here)."""
    return type(a) is type(b) and a == b


def _json_safe(value: Any) -> Any:
    """A value kept inside the config value ``pypet`` (JSON, which has no NaN): NaN as None."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


def _number(value: Any) -> float | None:
    """A finite number read from the file, or None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _scalar(value: Any, stype: str) -> Any:
    """A pypet scalar as a plain Python value, by the type name pypet stored beside it."""
    if stype == "str":
        if isinstance(value, bytes):
            if len(value) > MAX_TEXT:
                raise _Unmappable(f"a str over {MAX_TEXT} bytes")
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                raise _Unmappable("a str that is not UTF-8") from None
        return str(value)
    if stype in ("bytes", "bytes_"):
        raise _Unmappable("bytes (pypet stores pickles so)")
    if stype.startswith("bool"):
        return bool(value)
    if stype.startswith(("int", "uint")):
        return int(value)
    if stype.startswith("float"):
        return float(value)
    raise _Unmappable(f"a value of type {stype or 'unknown'}")


def _cell(value: Any, coll: str, stype: str) -> Any:
    """A parameter's value from its table cell: a scalar, or a list for a tuple, list or array."""
    if coll == "COLL_SCALAR":
        return _scalar(value, stype)
    if coll in ("COLL_TUPLE", "COLL_LIST", "COLL_NDARRAY", "COLL_MATRIX"):
        items = getattr(value, "tolist", lambda: value)()
        if not isinstance(items, list):
            items = [items]
        return _nested(items, stype)
    raise _Unmappable(f"a value of collection type {coll or 'unknown'}")


def _nested(items: list[Any], stype: str) -> list[Any]:
    """A list read from a table cell, its items made plain."""
    return [_nested(item, stype) if isinstance(item, list) else _scalar(item, stype) for item in items]


def _array(data: Any, item: str) -> Any:
    """A numeric or boolean array result (strings and objects are refused)."""
    import numpy as np

    array = np.asarray(data)
    if array.dtype.kind not in "biufc":
        raise _Unmappable(f"item {item!r} is an array of dtype {array.dtype}, not numbers")
    return array
