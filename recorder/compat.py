"""Whether stores agree enough to be merged: config values, code versions, names, psets.

:class:`Expected` collects what the destination holds and checks each source
against it (and against the sources checked before), before a merge writes
anything; see :mod:`recorder.merge`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from .errors import RecorderError

__all__ = ["Expected"]

_CONFIG = """
SELECT e.name, c.name, c.kind, quote(c.value)
FROM {db}.config AS c JOIN {db}.sessions AS s ON s.pk = c.session JOIN {db}.experiments AS e ON e.pk = s.experiment
WHERE {sessions}
"""
_ENV_SHAS = """
SELECT e.name, s.env_sha, s.git_commit IS NULL
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


class Expected:
    """What the destination and the sources checked so far hold, per experiment."""

    def __init__(self) -> None:
        self.config: dict[str, dict[str, set[tuple[Any, ...]]]] = {}
        self.env_shas: dict[str, set[str]] = {}
        self.names: dict[str, dict[str, tuple[str, str]]] = {}

    def add(self, conn: sqlite3.Connection, db: str, sessions: str) -> None:
        for experiment, name, kind, value in conn.execute(_CONFIG.format(db=db, sessions=sessions)):
            self.config.setdefault(experiment, {}).setdefault(name, set()).add((kind, value))
        for experiment, env_sha, _ in conn.execute(_ENV_SHAS.format(db=db, sessions=sessions)):
            self.env_shas.setdefault(experiment, set()).add(env_sha)
        for experiment, role, name in conn.execute(_FIELDS.format(db=db)):
            self.names.setdefault(experiment, {})[name.lower()] = (role, name)

    def check(self, conn: sqlite3.Connection, db: str, source: Path, sessions: str,
              allow_code_mismatch: bool) -> None:
        """Refuse the source attached as ``db`` if it disagrees with what is expected; then expect it too."""
        config: dict[str, dict[str, set[tuple[Any, ...]]]] = {}
        for experiment, name, kind, value in conn.execute(_CONFIG.format(db=db, sessions=sessions)):
            config.setdefault(experiment, {}).setdefault(name, set()).add((kind, value))
        env: dict[str, tuple[set[str], bool]] = {}
        for experiment, env_sha, no_git in conn.execute(_ENV_SHAS.format(db=db, sessions=sessions)):
            shas, without_git = env.setdefault(experiment, (set(), False))
            shas.add(env_sha)
            env[experiment] = (shas, without_git or bool(no_git))
        for experiment, (shas, without_git) in env.items():
            known = self.env_shas.get(experiment)
            if known is None:
                continue  # new to the destination: nothing to agree with
            mine = config.get(experiment, {})
            theirs = self.config.get(experiment, {})
            for name in sorted(mine.keys() | theirs.keys()):
                if not mine.get(name, set()) <= theirs.get(name, set()) or name not in mine:
                    raise RecorderError(
                        f"cannot merge {source}: experiment {experiment!r} has config {name!r} = "
                        f"{_shown(mine.get(name))} there but {_shown(theirs.get(name))} in the destination; "
                        "runs with different config do not belong in one experiment (merge into another store, "
                        "or rename the experiment)"
                    )
            if not allow_code_mismatch and not shas <= known:
                hint = " (sessions without git have no code version to compare)" if without_git else ""
                raise RecorderError(
                    f"cannot merge {source}: experiment {experiment!r} ran code {', '.join(sorted(shas - known))} "
                    f"there but {', '.join(sorted(known))} in the destination{hint}; pass "
                    "allow_code_mismatch=True (--allow-code-mismatch) to merge runs of different code"
                )
        row = conn.execute(_PSET_COLLISION.format(db=db)).fetchone()
        if row is not None:
            raise RecorderError(f"cannot merge {source}: pset hash {row[0]} names {row[1]} there but {row[2]} here")
        for experiment, role, name in conn.execute(_FIELDS.format(db=db)):
            taken = self.names.setdefault(experiment, {})
            other = taken.setdefault(name.lower(), (role, name))
            if other != (role, name):
                raise RecorderError(
                    f"cannot merge {source}: in experiment {experiment!r}, {name!r} is a {role} there but "
                    f"{other[1]!r} is a {other[0]} in the destination; one column cannot be both"
                )
        for experiment, shas_ in env.items():
            self.env_shas.setdefault(experiment, set()).update(shas_[0])
        for experiment, names in config.items():
            for name, values in names.items():
                self.config.setdefault(experiment, {}).setdefault(name, set()).update(values)


def _shown(values: set[tuple[Any, ...]] | None) -> str:
    if not values:
        return "(not set)"
    return " or ".join(sorted(str(value) for _, value in values))
