"""Whether stores agree enough to be merged: config values, code versions, names, psets.

:class:`Expected` collects what the destination holds and checks each source
against it (and against the sources checked before), before a merge writes
anything; see :mod:`recorder.merge`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from ..errors import MergeRefused, RecorderError

__all__ = ["Expected"]

_CONFIG = """
SELECT e.name, c.name, c.kind, quote(c.value)
FROM {db}.config AS c JOIN {db}.sessions AS s ON s.pk = c.session JOIN {db}.experiments AS e ON e.pk = s.experiment
WHERE {sessions}
"""
# What identifies a session's code: its commit; without git, the digest of its main script
# (its env SHA, pypet's hash of name and start time, differs for every session); without
# either, nothing shared (the env SHA).
_CODES = """
SELECT e.name,
       CASE WHEN s.git_commit IS NOT NULL THEN 'commit'
            WHEN s.script IS NOT NULL THEN 'script' ELSE 'session' END,
       CASE WHEN s.git_commit IS NULL AND s.script IS NOT NULL THEN s.script ELSE s.env_sha END
FROM {db}.sessions AS s JOIN {db}.experiments AS e ON e.pk = s.experiment
WHERE {sessions}
"""
_PSET_COLLISION = """
SELECT lower(hex(sp.hash)), sp.params, mp.params
FROM {db}.psets AS sp JOIN main.psets AS mp ON mp.hash = sp.hash
WHERE sp.params != mp.params LIMIT 1
"""
_FIELDS = """
SELECT e.name, f.role, f.name FROM {db}.fields AS f JOIN {db}.experiments AS e ON e.pk = f.experiment
"""


#: A session's code: ("commit", env SHA), ("script", digest of the main script) without git,
#: or ("session", env SHA) with neither (then it matches no other session).
Code = tuple[str, str]


def _shown_code(code: Code) -> str:
    kind, value = code
    return {"commit": value, "script": f"main script {value}", "session": f"{value} (no git, no script)"}[kind]


class Expected:
    """What the destination and the sources checked so far hold, per experiment."""

    def __init__(self) -> None:
        self.config: dict[str, dict[str, set[tuple[Any, ...]]]] = {}
        self.codes: dict[str, set[Code]] = {}
        self.names: dict[str, dict[str, tuple[str, str]]] = {}

    def add(self, conn: sqlite3.Connection, db: str, sessions: str) -> None:
        for experiment, name, kind, value in conn.execute(_CONFIG.format(db=db, sessions=sessions)):
            self.config.setdefault(experiment, {}).setdefault(name, set()).add((kind, value))
        for experiment, kind, value in conn.execute(_CODES.format(db=db, sessions=sessions)):
            self.codes.setdefault(experiment, set()).add((kind, value))
        for experiment, role, name in conn.execute(_FIELDS.format(db=db)):
            self.names.setdefault(experiment, {})[name.lower()] = (role, name)

    def check(self, conn: sqlite3.Connection, db: str, source: Path, sessions: str, allow_code_mismatch: bool) -> None:
        """Refuse the source attached as ``db`` if it disagrees with what is expected; then expect it too."""
        config: dict[str, dict[str, set[tuple[Any, ...]]]] = {}
        for experiment, name, kind, value in conn.execute(_CONFIG.format(db=db, sessions=sessions)):
            config.setdefault(experiment, {}).setdefault(name, set()).add((kind, value))
        codes: dict[str, set[Code]] = {}
        for experiment, kind, value in conn.execute(_CODES.format(db=db, sessions=sessions)):
            codes.setdefault(experiment, set()).add((kind, value))
        for experiment, mine_codes in codes.items():
            known = self.codes.get(experiment)
            if known is None:
                continue  # new to the destination: nothing to agree with
            mine = config.get(experiment, {})
            theirs = self.config.get(experiment, {})
            for name in sorted(mine.keys() | theirs.keys()):
                if not mine.get(name, set()) <= theirs.get(name, set()) or name not in mine:
                    raise MergeRefused(
                        f"cannot merge {source}: experiment {experiment!r} has config {name!r} = "
                        f"{_shown(mine.get(name))} there but {_shown(theirs.get(name))} in the destination; "
                        "runs with different config do not belong in one experiment (merge into another store, "
                        "or rename the experiment)"
                    )
            if not allow_code_mismatch and not mine_codes <= known:
                kinds = {kind for kind, _ in mine_codes - known} | {kind for kind, _ in known}
                hint = ""
                if "session" in kinds:
                    hint = " (sessions without git and without a main script file have no code version to compare)"
                elif "script" in kinds:
                    hint = " (sessions without git are compared by the SHA-256 of their main script's source)"
                raise MergeRefused(
                    f"cannot merge {source}: experiment {experiment!r} ran code "
                    f"{', '.join(sorted(map(_shown_code, mine_codes - known)))} there but "
                    f"{', '.join(sorted(map(_shown_code, known)))} in the destination{hint}; pass "
                    "allow_code_mismatch=True (--allow-code-mismatch) to merge runs of different code"
                )
        row = conn.execute(_PSET_COLLISION.format(db=db)).fetchone()
        if row is not None:
            raise RecorderError(f"cannot merge {source}: pset hash {row[0]} names {row[1]} there but {row[2]} here")
        for experiment, role, name in conn.execute(_FIELDS.format(db=db)):
            taken = self.names.setdefault(experiment, {})
            other = taken.setdefault(name.lower(), (role, name))
            if other != (role, name):
                raise MergeRefused(
                    f"cannot merge {source}: in experiment {experiment!r}, {name!r} is a {role} there but "
                    f"{other[1]!r} is a {other[0]} in the destination; one column cannot be both"
                )
        for experiment, mine_codes in codes.items():
            self.codes.setdefault(experiment, set()).update(mine_codes)
        for experiment, names in config.items():
            for name, values in names.items():
                self.config.setdefault(experiment, {}).setdefault(name, set()).update(values)


def _shown(values: set[tuple[Any, ...]] | None) -> str:
    if not values:
        return "(not set)"
    return " or ".join(sorted(str(value) for _, value in values))
